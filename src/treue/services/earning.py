"""Earning through the rules engine: shared by purchases, custom events and the checkout preview.

`run_rules` evaluates an event for a member against the programme's rule set and, when writing, applies what
the evaluation says in the right order and under the right locks:

1. A programme with no rules for the trigger costs no query at all (the rule set is cached; the base rule of
   a purchase needs nothing else).
2. If a rule has a per-member cap or reads the member's purchase history, the member's account row is locked
   first (an UPDATE adding 0 points), so two earns of one member cannot both read the same usage (or both be
   the first purchase) and both pass.
3. The member snapshot is read only if a rule reads `member`, and purchase count / spend only if a rule
   reads them; usage counters and campaign budgets in one query.
4. The balance is updated (the account lock), then campaign budgets are spent in campaign id order, each with
   a conditional UPDATE that cannot overspend. If a concurrent earn took the budget in the meantime, the
   campaign rows are locked, the event is evaluated again with what is left, and the balance corrected.
5. Usage counters are upserted.

The earn transfer itself (one transfer, one lot per distinct availability) is posted by the use case.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.benefits import Benefits
from treue.domain.control import PROGRAM_UNIT, in_control
from treue.domain.errors import Conflict
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.domain.points import PointsAccount
from treue.domain.programs import Program
from treue.domain.rules.benefit_awards import BIRTHDAY, with_benefits, with_birthday_bonus
from treue.domain.rules.context import EventFacts, MemberSnapshot
from treue.domain.rules.definitions import RuleSet
from treue.domain.rules.evaluator import Evaluation, evaluate, usage_keys
from treue.domain.rules.limits import LimitState
from treue.domain.rules.outcome import EarnOutcome
from treue.domain.rules.plan import Skip
from treue.ids import new_id
from treue.services.benefits import member_benefits
from treue.services.ports import UnitOfWork

CONTROL_GROUP = "in the programme's control group: nothing is earned"
log = logging.getLogger("treue.rules")
HISTORY_FIELDS = frozenset({"purchase_count", "spend", "*"})
OFFER_FIELDS = frozenset({"offers", "*"})
SEGMENT_FIELDS = frozenset({"segments", "*"})  # issue 8: member.segments is read only if a rule asks
BUDGET_ATTEMPTS = 3


class BudgetContention(Conflict):
    """Campaign budgets kept changing under a concurrent earn; the request may simply be retried (409, code
    `conflict`, extra `retry=True`)."""


@dataclass
class Earning:
    """An evaluation and what applying it did to the member's account."""

    evaluation: Evaluation
    balance_before: int | None = None  # set once the balance was updated by `points`
    negative_allowed: bool = False
    member_known: bool = False  # a query proved the member belongs to the programme

    @property
    def points(self) -> int:
        return self.evaluation.points


