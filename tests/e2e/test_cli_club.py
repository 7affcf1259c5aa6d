"""`treue club ...` and `treue jobs run club` as a real console script against a fresh SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_club_plans_join_pay_cancel_and_job(tmp_path: Path, treue_script):
    db = tmp_path / "c.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "C", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    plan = cli.json("club", "create-plan", "--program", pid, "--code", "plus", "--price", "4.90", "--name-de",
                    "Plus", "--multiplier", "1.5", "--perk", "free_shipping", "--bonus-points", "50", "--json")  # fmt: skip
    assert isinstance(plan, dict) and plan["benefits"]["perks"] == ["free_shipping"]
    assert "plus  4.90 EUR/month" in cli.run("club", "plans", "--program", pid).stdout
    member = cli.json("members", "enrol", "--program", pid, "--json")["id"]  # type: ignore[index]

    # Bad input: one line on stderr, exit 1, nothing written.
    refused = cli.run("club", "join", "--program", pid, "--member", member, "--plan", "plus", code=1)
    assert refused.stderr.startswith("error: club_payment_required") and len(refused.stderr.splitlines()) == 1
    unknown = cli.run("club", "join", "--program", pid, "--member", member, "--plan", "gold", code=1)
    assert unknown.stderr.startswith("error: not_found")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM club_subscriptions").fetchone() == (0,)

    joined = cli.json("club", "join", "--program", pid, "--member", member, "--plan", "plus", "--payment-ref",
                      "pi_1", "--amount", "4.90", "--currency", "EUR", "--json")  # fmt: skip
    assert isinstance(joined, dict) and joined["status"] == "active"
    wrong = cli.run("club", "pay", "--program", pid, "--member", member, "--reference", "pi_2", "--amount", "4.00",
                    "--currency", "EUR", code=1)  # fmt: skip
    assert wrong.stderr.startswith("error: club_payment_mismatch") and "Traceback" not in wrong.stderr
    paid = cli.run("club", "pay", "--program", pid, "--member", member, "--reference", "pi_2", "--amount", "4.90",
                   "--currency", "EUR")  # fmt: skip
    assert "succeeded  4.90 EUR  period 1" in paid.stdout

    first = cli.json("jobs", "run", "club", "--program", pid)
    assert isinstance(first, dict) and first["perks_granted"] == 1 and first["bonus_points"] == 50
    assert cli.json("jobs", "run", "club", "--program", pid)["perks_granted"] == 0  # type: ignore[index]
    assert cli.json("points", "balance", member, "--program", pid)["points"] == 50  # type: ignore[index]

    assert "ends" in cli.run("club", "cancel", "--program", pid, "--member", member).stdout
    again = cli.run("club", "cancel", "--program", pid, "--member", member, code=1)
    assert again.stderr.startswith("error: already_cancelled")
    shown = cli.json("club", "show", "--program", pid, "--member", member, "--json")
    assert isinstance(shown, dict) and shown["subscription"]["status"] == "active"
    assert shown["subscription"]["cancel_at"] is not None
    assert cli.run("verify").returncode == 0
