"""`treue missions ...` as a real console script against a fresh SQLite file: a badge, a mission, a streak and an
instant-win campaign defined from the shell, a purchase that moves them, and one-line refusals."""

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


def test_missions_badges_streaks_and_instant_wins_from_the_shell(tmp_path: Path, treue_script):
    db = tmp_path / "g.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "G", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    badge = cli.json("missions", "badge-create", "--program", pid, "--code", "regular", "--name-de", "Stammkunde",
                     "--name-en", "Regular", "--rare-below-percent", "10", "--json")  # fmt: skip
    assert isinstance(badge, dict) and badge["code"] == "regular"
    mission = {"code": "two", "name": {"de": "Zwei Einkäufe", "en": "Two purchases"},
               "goal": {"type": "count", "target": 2, "event": "purchase"}, "window": {"type": "month"},
               "reward": {"points": 100, "badge": "regular"}}  # fmt: skip
    (tmp_path / "mission.json").write_text(json.dumps(mission))
    created = cli.run("missions", "create", "--program", pid, "--file", str(tmp_path / "mission.json"))
    assert "two  count 2  per month  created" in created.stdout
    assert "two  count 2 purchase  per month  automatic" in cli.run("missions", "list", "--program", pid).stdout
    streak = {"code": "daily", "name": {"en": "Daily"}, "period": "day", "event": "purchase",
              "milestones": [{"length": 2, "reward": {"points": 5}}]}  # fmt: skip
    cli.run("missions", "streak-create", "--program", pid, "--definition", json.dumps(streak))
    win = {"code": "spin", "name": {"en": "Spin"}, "event": "purchase",
           "prizes": [{"code": "nothing-much", "probability": "0.0001", "points": 1, "total": 1}]}  # fmt: skip
    assert "1 prize(s)  odds version 1" in cli.run("missions", "instant-win-create", "--program", pid,
                                                   "--definition", json.dumps(win)).stdout  # fmt: skip

    # Bad input: one line on stderr, exit 1, nothing written.
    bad = dict(mission, code="bad", goal={"type": "count", "target": 2, "event": "purchase", "filter": "purchase.x"})
    refused = cli.run("missions", "create", "--program", pid, "--definition", json.dumps(bad), code=1)
    assert refused.stderr.startswith("error: gamification_invalid: goal.filter")
    assert len(refused.stderr.splitlines()) == 1
    assert cli.run("missions", "create", "--program", pid, "--definition", "{nope", code=1).stderr.startswith(
        "error: invalid_input")  # fmt: skip
    assert cli.run("missions", "opt-in", "--program", pid, "--member", pid, "gone", code=1).stderr.startswith(
        "error: mission_not_found")  # fmt: skip
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM missions").fetchone() == (1,)

    member = cli.json("members", "enrol", "--program", pid, "--json")["id"]  # type: ignore[index]
    for order in ("G-1", "G-2"):
        cli.run("purchases", "record", "--program", pid, "--order-id", order, "--total", "10.00", "--currency", "EUR",
                "--member", member)  # fmt: skip
    progress = cli.run("missions", "progress", "--program", pid, "--member", member, "--locale", "en").stdout
    assert "two  2 of 2 purchases in" in progress and "completed" in progress
    assert "regular  held by 1 (100.00 %)" in cli.run("missions", "badges", "--program", pid, "--member", member).stdout
    assert "daily  1 day(s)  best 1" in cli.run("missions", "streaks", "--program", pid, "--member", member).stdout
    audit = cli.json("missions", "draws", "--program", pid, "spin", "--json")
    assert isinstance(audit, list) and len(audit) == 2 and {d["odds_version"] for d in audit} == {1}
    assert "no win" in cli.run("missions", "instant-wins", "--program", pid, "spin").stdout
    balance = cli.json("points", "balance", "--program", pid, member)
    assert isinstance(balance, dict) and balance["points"] >= 20 + 100  # (+1 if the one-in-a-million prize was drawn)
