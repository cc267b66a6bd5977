"""The doctor's resolver: which servers it accepts, outcomes told apart, each question asked once."""

from __future__ import annotations

import json

import pytest

from mailer.core.errors import ConfigError
from mailer.doctor.resolver import (
    DnsFailure,
    Nameserver,
    Outcome,
    Resolver,
    parse_nameserver,
)
from tests.dns_server import DnsServer
from tests.doctor.conftest import run_doctor_on, write_workspace
from tests.doctor.zones import SHARED, tree_zone
from tests.workspace import invoke


@pytest.mark.parametrize(
    ("given", "host", "port"),
    [
        ("1.1.1.1", "1.1.1.1", 53),
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("::1", "::1", 53),
        ("2001:db8::53", "2001:db8::53", 53),
        ("[::1]:53", "::1", 53),
        ("[::1]", "::1", 53),
        ("localhost", "127.0.0.1", 53),  # a host name, resolved once by the system
        ("localhost:5353", "127.0.0.1", 5353),
    ],
)
def test_resolver_forms_that_are_accepted(given, host, port):
    assert parse_nameserver(given) == Nameserver(host, port)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("127.0.0.1:abc", "the port 'abc' is not a number"),
        ("127.0.0.1:0", "the port '0' is not a number from 1 to 65535"),
        ("[::1]:", "the port '' is not a number"),
        ("[::1", "neither an IP address nor a host name"),
        ("dns_server!", "neither an IP address nor a host name"),
        ("no-such-host.invalid", "does not resolve"),
        ("", "neither an IP address nor a host name"),
    ],
)
def test_anything_else_is_refused_in_one_line(given, why):
    with pytest.raises(ConfigError) as caught:
        parse_nameserver(given)
    assert why in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_refuses_a_bad_resolver_in_one_line_without_a_traceback(tmp_path, relay):
    write_workspace(tmp_path, relay.port, "good.mailertest.net", None)
    result = invoke(tmp_path, "doctor", "--resolver", "127.0.0.1:abc")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot use '127.0.0.1:abc'"), lines
    assert "Traceback" not in result.output


def test_ipv6_loopback_server_in_brackets(tmp_path, doctor_keys, ca, relay):
    domain = "mt-tree.net"
    root = write_workspace(tmp_path, relay.port, domain, doctor_keys["2048"])
    with DnsServer(SHARED + tree_zone(domain, doctor_keys["2048"]), host="::1") as server:
        assert server.address.startswith("[::1]:")
        result = invoke(root, "doctor", "--json", "--resolver", server.address)
    data = json.loads(result.output)
    assert data["areas"]["SPF"] == "pass" and data["areas"]["DMARC"] == "pass", data


def test_one_spf_tree_is_asked_once_though_three_libraries_walk_it(
    tmp_path, doctor_keys, ca, relay
):
    domain = "mt-tree.net"
    root = write_workspace(tmp_path, relay.port, domain, doctor_keys["2048"])
    with DnsServer(SHARED + tree_zone(domain, doctor_keys["2048"])) as server:
        report = run_doctor_on(root, server, ca)
        asked = server.queries
    assert report.result.value == "pass", report.to_dict()
    # checkdmarc parses the tree, pyspf evaluates it, the doctor reads the record: one query each.
    assert max(asked.values()) == 1, [q for q, n in asked.items() if n > 1]
    tree = {q for q in asked if "_spf." in q[0]}
    for part in "abc":
        assert asked[(f"{part}._spf.{domain}", "TXT")] == 1
    assert {kind for _name, kind in tree} <= {"TXT", "SPF", "CNAME"}  # checkdmarc asks all three
    assert report.dns_queries == sum(asked.values())


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("servfail", Outcome.SERVFAIL),
        ("refused", Outcome.REFUSED),
        ("timeout", Outcome.TIMEOUT),
        ("garbage", Outcome.GARBAGE),
    ],
)
def test_each_failure_is_told_apart_and_cached(fault, outcome):
    zone = 'x.mt-r.net. 300 IN TXT "hello"\ny.mt-r.net. 300 IN A 192.0.2.1\n'
    with DnsServer(zone, faults={"x.mt-r.net": fault}) as server:
        resolver = Resolver(parse_nameserver(server.address), timeout=1.0)
        for _ in range(2):
            with pytest.raises(DnsFailure) as caught:
                resolver.txt("x.mt-r.net")
            assert caught.value.lookup.outcome is outcome
        assert resolver.txt("y.mt-r.net") == []  # NODATA: absent, not a failure
        assert resolver.txt("z.mt-r.net") == []  # NXDOMAIN: absent
        assert resolver.lookup("y.mt-r.net", "TXT").outcome is Outcome.NODATA
        assert resolver.lookup("z.mt-r.net", "TXT").outcome is Outcome.NXDOMAIN
        tries = 2 if fault == "timeout" else 1  # a lost datagram is retried once
        assert server.queries[("x.mt-r.net", "TXT")] == tries  # the second ask came from memory
    assert outcome.failed and not outcome.absent


def test_after_three_timeouts_in_a_row_the_server_is_taken_as_gone():
    zone = "".join(f'n{i}.mt-r.net. 300 IN TXT "v"\n' for i in range(5))
    faults = {f"n{i}.mt-r.net": "timeout" for i in range(5)}
    with DnsServer(zone, faults=faults) as server:
        resolver = Resolver(parse_nameserver(server.address), timeout=0.2)
        for i in range(5):
            assert resolver.lookup(f"n{i}.mt-r.net", "TXT").outcome is Outcome.TIMEOUT
        assert sum(server.queries.values()) == 3 * 2  # n3 and n4 were not sent
    assert "stopped answering" in resolver.lookup("n4.mt-r.net", "TXT").detail
