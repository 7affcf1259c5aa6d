"""Partner accounts are not hot rows: earn throughput with every purchase at ONE partner vs spread over 20.

Issue 5 asks that all purchases at one coalition partner keep >= 90% of the throughput of purchases spread over
many partners. Treue keeps no per-partner balance (settlement aggregates lots and allocations), so the two should
be equal within noise; this measures it on PostgreSQL through the purchase service (in process, N threads, each
an own transaction per purchase, members chosen at random so member rows do not collide either). The two modes
alternate in rounds, so a drift of the shared machine hits both alike. Reuses benchmarks/earn_bench.py's database
and seeding functions.

    .venv/bin/python benchmarks/partner_bench.py [--threads 8] [--seconds 8] [--rounds 2] [--quick]

Writes benchmarks/results/partner-<timestamp>.json and prints the ratio; exit 1 below --target.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from earn_bench import RESULTS, create_database, drop_database, log, pg_url, seed  # noqa: E402

PARTNERS = 20


def register_partners(engine: Any, program_id: UUID) -> list[str]:
    from treue.services.partners import create_partner
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    uow = SqlUnitOfWorkFactory(engine)
    codes = [f"partner-{n:02d}" for n in range(PARTNERS)]
    for code in codes:
        create_partner(uow(), program_id, {"code": code, "name": code, "issue_price": "1.00", "issue_points": 100,
                                           "redeem_price": "0.80", "redeem_points": 100}, datetime.now(UTC))  # fmt: skip
    return codes


def run(engine: Any, program_id: UUID, members: list[str], partners: list[str], threads: int, seconds: float,
        tag: str) -> dict[str, Any]:  # fmt: skip
    """Purchases per second of `threads` threads recording purchases for `seconds`, at the given partners."""
    from treue.services.purchases import LineInput, RecordPurchase, record_purchase
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    uow = SqlUnitOfWorkFactory(engine)
    counter = itertools.count()
    done: list[int] = [0] * threads
    failures: list[str] = []
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < stop:
            order = next(counter)
            partner = partners[order % len(partners)]
            command = RecordPurchase(external_order_id=f"{tag}-{order}", total="42.50", currency="EUR",
                                     occurred_at=datetime.now(UTC), member_id=UUID(rng.choice(members)),
                                     partner=partner, lines=[LineInput("SKU-1", 1, "42.50", "misc")])  # fmt: skip
            try:
                record_purchase(uow(), program_id, command, datetime.now(UTC))
                done[n] += 1
            except Exception as error:  # counted and reported; a benchmark keeps going
                failures.append(repr(error))

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    return {"purchases": sum(done), "seconds": round(elapsed, 2), "per_second": round(sum(done) / elapsed, 1),
            "failures": len(failures), "first_failure": failures[0] if failures else None}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg", default=os.environ.get("TREUE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--members", type=int, default=5_000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--seconds", type=float, default=8.0, help="per mode and round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--target", type=float, default=0.9, help="least one-partner / spread ratio that passes")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--quick", action="store_true", help="a smoke run: 500 members, 2 rounds of 3 s")
    args = p.parse_args()
    if args.quick:
        args.members, args.seconds, args.rounds = 500, 3.0, 2

    from treue.store.database import make_engine

    dbname = f"treue_partner_bench_{int(time.time())}"
    create_database(args.pg, dbname)
    engine = make_engine(pg_url(args.pg, dbname))
    try:
        log(f"seeding {args.members} members in {dbname}")
        program_id, members, _ = seed(engine, args.members, threads=4)
        partners = register_partners(engine, program_id)
        warm = run(engine, program_id, members, partners, args.threads, min(args.seconds, 3.0), "warmup")
        log(f"warm-up: {warm['per_second']} purchases/s")
        one: list[dict[str, Any]] = []
        spread: list[dict[str, Any]] = []
        for n in range(args.rounds):
            modes = [("one", partners[:1], one), ("spread", partners, spread)]
            for mode, chosen, into in modes if n % 2 == 0 else modes[::-1]:  # alternate who goes first
                result = run(engine, program_id, members, chosen, args.threads, args.seconds, f"{mode}{n}")
                log(f"round {n + 1} {mode:>6}: {result['per_second']} purchases/s ({result['failures']} failures)")
                into.append(result)
        one_rate = statistics.mean(r["per_second"] for r in one)
        spread_rate = statistics.mean(r["per_second"] for r in spread)
        ratio = one_rate / spread_rate if spread_rate else 0.0
        result = {"benchmark": "partner", "at": datetime.now(UTC).isoformat(), "threads": args.threads,
                  "members": args.members, "partners": PARTNERS, "one_partner": one, "spread": spread,
                  "one_partner_per_second": round(one_rate, 1), "spread_per_second": round(spread_rate, 1),
                  "ratio": round(ratio, 3), "target": args.target, "passed": ratio >= args.target}  # fmt: skip
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"partner-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log(f"one partner {one_rate:.1f}/s, spread over {PARTNERS} {spread_rate:.1f}/s: ratio {ratio:.3f} "
            f"(target >= {args.target}) -> {'PASS' if result['passed'] else 'FAIL'}; wrote {out}")  # fmt: skip
        return 0 if result["passed"] else 1
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(args.pg, dbname)


if __name__ == "__main__":
    sys.exit(main())
