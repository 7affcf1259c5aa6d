"""The programme simulator's speed: purchases replayed per second against a draft beside today's rules.

Issue 6 target: at least 1,000,000 purchases replayed in at most 60 s. The run creates a fresh PostgreSQL
database, a programme with two live rules, 100,000 members and N purchases (default 1,000,000, over three
months, one to three lines each) written by SQL in bulk (generate_series: the data set is the point here, not
how it was recorded), then times `treue.services.simulation.simulate` with a draft of five rules (a weekend
multiplier, a category bonus with a line filter, a first-purchase bonus once per member, a monthly cap, a
campaign with a budget). Results: benchmarks/results/simulate-<timestamp>.json and simulate-latest.json.

    python benchmarks/simulate_bench.py [--purchases N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

RESULTS = Path(__file__).resolve().parent / "results"
ADMIN_URL = os.environ.get("TREUE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_PURCHASES, TARGET_SECONDS = 1_000_000, 60.0
MEMBERS = 100_000
DRAFT = {
    "format": "treue.rules/1",
    "rules": [
        {"id": "weekend", "trigger": "purchase", "condition": "now.weekday >= 6", "mode": "exclusive",
         "group": "promo", "priority": 2, "effects": [{"type": "multiplier", "factor": "2"}]},
        {"id": "big-cart", "trigger": "purchase", "condition": "purchase.total >= 10000", "mode": "exclusive",
         "group": "promo", "priority": 1, "effects": [{"type": "fixed_points", "points": 40}]},
        {"id": "sofa", "trigger": "purchase", "effects": [{"type": "points_per_amount", "points": 3, "per": "2.00",
                                                            "lines": "line.category == 'sofa'"}]},
        {"id": "welcome", "trigger": "purchase", "limits": {"once_per_member": True},
         "effects": [{"type": "fixed_points", "points": 100}]},
        {"id": "monthly", "trigger": "purchase", "condition": "purchase.channel == 'online'",
         "limits": {"per_member": [{"points": 50, "per": "month"}]}, "effects": [{"type": "fixed_points", "points": 20}]},
    ],
    "campaigns": [{"id": "spring", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active", "budget": 500000,
                   "rules": [{"id": "spring-bonus", "trigger": "purchase", "effects": [{"type": "fixed_points",
                                                                                        "points": 25}]}]}],
}  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def seed(url: str, purchases: int) -> UUID:
    from treue.services.programs import create_program
    from treue.services.rules import create_rule
    from treue.store.database import make_engine
    from treue.store.migrate import migrate
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    engine = make_engine(url)
    migrate(engine)
    uow = SqlUnitOfWorkFactory(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    program_id = UUID(create_program(uow(), "Bench Möbelhaus", "EUR", "Europe/Berlin", {}, now)["id"])
    create_rule(uow(), program_id, {"id": "big", "trigger": "purchase", "condition": "purchase.total >= 20000",
                                    "effects": [{"type": "fixed_points", "points": 50}]}, now)  # fmt: skip
    create_rule(uow(), program_id, {"id": "app", "trigger": "purchase", "channels": ["app"],
                                    "effects": [{"type": "multiplier", "factor": "1.5"}]}, now)  # fmt: skip
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO members (program_id, id, card_number, locale, status, attributes, enrolled_at, updated_at)
               SELECT %(p)s, gen_random_uuid(), lpad(n::text, 19, '0'), 'de', 'active', '{}',
                      timestamptz '2025-06-01' + n * interval '1 minute', timestamptz '2025-06-01'
               FROM generate_series(1, %(m)s) AS n""",
            {"p": program_id, "m": MEMBERS},
        )
        conn.execute(
            """WITH ids AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM members WHERE program_id = %(p)s)
               INSERT INTO purchases (program_id, id, member_id, partner, store, channel, external_order_id,
                                      occurred_at, total_minor, currency, lines, points_earned, refunded_minor,
                                      created_at)
               SELECT %(p)s, gen_random_uuid(), ids.id, 'default', 'berlin',
                      (ARRAY['store', 'online', 'app'])[1 + n %% 3], 'B-' || n,
                      timestamptz '2026-02-01 08:00+00' + (n * 7776000.0 / %(n)s) * interval '1 second',
                      CASE WHEN n %% 3 = 0 THEN 49900 + 1990 ELSE 1990 * (1 + n %% 4) END, 'EUR',
                      CASE WHEN n %% 3 = 0
                           THEN '[{"sku": "SOFA", "quantity": 1, "unit_price_minor": 49900, "category": "sofa"},
                                  {"sku": "CUSHION", "quantity": 1, "unit_price_minor": 1990, "category": "deco"}]'
                           ELSE '[{"sku": "CUSHION", "quantity": ' || (1 + n %% 4) || ',
                                   "unit_price_minor": 1990, "category": "deco"}]' END::json,
                      0, CASE WHEN n %% 50 = 0 THEN 1990 ELSE 0 END, now()
               FROM generate_series(1, %(n)s) AS n JOIN ids ON ids.k = 1 + n %% %(m)s""",
            {"p": program_id, "n": purchases, "m": MEMBERS},
        )
        conn.execute("ANALYZE")
    return program_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--purchases", type=int, default=TARGET_PURCHASES)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--check", action="store_true",
                        help="replay again in one process and check that the report is the same")  # fmt: skip
    args = parser.parse_args()
    from treue.services.simulation import simulate
    from treue.store.database import make_engine
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    name = f"treue_bench_sim_{int(time.time())}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        log(f"seeding {MEMBERS:,} members and {args.purchases:,} purchases in {name}")
        started = time.perf_counter()
        program_id = seed(url, args.purchases)
        log(f"seeded in {time.perf_counter() - started:.1f} s; replaying")
        engine = make_engine(url)
        seen: dict[str, Any] = {}
        cpu, started = time.process_time(), time.perf_counter()
        report = simulate(SqlUnitOfWorkFactory(engine)(read_only=True), program_id, DRAFT, date(2026, 2, 1),
                          date(2026, 5, 1), progress=lambda done, total: seen.update(done=done, total=total),
                          database_url=url)  # fmt: skip
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        if args.check:
            log("replaying again in one process to check the result")
            alone = simulate(SqlUnitOfWorkFactory(engine)(read_only=True), program_id, DRAFT, date(2026, 2, 1),
                             date(2026, 5, 1))  # fmt: skip
            if alone != report:
                raise SystemExit("the report of the parallel replay differs from the replay in one process")
            log("same report")
        engine.dispose()
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    replayed = report["current"]["purchases"]
    scaled = wall * TARGET_PURCHASES / replayed if replayed else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "started_at": stamp, "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "purchases": replayed, "seconds": round(wall, 1),
        "cpu_seconds": round(used, 1), "purchases_per_second": round(replayed / wall),
        "seconds_per_million": round(scaled, 1) if scaled else None,
        "target": f"{TARGET_PURCHASES:,} purchases in <= {TARGET_SECONDS:.0f} s",
        "met": bool(scaled and scaled <= TARGET_SECONDS), "checked_against_one_process": args.check,
        "current": {k: report["current"][k] for k in ("points_issued", "points_net", "projected_liability")},
        "draft": {k: report["draft"][k] for k in ("points_issued", "points_net", "projected_liability")},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    for file in (f"simulate-{stamp}.json", "simulate-latest.json"):
        (RESULTS / file).write_text(json.dumps(result, indent=2) + "\n")
    log(f"replayed {replayed:,} purchases in {wall:.1f} s ({result['purchases_per_second']:,}/s; "
        f"{result['seconds_per_million']} s per million; target met: {result['met']})")  # fmt: skip


if __name__ == "__main__":
    main()
