"""The docs test's own machinery: parsing, normalising, and failing on a drifted example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import normalise, parse_page, run_page, update_page

PAGE = """---
docs_test:
  env: {GREETING: "hello"}
---
# A page

```toml title="notes/first.txt"
first line
```

```console
$ echo "$GREETING from $(basename "$PWD")"
hello from lotus-tea

$ cat notes/first.txt
first line
$ export NAME=world
$ echo "hello $NAME" \\
>   "again"
hello world again
```
"""


def write(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_a_page_is_parsed_into_files_and_commands(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, PAGE))
    assert [c.text for c in page.commands] == [
        'echo "$GREETING from $(basename "$PWD")"',
        "cat notes/first.txt",
        "export NAME=world",
        'echo "hello $NAME" \\\n>   "again"',
    ]
    assert [c.expected for c in page.commands] == [
        ["hello from lotus-tea"],
        ["first line"],
        [],
        ["hello world again"],
    ]
    assert page.setup == {"env": {"GREETING": "hello"}}


def test_a_page_whose_outputs_match_has_no_drift(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, PAGE.replace("\n>   ", "\n  ")))
    (tmp_path / "run").mkdir()
    outcome = run_page(page, tmp_path / "run")
    assert outcome.drifts == [], outcome.report()


def test_a_drifted_example_fails_with_a_diff_and_update_writes_the_real_output(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        PAGE.replace("\n>   ", "\n  ").replace("first line\n$ export", "frist line\n$ export"),
    )
    page = parse_page(path)
    (tmp_path / "run").mkdir()
    outcome = run_page(page, tmp_path / "run")
    assert len(outcome.drifts) == 1
    report = outcome.report()
    assert "line 15: $ cat notes/first.txt" in report
    assert "-frist line\n+first line" in report
    assert "frist line" not in update_page(outcome)


def test_the_environment_is_only_what_the_page_states(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_KEY", "set-by-the-test-process")
    page = parse_page(
        write(
            tmp_path,
            '---\ndocs_test: {}\n---\n```console\n$ echo "key=${MAILER_UNSUBSCRIBE_KEY:-unset}"\nkey=unset\n```\n',
        )
    )
    (tmp_path / "run").mkdir()
    assert run_page(page, tmp_path / "run").drifts == []


def test_times_rates_ports_and_stamps_are_normalised() -> None:
    page = [
        "  time  0.2 s (13.3 messages/s)",
        "last run #1 2026-12-02T02:18:54Z via smtp://127.0.0.1:2525 ",
    ]
    real = [
        "  time  1.4 s (2.1 messages/s)",
        "last run #1 2027-01-05T11:00:01Z via smtp://127.0.0.1:40113",
    ]
    assert normalise(page) == normalise(real)
    assert normalise(["sent 3"]) != normalise(["sent 4"])


def test_a_page_can_start_in_an_empty_folder_and_cd_into_a_new_workspace(tmp_path: Path) -> None:
    # Files written by a titled block land where the reader is at that point (after `cd`).
    page = parse_page(
        write(
            tmp_path,
            "---\ndocs_test: {start: empty}\n---\n"
            "```console\n$ ls -A | wc -l\n0\n$ mkdir shop && cd shop && pwd\n~/shop\n```\n\n"
            '```text title="notes.txt"\nwritten in shop\n```\n\n'
            "```console\n$ cat ~+/notes.txt\nwritten in shop\n```\n",
        )
    )
    (tmp_path / "run").mkdir()
    outcome = run_page(page, tmp_path / "run")
    assert outcome.drifts == [], outcome.report()
    assert (tmp_path / "run" / "start" / "shop" / "notes.txt").is_file()
    assert not (tmp_path / "run" / "start" / "mailer.toml").exists()


def test_a_block_that_is_only_a_snippet_is_written_with_the_repository_file(
    tmp_path: Path,
) -> None:
    page = parse_page(
        write(
            tmp_path,
            '---\ndocs_test: {start: empty}\n---\n```text title="list.csv"\n'
            '--8<-- "examples/客户.csv"\n```\n\n```console\n$ head -1 list.csv\n'
            "邮箱,姓名,城市,生日,订单数,最近购买,会员等级,备注\n```\n",
        )
    )
    (tmp_path / "run").mkdir()
    assert run_page(page, tmp_path / "run").drifts == []


def test_an_unknown_start_is_refused(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "---\ndocs_test: {start: nowhere}\n---\n"))
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="nowhere"):
        run_page(page, tmp_path / "run")
