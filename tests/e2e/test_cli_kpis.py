"""`treue analytics kpis` and `treue analytics liability` as a user runs them, against a fresh SQLite file."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def test_kpis_and_liability_print_one_json_object_and_refuse_bad_input(tmp_path: Path, treue_script):
    db = tmp_path / "kpi.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "K", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    # Three customers: a buys twice (store 40.00, online 20.50), b once (store 9.99), c once (30.00).
    (tmp_path / "history.csv").write_text(
        "member,order_id,occurred_at,total,currency\n"
        "cust-a,o-1,2026-01-10T10:00:00+00:00,40.00,EUR\n"
        "cust-a,o-2,2026-01-20T10:00:00+00:00,20.50,EUR\n"
        "cust-b,o-3,2026-01-12T10:00:00+00:00,9.99,EUR\n"
        "cust-c,o-4,2026-02-01T10:00:00+00:00,30.00,EUR\n"
    )
    cli.run("import", "purchases", str(tmp_path / "history.csv"), "--program", pid, "--create-members")
    # The members were enrolled by the import (now); the period runs from January to a year from today.
    today = datetime.now(UTC).date()
    until = (today + timedelta(days=365)).isoformat()

    done = cli.run("analytics", "kpis", "--program", pid, "--from", "2026-01-01", "--to", until, "--json")
    report = json.loads(done.stdout)  # exactly one JSON document on stdout
    assert {"members_total", "members_active", "repeat_purchase_rate", "average_order_value", "purchase_frequency",
            "redemption_rate", "breakage_rate", "points_liability", "nps"} <= set(report)  # fmt: skip
    assert all(key == key.lower() and " " not in key for key in report)
    assert report["members_total"] == 3 and report["members_active"] == 3 and report["purchases"] == 4
    assert report["repeat_purchase_rate"] == "0.3333" and report["purchase_frequency"] == "1.3333"
    assert report["average_order_value"] == {"amount": "25.12", "currency": "EUR"}  # 100.49 / 4, floor
    with sqlite3.connect(db) as conn:
        points = conn.execute("SELECT sum(balance) FROM accounts WHERE kind = 'member'").fetchone()[0]
    assert points > 0 and report["points_issued"] == report["points_outstanding"] == points
    assert report["points_liability"] == {"amount": f"{points / 100:.2f}", "currency": "EUR"}
    assert report["redemption_rate"] == "0.0000" and report["breakage_rate"] == "0.0000" and report["nps"] is None

    split = json.loads(cli.run("analytics", "kpis", "--program", pid, "--from", "2026-01-01", "--to", "2026-01-31",
                               "--by", "channel", "--json").stdout)  # fmt: skip
    assert split["purchases"] == 3 and [g["key"] for g in split["groups"]] == ["store"]
    text = cli.run("analytics", "kpis", "--program", pid, "--from", "2026-01-01", "--to", "2026-01-31").stdout
    assert "repeat purchase rate 0.5000" in text and "purchases: 3 (anonymous 0)" in text
    # No segments yet: every member is in the group without a segment.
    by_segment = json.loads(cli.run("analytics", "kpis", "--program", pid, "--from", "2026-01-01", "--to",
                                    "2026-01-31", "--by", "segment", "--json").stdout)  # fmt: skip
    assert [(g["key"], g["purchases"]) for g in by_segment["groups"]] == [(None, 3)]
    text = cli.run("analytics", "kpis", "--program", pid, "--from", "2026-01-01", "--to", "2026-01-31", "--by",
                   "segment").stdout  # fmt: skip
    assert "segment (no segment): 2 active, 3 purchases" in text

    # The liability report: JSON on stdout and the same months as CSV in a file.
    month = f"{today:%Y-%m}"
    out = tmp_path / "liability.csv"
    liability = json.loads(cli.run("analytics", "liability", "--program", pid, "--from", "2026-01", "--to", month,
                                   "--csv", str(out), "--json").stdout)  # fmt: skip
    assert liability["months"][0]["month"] == "2026-01" and liability["months"][-1]["closing"] == points
    rows = list(csv.DictReader(out.open()))
    assert [r["month"] for r in rows] == [m["month"] for m in liability["months"]]
    assert rows[-1]["closing"] == str(points) and rows[0]["opening"] == "0"
    table = cli.run("analytics", "liability", "--program", pid, "--from", "2026-01", "--to", "2026-02").stdout
    assert table.splitlines()[0].split()[:3] == ["month", "opening", "issued"] and "2026-02" in table

    # The roll-up job by hand: it records its extent (the history, just imported, is still inside the day it leaves
    # raw) and the figures stay what they were.
    rolled = json.loads(cli.run("jobs", "run", "kpi_rollup", "--program", pid).stdout)
    assert rolled == {"job": "kpi_rollup", "rolled_up": 1, "rows": 0, "refused": {}}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT timezone FROM kpi_rollups").fetchall() == [("Europe/Berlin",)]
    again = json.loads(cli.run("analytics", "kpis", "--program", pid, "--from", "2026-01-01", "--to", until,
                               "--json").stdout)  # fmt: skip
    assert {k: v for k, v in again.items() if k != "computed_at"} == {
        k: v for k, v in report.items() if k != "computed_at"
    }
    assert "unknown job" in cli.run("jobs", "run", "kpi-rollup", code=1).stderr

    # Bad input: one line on stderr, exit 1, nothing on stdout.
    for args, message in (
        (["kpis", "--from", "2026-02-01", "--to", "2026-01-01"], "before it starts"),
        (["kpis", "--from", "2026-01-01", "--to", "2026-01-31", "--by", "colour"], "unknown split"),
        (["kpis", "--from", "2026-01-xx", "--to", "2026-01-31"], "not a date"),
        (["liability", "--from", "2026-06", "--to", "2026-01"], "before it starts"),
        (["liability", "--from", "2026-1", "--to", "2026-02"], "not a month"),
    ):  # fmt: skip
        refused = cli.run("analytics", args[0], "--program", pid, *args[1:], "--json", code=1)
        assert refused.stderr.startswith("error: invalid_input") and message in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1 and refused.stdout == ""
