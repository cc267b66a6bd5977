"""Every check id the doctor can emit is in the documented table, and every documented id exists."""

from __future__ import annotations

import re
from pathlib import Path

import mailer
import mailer.doctor
from mailer.doctor.ids import CHECK_IDS
from mailer.doctor.message import FAMILIES

ID = re.compile(r'"((?:spf|dkim|dmarc|mx|rdns|tls|message|dns|bounces)\.[a-z-]+)"')
# The doctor's own checks, and the one the service adds from the feedback events.
SOURCES = [
    *Path(mailer.doctor.__file__).parent.glob("*.py"),
    Path(mailer.__file__).parent / "services" / "doctor.py",
]


def test_the_id_table_and_the_code_agree():
    used = set()
    for path in SOURCES:
        if path.name != "ids.py":
            used |= set(ID.findall(path.read_text(encoding="utf-8")))
    used |= {f"volume.{family.id}" for family in FAMILIES}
    assert used == set(CHECK_IDS)


def test_reports_carry_only_known_ids(zone_reports, zones):
    for slug in zones:
        for check in zone_reports(slug).checks:
            assert check.id in CHECK_IDS, check
