"""DNS lookups for the doctor: one server, each question asked once, every outcome told apart.

A receiver treats "no such record" (NXDOMAIN, or NOERROR with no data) very
differently from "could not find out" (SERVFAIL, no answer in time, a reply
that does not parse): the first is a verdict on the sender, the second is
not. So every lookup ends in an ``Outcome``; an absent record is an empty
answer, a failed lookup raises ``DnsFailure`` naming what happened, and the
doctor turns that into ``unknown`` for the area it was checking, never into
"publish …".

Answers (failures included) are kept for the run, so one record tree is
asked once however many checks and libraries walk it. After a few timeouts in
a row the server is taken as gone and the remaining questions fail at once,
so a dead server costs seconds, not minutes.

The libraries the doctor relies on look names up through this resolver too:
``LibraryResolver`` is the ``dns.resolver.Resolver`` that checkdmarc is
given, and ``spf_lookup`` the lookup pyspf is given.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename

from mailer.core.errors import ConfigError

DEFAULT_TIMEOUT = 2.0  # seconds per attempt; a lookup makes at most two attempts
ATTEMPTS = 2  # a lost UDP datagram is retried once before the lookup counts as a timeout
GIVE_UP_AFTER = 3  # timeouts in a row after which the server is taken as gone


class Outcome(StrEnum):
    """How one DNS question ended."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, without records of that type
    SERVFAIL = "servfail"  # the server could not answer (broken resolver, broken zone)
    REFUSED = "refused"  # the server refused (or another error rcode)
    TIMEOUT = "timeout"  # no reply in time
    GARBAGE = "garbage"  # a reply that does not parse as DNS

    @property
    def absent(self) -> bool:
        """The record is known not to exist."""
        return self in (Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def failed(self) -> bool:
        """Nothing is known: the lookup itself failed."""
        return self not in (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA)


@dataclass(frozen=True)
class Lookup:
    """One question and how it ended (the reply message, when there was one)."""

    name: str
    kind: str
    outcome: Outcome
    server: str
    response: dns.message.Message | None = field(default=None, repr=False)
    detail: str = ""

    def describe(self) -> str:
        """``the DNS server 127.0.0.1:53 answered SERVFAIL for TXT x.example``."""
        what = f"{self.kind} {self.name}"
        said = {
            Outcome.SERVFAIL: f"answered SERVFAIL for {what}",
            Outcome.REFUSED: f"refused {what} ({self.detail})",
            Outcome.TIMEOUT: f"gave no answer for {what} ({self.detail})",
            Outcome.GARBAGE: f"sent a reply for {what} that is not DNS ({self.detail})",
            Outcome.NXDOMAIN: f"says {self.name} does not exist (NXDOMAIN)",
            Outcome.NODATA: f"has no {self.kind} record at {self.name} (NODATA)",
            Outcome.ANSWER: f"answered {what}",
        }[self.outcome]
        return f"the DNS server {self.server} {said}"


class DnsFailure(Exception):
    """A lookup failed (SERVFAIL, timeout, garbage, refused): nothing is known about the record.

    Deliberately not a ``dns.exception.DNSException`` (nor an ``OSError``): the
    libraries the doctor calls catch those and report "record not found", which
    is exactly the false verdict this exception exists to prevent.
    """

    def __init__(self, lookup: Lookup) -> None:
        super().__init__(lookup.describe())
        self.lookup = lookup


@dataclass(frozen=True)
class Nameserver:
    """A DNS server to ask: an IP address and a port."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_FORMS = "an IPv4 or IPv6 address or a host name, optionally with :PORT ([::1]:53 for IPv6)"


def parse_nameserver(text: str) -> Nameserver:
    """``1.1.1.1``, ``1.1.1.1:53``, ``::1``, ``[::1]:53``, ``dns.example[:53]`` → a Nameserver.

    A host name is resolved once, here, by the system. Anything else is a
    ``ConfigError`` whose message fits on one line.
    """
    given = text.strip()
    host, port_text = _split_host_port(given)
    if port_text is not None and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise _refuse(given, f"the port {port_text!r} is not a number from 1 to 65535")
    port = int(port_text) if port_text is not None else 53
    try:
        return Nameserver(str(ipaddress.ip_address(host)), port)
    except ValueError:
        pass
    if given.startswith("[") or not all(_LABEL.match(p) for p in host.rstrip(".").split(".")):
        raise _refuse(given, f"{host!r} is neither an IP address nor a host name")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _refuse(given, f"the host name {host!r} does not resolve ({exc})") from None
    return Nameserver(str(found[0][4][0]), port)


def _split_host_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return text, None  # refused below: not an address, not a name
        return host, rest[1:] if rest else None
    if text.count(":") > 1:
        return text, None  # a bare IPv6 address
    host, colon, port = text.partition(":")
    return host, port if colon else None


def _refuse(text: str, why: str) -> ConfigError:
    return ConfigError(f"cannot use {text!r} as the DNS server: {why}; give {_FORMS}")


def system_nameservers() -> list[Nameserver]:
    """The system's resolvers (``/etc/resolv.conf``); empty when none is configured."""
    try:
        configured = dns.resolver.Resolver().nameservers
    except dns.resolver.NoResolverConfiguration:
        return []
    return [Nameserver(str(ns), 53) for ns in configured]


class Resolver:
    """Asks one DNS server (or the system's, in turn) and keeps every answer for the run."""

    def __init__(
        self, server: Nameserver | list[Nameserver] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if server is None:
            self.servers = system_nameservers()
        else:
            self.servers = server if isinstance(server, list) else [server]
        self.timeout = timeout
        self._cache: dict[tuple[str, str], Lookup] = {}
        self._lock = threading.Lock()
        self._timeouts_in_a_row = 0
        self.asked: Counter[tuple[str, str]] = Counter()  # questions sent, for tests

    def lookup(self, name: str, kind: str) -> Lookup:
        """The outcome of ``kind`` at ``name``: asked once per run, then from memory."""
        key = (name.lower().rstrip("."), kind.upper())
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._ask(*key)
            return self._cache[key]

    def _ask(self, name: str, kind: str) -> Lookup:
        if not self.servers:
            return Lookup(name, kind, Outcome.TIMEOUT, "(none)", None, "no DNS server configured")
        if self._timeouts_in_a_row >= GIVE_UP_AFTER:
            detail = f"the server stopped answering after {GIVE_UP_AFTER} timeouts in a row"
            return Lookup(name, kind, Outcome.TIMEOUT, str(self.servers[0]), None, detail)
        found = None
        for server in self.servers:  # the system's servers in turn, as its resolver would
            found = self._ask_one(server, name, kind)
            if not found.outcome.failed:
                break
        assert found is not None
        self._timeouts_in_a_row = (
            self._timeouts_in_a_row + 1 if found.outcome is Outcome.TIMEOUT else 0
        )
        return found

    def _ask_one(self, server: Nameserver, name: str, kind: str) -> Lookup:
        query = dns.message.make_query(name, kind)
        query.flags |= dns.flags.RD
        where = str(server)
        for _attempt in range(ATTEMPTS):
            self.asked[(name, kind)] += 1
            try:
                reply, _tcp = dns.query.udp_with_fallback(
                    query, server.host, timeout=self.timeout, port=server.port
                )
            except dns.exception.Timeout:
                continue
            except (dns.exception.DNSException, ValueError, EOFError) as exc:
                # A reply arrived but is not DNS (or not a reply to this query).
                detail = f"{type(exc).__name__}: {exc}"
                return Lookup(name, kind, Outcome.GARBAGE, where, None, detail)
            except OSError as exc:
                detail = f"cannot reach it: {exc.strerror or exc}"
                return Lookup(name, kind, Outcome.TIMEOUT, where, None, detail)
            return _judge(name, kind, where, reply)
        detail = f"{ATTEMPTS} tries of {self.timeout:g} s"
        return Lookup(name, kind, Outcome.TIMEOUT, where, None, detail)

    def _records(self, name: str, kind: str) -> list[Any]:
        """The rdata of an answer; [] when absent; ``DnsFailure`` when the lookup failed."""
        found = self.lookup(name, kind)
        if found.outcome.failed:
            raise DnsFailure(found)
        if found.outcome.absent or found.response is None:
            return []
        answer = _answer(found)
        return list(answer.rrset) if answer.rrset is not None else []

    def txt(self, name: str) -> list[str]:
        """The TXT records of ``name``, each with its strings joined."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._records(name, "TXT")]

    def addresses(self, name: str) -> list[str]:
        """IPv4 and IPv6 addresses of ``name``."""
        return [str(r) for kind in ("A", "AAAA") for r in self._records(name, kind)]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """Mail exchangers of ``name`` as (preference, host), most preferred first.

        A null MX (RFC 7505) comes back as ``(0, "")``.
        """
        records = sorted(self._records(name, "MX"), key=lambda r: r.preference)
        return [(int(r.preference), str(r.exchange).rstrip(".")) for r in records]

    def ptr(self, address: str) -> list[str]:
        """The names an IP address points back to (reverse DNS)."""
        name = dns.reversename.from_address(address).to_text()
        return [str(r).rstrip(".") for r in self._records(name, "PTR")]

    def exists(self, name: str) -> bool:
        """False only when the server says NXDOMAIN for ``name``."""
        found = self.lookup(name, "A")
        if found.outcome.failed:
            raise DnsFailure(found)
        return found.outcome is not Outcome.NXDOMAIN

    def failures(self) -> list[Lookup]:
        """The lookups of this run that failed, in the order they were asked."""
        with self._lock:
            return [f for f in self._cache.values() if f.outcome.failed]


def _judge(name: str, kind: str, where: str, reply: dns.message.Message) -> Lookup:
    rcode = reply.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Lookup(name, kind, Outcome.NXDOMAIN, where, reply)
    if rcode == dns.rcode.SERVFAIL:
        return Lookup(name, kind, Outcome.SERVFAIL, where, reply, "SERVFAIL")
    if rcode != dns.rcode.NOERROR:
        return Lookup(name, kind, Outcome.REFUSED, where, reply, dns.rcode.to_text(rcode))
    found = Lookup(name, kind, Outcome.ANSWER, where, reply)
    try:
        answer = _answer(found)
    except Exception as exc:  # dnspython raises many kinds for an answer it cannot read
        return Lookup(name, kind, Outcome.GARBAGE, where, None, f"{type(exc).__name__}: {exc}")
    return found if answer.rrset is not None else Lookup(name, kind, Outcome.NODATA, where, reply)


def _answer(found: Lookup) -> dns.resolver.Answer:
    """dnspython's view of a reply (it follows CNAMEs inside the reply)."""
    assert found.response is not None
    return dns.resolver.Answer(
        dns.name.from_text(found.name),
        dns.rdatatype.from_text(found.kind),
        dns.rdataclass.IN,
        found.response,  # type: ignore[arg-type]
    )


class LibraryResolver(dns.resolver.Resolver):
    """A dnspython resolver whose questions go through the doctor's ``Resolver``.

    Handed to checkdmarc: it then sees exactly the answers (and the cache) the
    doctor sees. Absent records raise dnspython's own NXDOMAIN / NoAnswer, as
    the library expects; failed lookups raise ``DnsFailure``, which the library
    does not catch, so they reach the doctor instead of becoming "not found".
    """

    def __init__(self, resolver: Resolver) -> None:
        super().__init__(configure=False)
        self.doctor = resolver
        self.nameservers = [str(s.host) for s in resolver.servers] or ["127.0.0.1"]

    def resolve(
        self,
        qname: str | dns.name.Name,
        rdtype: Any = dns.rdatatype.A,
        rdclass: Any = dns.rdataclass.IN,
        tcp: bool = False,
        source: str | None = None,
        raise_on_no_answer: bool = True,
        source_port: int = 0,
        lifetime: float | None = None,
        search: bool | None = None,
    ) -> dns.resolver.Answer:
        """The doctor's (cached) answer, in the form dnspython callers expect."""
        name = qname.to_text() if isinstance(qname, dns.name.Name) else str(qname)
        kind = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
        found = self.doctor.lookup(name, kind)
        if found.outcome.failed and kind == "SPF":
            # The obsolete SPF type (RFC 7208 §3.1): checkdmarc asks it only to warn when one
            # is published and ignores a failed lookup, as many servers fail that type.
            raise dns.resolver.NoAnswer()
        if found.outcome.failed:
            raise DnsFailure(found)
        qname_obj = dns.name.from_text(found.name)
        if found.outcome is Outcome.NXDOMAIN:
            responses = {qname_obj: found.response} if found.response is not None else {}
            raise dns.resolver.NXDOMAIN(qnames=[qname_obj], responses=responses)
        answer = _answer(found)
        if answer.rrset is None and raise_on_no_answer:
            raise dns.resolver.NoAnswer(response=found.response)
        return answer


_SPF_LOCK = threading.Lock()


@contextmanager
def spf_lookup(resolver: Resolver) -> Iterator[None]:
    """pyspf looks names up through ``resolver`` while inside (its own hook, ``spf.DNSLookup``).

    pyspf has one module-level lookup function, which its own test suite
    replaces the same way; the lock keeps two runs in one process apart.
    """
    import spf

    def lookup(name: str, qtype: str, *_args: object, **_kwargs: object) -> list[Any]:
        found = resolver.lookup(name, qtype)
        if found.outcome.failed:
            raise spf.TempError(f"DNS {found.describe()}")
        if found.outcome.absent or found.response is None:
            return []
        answer = _answer(found)
        if answer.rrset is None:
            return []
        return [((name, qtype), _spf_value(qtype, r)) for r in answer.rrset]

    with _SPF_LOCK:
        saved: Callable[..., Any] = spf.DNSLookup
        spf.DNSLookup = lookup
        try:
            yield
        finally:
            spf.DNSLookup = saved


def _spf_value(qtype: str, rdata: Any) -> Any:
    """An answer in the shape pyspf's own dnspython lookup gives it."""
    if qtype in ("A", "AAAA"):
        return rdata.address
    if qtype == "MX":
        return (rdata.preference, rdata.exchange)
    if qtype == "PTR":
        return rdata.target.to_text(True)
    return rdata.strings  # TXT / SPF
