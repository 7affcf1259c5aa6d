"""The programme simulator: replay a period's recorded purchases and events against a draft rule set, beside
the programme's current rules, writing nothing. See `treue.domain.simulation` for what a replay sees."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain.durations import start_of_local_day, zone
from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.programs import Program
from treue.domain.rules.definitions import RuleSet, parse_campaign, parse_rule
from treue.domain.rules.spec import Spec, join
from treue.domain.simulation import Replay, most_affected
from treue.services.ports import UnitOfWork
from treue.services.rules import FORMAT

SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)  # a draft's rules are replayed as if in force all along
NOT_REPLAYED = ["scheduled triggers (birthday, membership_anniversary, cron)",
                "caps and campaign budgets used before the period (each starts at zero on its first day)",
                "tier and club benefits (earn multipliers, cashback percent, birthday bonus)"]  # fmt: skip


def draft_rule_set(program: Program, document: Mapping[str, Any]) -> RuleSet:
    """The rule set of a draft in the `treue rules export` format, every rule in force from the start."""
    spec = Spec(dict(document)).only("format", "rules", "campaigns")
    if spec.text("format", FORMAT) != FORMAT:
        raise RuleInvalid(f"unknown format (expected {FORMAT})", location="format")
    rules = [parse_rule(item, currency=program.currency, valid_from=SINCE_EVER, location=join("rules", index))
             for index, item in enumerate(spec.items("rules", []))]  # fmt: skip
    campaigns = [parse_campaign(item, timezone=program.timezone, currency=program.currency, valid_from=SINCE_EVER,
                                location=join("campaigns", index))
                 for index, item in enumerate(spec.items("campaigns", []))]  # fmt: skip
    return RuleSet(rules, campaigns)


def simulate(uow: UnitOfWork, program_id: UUID, draft: Mapping[str, Any], first_day: date, last_day: date, *,
             progress: Callable[[int, int], None] | None = None, top: int = 10,
             limit: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Replay the purchases and events from `first_day` through `last_day` (programme-local dates) against the
    current rules and against `draft`, and report both side by side. `progress(done, total)` is called as the
    replay goes; `limit` refuses a period with more purchases and events than that (for the API)."""
    if last_day < first_day:
        raise InvalidInput("the period ends before it starts", location="to")
    with uow:
        program = uow.programs.get(program_id)
        current = uow.rules.ruleset(program)
        proposed = draft_rule_set(program, draft)
        tz = zone(program.timezone)
        start, end = start_of_local_day(first_day, tz), start_of_local_day(last_day + timedelta(days=1), tz)
        total = uow.simulation.count(program_id, start, end)
        if limit is not None and total > limit:
            raise InvalidInput(f"the period holds {total} purchases and events; at most {limit} are replayed here "
                               "(use `treue simulate` for more)", location="to")  # fmt: skip
        members = uow.simulation.members(program_id, start, end)
        replays = (Replay(program, current), Replay(program, proposed))
        for done, (kind, item) in enumerate(uow.simulation.stream(program_id, start, end), start=1):
            if kind == "purchase":
                purchase, refunded = item
                known = members.get(purchase.member_id) if purchase.member_id else None
                for replay in replays:
                    replay.purchase(purchase, known, refunded)
            else:
                for replay in replays:
                    replay.event(item.name, item.occurred_at, item.member_id, members.get(item.member_id),
                                 item.attributes or {})  # fmt: skip
            if progress is not None and (done % 1000 == 0 or done == total):
                progress(done, total)
    now_side, draft_side = (replay.report(top) for replay in replays)
    return {
        "program_id": str(program_id), "currency": program.currency,
        "period": {"from": first_day.isoformat(), "to": last_day.isoformat(), "timezone": program.timezone},
        "current": now_side, "draft": draft_side,
        "difference": {key: draft_side[key] - now_side[key] for key in ("points_issued", "points_net")},
        "most_affected": most_affected(*replays, top=top), "not_replayed": NOT_REPLAYED,
    }  # fmt: skip
