"""An authoritative DNS server on 127.0.0.1 for tests: zone text in, answers out (dnslib).

``DnsServer(zone_text).start()`` listens on a free loopback port over UDP and
TCP (long TXT records such as DKIM keys need TCP when they do not fit 512
bytes). Names it does not know answer NXDOMAIN; a known name without the
asked type answers NOERROR with no records, as a real server does.
"""

from __future__ import annotations

import socket

from dnslib import RCODE, RR
from dnslib.server import BaseResolver, DNSServer


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: str) -> None:
        self.records = RR.fromZone(zone)

    def resolve(self, request, handler):  # type: ignore[no-untyped-def]
        reply = request.reply()
        name, kind = request.q.qname, request.q.qtype
        known = False
        for record in self.records:
            if record.rname == name:
                known = True
                if record.rtype == kind:
                    reply.add_answer(record)
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (good enough for a test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DnsServer:
    """Serves one zone text on ``127.0.0.1:port`` (UDP and TCP) until ``stop``."""

    def __init__(self, zone: str, port: int | None = None) -> None:
        self.port = port or free_port()
        resolver = _Zone(zone)
        self._servers = [
            DNSServer(resolver, port=self.port, address="127.0.0.1", tcp=tcp, logger=_Quiet())
            for tcp in (False, True)
        ]

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as ``--resolver`` takes it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        """Answer queries from background threads."""
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        """Stop answering."""
        for server in self._servers:
            server.stop()


class _Quiet:
    """dnslib's logger, silenced: tests read answers, not logs."""

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return lambda *args, **kwargs: None


def main() -> None:
    """``python tests/dns_server.py ZONE_FILE [--port N]``: serve a zone until Ctrl-C."""
    import argparse
    import time
    from pathlib import Path

    parser = argparse.ArgumentParser(description="serve a DNS zone file on 127.0.0.1")
    parser.add_argument("zone", type=Path)
    parser.add_argument("--port", type=int, default=5399)
    args = parser.parse_args()
    server = DnsServer(args.zone.read_text(encoding="utf-8"), port=args.port).start()
    print(f"serving {args.zone} on {server.address}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
