"""DNS lookups for the doctor: one resolver, a deadline per lookup, answers as plain data.

``--resolver 127.0.0.1:5353`` points the doctor at a given DNS server (the
tests run their own); by default the system's. A lookup that finds nothing
(NXDOMAIN, no answer) returns an empty list; one that cannot be answered in
time raises ``Unreachable``, which the doctor turns into a single warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.exception
import dns.resolver
import dns.reversename

DEFAULT_TIMEOUT = 2.0  # seconds per lookup; every check stays well under 5 s


class Unreachable(Exception):
    """The DNS server did not answer in time."""


@dataclass
class Resolver:
    """Looks names up through one DNS server (``host:port``), or the system's."""

    server: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    _resolver: dns.resolver.Resolver = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.server:
            resolver = dns.resolver.Resolver(configure=False)
            host, _, port = (
                self.server.rpartition(":") if ":" in self.server else (self.server, "", "53")
            )
            resolver.nameservers = [host or self.server]
            resolver.port = int(port or 53)
        else:
            resolver = dns.resolver.Resolver()
        resolver.lifetime = self.timeout
        resolver.timeout = self.timeout
        self._resolver = resolver

    def _ask(self, name: str, kind: str) -> list[object]:
        try:
            return list(self._resolver.resolve(name, kind, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
            raise Unreachable(f"no answer for {name} {kind} within {self.timeout:g} s") from None

    def txt(self, name: str) -> list[str]:
        """The TXT records of ``name``, each with its strings joined."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._ask(name, "TXT")]  # type: ignore[attr-defined]

    def addresses(self, name: str) -> list[str]:
        """IPv4 and IPv6 addresses of ``name``."""
        return [str(r) for kind in ("A", "AAAA") for r in self._ask(name, kind)]

    def mx(self, name: str) -> list[str]:
        """Mail exchangers of ``name``, most preferred first."""
        records = sorted(self._ask(name, "MX"), key=lambda r: r.preference)  # type: ignore[attr-defined]
        return [str(r.exchange).rstrip(".") for r in records]  # type: ignore[attr-defined]

    def ptr(self, address: str) -> list[str]:
        """The names an IP address points back to (reverse DNS)."""
        name = dns.reversename.from_address(address).to_text()
        return [str(r).rstrip(".") for r in self._ask(name, "PTR")]
