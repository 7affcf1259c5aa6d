"""`treue privacy ...` as a real console script against a fresh SQLite file: export to a file, erase with a
reason and --yes (refused without), a second erase, retention show/set/run with a dry run, and `treue verify`."""

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


def test_export_erase_and_retention_from_the_shell(tmp_path: Path, treue_script):
    db = tmp_path / "privacy.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "P", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    anna = cli.json("members", "enrol", "--program", pid, "--email", "anna.cli@privacy.example", "--first-name",
                    "Annabel", "--phone", "+4917099887766", "--consent", "email", "--json")  # fmt: skip
    bert = cli.json("members", "enrol", "--program", pid, "--email", "bert.cli@privacy.example", "--json")
    aid, bid = anna["id"], bert["id"]  # type: ignore[index]
    cli.run("purchases", "record", "--program", pid, "--order-id", "O-1", "--total", "42.00",
            "--card", anna["card_number"])  # type: ignore[index]  # fmt: skip

    out = tmp_path / "anna.json"
    done = cli.run("privacy", "export", "--program", pid, "--member", aid, "--out", str(out))
    assert "exported member" in done.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["member"]["email"] == "anna.cli@privacy.example" and doc["purchases"][0]["external_order_id"] == "O-1"
    assert json.loads(cli.run("privacy", "export", "--program", pid, "--member", aid).stdout)["member"]["id"] == aid

    refused = cli.run("privacy", "erase", "--program", pid, "--member", aid, "--reason", "asked", code=1)
    assert refused.stderr.startswith("error: invalid_input") and "--yes" in refused.stderr
    refused = cli.run("privacy", "erase", "--program", pid, "--member", aid, "--yes", code=1)
    assert "--reason" in refused.stderr
    refused = cli.run("privacy", "erase", "--program", pid, "--member", "nope", "--reason", "x", "--yes", code=1)
    assert refused.stderr.strip() == "error: invalid_input: 'nope' is not a member id"
    erased = cli.run("privacy", "erase", "--program", pid, "--member", aid, "--reason", "asked by mail", "--yes")
    assert erased.stdout.strip() == f"member {aid} erased; 42 points written off"
    again = cli.run("privacy", "erase", "--program", pid, "--member", aid, "--reason", "again", "--yes")
    assert "was already erased" in again.stdout
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert "anna.cli@privacy.example" not in dump and "Annabel" not in dump and "+4917099887766" not in dump
    assert cli.json("verify", "--json")["violations"] == []  # type: ignore[index]

    assert cli.run("privacy", "retention", "show", "--program", pid).stdout.strip() == "retention: off"
    off = cli.run("privacy", "retention", "run", "--program", pid, code=1)
    assert "retention is off" in off.stderr
    assert cli.run("privacy", "retention", "set", "--program", pid, code=1).stderr.startswith("error: invalid_input")
    shown = cli.run("privacy", "retention", "set", "--program", pid, "--months", "6")
    assert shown.stdout.strip() == "retention: 6 months of inactivity"
    dry = cli.json("privacy", "retention", "run", "--program", pid, "--dry-run", "--at", "2099-01-01T00:00:00+00:00")
    assert [c["member_id"] for c in dry["candidates"]] == [bid]  # type: ignore[index]  # anna is erased already
    assert cli.json("privacy", "retention", "run", "--program", pid)["erased"] == 0  # type: ignore[index]
    ran = cli.json("privacy", "retention", "run", "--program", pid, "--at", "2099-01-01T00:00:00+00:00")
    assert ran["erased"] == 1  # type: ignore[index]
    assert json.loads(cli.run("members", "show", "--program", pid, bid).stdout)["status"] == "erased"
    assert cli.run("privacy", "retention", "set", "--program", pid, "--off").stdout.strip() == "retention: off"
