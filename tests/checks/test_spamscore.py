"""The spam-filter score: real SpamAssassin (``spamassassin -L``, and ``spamc`` to a
``spamd`` this test starts on loopback), as ``mailer check`` runs it."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.gate import pick_samples
from mailer.checks.spamscore import (
    Scorer,
    check_spam,
    find_scorer,
    parse_report,
    score_batch,
    score_message,
    spam_findings,
)
from mailer.core.settings import load_settings
from tests.workspace import invoke, make_workspace

SPAMD = "/usr/sbin/spamd"


def require_spamassassin() -> None:
    if not shutil.which("spamassassin") or not shutil.which("spamc"):
        pytest.fail(
            "SpamAssassin is missing: run scripts/servers-setup (apt-get install spamassassin spamc)"
        )


def message(subject: str, body: str) -> bytes:
    lines = [
        "From: Tea House <news@tea.test>",
        "To: ann@tea.test",
        f"Subject: {subject}",
        "Date: Mon, 23 Nov 2026 09:00:00 +0000",
        "Message-ID: <spring.1f3a9c@tea.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def test_spamassassin_scores_a_shouting_subject_higher_and_names_the_rule():
    require_spamassassin()
    scorer = find_scorer()
    assert scorer is not None and "-L" in scorer.command
    calm = score_message(scorer, message("Spring tea is here", "New leaves are in."), "calm")
    loud = score_message(
        scorer, message("FREE MONEY GUARANTEED WIN NOW", "New leaves are in."), "loud"
    )
    assert loud.tool.startswith("SpamAssassin 4")
    fired = {r.name: r for r in loud.rules}
    assert "SUBJ_ALL_CAPS" in fired and fired["SUBJ_ALL_CAPS"].points > 0
    assert fired["SUBJ_ALL_CAPS"].fix == "write the subject in sentence case, not capitals"
    assert "SUBJ_ALL_CAPS" not in {r.name for r in calm.rules}
    assert loud.score > calm.score


def test_a_score_over_the_threshold_is_an_error_with_the_rules_and_fixes():
    require_spamassassin()
    scorer = find_scorer()
    assert scorer is not None
    loud = score_message(scorer, message("FREE MONEY GUARANTEED WIN NOW", "Hi"), "sample 1 (A)")
    found = spam_findings([("sample 1 (A)", loud)], threshold=loud.score)
    assert [f.severity for f in found] == ["error"]
    assert "SUBJ_ALL_CAPS" in found[0].message and "sentence case" in found[0].message
    relaxed = spam_findings([("sample 1 (A)", loud)], threshold=loud.score * 10 + 10)
    assert relaxed[0].severity == "info"


def test_check_json_reports_spamassassins_score_of_the_built_message(tmp_path):
    require_spamassassin()
    make_workspace(tmp_path)
    result = invoke(
        tmp_path, "check", "campaigns/spring.toml", "--json", "--no-browser", "--offline"
    )
    report = json.loads(result.stdout)
    assert report["spam"], report["findings"]
    first = report["spam"][0]
    assert first["tool"].startswith("SpamAssassin 4") and first["required"] == 5.0
    assert "HTML_MESSAGE" in {r["name"] for r in first["rules"]}  # it read the HTML part
    codes = {f["code"] for f in report["findings"]}
    assert "spam-score" in codes and "spam-score-not-run" not in codes


def test_the_threshold_comes_from_mailer_toml(tmp_path):
    require_spamassassin()
    make_workspace(tmp_path)
    with (tmp_path / "mailer.toml").open("a", encoding="utf-8") as file:
        file.write("\n[spam]\nthreshold = 0.001\n")
    settings = load_settings(tmp_path, env={})
    prepared = prepare_campaign(tmp_path / "campaigns" / "spring.toml", settings)
    samples, _ = pick_samples(prepared, 1)
    labels = [f"sample {i}" for i in range(1, len(samples) + 1)]
    found, scores = check_spam(prepared, samples, labels)
    # HTML_MESSAGE alone is 0.001 points: every sample reaches this threshold.
    assert scores and all(s.score >= 0.001 for s in scores)
    assert {f.severity for f in found} == {"error"}


def test_without_spamassassin_the_score_is_reported_as_not_checked(tmp_path, monkeypatch):
    make_workspace(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    samples, _ = pick_samples(prepared, 1)
    found, scores = check_spam(prepared, samples, ["sample 1"])
    assert scores == []
    assert [(f.severity, f.code) for f in found] == [("info", "spam-score-not-run")]
    assert "NOT checked" in found[0].message


def test_a_failing_scorer_is_a_warning_not_a_pass(tmp_path):
    broken = Scorer(("/bin/sh", "-c", "echo 'config: cannot read rules' >&2; exit 3"), "broken")
    from mailer.checks.spamscore import score_samples

    results = score_samples(broken, [("sample 1", b"Subject: x\r\n\r\nhi\r\n")])
    found = spam_findings([("sample 1", results[0])], threshold=5.0)
    assert [(f.severity, f.code) for f in found] == [("warning", "spam-score-failed")]
    assert "cannot read rules" in found[0].message


def test_a_report_with_wrapped_descriptions_is_read_whole():
    text = (
        "Content analysis details:   (2.6 points, 5.0 required)\n\n"
        " pts rule name              description\n"
        "---- ---------------------- --------------------------------------------------\n"
        " 2.5 FREEMAIL_FORGED_REPLYTO Freemail in Reply-To, but not From\n"
        " 0.1 MIME_QP_LONG_LINE      RAW: Quoted-printable line longer than 76\n"
        "                            chars\n"
        "\n"
    )
    score = parse_report(text, "s", "spamassassin")
    assert score.score == 2.6 and score.required == 5.0
    assert [r.name for r in score.rules] == ["FREEMAIL_FORGED_REPLYTO", "MIME_QP_LONG_LINE"]
    assert score.rules[1].description.endswith("longer than 76 chars")


@pytest.fixture
def spamd() -> Iterator[str]:
    """A spamd of our own on 127.0.0.1 (a free port), stopped afterwards."""
    require_spamassassin()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="mailer-spamd-"))
    home.chmod(0o777)
    log = (home / "spamd.log").open("wb")
    process = subprocess.Popen(
        [SPAMD, "-L", f"--listen=127.0.0.1:{port}", "-x", "--max-children=1",
         "--syslog=stderr", "-u", "nobody", "-H", str(home)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):  # spamd compiles its rules first: up to a minute on a busy box
        if process.poll() is not None:
            pytest.fail(f"spamd exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            process_wait(process)
    pytest.fail("spamd did not listen within a minute")


def process_wait(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=0.1)  # returns early only if it died


def test_spamc_to_a_running_spamd_gives_the_same_verdict(spamd):
    scorer = find_scorer(spamd)
    assert scorer is not None and scorer.command[0].endswith("spamc")
    loud = score_message(scorer, message("FREE MONEY GUARANTEED WIN NOW", "Hi"), "s")
    local = score_message(find_scorer(), message("FREE MONEY GUARANTEED WIN NOW", "Hi"), "s")
    assert "SUBJ_ALL_CAPS" in {r.name for r in loud.rules}
    assert loud.score == local.score


def test_several_messages_are_scored_in_one_run_each_to_its_own_label():
    require_spamassassin()
    scorer = find_scorer()
    assert scorer is not None
    # A body line starting "From " must stay inside its message in the mbox.
    messages = [
        ("calm", message("Spring tea is here", "From our garden: new leaves.")),
        ("loud", message("FREE MONEY GUARANTEED WIN NOW", "Hi")),
        ("calm again", message("Winter oolong has arrived", "From Hangzhou with care.")),
    ]
    batch = score_batch(scorer, messages)
    assert [s.label for s in batch] == ["calm", "loud", "calm again"]
    assert "SUBJ_ALL_CAPS" in {r.name for r in batch[1].rules}
    assert batch[1].score == score_message(scorer, messages[1][1], "loud").score
    assert batch[0].score < batch[1].score and batch[2].score < batch[1].score
