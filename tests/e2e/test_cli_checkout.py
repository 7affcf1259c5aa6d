"""`treue checkout ...` as a user runs it, against a fresh SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli

CASHBACK = {"format": "treue.rules/1", "campaigns": [], "rules": [
    {"id": "cashback", "trigger": "purchase", "effects": [{"type": "cashback_percent", "percent": "10"}]}]}  # fmt: skip


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_reserve_capture_release_and_wallet(tmp_path: Path, treue_script):
    cli = Cli(f"sqlite:///{tmp_path / 'c.db'}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "Shop", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(CASHBACK))
    cli.run("rules", "import", str(rules), "--program", pid)
    member = cli.json("members", "enrol", "--program", pid, "--json")["id"]  # type: ignore[index]
    cli.run("purchases", "record", "--program", pid, "--order-id", "T-1", "--total", "50.00", "--member", member)

    wallet = cli.json("checkout", "wallet", member, "--program", pid, "--json")
    assert (wallet["balance"], wallet["usable"]) == ("5.00", "5.00")  # type: ignore[index]
    hold = cli.json("checkout", "reserve", member, "--program", pid, "--points", "30", "--wallet", "2.00", "--json")
    assert hold["state"] == "active"  # type: ignore[index]

    refused = cli.run("checkout", "reserve", member, "--program", pid, "--points", "21", code=1)
    assert refused.stderr.startswith("error: insufficient_points") and len(refused.stderr.strip().splitlines()) == 1
    refused = cli.run("checkout", "capture", hold["id"], "--program", pid, "--order-id", "T-2",  # type: ignore[index]
                      "--total", "20.00", "--points", "31", code=1)  # fmt: skip
    assert refused.stderr.startswith("error: hold_exceeded") and "Traceback" not in refused.stderr

    done = cli.run("checkout", "capture", hold["id"], "--program", pid, "--order-id", "T-2",  # type: ignore[index]
                   "--total", "20.00")  # fmt: skip
    assert "captured: 30 points (0.30), wallet 2.00, money 17.70 EUR; earned 20" in done.stdout
    again = cli.run("checkout", "release", hold["id"], "--program", pid, code=1)  # type: ignore[index]
    assert again.stderr.startswith("error: hold_not_active")
    assert "captured" in cli.run("checkout", "show", hold["id"], "--program", pid).stdout  # type: ignore[index]
    assert cli.run("checkout", "wallet", member, "--program", pid).stdout.startswith("5.00 EUR (available 5.00")
    kinds = [e["kind"] for e in cli.json("checkout", "history", member, "--program", pid, "--json")]  # type: ignore[union-attr,index]
    assert kinds == ["cashback", "pay", "cashback"]
    assert cli.run("verify", "--program", pid).returncode == 0
