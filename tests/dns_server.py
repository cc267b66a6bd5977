"""An authoritative DNS server on loopback for tests: zone text in, answers out (dnslib).

``DnsServer(zone_text).start()`` listens on a free loopback port over UDP and
TCP (long TXT records such as DKIM keys need TCP when they do not fit 512
bytes). Names it does not know answer NXDOMAIN; a known name without the
asked type answers NOERROR with no records (NODATA), as a real server does.

Faults, per name (and optionally per type), for the doctor's failure tests:
``servfail`` and ``refused`` (that rcode), ``timeout`` (no answer at all) and
``garbage`` (a reply with the query's ID whose body does not parse).
``delay`` makes every answer wait that many seconds (a slow resolver), and
``queries`` counts what was asked, by (name, type), so a test can see that a
run asks each question once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

from dnslib import QTYPE, RCODE, RR, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

FAULTS = ("servfail", "refused", "timeout", "garbage")


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: str, faults: dict[str, str], delay: float) -> None:
        self.records = RR.fromZone(zone)
        self.names = {str(r.rname).lower() for r in self.records}
        self.faults = {_key(k): v for k, v in faults.items()}
        for fault in self.faults.values():
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}: one of {FAULTS}")
        self.delay = delay
        self.queries: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def fault(self, request: DNSRecord) -> str | None:
        """Count the question; the fault configured for it (by name+type, then name)."""
        name = str(request.q.qname).lower()
        kind = QTYPE[request.q.qtype]
        with self.lock:
            self.queries[(name.rstrip("."), kind)] += 1
        return self.faults.get(f"{name} {kind}") or self.faults.get(name)

    def resolve(self, request, handler):  # type: ignore[no-untyped-def]
        reply = request.reply()
        name, kind = request.q.qname, request.q.qtype
        if str(name).lower() not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for record in self.records:
            if record.rname == name and record.rtype == kind:
                reply.add_answer(record)
        if not reply.rr:  # a CNAME answers for every type (RFC 1034 §3.6.2)
            for record in self.records:
                if record.rname == name and record.rtype == QTYPE.CNAME:
                    reply.add_answer(record)
        return reply


def _key(name: str) -> str:
    """``x.test`` / ``x.test. TXT`` → the lower-case absolute form used as a fault key."""
    host, _, kind = name.partition(" ")
    host = host.lower().rstrip(".") + "."
    return f"{host} {kind.upper()}" if kind else host


class _Handler(DNSHandler):  # type: ignore[misc]
    """dnslib's handler, with the faults and the delay applied before the answer."""

    def get_reply(self, data: bytes) -> bytes:
        zone: _Zone = self.server.resolver
        request = DNSRecord.parse(data)
        fault = zone.fault(request)
        if zone.delay:
            time.sleep(zone.delay)
        if fault == "timeout":
            raise DNSError("dropped on purpose")  # dnslib sends nothing back
        if fault == "garbage":
            # The query's ID and a header that promises one answer, then two stray bytes.
            return data[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xde\xad"
        reply = zone.resolve(request, self)
        if fault == "servfail":
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        elif fault == "refused":
            reply = request.reply()
            reply.header.rcode = RCODE.REFUSED
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > 512:
            packed = reply.truncate().pack()
        return packed


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on loopback (good enough for a test)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class DnsServer:
    """Serves one zone text on ``127.0.0.1:port`` (or ``[::1]:port``), UDP and TCP, until ``stop``."""

    def __init__(
        self,
        zone: str,
        port: int | None = None,
        *,
        faults: dict[str, str] | None = None,
        delay: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("the test DNS server listens on loopback only")
        self.host = host
        self._zone = _Zone(zone, faults or {}, delay)
        # Other test runs on the machine may take a port between the probe and the bind:
        # try a few free ports before giving up (a fixed port is tried once).
        for attempt in range(1 if port else 5):
            self.port = port or free_port(host)
            udp = None
            try:
                udp = self._server(host, tcp=False)
                self._servers = [udp, self._server(host, tcp=True)]
                break
            except OSError:
                if udp is not None:
                    udp.server.server_close()
                if port or attempt == 4:
                    raise

    def _server(self, host: str, tcp: bool) -> DNSServer:
        return DNSServer(
            self._zone,
            port=self.port,
            address=host,
            tcp=tcp,
            logger=_Quiet(),
            handler=_Handler,
        )

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` or ``[::1]:PORT``, as ``--resolver`` takes it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def queries(self) -> Counter[tuple[str, str]]:
        """How often each (name, type) was asked since ``start`` (or ``reset``)."""
        with self._zone.lock:
            return Counter(self._zone.queries)

    def reset(self) -> None:
        """Forget the counted queries."""
        with self._zone.lock:
            self._zone.queries.clear()

    def start(self) -> DnsServer:
        """Answer queries from background threads."""
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        """Stop answering."""
        for server in self._servers:
            server.stop()
            server.server.server_close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Quiet:
    """dnslib's logger, silenced: tests read answers, not logs."""

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return lambda *args, **kwargs: None


def main() -> None:
    """``python tests/dns_server.py ZONE [--port N] [--delay S] [--fault NAME=KIND]``: serve it."""
    import argparse
    import signal
    from pathlib import Path

    parser = argparse.ArgumentParser(description="serve a DNS zone file on 127.0.0.1")
    parser.add_argument("zone", type=Path)
    parser.add_argument("--port", type=int, default=5399)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="NAME=KIND", help=f"KIND: {FAULTS}"
    )
    args = parser.parse_args()
    zone = args.zone.read_text(encoding="utf-8")
    faults = dict(f.split("=", 1) for f in args.fault)
    server = DnsServer(zone, port=args.port, delay=args.delay, faults=faults).start()
    print(f"serving {args.zone} on {server.address}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
