"""`treue tiers ...` and `treue jobs run tiers` as a real console script against a fresh SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli
from tests.integration.test_tiers import FURNITURE


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_ladder_member_progress_assignment_and_job(tmp_path: Path, treue_script):
    db = tmp_path / "t.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "T", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    assert "no tier ladder" in cli.run("tiers", "show", "--program", pid).stdout

    # Bad input: one line on stderr, exit 1, nothing written.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(FURNITURE | {"basis": "balance"}), encoding="utf-8")
    refused = cli.run("tiers", "set", "--program", pid, "--file", str(bad), code=1)
    assert (
        refused.stderr.startswith("error: invalid_input: basis must be one of")
        and len(refused.stderr.splitlines()) == 1
    )
    missing = cli.run("tiers", "set", "--program", pid, "--file", str(tmp_path / "nope.json"), code=1)
    assert missing.stderr.startswith("error: invalid_input: cannot read")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM tier_ladders").fetchone() == (0,)

    good = tmp_path / "ladder.json"
    good.write_text(json.dumps(FURNITURE), encoding="utf-8")
    assert "ladder set: basis, bronze, silber, gold" in cli.run("tiers", "set", "--program", pid, "--file",
                                                                str(good)).stdout  # fmt: skip
    shown = cli.run("tiers", "show", "--program", pid).stdout
    assert "bronze" in shown and "500.00 in 6M" in shown and "free_shipping" in shown

    member = cli.json("members", "enrol", "--program", pid, "--json")["id"]  # type: ignore[index]
    cli.run("purchases", "record", "--program", pid, "--order-id", "O-1", "--total", "600.00", "--member", member)
    progress = cli.run("tiers", "member", "--program", pid, "--member", member).stdout
    assert "tier bronze" in progress and "still needed 1400.00" in progress

    unknown = cli.run("tiers", "assign", "--program", pid, "--member", member, "--tier", "platin", code=1)
    assert unknown.stderr.startswith("error: tier_unknown")
    when = cli.run("tiers", "assign", "--program", pid, "--member", member, "--tier", "gold", "--until", "soon",
                   code=1)  # fmt: skip
    assert when.stderr.startswith("error: invalid_input: until 'soon'")
    assigned = cli.json("tiers", "assign", "--program", pid, "--member", member, "--tier", "gold", "--reason", "VIP",
                        "--json")  # fmt: skip
    assert isinstance(assigned, dict) and assigned["tier"]["code"] == "gold" and assigned["earned_tier"] == "bronze"
    assert "tier bronze (earned)" in cli.run("tiers", "unassign", "--program", pid, "--member", member).stdout

    counts = json.loads(cli.run("jobs", "run", "tiers").stdout)
    assert counts["downgraded"] == 0 and counts["assignments_expired"] == 0