def run_rules(uow: UnitOfWork, program: Program, rules: RuleSet, facts: EventFacts, member_id: UUID | None, *,
              write: bool = True) -> Earning:  # fmt: skip
    """Evaluate `facts` (without a member snapshot: it is loaded here if rules read it) for `member_id`.

    With `write`, the member's balance is updated by the points (the caller posts the transfer with
    `balances_applied=True`), campaign budgets are spent and usage counters added. Without it (a preview)
    nothing is locked or written. An anonymous event is evaluated for its explanation only.
    """
    at = facts.occurred_at
    if member_id is not None and program.control_bp and in_control(PROGRAM_UNIT, str(member_id), program.control_bp):
        # Held out of the programme (its control group for measuring uplift): recorded, but earns nothing.
        return Earning(Evaluation(EarnOutcome(), skipped=(Skip("programme", None, CONTROL_GROUP),)))
    plan = rules.plan(facts.name, at)
    benefits = _benefits(uow, program, facts, member_id)  # tier and club: beside the rules, for members only
    running = [step for step in plan.steps if step.not_running is None]
    if member_id is None or not running:
        # Nothing in force for this trigger (or nobody to award): the base rule alone, no query.
        earning = Earning(_with(evaluate(facts, rules, LimitState(), program), benefits, facts, program))
        if write and member_id is not None and earning.points > 0:
            _add_to_balance(uow, program.id, member_id, earning, earning.points)
        return earning

    keys = usage_keys(rules, facts.name, at, program, facts.attributes)
    budgets = sorted(
        {step.campaign.id for step in running if step.campaign is not None and step.campaign.budget_points is not None}
    )
    earning = Earning(Evaluation(EarnOutcome()))
    needs = plan.needs.get("member") or frozenset()  # what the rules in force read of the member
    history = bool(needs & HISTORY_FIELDS)
    if write and (keys or history):
        # Lock the member's account before reading usage or purchase history: earns of one member queue
        # here, so two of them cannot both pass a cap or both be the "first purchase".
        uow.ledger.add_to_balance(program.id, member_id, 0, refuse_erased=True)
        earning.member_known = True
    snapshot = MemberSnapshot(str(member_id))
    if needs:
        snapshot = uow.rules.member_snapshot(program.id, member_id, at, history=history,
                                             segments=bool(needs & SEGMENT_FIELDS))  # fmt: skip
        earning.member_known = True
        if needs & OFFER_FIELDS:  # offers the member activated by then (issue 11): read only if a rule asks
            snapshot = replace(snapshot, offers=uow.cards.activated_offers(program.id, member_id, at))
    facts = replace(facts, member=snapshot)
    state = uow.rules.limit_state(program.id, member_id, keys, budgets)
    earning.evaluation = _with(evaluate(facts, rules, state, program), benefits, facts, program)
    if not write:
        return earning

    if earning.points > 0:
        _add_to_balance(uow, program.id, member_id, earning, earning.points)
    for _ in range(BUDGET_ATTEMPTS):
        if uow.rules.spend_budgets(program.id, earning.evaluation.budgets) is None:
            break
        # A concurrent earn spent the budget since it was read: lock the campaigns, evaluate again.
        log.debug("programme %s: campaign budget taken concurrently; evaluating %s again", program.id, facts.name)
        state = replace(state, budget_spent=uow.rules.lock_budgets(program.id, budgets))
        before = earning.points
        earning.evaluation = _with(evaluate(facts, rules, state, program), benefits, facts, program)
        if earning.points != before:
            _add_to_balance(uow, program.id, member_id, earning, earning.points - before)
    else:
        raise BudgetContention("campaign budgets changed while the points were computed; please retry", retry=True)
    uow.rules.add_usage(program.id, member_id, earning.evaluation.usage)
    return earning


def _benefits(uow: UnitOfWork, program: Program, facts: EventFacts, member_id: UUID | None) -> list[Benefits]:
    """The tier and club benefits in force for a known member's purchase or birthday. No query at all when the
    programme has neither a tier ladder nor club plans (cached per programme, like the rule set)."""
    purchase = facts.name == "purchase" and facts.purchase is not None
    if member_id is None or not (purchase or facts.name == BIRTHDAY):
        return []
    ladder, plans = uow.tiers.benefit_sources(program.id, cached=True)
    if not (ladder or plans):
        return []
    return member_benefits(uow, program, member_id, facts.occurred_at)


def _with(evaluation: Evaluation, benefits: list[Benefits], facts: EventFacts, program: Program) -> Evaluation:
    if not benefits:
        return evaluation
    if facts.name == BIRTHDAY:
        return with_birthday_bonus(evaluation, benefits)
    if facts.purchase is None:
        return evaluation
    return with_benefits(evaluation, benefits, facts.purchase, program.rounding)


def _add_to_balance(uow: UnitOfWork, program_id: UUID, member_id: UUID, earning: Earning, delta: int) -> None:
    before, negative_allowed = uow.ledger.add_to_balance(program_id, member_id, delta, refuse_erased=True)
    if earning.balance_before is None:
        earning.balance_before, earning.negative_allowed = before, negative_allowed
    earning.member_known = True


def earn_lots(program: Program, outcome: EarnOutcome, earned_at: datetime, purchase_id: UUID | None = None,
              partner: str | None = None) -> list[NewLot]:  # fmt: skip
    """One lot per distinct availability: points a rule keeps pending longer (or shorter) than the programme's
    default become their own lot, all in the one earn transfer."""
    default = program.available_at(earned_at)
    by_time: dict[datetime, int] = {}
    for contribution in outcome.contributions:
        if contribution.points > 0:
            at = contribution.available_at if contribution.available_at is not None else default
            by_time[at] = by_time.get(at, 0) + contribution.points
    expires = program.expires_at(earned_at)
    return [NewLot(new_id(), points, at, expires, purchase_id, partner) for at, points in sorted(by_time.items())]


