"""`treue referrals ...` and `treue members enrol --referral-code` as a real console script on a fresh SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_referral_codes_settings_enrolment_completion_and_stats(tmp_path: Path, treue_script):
    db = tmp_path / "r.db"
    cli = Cli(f"sqlite:///{db}")
    cli.env["TREUE_PUBLIC_URL"] = "https://loyal.example"
    cli.run("migrate")
    pid = cli.json("programs", "create", "R", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]

    bad = cli.run("referrals", "settings", "--program", pid, "--set", '{"condition": "purchase.totl > 1"}', code=1)
    assert bad.stderr.startswith("error: rule_invalid") and len(bad.stderr.splitlines()) == 1
    shown = cli.json("referrals", "settings", "--program", pid, "--set",
                     '{"condition": "purchase.total >= 3000", "window_days": 60}', "--json")  # fmt: skip
    assert isinstance(shown, dict) and shown["configured"] and shown["window_days"] == 60
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"format": "treue.rules/1", "campaigns": [], "rules": [
        {"id": "referrer", "trigger": "referral.completed", "condition": 'event.attributes.role == "referrer"',
         "effects": [{"type": "fixed_points", "points": 250, "pending": "0D"}]}]}))  # fmt: skip
    cli.run("rules", "import", str(rules), "--program", pid)

    alice = cli.json("members", "enrol", "--program", pid, "--email", "alice@example.com", "--json")["id"]  # type: ignore[index]
    code_line = cli.run("referrals", "code", "--program", pid, "--member", alice).stdout.strip()
    code, link = code_line.split()
    assert link == f"https://loyal.example/r/{code}"
    enrolled = cli.run("members", "enrol", "--program", pid, "--email", "bob@example.org", "--referral-code",
                       code.lower()).stdout  # fmt: skip
    assert "referral pending" in enrolled
    bob = enrolled.split()[0]
    same = cli.run("members", "enrol", "--program", pid, "--email", "a.l.i.c.e+x@example.com", "--phone",
                   "+49 170 5550000", "--referral-code", "ZZZZ2222").stdout  # fmt: skip
    assert "referral rejected (code_unknown)" in same

    cli.run("purchases", "record", "--program", pid, "--member", bob, "--order-id", "O-1", "--total", "45.00")
    assert cli.json("points", "balance", alice, "--program", pid)["points"] == 250  # type: ignore[index]
    stats = cli.run("referrals", "stats", "--program", pid).stdout
    assert "sent 2  pending 0  completed 1" in stats and "rejected code_unknown: 1" in stats
    listed = cli.json("referrals", "list", "--program", pid, "--status", "completed", "--json")
    assert isinstance(listed, list) and [r["referee_id"] for r in listed] == [bob]
    wrong = cli.run("referrals", "list", "--program", pid, "--status", "odd", code=1)
    assert wrong.stderr.startswith("error: invalid_input")

    # the job expires nothing that completed; it is safe to run any time
    assert cli.json("jobs", "run", "referrals", "--program", pid)["expired"] == 0  # type: ignore[index]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM referrals ORDER BY created_at").fetchall() == [("completed",),
                                                                                                ("rejected",)]  # fmt: skip
    assert cli.run("verify").returncode == 0
