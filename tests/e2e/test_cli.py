"""The real `treue` console script in a subprocess, against a fresh SQLite file (and PostgreSQL database)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

TREUE = Path(sys.executable).with_name("treue")
PG_ADMIN_URL = os.environ.get("TREUE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("TREUE_REQUIRE_POSTGRES") == "1"


class Cli:
    def __init__(self, url: str) -> None:
        self.env = {**os.environ, "TREUE_DATABASE_URL": url, "NO_COLOR": "1", "COLUMNS": "200"}

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(TREUE), *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == code, f"treue {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str) -> object:
        return json.loads(self.run(*args).stdout)


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def state(db: Path) -> tuple[dict[str, int], int, int]:
    """(member balances, number of purchases, number of members), read straight from the file."""
    with sqlite3.connect(db) as conn:
        balances = dict(conn.execute("SELECT member_id, balance FROM accounts WHERE member_id IS NOT NULL"))
        purchases = conn.execute("SELECT count(*) FROM purchases").fetchone()[0]
        members = conn.execute("SELECT count(*) FROM members").fetchone()[0]
    return balances, purchases, members


def test_cli_end_to_end_on_sqlite(tmp_path: Path, treue_script):
    db = tmp_path / "t.db"
    cli = Cli(f"sqlite:///{db}")
    assert "up to date" in cli.run("migrate").stdout

    program = cli.json("programs", "create", "X", "--currency", "EUR", "--timezone", "Europe/Berlin",
                       "--expiry-policy", "rolling", "--expiry-months", "1", "--json")  # fmt: skip
    assert isinstance(program, dict) and program["name"] == "X" and program["timezone"] == "Europe/Berlin"
    pid = program["id"]
    assert str(uuid.UUID(pid)) == pid

    refused = cli.run("programs", "create", "Y", "--timezone", "Mars/Olympus", code=1)
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Mars/Olympus" in lines[0], refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    assert [p["id"] for p in cli.json("programs", "list", "--json")] == [pid]  # type: ignore[index]
    bad_id = cli.run("members", "enrol", "--program", "nope", code=1)
    assert bad_id.stderr.startswith("error: invalid_input") and len(bad_id.stderr.strip().splitlines()) == 1

    anna = cli.json("members", "enrol", "--program", pid, "--email", "anna@example.org", "--json")
    assert isinstance(anna, dict) and len(anna["card_number"]) == 19
    found = cli.json("members", "find", "--program", pid, "--email", "ANNA@example.org")
    assert [m["id"] for m in found] == [anna["id"]]  # type: ignore[union-attr]

    recorded = cli.json("purchases", "record", "--program", pid, "--order-id", "TILL-1", "--total", "30.00",
                        "--card", anna["card_number"], "--line", "CHAIR:1:20.00:furniture", "--line", "CUP:2:5.00",
                        "--json")  # fmt: skip
    assert isinstance(recorded, dict) and recorded["points_earned"] == 30 and len(recorded["lines"]) == 2
    duplicate = cli.run("purchases", "record", "--program", pid, "--order-id", "TILL-1", "--total", "9.00",
                        "--member", anna["id"], code=1)  # fmt: skip
    assert duplicate.stderr.startswith("error: duplicate_order")
    balance = cli.json("points", "balance", "--program", pid, anna["id"])
    assert isinstance(balance, dict) and balance["points"] == 30
    assert state(db)[0] == {uuid.UUID(anna["id"]).hex: 30}

    # Import: one bad row (line 4) is reported by its line number; the others are imported.
    csv = tmp_path / "purchases.csv"
    csv.write_text(
        "member,order_id,occurred_at,total,currency,items,channel,partner\n"
        f"{anna['card_number']},IMP-1,2020-01-15T10:00:00Z,10.00,EUR,A:1:10.00,store,\n"
        "shop-77,IMP-2,2020-01-16T10:00:00+01:00,25.50,EUR,A:1:20.50|B:1:5.00:deko,online,\n"
        "shop-77,IMP-3,2020-01-17T10:00:00Z,abc,EUR,,store,\n"
        f"{anna['id']},IMP-4,2020-01-18T10:00:00Z,7.00,EUR,,app,acme\n",
        encoding="utf-8",
    )
    before_import = state(db)
    first = cli.run("import", "purchases", str(csv), "--program", pid, "--create-members")
    assert [line.split(":")[0] for line in first.stderr.strip().splitlines()] == ["line 4"], first.stderr
    assert "abc" in first.stderr
    assert "3 imported" in first.stdout and "1 members created" in first.stdout and "1 bad rows" in first.stdout
    balances, purchases, members = state(db)
    assert purchases == before_import[1] + 3 and members == before_import[2] + 1
    shop77 = cli.json("members", "find", "--program", pid, "--external-ref", "shop-77")
    assert isinstance(shop77, list) and len(shop77) == 1
    assert balances == {uuid.UUID(anna["id"]).hex: 30 + 10 + 7, uuid.UUID(shop77[0]["id"]).hex: 25}

    # Re-running the file changes nothing: the good rows are already imported.
    again = cli.json("import", "purchases", str(csv), "--program", pid, "--create-members", "--json")
    assert isinstance(again, dict)
    assert (again["imported"], again["already_imported"], again["members_created"]) == (0, 3, 0)
    assert [e["line"] for e in again["errors"]] == [4]
    assert state(db) == (balances, purchases, members)

    # --on-error abort: one bad row and nothing at all is imported.
    bad = tmp_path / "abort.csv"
    bad.write_text(
        "member,order_id,occurred_at,total,currency,items,channel,partner\n"
        f"{anna['card_number']},ABORT-1,2020-02-01T10:00:00Z,50.00,EUR,,store,\n"
        "new-member,ABORT-2,2020-02-01T10:00:00Z,5.00,EUR,,store,\n"
        f"{anna['card_number']},ABORT-3,not-a-time,5.00,EUR,,store,\n",
        encoding="utf-8",
    )
    aborted = cli.run("import", "purchases", str(bad), "--program", pid, "--create-members", "--on-error", "abort",
                      code=1)  # fmt: skip
    assert "line 4" in aborted.stderr and "ABORTED" in aborted.stdout
    assert state(db) == (balances, purchases, members)

    # Expiry: the imported points (2020, one month) expire once; a second run finds nothing.
    expired = json.loads(cli.run("jobs", "run", "expire").stdout)
    assert (expired["job"], expired["points_expired"]) == ("expire", 10 + 25 + 7)
    assert json.loads(cli.run("jobs", "run", "expire").stdout)["points_expired"] == 0
    assert state(db)[0] == {uuid.UUID(anna["id"]).hex: 30, uuid.UUID(shop77[0]["id"]).hex: 0}

    ok = cli.run("verify")
    assert ok.stdout.startswith("ok") and ok.stderr == ""

    # Break the ledger behind the engine's back: verify notices and names the invariant.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE accounts SET balance = balance + 5 WHERE member_id IS NOT NULL")
    broken = cli.run("verify", code=1)
    assert "balance_mismatch" in broken.stderr and "VIOLATION" in broken.stderr
    report = json.loads(cli.run("verify", "--json", code=1).stdout)
    assert report["ok"] is False and "balance_mismatch" in {v["invariant"] for v in report["violations"]}


@pytest.fixture
def pg_database() -> Iterator[str]:
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as error:  # no PostgreSQL here
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error} (TREUE_REQUIRE_POSTGRES=1)")
        pytest.skip(f"SKIPPED PostgreSQL tests: PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"treue_cli_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_cli_on_postgresql(pg_database: str, tmp_path: Path, treue_script):
    cli = Cli(pg_database)
    cli.run("migrate")
    pid = cli.json("programs", "create", "PG", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    member = cli.json("members", "enrol", "--program", pid, "--external-ref", "pg-1", "--json")
    assert isinstance(member, dict)
    cli.run("purchases", "record", "--program", pid, "--order-id", "PG-1", "--total", "12.34",
            "--external-ref", "pg-1", "--line", "A:1:12.34")  # fmt: skip
    csv = tmp_path / "pg.csv"
    csv.write_text("member,order_id,occurred_at,total,currency\n"
                   "pg-1,PG-2,2026-01-01T00:00:00Z,5.00,EUR\npg-2,PG-3,2026-01-01T00:00:00Z,x,EUR\n")  # fmt: skip
    report = cli.json("import", "purchases", str(csv), "--program", pid, "--create-members", "--json")
    assert isinstance(report, dict) and (report["imported"], [e["line"] for e in report["errors"]]) == (1, [3])
    assert cli.run("verify").stdout.startswith("ok")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        balances = dict(conn.execute("SELECT member_id::text, balance FROM accounts WHERE member_id IS NOT NULL"))
        assert balances == {member["id"]: 17}  # the bad row did not enrol pg-2
        conn.execute("UPDATE accounts SET balance = balance + 5 WHERE member_id IS NOT NULL")
    assert "balance_mismatch" in cli.run("verify", code=1).stderr
