"""Rule evaluation speed: carts evaluated per second on one core, base rule only vs 20 active rules.

Each of the 20 rules has a condition of three comparisons (as DESIGN.md measured) and a points effect;
the cart has three lines. Pure domain code: no database, no HTTP. `make bench` runs this after the
earn benchmark; results go to benchmarks/results/rules-<timestamp>.json and rules-latest.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cel

from treue.domain.money import Money
from treue.domain.programs import Program
from treue.domain.purchases import Channel, Purchase, PurchaseLine
from treue.domain.rules.context import MemberSnapshot
from treue.domain.rules.definitions import RuleSet, parse_rule
from treue.domain.rules.evaluator import evaluate_purchase_rules
from treue.domain.rules.limits import LimitState

RESULTS = Path(__file__).resolve().parent / "results"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
AT = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)  # a Saturday
TARGET = 50_000


def rules(count: int, awarding: int) -> RuleSet:
    """`count` rules with three comparisons each; the first `awarding` of them match the cart."""
    built = []
    for n in range(count):
        threshold = 1000 if n < awarding else 10_000_000  # minor units
        condition = (f'purchase.total >= {threshold} && purchase.channel == "store" '
                     f"&& now.weekday >= {1 if n % 2 else 6}")  # fmt: skip
        built.append(parse_rule({"id": f"r{n:02d}", "name": f"rule {n}", "trigger": "purchase",
                                 "condition": condition, "priority": n,
                                 "effects": [{"type": "fixed_points", "points": 5 + n}]},
                                currency="EUR", valid_from=T0))  # fmt: skip
    return RuleSet(built)


def cart() -> Purchase:
    lines = (PurchaseLine("SOFA", 1, 49_900, "sofa"), PurchaseLine("CUSHION", 2, 1_990, "textiles"),
             PurchaseLine("LAMP", 1, 5_990, "lighting"))  # fmt: skip
    return Purchase(uuid.uuid4(), uuid.uuid4(), "default", "berlin", Channel.STORE, "B-1", AT,
                    Money(sum(x.amount_minor for x in lines), "EUR"), lines)  # fmt: skip


def measure(ruleset: RuleSet, seconds: float = 3.0) -> dict[str, Any]:
    program = Program(uuid.UUID(int=1), "Bench", "EUR", "Europe/Berlin")
    member = MemberSnapshot("m", None, enrolled_at=T0)
    limits = LimitState()
    carts = [cart() for _ in range(64)]  # a new event per evaluation, as in production
    evaluate_purchase_rules(program, carts[0], ruleset, limits, member)  # compile and warm up
    count, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for purchase in carts:
            evaluate_purchase_rules(program, purchase, ruleset, limits, member)
        count += len(carts)
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    points = evaluate_purchase_rules(program, carts[0], ruleset, limits, member).points
    return {"evaluations": count, "seconds": round(wall, 2), "per_second_per_core": round(count / used),
            "us_per_evaluation": round(1e6 * used / count, 1), "points_per_cart": points}  # fmt: skip


def cel_floor(ruleset: RuleSet, seconds: float = 3.0) -> dict[str, Any]:
    """The CEL library's own cost per cart, the floor of an evaluation: the context of the fields the 20
    conditions read, and the conditions run in one call, without anything of Treue's around them."""
    program = ruleset.plan("purchase", AT).conditions
    carts = [cart() for _ in range(64)]
    count, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for purchase in carts:
            context = cel.Context()
            context.update({"purchase__total": purchase.total.minor, "purchase__channel": purchase.channel.value,
                            "now__weekday": purchase.occurred_at.isoweekday()})  # fmt: skip
            program.execute(context)
        count += len(carts)
    used = time.process_time() - cpu
    return {"evaluations": count, "per_second_per_core": round(count / used),
            "us_per_evaluation": round(1e6 * used / count, 1), "points_per_cart": None}  # fmt: skip


def main() -> None:
    runs = {
        "cel_library_floor": cel_floor(rules(20, 1)),
        "base_rule_only": measure(RuleSet([])),
        "20_rules_1_awarding": measure(rules(20, 1)),
        "20_rules_5_awarding": measure(rules(20, 5)),
        "20_rules_20_awarding": measure(rules(20, 20)),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {"started_at": stamp, "python": platform.python_version(), "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "target_per_second_per_core": TARGET, "runs": runs}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    for name in (f"rules-{stamp}.json", "rules-latest.json"):
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print("rule evaluation, one core, 3-line cart (target >= 50,000/s with 20 rules):")
    for name, run in runs.items():
        points = "" if run["points_per_cart"] is None else f"{run['points_per_cart']} points"
        print(f"  {name:22} {run['per_second_per_core']:>8,} carts/s  {run['us_per_evaluation']:>7} us  {points}")


if __name__ == "__main__":
    main()
