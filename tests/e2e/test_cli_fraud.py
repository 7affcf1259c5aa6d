"""`treue fraud ...` as a real console script on a fresh SQLite file: caps set, a held purchase rejected and
reversed, the scan's alert acknowledged, bad input refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_caps_holds_and_alerts_from_the_command_line(tmp_path: Path, treue_script):
    cli = Cli(f"sqlite:///{tmp_path / 'f.db'}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "F", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]

    bad = cli.run("fraud", "settings", "set", "--program", pid, "--cap", "earn:member:week:count=1", code=1)
    assert bad.stderr.startswith("error: invalid_input") and len(bad.stderr.splitlines()) == 1
    bad = cli.run("fraud", "settings", "set", "--program", pid, "--cap", "earn:member:day", code=1)
    assert bad.stderr.startswith("error: invalid_input") and len(bad.stderr.splitlines()) == 1
    assert "configured: False" in cli.run("fraud", "settings", "show", "--program", pid).stdout
    shown = cli.run("fraud", "settings", "set", "--program", pid, "--cap", "earn:member:day:count=1",
                    "--cap", "redeem:member:day:points=500", "--alert", "cap_hits=1").stdout  # fmt: skip
    assert "cap earn:member:day  count 1" in shown and "cap_hits=1" in shown
    assert cli.json("fraud", "settings", "show", "--program", pid, "--json")["caps"][1]["max_points"] == 500  # type: ignore[index]

    member = cli.json("members", "enrol", "--program", pid, "--email", "f@example.com", "--json")["id"]  # type: ignore[index]
    for order in ("F-1", "F-2"):
        cli.run("purchases", "record", "--program", pid, "--member", member, "--order-id", order, "--total", "30.00")
    held = cli.json("fraud", "held", "--program", pid, "--json")
    assert isinstance(held, list) and [h["points"] for h in held] == [30]
    assert "earn:member:day" in cli.run("fraud", "held", "--program", pid).stdout
    rejected = cli.run("fraud", "reject", held[0]["id"], "--program", pid, "--reason", "card sharing").stdout
    assert "rejected (30 points, 30 points reversed)" in rejected
    again = cli.run("fraud", "approve", held[0]["id"], "--program", pid, code=1)
    assert again.stderr.startswith("error: fraud_hold_decided")
    assert cli.run("fraud", "held", "--program", pid).stdout.strip() == "nothing held"

    assert cli.run("fraud", "scan", "--program", pid).stdout.strip() == "1 new alerts (1 findings)"
    alerts = cli.json("fraud", "alerts", "--program", pid, "--json")
    assert isinstance(alerts, list) and [a["kind"] for a in alerts] == ["repeated_cap_hits"]
    done = cli.run("fraud", "acknowledge", alerts[0]["id"], "--program", pid, "--note", "talked to the shop").stdout
    assert done.strip().endswith("acknowledged")
    assert cli.run("fraud", "alerts", "--program", pid).stdout.strip() == "no alerts"
    cli.run("fraud", "acknowledge", "nope", "--program", pid, code=1)
    assert cli.run("verify").returncode == 0
