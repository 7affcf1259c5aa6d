"""`treue partners ...` and `treue settle` as a user runs them: register partners, list and show them, settle a
month (again: the stored result), CSV, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.test_cli import Cli, treue_script  # noqa: F401  (fixture)


def test_partners_and_settlement_from_the_shell(tmp_path: Path, treue_script):  # noqa: F811
    cli = Cli(f"sqlite:///{tmp_path / 'p.db'}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "P", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    added = cli.json("partners", "add", "baecker", "--program", pid, "--name", "Bäckerei", "--issue-price", "1.00",
                     "--issue-points", "100", "--redeem-price", "0.80", "--redeem-points", "100", "--billing",
                     "prepaid", "--store", "b-1", "--store", "b-2", "--json")  # fmt: skip
    assert added["stores"] == ["b-1", "b-2"] and added["billing"] == "prepaid"  # type: ignore[index]
    listed = cli.run("partners", "list", "--program", pid)
    assert "baecker  Bäckerei  issues at 1.00 EUR/100 pts  redeems at 0.80 EUR/100 pts  prepaid" in listed.stdout
    assert cli.json("partners", "show", "baecker", "--program", pid)["redeem_price"] == "0.80"  # type: ignore[index]

    # The month before the real clock's month has ended: it can be settled, once.
    today = datetime.now(UTC)
    last = f"{today.year - (today.month == 1):04d}-{(today.month - 2) % 12 + 1:02d}"
    first = cli.run("settle", "--program", pid, "--period", last)
    assert first.stderr.startswith(f"settled {last}")
    again = cli.run("partners", "settle", "--program", pid, "--period", last)
    assert again.stderr.startswith(f"already settled {last}") and json.loads(again.stdout) == json.loads(first.stdout)
    line = json.loads(first.stdout)["lines"][0]
    assert (line["partner"], line["points_issued"], line["net"]) == ("baecker", 0, "0.00")
    rows = list(csv.DictReader(io.StringIO(cli.run("settle", "--program", pid, "--period", last, "--csv").stdout)))
    assert rows[0]["partner"] == "baecker" and rows[0]["billing"] == "prepaid"
    out = tmp_path / "s.csv"
    cli.run("settle", "--program", pid, "--period", last, "--csv", "-o", str(out))
    assert out.read_text(encoding="utf-8").startswith("period,partner,")

    for args, message in (
        (("settle", "--program", pid, "--period", "2026-13"), "error: period_invalid:"),
        (("settle", "--program", pid, "--period", f"{today:%Y-%m}"), "error: period_open:"),
        (("partners", "show", "nobody", "--program", pid), "error: partner_not_found:"),
        (("partners", "add", "default", "--program", pid, "--name", "X"), "error: invalid_input:"),
        (("partners", "add", "baecker", "--program", pid, "--name", "X"), "error: partner_exists:"),
        (("partners", "add", "x", "--program", pid, "--name", "X", "--billing", "weekly"), "error: invalid_input:"),
    ):
        refused = cli.run(*args, code=1)
        assert refused.stderr.startswith(message) and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert len(cli.json("partners", "list", "--program", pid, "--json")) == 1  # type: ignore[arg-type]
