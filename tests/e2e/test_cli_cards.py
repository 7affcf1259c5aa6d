"""`treue cards ...` as a real console script against a fresh SQLite file: link a card, import an acquirer's feed
twice (the second run changes nothing), see the chargeback reversed, and a card number refused without a trace."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def ledger(db: Path) -> tuple[list[tuple[object, ...]], ...]:
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT id, member_id, total_minor, refunded_minor, points_earned FROM purchases "
                             "ORDER BY id").fetchall(),
                conn.execute("SELECT id, kind, member_id FROM transfers ORDER BY id").fetchall(),
                conn.execute("SELECT member_id, balance FROM accounts WHERE member_id IS NOT NULL").fetchall())  # fmt: skip


def test_link_import_feed_twice_and_refuse_a_card_number(tmp_path: Path, treue_script):
    db = tmp_path / "cards.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "K", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    member = cli.json("members", "enrol", "--program", pid, "--json")["id"]  # type: ignore[index]
    linked = cli.run("cards", "link", "--program", pid, "--member", member, "--token", "tok_cli_visa", "--brand",
                     "visa", "--last4", "4242", "--expiry", "12/2030")  # fmt: skip
    assert "visa **** 4242  linked" in linked.stdout
    refused = cli.run("cards", "link", "--program", pid, "--member", member, "--token", "4111 1111 1111 1111",
                      "--brand", "visa", "--last4", "1111", "--expiry", "12/2030", code=1)  # fmt: skip
    assert refused.stderr.startswith("error: card_number_refused") and len(refused.stderr.splitlines()) == 1
    assert "4111" not in refused.stderr + refused.stdout
    assert cli.run("cards", "merchant", "ACQ-77", "--program", pid).stdout.strip() == "ACQ-77 -> default"

    at = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0).isoformat()
    feed = tmp_path / "feed.csv"
    feed.write_text("merchant_id,token,amount,currency,occurred_at,authorisation_code,type,original_authorisation_code\n"
                    f"ACQ-77,tok_cli_visa,60.00,EUR,{at},S1,sale,\n"
                    f"ACQ-77,tok_unknown,15.00,EUR,{at},S2,sale,\n"
                    f"ACQ-77,tok_cli_visa,60.00,EUR,{at},CB1,chargeback,S1\n"
                    f"ACQ-77,5500000000000004,1.00,EUR,{at},S3,sale,\n"
                    f"NOBODY,tok_cli_visa,1.00,EUR,{at},S4,sale,\n")  # fmt: skip
    first = cli.run("cards", "import-feed", str(feed), "--program", pid)
    assert ("done: 5 lines, 2 sales (1 matched to members, 1 anonymous), 0 refunds, 1 chargebacks, 0 already "
            "imported, 2 errors; 60 points earned, 60 taken back") in first.stdout  # fmt: skip
    assert "line 5: card_number_refused" in first.stderr and "line 6: merchant_unknown" in first.stderr
    assert "5500000000000004" not in first.stdout + first.stderr
    before = ledger(db)
    second = cli.json("cards", "import-feed", str(feed), "--program", pid, "--json")
    assert isinstance(second, dict) and (second["sales"], second["chargebacks"], second["already_imported"]) == (
        0,
        0,
        3,
    )
    assert ledger(db) == before
    purchases, transfers, balances = before
    assert sorted((p[2], p[3], p[4]) for p in purchases) == [(1500, 0, 0), (6000, 6000, 60)]
    assert sorted(kind for _, kind, _ in transfers) == ["earn", "reverse"] and balances == [(balances[0][0], 0)]
    with sqlite3.connect(db) as conn:
        everything = "\n".join(str(row) for table in ("payment_cards", "purchase_payments", "card_feeds",
                                                      "card_feed_lines", "audit_log", "outbox")
                               for row in conn.execute(f"SELECT * FROM {table}"))  # fmt: skip
    assert "5500000000000004" not in everything and "4111" not in everything
    assert cli.run("verify").returncode == 0
