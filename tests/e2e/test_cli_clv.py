"""`treue analytics clv` and `treue jobs run clv` as a user runs them, against a fresh SQLite file."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_cli import TREUE, Cli


@pytest.fixture(scope="module")
def treue_script() -> Path:
    assert TREUE.exists(), f"the console script is missing at {TREUE} (pip install -e .)"
    return TREUE


def history_csv(path: Path, members: int = 40) -> int:
    """A year of purchases of `members` customers (seeded), two on one local day for the first customer."""
    rng = np.random.default_rng(42)
    lines = ["member,order_id,occurred_at,total,currency"]
    order = 0
    for m in range(members):
        day, rate = float(rng.uniform(0, 200)), float(rng.gamma(2.0, 1 / 30))
        while day < 400:
            at = datetime(2025, 1, 1, 10, tzinfo=UTC) + timedelta(days=int(day))
            order += 1
            lines.append(f"cust-{m},o-{order},{at.isoformat()},{int(rng.integers(5, 200))}.50,EUR")
            day += float(rng.exponential(1 / rate))
    # Same local day (Europe/Berlin, UTC+1 in January): 23:30 UTC on Jan 5 and 08:00 UTC on Jan 6 are both Jan 6.
    lines += ["cust-same,s-1,2025-01-05T23:30:00+00:00,10.00,EUR", "cust-same,s-2,2025-01-06T08:00:00+00:00,5.00,EUR"]
    path.write_text("\n".join(lines) + "\n")
    return members + 1


def test_clv_prints_one_json_object_and_stores_member_facts(tmp_path: Path, treue_script):
    db = tmp_path / "clv.db"
    cli = Cli(f"sqlite:///{db}")
    cli.run("migrate")
    pid = cli.json("programs", "create", "C", "--currency", "EUR", "--timezone", "Europe/Berlin", "--json")["id"]  # type: ignore[index]
    members = history_csv(tmp_path / "history.csv")
    cli.run("import", "purchases", str(tmp_path / "history.csv"), "--program", pid, "--create-members")

    # Bad input: one line on stderr, non-zero exit, nothing stored.
    for args, message in ((["--calibration-end", "2025-13-01"], "not a date"),
                          (["--calibration-end", "2025-12-31", "--holdout-end", "2025-12-01"], "holdout_end"),
                          (["--calibration-end", "2025-12-31", "--discount-rate", "-1"], "discount_rate")):  # fmt: skip
        refused = cli.run("analytics", "clv", "--program", pid, *args, "--json", code=1)
        assert refused.stderr.startswith("error: invalid_input") and message in refused.stderr
        assert len(refused.stderr.splitlines()) == 1 and refused.stdout == ""
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM member_clv").fetchone() == (0,)

    done = cli.run("analytics", "clv", "--program", pid, "--calibration-end", "2025-10-31", "--holdout-end",
                   "2026-01-31", "--horizon-weeks", "26", "--discount-rate", "0.08", "--members", "4", "--json")  # fmt: skip
    report = json.loads(done.stdout)  # exactly one JSON document on stdout
    assert set(report["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(report["gamma_gamma"]) >= {"p", "q", "gamma", "log_likelihood"}
    assert all(report["bgnbd"][k] > 0 for k in ("r", "alpha", "a", "b"))
    assert report["members"]["count"] == members and 0 < report["members"]["with_repeat"] < members
    assert report["horizon_weeks"] == 26 and report["discount_rate"] == 0.08
    holdout = report["holdout"]
    assert holdout["actual_repeat_purchases"] > 0 and holdout["predicted_repeat_purchases"] > 0
    assert len(report["top_members"]) == 4
    best = report["top_members"][0]
    assert best["expected_clv"]["currency"] == "EUR" and "." in best["expected_clv"]["amount"]

    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*), min(probability_alive) >= 0, max(probability_alive) <= 1, "
                              "max(calibration_end) FROM member_clv").fetchone()  # fmt: skip
        same = conn.execute("SELECT c.repeat_purchases FROM member_clv c JOIN members m ON m.id = c.member_id "
                            "WHERE m.external_ref = 'cust-same'").fetchone()  # fmt: skip
    assert stored == (members, 1, 1, "2025-10-31")
    assert same == (0,)  # two purchases on one local day are one transaction

    text = cli.run("analytics", "clv", "--program", pid, "--calibration-end", "2025-10-31", "--no-store").stdout
    assert "BG/NBD: r=" in text and "Gamma-Gamma: p=" in text and "stored" not in text

    job = cli.run("jobs", "run", "clv", "--program", pid)
    assert str(members) in job.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), max(calibration_end) > '2025-10-31' FROM member_clv").fetchone() == (
            members, 1)  # fmt: skip
