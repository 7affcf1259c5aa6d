"""`treue till ...` and `treue export ...` as a user runs them, against a fresh SQLite file."""

from __future__ import annotations

import csv
import io
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


def _batch(card: str, member: str) -> str:
    at = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    lines = [
        {"key": "t1-r1", "type": "refund", "occurred_at": (at + timedelta(minutes=9)).isoformat(),
         "external_order_id": "T-1", "amount": "5.00", "cashier": "c-1"},
        {"key": "t1-p1", "type": "purchase", "occurred_at": at.isoformat(), "external_order_id": "T-1",
         "total": "25.00", "currency": "EUR", "scan": card, "store": "s-1", "cashier": "c-1"},
        {"key": "t1-p2", "type": "purchase", "occurred_at": at.isoformat(), "external_order_id": "T-2",
         "total": "8.00", "currency": "EUR", "member_id": member},
        {"key": "t1-r2", "type": "refund", "occurred_at": at.isoformat(), "external_order_id": "T-99"},
    ]  # fmt: skip
    return "\n".join(json.dumps(x) for x in lines) + "\nnot json\n"


def test_till_upload_report_identify_card_and_exports(tmp_path: Path, treue_script):
    db = tmp_path / "t.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "Till", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    anna = cli.json("members", "enrol", "--program", pid, "--first-name", "Anna", "--email", "anna@example.org",
                    "--json")  # fmt: skip
    assert isinstance(anna, dict)
    batch = tmp_path / "offline.jsonl"
    batch.write_text(_batch(anna["card_number"], anna["id"]))

    report = tmp_path / "report.csv"
    done = cli.run("till", "upload", str(batch), "--program", pid, "--report", str(report))
    assert "5 lines, 3 applied, 0 replayed, 2 conflicts (till_line_invalid 1, till_order_unknown 1)" in done.stdout
    rows = list(csv.DictReader(io.StringIO(report.read_text())))
    assert [r["line"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["outcome"] for r in rows] == ["applied", "applied", "applied", "conflict", "conflict"]
    assert (rows[1]["points"], rows[0]["points"], rows[1]["cashier"]) == ("25", "-5", "c-1")
    assert cli.json("points", "balance", anna["id"], "--program", pid)["points"] == 20 + 8  # type: ignore[index]

    again = cli.json("till", "upload", str(batch), "--program", pid, "--json")
    assert isinstance(again, dict) and (again["applied"], again["replayed"], again["conflicts"]) == (0, 3, 2)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM purchases").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM refunds").fetchone() == (1,)
        assert conn.execute("SELECT cashier FROM purchases WHERE external_order_id = 'T-1'").fetchone() == ("c-1",)
    lines = [json.loads(x) for x in cli.run("till", "report", again["batch_id"], "--program", pid).stdout.splitlines()]
    assert [x["outcome"] for x in lines] == ["replayed", "replayed", "replayed", "conflict", "conflict"]
    shown = cli.run("till", "show", again["batch_id"], "--program", pid).stdout
    assert "0 applied, 3 replayed, 2 conflicts" in shown

    missing = cli.run("till", "upload", str(tmp_path / "nope.jsonl"), "--program", pid, code=1)
    assert missing.stderr.startswith("error: invalid_input") and len(missing.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    refused = cli.run("till", "upload", str(empty), "--program", pid, code=1)
    assert refused.stderr.startswith("error: till_line_invalid") and "Traceback" not in refused.stderr

    found = cli.json("till", "identify", "--program", pid, "--scan", anna["card_number"], "--json")
    assert isinstance(found, list) and found[0]["id"] == anna["id"] and found[0]["balance"]["points"] == 28
    assert "Anna" in cli.run("till", "identify", "--program", pid, "--email", "ANNA@example.org").stdout
    png = tmp_path / "card.png"
    cli.run("till", "card", anna["id"], "--program", pid, "--symbology", "code128", "--out", str(png))
    assert png.read_bytes().startswith(b"\x89PNG")
    no_ean = cli.run("till", "card", anna["id"], "--program", pid, "--symbology", "ean13", "--out",
                     str(tmp_path / "e.svg"), code=1)  # fmt: skip
    assert no_ean.stderr.startswith("error: card_not_ean13")

    # Exports: to a file (summary on stderr) or to stdout.
    members = tmp_path / "members.csv"
    exported = cli.run("export", "members", "--program", pid, "--out", str(members))
    assert "exported 1 members" in exported.stderr
    assert next(csv.DictReader(io.StringIO(members.read_text())))["id"] == anna["id"]
    transfers = [json.loads(x) for x in cli.run("export", "transactions", "--program", pid, "--format", "jsonl",
                                                "--quiet").stdout.splitlines()]  # fmt: skip
    assert sorted(x["kind"] for x in transfers) == ["earn", "earn", "reverse"]
    balances = list(csv.DictReader(io.StringIO(cli.run("export", "balances", "--program", pid, "-q").stdout)))
    assert sum(int(r["balance"]) for r in balances if r["unit"] == "PTS") == 0
    assert [int(r["balance"]) for r in balances if r["member_id"] == anna["id"]] == [28]
    bad = cli.run("export", "members", "--program", pid, "--format", "xlsx", code=1)
    assert bad.stderr.startswith("error: invalid_input") and len(bad.stderr.strip().splitlines()) == 1
    bad = cli.run("export", "transactions", "--program", pid, "--from", "yesterday", code=1)
    assert bad.stderr.startswith("error: invalid_input")
    assert cli.run("verify").returncode == 0
