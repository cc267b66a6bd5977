"""Benchmark and figures for `mailer doctor` on the loopback DNS server (tests/dns_server.py).

Two parts, both against the defect zones of tests/doctor/zones.py:

  table    each defect zone: does the doctor find it, does checkdmarc (the peer, with its
           own resolver) find it, and does either read a DNS failure as "absent"
  timing   a full doctor run (DNS, DKIM verification, STARTTLS to a local relay) on a
           good sender whose SPF is a tree of includes, against a fast server and against a slow one (every answer delayed),
           median of --runs, as a ratio to the fast run of the same process; plus the
           questions asked with the per-run cache and without it

    python tests/benchmarks/bench_doctor.py [--runs 3] [--delay 0.1] [--part table|timing|all]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.core.settings import load_settings  # noqa: E402
from mailer.doctor import resolver as resolver_module  # noqa: E402
from mailer.doctor.run import DoctorOptions, diagnose  # noqa: E402
from tests.dns_server import DnsServer  # noqa: E402
from tests.doctor.conftest import tls_context, write_workspace  # noqa: E402
from tests.doctor.peer import peer_findings, peer_results  # noqa: E402
from tests.doctor.zones import Zone, catalogue, faults, make_key, tree_zone, zone_text  # noqa: E402
from tests.smtp_server import SmtpServer, self_signed_context  # noqa: E402
from tests.workspace import NOW  # noqa: E402


def _doctor(root: Path, server: DnsServer, ca: object, timeout: float = 0.5):  # type: ignore[no-untyped-def]
    options = DoctorOptions(
        resolver=server.address,
        tls_context=tls_context(ca),
        dns_timeout=timeout,  # type: ignore[arg-type]
    )
    return diagnose(load_settings(root, env={}), None, options, now=NOW)


def table(zones: list[Zone], server: DnsServer, relay: SmtpServer, ca: object, key) -> None:  # type: ignore[no-untyped-def]
    """The defect table, as Markdown."""
    good = next(z for z in zones if z.slug == "good")
    baseline = peer_results(good, "127.0.0.1", server.port)
    print("| zone | defect | doctor | checkdmarc |")
    print("|---|---|---|---|")
    totals = {"doctor": 0, "peer": 0, "peer_scope": 0, "peer_dns_error": 0}
    for zone in zones:
        if zone.slug == "good":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            root = write_workspace(Path(tmp), relay.port, zone.from_domain, key)
            report = _doctor(root, server, ca)
        statuses = {}
        for check in report.checks:
            statuses.setdefault(check.id, set()).add(str(check.status))
        hit = all(statuses.get(i, set()) & want for i, want in zone.expect.items())
        totals["doctor"] += hit
        doctor = ", ".join(f"{i} {'/'.join(sorted(statuses.get(i, {'—'})))}" for i in zone.expect)
        peer_cell = "— (not an SPF/DMARC check)"
        results = peer_results(zone, "127.0.0.1", server.port)
        found = peer_findings(zone, results, baseline, good)
        errors = {a: str(results[a].get("error") or "") for a in ("spf", "dmarc")}
        if zone.peer is not None:
            totals["peer_scope"] += 1
            totals["peer"] += bool(found[zone.peer])
            peer_cell = "found" if found[zone.peer] else "**missed**"
        elif zone.slug.startswith("dns-") and any(errors.values()):
            totals["peer_dns_error"] += 1
            shown = "; ".join(f"{a.upper()} invalid: {e[:70]}" for a, e in errors.items() if e)
            peer_cell = f"{shown} (an error, not told apart)"
        elif any(found.values()):
            peer_cell = "flags " + ", ".join(a.upper() for a in found if found[a])
        mark = "found" if hit else "**missed**"
        print(f"| {zone.slug} | {zone.defect} | {mark}: {doctor} | {peer_cell} |")
    defects = len(zones) - 1
    print()
    print(
        f"doctor: {totals['doctor']}/{defects} defects found; checkdmarc: {totals['peer']}/"
        f"{totals['peer_scope']} of the SPF/DMARC defects; on {totals['peer_dns_error']} DNS "
        "failures it reports the record invalid"
    )


class _Uncached(resolver_module.Resolver):
    """The doctor's resolver without its per-run cache: every lookup asks the server."""

    def lookup(self, name: str, kind: str) -> resolver_module.Lookup:
        return self._ask(name.lower().rstrip("."), kind.upper())


def timing(zones: list[Zone], runs: int, delay: float, relay: SmtpServer, ca, key) -> None:  # type: ignore[no-untyped-def]
    """A full run, fast vs slow resolver (median of ``runs``), and the questions asked."""
    domain = "mt-tree.net"
    text = zone_text([]) + tree_zone(domain, key)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_workspace(Path(tmp), relay.port, domain, key)
        medians, queries = {}, {}
        for label, wait in (("fast", 0.0), ("slow", delay)):
            with DnsServer(text, delay=wait) as server:
                times = []
                for _ in range(runs):
                    server.reset()
                    start = time.perf_counter()
                    report = _doctor(root, server, ca, timeout=max(2.0, 4 * wait))
                    times.append(time.perf_counter() - start)
                    assert report.result.value == "pass", report.to_dict()
                medians[label] = statistics.median(times)
                queries[label] = sum(server.queries.values())
        with DnsServer(text) as server:
            original = resolver_module.Resolver
            resolver_module.Resolver = _Uncached  # type: ignore[misc]
            import mailer.doctor.run as run_module

            run_module.Resolver = _Uncached  # type: ignore[misc]
            try:
                _doctor(root, server, ca)
            finally:
                resolver_module.Resolver = original  # type: ignore[misc]
                run_module.Resolver = original  # type: ignore[misc]
            uncached = sum(server.queries.values())
    print(f"| resolver | median of {runs} (s) | ratio to fast | DNS questions per run |")
    print("|---|---|---|---|")
    print(f"| fast (no delay) | {medians['fast']:.3f} | 1.00 | {queries['fast']} |")
    print(
        f"| slow ({delay * 1000:.0f} ms per answer) | {medians['slow']:.3f} | "
        f"{medians['slow'] / medians['fast']:.2f} | {queries['slow']} |"
    )
    print()
    print(
        f"per-run cache: {queries['fast']} questions per run; without it the same run asks "
        f"{uncached} ({uncached / max(queries['fast'], 1):.1f}x)"
    )


def main() -> None:
    """Print the defect table and the timing (Markdown)."""
    import trustme

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per answer (slow)")
    parser.add_argument("--part", choices=("table", "timing", "all"), default="all")
    args = parser.parse_args()
    key, other = make_key(2048), make_key(2048)
    zones = catalogue(key, other)
    ca = trustme.CA()
    relay = SmtpServer(starttls=self_signed_context(ca)).start()
    try:
        if args.part in ("table", "all"):
            with DnsServer(zone_text(zones), faults=faults(zones)) as server:
                table(zones, server, relay, ca, key)
            print()
        if args.part in ("timing", "all"):
            timing(zones, args.runs, args.delay, relay, ca, key)
    finally:
        relay.close()


if __name__ == "__main__":
    main()
