"""The KPI query set's speed on PostgreSQL.

Issue 6 target (P7): the KPIs over 1,000,000 members / 10,000,000 purchases in at most 2 s. The run creates a
fresh PostgreSQL database, a programme, M members (enrolled over 2025) and N purchases over 2025-2026 (a third per
channel, 1 in 50 partly refunded, 1 in 20 anonymous), and for every member purchase an earn transfer with its two
postings, plus a redemption for 1 member in 10 and an expiry for 1 in 25 — all written by SQL in bulk
(generate_series; triggers off while seeding: the data set is the point here, not how it was recorded). Rows are
written in the order they happen, as a live programme records them. It then runs the `kpi_rollup` job once (timed:
the first roll-up reads the whole history), and times `treue.services.kpis.kpis` for one month, the same split
by channel, tier, cohort and segment, and a twelve-month liability report; then the month again without the
roll-up, for comparison (the data set has no segments: that split is one group).
Results: benchmarks/results/kpi-<timestamp>.json and kpi-latest.json.

    python benchmarks/kpi_bench.py [--members M] [--purchases N] [--keep | --reuse DATABASE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

RESULTS = Path(__file__).resolve().parent / "results"
ADMIN_URL = os.environ.get("TREUE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_MEMBERS, TARGET_PURCHASES, TARGET_SECONDS = 1_000_000, 10_000_000, 2.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def seed(url: str, members: int, purchases: int) -> UUID:
    from treue.domain.ledger import AccountKind, system_account_id
    from treue.services.programs import create_program
    from treue.store.database import make_engine
    from treue.store.migrate import migrate
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    engine = make_engine(url)
    migrate(engine)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    program_id = UUID(create_program(SqlUnitOfWorkFactory(engine)(), "Bench", "EUR", "Europe/Berlin", {}, now)["id"])
    engine.dispose()
    accounts = {kind: system_account_id(program_id, kind) for kind in
                (AccountKind.ISSUANCE, AccountKind.REDEMPTION, AccountKind.BREAKAGE)}  # fmt: skip
    params = {"p": program_id, "m": members, "n": purchases, "iss": accounts[AccountKind.ISSUANCE],
              "red": accounts[AccountKind.REDEMPTION], "brk": accounts[AccountKind.BREAKAGE]}  # fmt: skip
    steps = [
        (
            "members",
            """INSERT INTO members (program_id, id, card_number, locale, status, attributes, enrolled_at,
                                            updated_at)
                       SELECT %(p)s, gen_random_uuid(), lpad(n::text, 19, '0'), 'de', 'active', '{}',
                              timestamptz '2025-01-01' + (n * 31536000.0 / %(m)s) * interval '1 second',
                              timestamptz '2025-01-01'
                       FROM generate_series(1::bigint, %(m)s) AS n""",
        ),
        (
            "member ids",
            """CREATE UNLOGGED TABLE bench_ids AS
                          SELECT id, enrolled_at, row_number() OVER (ORDER BY enrolled_at) AS k
                          FROM members WHERE program_id = %(p)s""",
        ),
        ("index", "CREATE UNIQUE INDEX ON bench_ids (k)"),
        (
            "accounts",
            """INSERT INTO accounts (program_id, id, kind, member_id, unit, balance, created_at)
                        SELECT %(p)s, id, 'member', id, 'PTS', 0, enrolled_at FROM bench_ids""",
        ),
        # A purchase after the member's enrolment: 1 in 20 anonymous, 1 in 50 refunded in part.
        (
            "purchases",
            """INSERT INTO purchases (program_id, id, member_id, partner, store, channel,
                                                external_order_id, occurred_at, total_minor, currency, lines,
                                                points_earned, refunded_minor, created_at)
                         SELECT %(p)s, gen_random_uuid(), CASE WHEN n %% 20 = 0 THEN NULL ELSE b.id END,
                                'default', NULL, (ARRAY['store', 'online', 'app'])[1 + n %% 3], 'B-' || n, at,
                                1000 + (n * 7919) %% 20000, 'EUR', '[]', (1000 + (n * 7919) %% 20000) / 100,
                                CASE WHEN n %% 50 = 0 THEN 500 ELSE 0 END, at
                         FROM generate_series(1::bigint, %(n)s) AS n
                         JOIN bench_ids b ON b.k = 1 + (n * 104729) %% %(m)s
                         CROSS JOIN LATERAL (SELECT b.enrolled_at + ((n * 15485863) %% 31536000) * interval '1 second'
                                             AS at) AS t
                         ORDER BY at""",
        ),
        (
            "refunds",
            """INSERT INTO refunds (program_id, id, purchase_id, amount_minor, currency, occurred_at,
                                              points_taken, points_forgiven, created_at)
                       SELECT %(p)s, gen_random_uuid(), id, refunded_minor, currency, occurred_at, 0, 0, occurred_at
                       FROM purchases WHERE program_id = %(p)s AND refunded_minor > 0""",
        ),
        (
            "earn transfers",
            """INSERT INTO transfers (program_id, id, kind, occurred_at, created_at, member_id,
                                                     purchase_id, explanation)
                              SELECT %(p)s, gen_random_uuid(), 'earn', occurred_at, occurred_at, member_id, id,
                                     '{"points": 1}'
                              FROM purchases WHERE program_id = %(p)s AND member_id IS NOT NULL
                                               AND points_earned > 0""",
        ),
        (
            "redemptions",
            """INSERT INTO transfers (program_id, id, kind, occurred_at, created_at, member_id,
                                                  explanation)
                           SELECT %(p)s, gen_random_uuid(), 'redeem', enrolled_at + interval '300 days',
                                  enrolled_at + interval '300 days', id, '{}'
                           FROM bench_ids WHERE k %% 10 = 0 ORDER BY k""",
        ),
        (
            "expiries",
            """INSERT INTO transfers (program_id, id, kind, occurred_at, created_at, member_id,
                                               explanation)
                        SELECT %(p)s, gen_random_uuid(), 'expire', enrolled_at + interval '400 days',
                               enrolled_at + interval '400 days', id, '{}'
                        FROM bench_ids WHERE k %% 25 = 0 ORDER BY k""",
        ),
        # Redeem 10 and expire 5 points: fewer than any member holds by then is not guaranteed; the ledger's
        # invariants are not the point of this data set (triggers are off), the query shapes are.
        (
            "postings",
            """INSERT INTO postings (program_id, transfer_id, account_id, unit, amount)
                        SELECT %(p)s, t.id, x.account, 'PTS', x.amount
                        FROM transfers t
                        JOIN purchases p ON p.program_id = t.program_id AND p.id = t.purchase_id
                        CROSS JOIN LATERAL (VALUES (t.member_id, p.points_earned),
                                                   (%(iss)s::uuid, -p.points_earned)) AS x(account, amount)
                        WHERE t.program_id = %(p)s AND t.kind = 'earn'
                        UNION ALL
                        SELECT %(p)s, t.id, x.account, 'PTS', x.amount
                        FROM transfers t
                        CROSS JOIN LATERAL (VALUES (t.member_id, CASE t.kind WHEN 'redeem' THEN -10 ELSE -5 END),
                                                   (CASE t.kind WHEN 'redeem' THEN %(red)s::uuid
                                                    ELSE %(brk)s::uuid END,
                                                    CASE t.kind WHEN 'redeem' THEN 10 ELSE 5 END))
                             AS x(account, amount)
                        WHERE t.program_id = %(p)s AND t.kind IN ('redeem', 'expire')""",
        ),
        ("drop ids", "DROP TABLE bench_ids"),
        # A live database is vacuumed by autovacuum as it goes: visibility maps for index-only scans, summarised
        # BRIN ranges. A bulk load has neither until autovacuum gets to it, so the run does it at once.
        ("vacuum", "VACUUM (ANALYZE)"),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK or append-only triggers while seeding
        conn.execute("SET work_mem = '1GB'")  # sorting purchases by time in memory
        for name, sql in steps:
            started = time.perf_counter()
            conn.execute(sql, params)  # type: ignore[arg-type]
            log(f"  {name}: {time.perf_counter() - started:.1f} s")
    return program_id


def timed(call: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The best of `repeat` runs (the first warms the caches)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", metavar="DATABASE", help="time a database an earlier --keep run seeded")
    args = parser.parse_args()
    from treue.services.kpi_rollups import roll_up
    from treue.services.kpis import kpis, liability_report
    from treue.store.database import make_engine
    from treue.store.migrate import migrate
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    name = args.reuse or f"treue_bench_kpi_{int(time.time())}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    seeded = None
    if not args.reuse:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        if args.reuse:
            with psycopg.connect(url, autocommit=True) as conn:
                program_id = UUID(str(conn.execute("SELECT id FROM programs").fetchone()[0]))  # type: ignore[index]
                args.members = conn.execute("SELECT count(*) FROM members").fetchone()[0]  # type: ignore[index]
                args.purchases = conn.execute("SELECT count(*) FROM purchases").fetchone()[0]  # type: ignore[index]
                conn.execute("DELETE FROM kpi_flow_days; DELETE FROM kpi_revenue_days; DELETE FROM kpi_rollups")
            migrate(make_engine(url))
            log(f"reusing {name}: {args.members:,} members, {args.purchases:,} purchases")
        else:
            log(f"seeding {args.members:,} members and {args.purchases:,} purchases in {name}")
            started = time.perf_counter()
            program_id = seed(url, args.members, args.purchases)
            seeded = time.perf_counter() - started
            log(f"seeded in {seeded:.1f} s")
        engine = make_engine(url)
        uow = SqlUnitOfWorkFactory(engine)
        now = datetime(2027, 1, 1, tzinfo=UTC)
        june = date(2025, 6, 1), date(2025, 6, 30)
        started = time.perf_counter()
        rolled = roll_up(uow(), program_id, now)
        rollup = time.perf_counter() - started
        log(f"first roll-up in {rollup:.1f} s: {rolled}")
        started = time.perf_counter()
        roll_up(uow(), program_id, now + timedelta(days=1))
        next_rollup = time.perf_counter() - started
        log(f"next day's roll-up in {next_rollup:.2f} s; timing")
        month, report = timed(lambda: kpis(uow(read_only=True), program_id, *june, now))
        splits = {by: timed(lambda by=by: kpis(uow(read_only=True), program_id, *june, now, by=by))[0]
                  for by in ("channel", "tier", "cohort", "segment")}  # fmt: skip
        split = splits["channel"]
        year, _ = timed(lambda: liability_report(uow(read_only=True), program_id, date(2025, 1, 1),
                                                 date(2025, 12, 1), now))  # fmt: skip
        with engine.begin() as conn:  # the same month read from the raw rows alone
            conn.exec_driver_sql("DELETE FROM kpi_rollups")
        raw, raw_report = timed(lambda: kpis(uow(read_only=True), program_id, *june, now), repeat=1)
        engine.dispose()
    finally:
        if not args.keep and not args.reuse:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    same = {k: v for k, v in report.items() if k != "computed_at"} == {
        k: v for k, v in raw_report.items() if k != "computed_at"
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "started_at": stamp, "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "members": args.members, "purchases": args.purchases,
        "seed_seconds": None if seeded is None else round(seeded, 1), "first_rollup_seconds": round(rollup, 1),
        "next_day_rollup_seconds": round(next_rollup, 3), "kpis_month_seconds": round(month, 3),
        "kpis_month_by_channel_seconds": round(split, 3),
        "kpis_month_by_seconds": {by: round(seconds, 3) for by, seconds in splits.items()}, "liability_12_months_seconds": round(year, 3),
        "kpis_month_without_rollup_seconds": round(raw, 3), "same_report_without_rollup": same,
        "target": f"{TARGET_MEMBERS:,} members / {TARGET_PURCHASES:,} purchases in <= {TARGET_SECONDS} s",
        "at_target_size": args.members >= TARGET_MEMBERS and args.purchases >= TARGET_PURCHASES,
        "met": max(month, *splits.values()) <= TARGET_SECONDS and same and args.members >= TARGET_MEMBERS
        and args.purchases >= TARGET_PURCHASES,
        "sample": {k: report[k] for k in ("members_total", "members_active", "purchases", "points_outstanding",
                                          "historical_clv")},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    for file in (f"kpi-{stamp}.json", "kpi-latest.json"):
        (RESULTS / file).write_text(json.dumps(result, indent=2) + "\n")
    by = ", ".join(f"by {name} {seconds:.3f} s" for name, seconds in splits.items())
    log(f"KPIs for a month: {month:.3f} s, {by}, liability over 12 months {year:.3f} s, "
        f"without the roll-up {raw:.3f} s (same report: {same}; {args.members:,} members, {args.purchases:,} "
        f"purchases; target met: {result['met']})")  # fmt: skip


if __name__ == "__main__":
    main()
