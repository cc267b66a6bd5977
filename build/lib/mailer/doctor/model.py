"""The doctor's verdicts: one ``Check`` per rule, gathered in a ``DoctorReport``.

Every check carries a stable ``id`` (``spf.void-lookups``, ``dmarc.alignment``
…) that scripts can rely on; the catalogue is ``mailer.doctor.ids.CHECK_IDS``.
A check that could not be made because a DNS lookup failed is ``unknown`` and
names the DNS outcome (``servfail``, ``timeout``, ``garbage``, ``refused``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailer.doctor.resolver import DnsFailure


class Status(StrEnum):
    """How a check came out."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"  # could not be checked (a DNS lookup failed): neither pass nor fail
    SKIP = "skip"  # it does not apply here (a .test domain, no relay configured, --offline)


# Worst first: an area's result is the worst of its checks.
_SEVERITY = (Status.FAIL, Status.UNKNOWN, Status.WARN, Status.PASS, Status.SKIP)


@dataclass(frozen=True)
class Check:
    """One rule's verdict: its id, the area (SPF, DKIM ...), what was found, what to do."""

    id: str
    area: str
    status: Status
    reason: str
    fix: str = ""
    dns: str = ""  # the DNS outcome that made it unknown (servfail, timeout, garbage, refused)

    def to_dict(self) -> dict[str, str]:
        """Plain data for ``--json``."""
        data = {
            "id": self.id,
            "area": self.area,
            "status": str(self.status),
            "reason": self.reason,
            "fix": self.fix,
        }
        if self.dns:
            data["dns"] = self.dns
        return data


def unknown_check(check_id: str, area: str, what: str, failure: DnsFailure) -> Check:
    """An ``unknown`` verdict naming the DNS outcome that prevented the check."""
    outcome = str(failure.lookup.outcome)
    reason = f"{what} could not be checked: {failure} ({outcome})"
    fix = "check the DNS server (or try another resolver), then run the doctor again"
    return Check(check_id, area, Status.UNKNOWN, reason, fix, dns=outcome)


@dataclass
class DoctorReport:
    """Every check for one sender (and campaign, when one was given)."""

    domain: str
    checks: list[Check] = field(default_factory=list)
    dns_queries: int = 0  # questions sent to the DNS server this run (answers are cached)

    @property
    def failed(self) -> bool:
        """True when any check failed."""
        return any(c.status is Status.FAIL for c in self.checks)

    @property
    def unknown(self) -> bool:
        """True when some check could not be made (a DNS lookup failed)."""
        return any(c.status is Status.UNKNOWN for c in self.checks)

    @property
    def result(self) -> Status:
        """The run as a whole: fail, else unknown, else warn, else pass."""
        return _worst(c.status for c in self.checks)

    def areas(self) -> dict[str, Status]:
        """Each area's result (the worst of its checks), in the order they were checked."""
        seen: dict[str, list[Status]] = {}
        for check in self.checks:
            seen.setdefault(check.area, []).append(check.status)
        return {area: _worst(statuses) for area, statuses in seen.items()}

    def counts(self) -> dict[str, int]:
        """How many checks came out each way."""
        found = dict.fromkeys((s.value for s in Status), 0)
        for check in self.checks:
            found[check.status.value] += 1
        return found

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {
            "domain": self.domain,
            "result": str(self.result),
            "counts": self.counts(),
            "areas": {area: str(status) for area, status in self.areas().items()},
            "dns_queries": self.dns_queries,
            "checks": [c.to_dict() for c in self.checks],
        }


def _worst(statuses: object) -> Status:
    given = set(statuses)  # type: ignore[call-overload]
    for status in _SEVERITY:
        if status in given:
            return status
    return Status.SKIP