def post_earn(uow: UnitOfWork, program: Program, member_id: UUID, earning: Earning, occurred_at: datetime,
              now: datetime, explanation: dict[str, Any], *, purchase_id: UUID | None = None,
              partner: str | None = None, held_until: datetime | None = None) -> tuple[UUID, list[NewLot]]:  # fmt: skip
    """Post the earn transfer of an applied evaluation (its points > 0; the balance is already updated): one
    transfer issuance -> member, one lot per distinct availability, the explanation per rule plus `explanation`
    (and the campaign budgets it spent, for refunds). Emits points.earned.

    With `held_until` (an event awaiting moderation) every lot is held - pending, not spendable - until then, and
    the lots returned carry the availability the rules meant (the same lot ids), for the moderator's approval."""
    evaluation = earning.evaluation
    points = evaluation.points
    assert points > 0 and earning.balance_before is not None
    transfer_id = new_id()
    meant = earn_lots(program, evaluation.outcome, occurred_at, purchase_id, partner)
    lots = meant if held_until is None else [dataclasses.replace(lot, available_at=held_until) for lot in meant]
    account = PointsAccount(member_id, member_id, earning.balance_before, earning.negative_allowed)
    draw = account.credit(lots, transfer_id)
    stored = {**evaluation.explanation(), **explanation}
    if held_until is not None:
        stored["moderation"] = "pending"
    if evaluation.budgets:
        stored["budgets"] = budgets_spent(evaluation)
    if evaluation.usage:
        stored["usage"] = usage_counted(evaluation)
    transfer = Transfer(
        transfer_id, TransferKind.EARN, occurred_at,
        move(system_account_id(program.id, AccountKind.ISSUANCE), account.account_id, points),
        member_id=member_id, purchase_id=purchase_id, explanation=stored,
    )  # fmt: skip
    # On PostgreSQL the transfer, postings and lots (and whatever is queued, e.g. the purchase) go together.
    uow.ledger.record(program.id, transfer, [(account, draw)], now, balances_applied=True)
    payload: dict[str, Any] = {"member_id": str(member_id), "points": points, "transfer_id": str(transfer_id),
                               "available_at": lots[0].available_at.isoformat() if held_until is None else None}  # fmt: skip
    if held_until is not None:
        payload["moderation"] = "pending"
    if purchase_id is not None:
        payload["purchase_id"] = str(purchase_id)
    payload.update({k: v for k, v in explanation.items() if k in ("event", "event_id")})
    if len(lots) > 1:
        payload["lots"] = lots_view(lots)
    uow.emit(program.id, Event(events.POINTS_EARNED, payload))
    return transfer_id, meant


def budgets_spent(evaluation: Evaluation) -> list[dict[str, Any]]:
    """For the stored explanation: what the earn took from each campaign's budget (a refund gives it back)."""
    return [{"campaign": d.campaign, "points": d.points} for d in evaluation.budgets if d.points]


def usage_counted(evaluation: Evaluation) -> list[dict[str, Any]]:
    """For the stored explanation: what the earn added to the member's usage counters (a refund gives it back)."""
    return [{"scope": d.key.scope.value, "owner": d.key.owner, "period": d.key.period.value, "key": d.key.key,
             "points": d.points, "awards": d.awards} for d in evaluation.usage]  # fmt: skip


def lots_view(lots: list[NewLot]) -> list[dict[str, Any]]:
    return [{"points": lot.amount, "available_at": lot.available_at.isoformat()} for lot in lots]


_HOOK_TOPICS = {
    "Cashback": events.CASHBACK_EARNED,
    "TierCredit": events.TIER_CREDITED,
    "MissionProgress": events.MISSION_PROGRESSED,
    "BadgeAward": events.BADGE_AWARDED,
}


def emit_grants_and_hooks(uow: UnitOfWork, program_id: UUID, member_id: UUID, evaluation: Evaluation,
                          source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """Grants (reward, coupon) and hooks (cashback, tier credit, mission progress, badge) go to the outbox;
    grants are issued (coupons) and badge and mission hooks applied in the same transaction."""
    explained = evaluation.explanation()
    if explained.get("grants"):
        # imported here: grants and gamification post points through this module
        from treue.services.grants import fulfil_grants

        fulfil_grants(uow, program_id, member_id, explained["grants"], source, now)
    if explained.get("hooks"):
        from treue.services.gamification import fulfil_hooks

        fulfil_hooks(uow, program_id, member_id, explained["hooks"], source, now)
    for grant in explained.get("grants", ()):
        topic = events.REWARD_GRANTED if grant["kind"] == "reward" else events.COUPON_GRANTED
        uow.emit(program_id, Event(topic, {"member_id": str(member_id), **grant, **source}))
    for hook in explained.get("hooks", ()):
        topic = _HOOK_TOPICS.get(hook["type"], events.RULE_HOOK)
        uow.emit(program_id, Event(topic, {"member_id": str(member_id), **hook, **source}))
