"""The doctor's verdicts: one ``Check`` per rule, gathered in a ``DoctorReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """How a check came out."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # it does not apply here (a .test domain, no relay configured, --offline)


@dataclass(frozen=True)
class Check:
    """One rule's verdict: the area (SPF, DKIM ...), what was found, and what to do."""

    area: str
    status: Status
    reason: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain data for ``--json``."""
        return {
            "area": self.area,
            "status": str(self.status),
            "reason": self.reason,
            "fix": self.fix,
        }


@dataclass
class DoctorReport:
    """Every check for one sender (and campaign, when one was given)."""

    domain: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when any check failed."""
        return any(c.status is Status.FAIL for c in self.checks)

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
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }
