"""Missions, streaks, badges, instant wins and leaderboards (issue 7).

What a member's purchase or custom event does here runs inside that use case's transaction (called by
`services.engagement`): progress rows are added for the missions and streaks the event counts for, a mission
whose goal is reached in its window is completed and rewarded once (points through the ledger, a coupon through
`services.grants`, a badge), streak milestones are rewarded once per run, and instant-win campaigns draw.
A refund adds negative progress rows for what the purchase had counted and reverses a completion reward that
the member no longer qualifies for, under the programme's return policy (see `on_refund`).

A programme without missions, streaks and instant-win campaigns pays no query for any of it: the configuration
is cached per process (see `store.gamification`). When something is configured, the member's account row is
locked first (as the rules do for capped rules), so two events of one member cannot both complete a mission.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from treue.domain import events
from treue.domain.durations import require_aware, zone
from treue.domain.errors import InvalidInput, MissionNotOpen
from treue.domain.events import Event
from treue.domain.gamification import streaks as streak_rules
from treue.domain.gamification.badges import Badge, parse_badge, rarity
from treue.domain.gamification.config import Triggered
from treue.domain.gamification.instant_wins import Chooser, InstantWin, PrizeKind, draw, parse_instant_win
from treue.domain.gamification.leaderboards import check_nickname, display_name
from treue.domain.gamification.missions import (
    LOCALES,
    GoalKind,
    Mission,
    Reward,
    localised,
    parse_mission,
    progress_label,
)
from treue.domain.gamification.periods import (
    Unit,
    Window,
    WindowKind,
    index_at,
    local_day,
    period_bounds,
    period_key,
    window_at,
)
from treue.domain.gamification.streaks import Streak
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.domain.money import Money
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rules.conditions import Condition, ConditionFailed
from treue.domain.rules.context import EvalContext, EventFacts, MemberSnapshot, build_context
from treue.domain.rules.evaluator import Evaluation
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import iso

log = logging.getLogger("treue.gamification")
HISTORY_FIELDS = frozenset({"purchase_count", "spend", "*"})

# The instant-win draw's random source: a uniform integer in [0, n). Cryptographic in production; tests put a
# fixed chooser here (or pass one to `draw_for`).
chooser: Chooser = secrets.randbelow


# -- the purchase / event / refund hooks -----------------------------------------------------------------
def on_event(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, evaluation: Evaluation,
             source: dict[str, Any], now: datetime) -> dict[str, Any]:  # fmt: skip
    """Mission progress, streaks and instant wins of a member's purchase or custom event (in its transaction).
    Returns what the response shows: {"missions": [...], "streaks": [...], "instant_win": {...}}."""
    config = uow.gamification.config(program, cached=True)
    if config.empty:
        return {}
    at = require_aware(facts.occurred_at, "occurred_at")
    triggered = config.triggered(facts.name, at)
    if not triggered:
        return {}
    tz = zone(program.timezone)
    uow.flush()  # the purchase or event row first
    uow.ledger.add_to_balance(program.id, member_id, 0)  # the member's lock: progress and completions queue here
    context, facts = _context(uow, program, member_id, facts, triggered, tz)
    view: dict[str, Any] = {}
    missions = _count_missions(uow, program, member_id, facts, context, triggered.missions, source, tz, now)
    if missions:
        view["missions"] = missions
    streaks = _count_streaks(uow, program, member_id, facts, context, triggered.streaks, source, tz, now)
    if streaks:
        view["streaks"] = streaks
    draws = [found for campaign in triggered.instant_wins
             if (found := _instant_win(uow, program, member_id, campaign, context, source, now, chooser))]  # fmt: skip
    if draws:
        view["instant_win"] = next((d for d in draws if d["outcome"] == "won"), draws[0])
        if len(draws) > 1:
            view["instant_wins"] = draws
    return view


def on_refund(uow: UnitOfWork, program: Program, purchase: Purchase, refund: dict[str, Any],
              now: datetime) -> dict[str, Any]:  # fmt: skip
    """A refund takes back what the purchase counted: for a count goal (and rule steps, and streaks) when the
    purchase is refunded in full, for a sum goal the amount refunded. A completion whose window no longer reaches
    the goal is reversed, and its points are taken back under the programme's return policy (a coupon already
    issued and a badge stay with the member); so are streak milestones whose run got shorter."""
    config = uow.gamification.config(program, cached=True)
    member_id = purchase.member_id
    if not config.tracks_refunds or member_id is None:
        return {}
    contributions = uow.gamification.progress_of_purchase(program.id, purchase.id) if config.missions else []
    hits = uow.gamification.hits_of_purchase(program.id, purchase.id) if config.streaks else []
    if not contributions and not hits:
        return {}
    _, row = uow.purchases.get(program.id, purchase.id)  # refunded_minor includes this refund
    whole = row["refunded_minor"] >= purchase.total.minor
    at = require_aware(refund["occurred_at"], "occurred_at")
    reversed_: list[dict[str, Any]] = []
    if contributions:
        reversed_ += _refund_missions(uow, program, member_id, purchase, refund, contributions, whole, at, now)
    if hits and whole:
        reversed_ += _refund_streaks(uow, program, member_id, purchase, hits, at, now)
    return {"gamification_reversed": reversed_} if reversed_ else {}


def fulfil_hooks(uow: UnitOfWork, program_id: UUID, member_id: UUID, hooks: list[dict[str, Any]],
                 source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """Apply the rule hooks that gamification acts on (badge, mission_progress) in the rule's transaction.

    A `badge` hook gives the member the badge (once: a second grant changes nothing; an unknown or inactive
    badge is skipped with a warning, the earn goes through). A `mission_progress` hook adds its steps to the
    mission's window of the event (count goals; opt-in and audience apply) and completes it when reached."""
    badges = [h for h in hooks if h.get("type") == "BadgeAward"]
    steps = [h for h in hooks if h.get("type") == "MissionProgress"]
    if not badges and not steps:
        return
    uow.flush()
    for hook in badges:
        _award_badge(uow, program_id, member_id, hook["badge"], {"rule": hook.get("rule"), **source}, now, emit=False)
    if steps:
        program = uow.programs.get(program_id, cached=True)
        _hook_steps(uow, program, member_id, steps, source, now)


# -- missions --------------------------------------------------------------------------------------------------
def _context(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, triggered: Triggered,
             tz: ZoneInfo) -> tuple[EvalContext, EventFacts]:  # fmt: skip
    needs = triggered.needs
    member = MemberSnapshot(str(member_id))
    reads = needs.get("member") or frozenset()
    if reads:
        member = uow.rules.member_snapshot(program.id, member_id, facts.occurred_at,
                                           history=bool(reads & HISTORY_FIELDS))  # fmt: skip
    facts = replace(facts, member=member)
    return build_context(facts, tz, program.currency, needs), facts


def _holds(condition: Condition | None, context: EvalContext) -> bool:
    if condition is None:
        return True
    try:
        return condition.holds(context)
    except ConditionFailed:
        return False


def _count_missions(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, context: EvalContext,
                    missions: Iterable[Mission], source: dict[str, Any], tz: ZoneInfo,
                    now: datetime) -> list[dict[str, Any]]:  # fmt: skip
    missions = list(missions)
    if not missions:
        return []
    at = facts.occurred_at
    opted = uow.gamification.optins(program.id, member_id, [m.id for m in missions if m.opt_in])
    counted: list[tuple[Mission, Window]] = []
    rows = []
    for mission in missions:
        window = mission.window_at(at, tz, opted.get(mission.id))
        if window is None or not _holds(mission.audience, context) or not _holds(mission.goal.filter, context):
            continue
        amount = mission.goal.amount_of(facts)
        if amount <= 0:
            continue
        rows.append(_progress_row(program.id, mission, member_id, window, amount, "event", source, at, now))
        counted.append((mission, window))
    uow.gamification.add_progress(rows)
    return [_settle(uow, program, mission, member_id, window, source, at, now, tz) for mission, window in counted]


def _progress_row(program_id: UUID, mission: Mission, member_id: UUID, window: Window, amount: int, kind: str,
                  source: dict[str, Any], at: datetime, now: datetime) -> dict[str, Any]:  # fmt: skip
    return {"program_id": program_id, "id": new_id(), "mission_id": mission.id, "member_id": member_id,
            "window_key": window.key, "amount": amount, "source": kind, "purchase_id": _uuid(source, "purchase_id"),
            "event_id": _uuid(source, "event_id"), "occurred_at": at, "created_at": now}  # fmt: skip


def _uuid(source: dict[str, Any], key: str) -> UUID | None:
    value = source.get(key)
    return UUID(str(value)) if value else None


def _settle(uow: UnitOfWork, program: Program, mission: Mission, member_id: UUID, window: Window,
            source: dict[str, Any], at: datetime, now: datetime, tz: ZoneInfo) -> dict[str, Any]:  # fmt: skip
    """The member's progress in the window after the event; completes the mission when the goal is reached."""
    current = uow.gamification.progress(program.id, mission.id, member_id, window.key)
    completed = False
    if current >= mission.goal.target:
        completion = {"program_id": program.id, "id": new_id(), "kind": "mission", "subject_id": mission.id,
                      "member_id": member_id, "completion_key": mission.completion_key(window),
                      "window_key": window.key, "window_start": window.start, "window_end": window.end}  # fmt: skip
        done = _complete(uow, program, completion, mission.reward, {"mission": mission.code, **source}, at, now)
        if done:
            completed = True
            uow.emit(program.id, Event(events.MISSION_COMPLETED, {
                "member_id": str(member_id), "mission": mission.code, "window": window.key,
                "window_start": iso(window.start), "window_end": iso(window.end), "progress": current,
                "target": mission.goal.target, "reward": mission.reward.to_json(), **source}))  # fmt: skip
    else:
        uow.emit(program.id, Event(events.MISSION_PROGRESSED, {
            "member_id": str(member_id), "mission": mission.code, "window": window.key, "progress": current,
            "target": mission.goal.target, **source}))  # fmt: skip
    view = _progress_view(mission, current, window, program, tz, None)
    view["completed_now"] = completed
    return view


def _complete(uow: UnitOfWork, program: Program, completion: dict[str, Any], reward: Reward,
              source: dict[str, Any], at: datetime, now: datetime) -> bool:  # fmt: skip
    """Record a completion (unique while not reversed) and give its reward; False when it exists already."""
    member_id = completion["member_id"]
    transfer_id = new_id() if reward.points else None
    row = completion | {"completed_at": now, "points": reward.points, "transfer_id": transfer_id,
                        "coupon": reward.coupon, "badge": reward.badge, "reversed_at": None,
                        "reversal_transfer_id": None, "points_taken_back": None, "points_forgiven": None}  # fmt: skip
    if not uow.gamification.add_completion(row):
        return False
    if transfer_id is not None:
        reason = "mission completed" if completion["kind"] == "mission" else "streak milestone"
        _credit(uow, program, member_id, reward.points, transfer_id, at, now,
                {"reason": reason, "completion_id": str(completion["id"]), "window": completion["window_key"],
                 **source})  # fmt: skip
    if reward.coupon:
        _grant_coupon(uow, program.id, member_id, reward.coupon, f"{completion['kind']}:{_subject(source)}", source,
                      now)  # fmt: skip
    if reward.badge:
        _award_badge(uow, program.id, member_id, reward.badge, source, now)
    return True


def _subject(source: dict[str, Any]) -> str:
    return str(source.get("mission") or source.get("streak") or source.get("instant_win") or "")


def _credit(uow: UnitOfWork, program: Program, member_id: UUID, points: int, transfer_id: UUID, at: datetime,
            now: datetime, explanation: dict[str, Any]) -> None:  # fmt: skip
    """An earn transfer issuance -> member (pending like purchase points, so a refund within the return window
    can take it back under an only_pending policy)."""
    account = uow.ledger.lock_accounts(program.id, [member_id])[member_id]
    lot = NewLot(new_id(), points, program.available_at(at), program.expires_at(at))
    draw_ = account.credit([lot], transfer_id)
    transfer = Transfer(transfer_id, TransferKind.EARN, at,
                        move(system_account_id(program.id, AccountKind.ISSUANCE), account.account_id, points),
                        member_id=member_id, explanation={**explanation, "points": points})  # fmt: skip
    uow.ledger.record(program.id, transfer, [(account, draw_)], now, actor="gamification")
    uow.emit(program.id, Event(events.POINTS_EARNED, {
        "member_id": str(member_id), "points": points, "available_at": lot.available_at.isoformat(),
        "transfer_id": str(transfer_id), "reason": explanation.get("reason")}))  # fmt: skip


def _grant_coupon(uow: UnitOfWork, program_id: UUID, member_id: UUID, coupon: str, rule: str,
                  source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    from treue.services.grants import fulfil_grants  # helper: issues the coupon in this transaction

    grant = {"kind": "coupon", "code": coupon, "quantity": 1, "rule": rule}
    fulfil_grants(uow, program_id, member_id, [grant], source, now)
    uow.emit(program_id, Event(events.COUPON_GRANTED, {"member_id": str(member_id), **grant, **source}))


def _refund_missions(uow: UnitOfWork, program: Program, member_id: UUID, purchase: Purchase, refund: dict[str, Any],
                     contributions: list[dict[str, Any]], whole: bool, at: datetime,
                     now: datetime) -> list[dict[str, Any]]:  # fmt: skip
    by_id = {m.id: m for m in uow.gamification.missions(program)}
    source = {"purchase_id": str(purchase.id), "refund_id": str(refund["id"])}
    rows, touched = [], {}
    for entry in contributions:
        mission = by_id.get(entry["mission_id"])
        if mission is None:
            continue
        if mission.goal.kind is GoalKind.SUM and entry["source"] == "event":
            take = entry["amount"] if whole else min(int(refund["amount_minor"]), entry["amount"])
        else:
            take = entry["amount"] if whole else 0
        if take <= 0:
            continue
        rows.append({"program_id": program.id, "id": new_id(), "mission_id": mission.id, "member_id": member_id,
                     "window_key": entry["window_key"], "amount": -take, "source": "refund",
                     "purchase_id": purchase.id, "event_id": None, "occurred_at": entry["occurred_at"],
                     "created_at": now})  # fmt: skip
        touched[(mission.id, entry["window_key"])] = mission
    if not rows:
        return []
    uow.ledger.add_to_balance(program.id, member_id, 0)  # the member's lock (as when the progress was counted)
    uow.gamification.add_progress(rows)
    reversed_ = []
    for (mission_id, window_key), mission in touched.items():
        current = uow.gamification.progress(program.id, mission_id, member_id, window_key)
        uow.emit(program.id, Event(events.MISSION_PROGRESSED, {
            "member_id": str(member_id), "mission": mission.code, "window": window_key, "progress": current,
            "target": mission.goal.target, **source}))  # fmt: skip
        if current >= mission.goal.target:
            continue
        for completion in uow.gamification.completions(program.id, member_id, "mission", [mission_id],
                                                       window_key=window_key):  # fmt: skip
            done = _reverse(uow, program, completion, at, now, {"mission": mission.code, **source})
            uow.emit(program.id, Event(events.MISSION_COMPLETION_REVERSED, {
                "member_id": str(member_id), "mission": mission.code, "window": window_key, "progress": current,
                "target": mission.goal.target, **done, **source}))  # fmt: skip
            reversed_.append({"mission": mission.code, "window": window_key, "progress": current, **done})
    return reversed_


def _reverse(uow: UnitOfWork, program: Program, completion: dict[str, Any], at: datetime, now: datetime,
             source: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Mark a completion reversed and take back its points under the programme's return policy (from the
    reward's own lots first, like a refund takes back a purchase's points). Coupons and badges stay."""
    member_id = completion["member_id"]
    taken = forgiven = 0
    transfer_id = None
    if completion["points"] and completion["transfer_id"] is not None:
        account = uow.ledger.lock_accounts(program.id, [member_id])[member_id]
        own = {lot.id for lot in account.lots if lot.source_transfer_id == completion["transfer_id"]}
        result = account.take_back(completion["points"], now, own, program.return_policy)
        taken, forgiven = result.taken, result.forgiven
        if taken:
            transfer_id = new_id()
            transfer = Transfer(
                transfer_id, TransferKind.REVERSE, at,
                move(account.account_id, system_account_id(program.id, AccountKind.ISSUANCE), taken),
                member_id=member_id, corrects_id=completion["transfer_id"],
                explanation={"reason": f"{completion['kind']} reward reversed after a refund",
                             "completion_id": str(completion["id"]), "window": completion["window_key"],
                             "points_due": completion["points"], "points_taken_back": taken,
                             "points_forgiven": forgiven, "return_policy": program.return_policy.value, **source},
            )  # fmt: skip
            uow.ledger.record(program.id, transfer, [(account, result.draw)], now, actor="gamification")
            uow.emit(program.id, Event(events.POINTS_REVERSED, {
                "member_id": str(member_id), "points": taken, "transfer_id": str(transfer_id),
                "corrects_id": str(completion["transfer_id"]), "reason": "gamification reward reversed"}))  # fmt: skip
    uow.gamification.reverse_completion(program.id, completion["id"], now, transfer_id, taken, forgiven)
    return {"points_taken_back": taken, "points_forgiven": forgiven,
            "transfer_id": str(transfer_id) if transfer_id else None}  # fmt: skip


def _event_time(uow: UnitOfWork, program_id: UUID, source: dict[str, Any], now: datetime) -> datetime:
    """When the event a rule hook came from happened (its window counts), or now."""
    purchase_id, event_id = _uuid(source, "purchase_id"), _uuid(source, "event_id")
    if purchase_id is not None:
        purchase: Purchase = uow.purchases.get(program_id, purchase_id)[0]
        return purchase.occurred_at
    if event_id is not None:
        return require_aware(uow.events.get(program_id, event_id)["occurred_at"], "occurred_at")
    return now


def _hook_steps(uow: UnitOfWork, program: Program, member_id: UUID, hooks: list[dict[str, Any]],
                source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    config = uow.gamification.config(program, cached=True)
    found: list[tuple[Mission, int]] = []
    for hook in hooks:
        mission = config.hook_missions.get(hook["mission"])
        if mission is None or mission.goal.kind is not GoalKind.COUNT:
            log.warning("programme %s: rule %s moves mission %r, which is not an active count mission; skipped",
                        program.id, hook.get("rule"), hook["mission"])  # fmt: skip
            continue
        found.append((mission, int(hook.get("steps", 1))))
    if not found:
        return
    tz = zone(program.timezone)
    at = _event_time(uow, program.id, source, now)
    uow.ledger.add_to_balance(program.id, member_id, 0)
    opted = uow.gamification.optins(program.id, member_id, [m.id for m, _ in found if m.opt_in])
    context = None
    if any(m.audience is not None for m, _ in found):
        snapshot = uow.rules.member_snapshot(program.id, member_id, at, history=True)
        context = build_context(EventFacts("mission_progress", at, snapshot), tz, program.currency)
    for mission, steps in found:
        window = mission.window_at(at, tz, opted.get(mission.id)) if mission.in_force(at) else None
        if window is None or (
            mission.audience is not None and (context is None or not _holds(mission.audience, context))
        ):
            continue
        uow.gamification.add_progress([_progress_row(program.id, mission, member_id, window, steps, "rule", source,
                                                     at, now)])  # fmt: skip
        _settle(uow, program, mission, member_id, window, source, at, now, tz)


# -- the member's missions ----------------------------------------------------------------------------------
def _progress_view(mission: Mission, current: int, window: Window | None, program: Program, tz: ZoneInfo,
                   locale: str | None) -> dict[str, Any]:  # fmt: skip
    labels = {lang: progress_label(mission, current, window, tz, program.currency, lang) for lang in LOCALES}
    lang = locale if locale in LOCALES else program.default_locale if program.default_locale in LOCALES else "en"
    sum_goal = mission.goal.kind is GoalKind.SUM
    return {
        "code": mission.code, "name": localised(mission.name, lang), "goal": mission.goal.kind.value,
        "current": current, "target": mission.goal.target,
        **({"current_amount": Money(current, program.currency).format(),
            "target_amount": Money(mission.goal.target, program.currency).format()} if sum_goal else {}),
        "reached": current >= mission.goal.target,
        "window": None if window is None else {"key": window.key, "start": window.start.astimezone(tz).isoformat(),
                                               "end": window.end.astimezone(tz).isoformat()},
        "label": labels[lang], "labels": labels,
    }  # fmt: skip


def member_missions(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime,
                    locale: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The missions open to the member now, with progress in the current window ("2 of 3 purchases in May")."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        member = uow.members.get(program_id, member_id)
        locale = locale or member.get("locale")
        tz = zone(program.timezone)
        missions = [m for m in uow.gamification.missions(program) if m.active]
        context = None
        if any(m.audience is not None for m in missions):
            snapshot = uow.rules.member_snapshot(program_id, member_id, now, history=True)
            context = build_context(EventFacts("missions", now, snapshot), tz, program.currency)
        missions = [m for m in missions if m.audience is None or (context is not None and _holds(m.audience, context))]
        opted = uow.gamification.optins(program_id, member_id, [m.id for m in missions if m.opt_in])
        windows = {m.id: m.window_at(now, tz, opted.get(m.id)) for m in missions}
        progress = uow.gamification.progress_of_member(program_id, member_id,
                                                       [(m.id, w.key) for m in missions if (w := windows[m.id])])  # fmt: skip
        done = uow.gamification.completions(program_id, member_id, "mission", [m.id for m in missions])
    views = []
    for mission in missions:
        window = windows[mission.id]
        ended = mission.ends_at is not None and now >= mission.ends_at
        if ended and window is None:
            continue
        current = progress.get((mission.id, window.key), 0) if window else 0
        completions = [c for c in done if c["subject_id"] == mission.id]
        view = _progress_view(mission, current, window, program, tz, locale)
        lang = locale if locale in LOCALES else program.default_locale
        view |= {"description": localised(mission.description, lang) if mission.description else None,
            "opt_in_required": mission.opt_in, "opted_in": mission.id in opted if mission.opt_in else None,
            "opted_in_at": iso(opted.get(mission.id)), "repeatable": mission.repeatable,
            "reward": mission.reward.to_json(), "starts_at": iso(mission.starts_at), "ends_at": iso(mission.ends_at),
            "completed": any(c["window_key"] == window.key for c in completions) if window and mission.repeatable
            else bool(completions), "completions": len(completions)}  # fmt: skip
        views.append(view)
    return views


def opt_in(uow: UnitOfWork, program_id: UUID, member_id: UUID, code: str, now: datetime) -> dict[str, Any]:
    """The member joins a mission (idempotent: the first opt-in's time stands, a window of N days runs from it)."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        mission = uow.gamification.mission(program, code)
        uow.members.get(program_id, member_id)
        if not mission.active or (mission.ends_at is not None and now >= mission.ends_at):
            raise MissionNotOpen(f"mission '{code}' has ended or is not active", mission=code)
        if mission.audience is not None:
            snapshot = uow.rules.member_snapshot(program_id, member_id, now, history=True)
            context = build_context(EventFacts("opt_in", now, snapshot), zone(program.timezone), program.currency)
            if not _holds(mission.audience, context):
                raise MissionNotOpen(f"mission '{code}' is not open to this member", mission=code)
        if uow.gamification.add_optin(program_id, mission.id, member_id, now):
            uow.emit(program_id, Event(events.MISSION_OPTED_IN, {"member_id": str(member_id), "mission": code}))
        uow.commit()
    return next(v for v in member_missions(uow, program_id, member_id, now) if v["code"] == code)


# -- mission definitions --------------------------------------------------------------------------------------
def mission_view(mission: Mission, program: Program) -> dict[str, Any]:
    return {"id": str(mission.id), **mission.document(program.currency), "active": mission.active}


def create_mission(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        program = uow.programs.get(program_id, cached=True)
        mission = parse_mission(values, mission_id=new_id(), currency=program.currency, tz=zone(program.timezone))
        _check_badges(uow, program_id, [mission.reward])
        uow.gamification.add_mission(program, mission, now)
        view = mission_view(mission, program)
        record_audit(uow, program_id, actor, "mission.create", "mission", mission.id, None, view, None, now)
        uow.commit()
    uow.gamification.forget(program_id)
    return view


def update_mission(uow: UnitOfWork, program_id: UUID, code: str, changes: dict[str, Any], now: datetime,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Change a mission's texts, dates, reward or availability (`active`). Its code, goal and window stay: progress
    already counted refers to them."""
    fixed = {"code", "goal", "window", "repeatable", "opt_in"} & set(changes)
    if fixed:
        raise InvalidInput(f"{', '.join(sorted(fixed))} of a mission cannot change; create a new mission instead")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        before = uow.gamification.mission(program, code)
        document = before.document(program.currency) | changes
        active = changes.get("active", before.active)
        document.pop("active", None)
        mission = parse_mission(document, mission_id=before.id, currency=program.currency, tz=zone(program.timezone),
                                active=bool(active))  # fmt: skip
        _check_badges(uow, program_id, [mission.reward])
        uow.gamification.update_mission(program, mission, now)
        view = mission_view(mission, program)
        record_audit(uow, program_id, actor, "mission.update", "mission", mission.id, mission_view(before, program),
                     view, None, now)  # fmt: skip
        uow.commit()
    uow.gamification.forget(program_id)
    return view


def list_missions(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return [mission_view(m, program) for m in uow.gamification.missions(program)]


def get_mission(uow: UnitOfWork, program_id: UUID, code: str) -> dict[str, Any]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return mission_view(uow.gamification.mission(program, code), program)


def _check_badges(uow: UnitOfWork, program_id: UUID, rewards: Iterable[Reward]) -> None:
    for reward in rewards:
        if reward.badge is not None:
            uow.gamification.require_badge(program_id, reward.badge)


# -- streaks ----------------------------------------------------------------------------------------------------
def _count_streaks(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, context: EvalContext,
                   streaks: Iterable[Streak], source: dict[str, Any], tz: ZoneInfo,
                   now: datetime) -> list[dict[str, Any]]:  # fmt: skip
    counting = [s for s in streaks if _holds(s.filter, context)]
    if not counting:
        return []
    at = facts.occurred_at
    before = uow.gamification.periods(program.id, [s.id for s in counting], member_id)
    uow.gamification.add_hits([
        {"program_id": program.id, "id": new_id(), "streak_id": s.id, "member_id": member_id,
         "period_index": index_at(s.unit, at, tz), "amount": 1, "purchase_id": _uuid(source, "purchase_id"),
         "event_id": _uuid(source, "event_id"), "occurred_at": at, "created_at": now} for s in counting])  # fmt: skip
    done = uow.gamification.completions(program.id, member_id, "streak", [s.id for s in counting])
    views = []
    for streak in counting:
        index = index_at(streak.unit, at, tz)
        periods = [*before[streak.id], index]
        runs = streak_rules.runs(periods, streak.freeze)
        run = next(r for r in runs if r.start <= index <= r.last)
        new_period = index not in before[streak.id]
        payload = {"member_id": str(member_id), "streak": streak.code, "length": run.length,
                   "period": period_key(streak.unit, index), **source}  # fmt: skip
        if new_period:
            earlier = [r for r in runs if r.last < run.start]
            if run.length == 1 and earlier and run.start > max(before[streak.id], default=index):
                uow.emit(program.id, Event(events.STREAK_BROKEN, payload | {"previous_length": earlier[-1].length}))
            uow.emit(program.id, Event(events.STREAK_EXTENDED, payload))
        reached = []
        held = [c for c in done if c["subject_id"] == streak.id]
        for milestone in streak_rules.reached(run, streak.milestones):
            if any(_belongs(run, c, milestone.length) for c in held):
                continue
            completion = {"program_id": program.id, "id": new_id(), "kind": "streak", "subject_id": streak.id,
                          "member_id": member_id, "completion_key": streak_rules.milestone_key(run, milestone),
                          "window_key": str(run.start), "window_start": period_bounds(streak.unit, run.start, tz)[0],
                          "window_end": None}  # fmt: skip
            if _complete(uow, program, completion, milestone.reward, {"streak": streak.code, **source}, at, now):
                reached.append(milestone.length)
                uow.emit(program.id, Event(events.STREAK_MILESTONE_REACHED, payload | {
                    "milestone": milestone.length, "reward": milestone.reward.to_json()}))  # fmt: skip
        views.append({"code": streak.code, "name": localised(streak.name, program.default_locale),
                      "length": run.length, "extended": new_period, "milestones_reached": reached,
                      "freeze_used": run.freeze_used})  # fmt: skip
    return views


def _belongs(run: streak_rules.Run, completion: dict[str, Any], length: int) -> bool:
    """Whether a milestone completion was earned by this run (its first period may have been refunded since)."""
    start, _, milestone = str(completion["completion_key"]).partition(":")
    return int(milestone) == length and run.start - 1 <= int(start) <= run.last


def _refund_streaks(uow: UnitOfWork, program: Program, member_id: UUID, purchase: Purchase,
                    hits: list[dict[str, Any]], at: datetime, now: datetime) -> list[dict[str, Any]]:  # fmt: skip
    streaks = {s.id: s for s in uow.gamification.streaks(program.id)}
    uow.ledger.add_to_balance(program.id, member_id, 0)
    uow.gamification.add_hits([
        {"program_id": program.id, "id": new_id(), "streak_id": h["streak_id"], "member_id": member_id,
         "period_index": h["period_index"], "amount": -1, "purchase_id": purchase.id, "event_id": None,
         "occurred_at": h["occurred_at"], "created_at": now} for h in hits])  # fmt: skip
    touched = sorted({h["streak_id"] for h in hits if h["streak_id"] in streaks})
    periods = uow.gamification.periods(program.id, touched, member_id)
    reversed_ = []
    source = {"purchase_id": str(purchase.id)}
    for completion in uow.gamification.completions(program.id, member_id, "streak", touched):
        streak = streaks[completion["subject_id"]]
        length = int(str(completion["completion_key"]).partition(":")[2])
        runs = streak_rules.runs(periods[streak.id], streak.freeze)
        if any(r.length >= length and _belongs(r, completion, length) for r in runs):
            continue
        done = _reverse(uow, program, completion, at, now, {"streak": streak.code, **source})
        uow.emit(program.id, Event(events.STREAK_MILESTONE_REVERSED, {
            "member_id": str(member_id), "streak": streak.code, "milestone": length, **done, **source}))  # fmt: skip
        reversed_.append({"streak": streak.code, "milestone": length, **done})
    return reversed_


def streak_view(streak: Streak) -> dict[str, Any]:
    return {"id": str(streak.id), **streak.document(), "active": streak.active}


def create_streak(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        uow.programs.get(program_id, cached=True)
        streak = streak_rules.parse_streak(values, streak_id=new_id())
        _check_badges(uow, program_id, [m.reward for m in streak.milestones])
        uow.gamification.add_streak(program_id, streak, now)
        view = streak_view(streak)
        record_audit(uow, program_id, actor, "streak.create", "streak", streak.id, None, view, None, now)
        uow.commit()
    uow.gamification.forget(program_id)
    return view


def set_streak_active(uow: UnitOfWork, program_id: UUID, code: str, active: bool, now: datetime,
                      actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        uow.programs.get(program_id, cached=True)
        before = uow.gamification.streak(program_id, code)
        streak = replace(before, active=active)
        uow.gamification.update_streak(program_id, streak, now)
        view = streak_view(streak)
        record_audit(uow, program_id, actor, "streak.update", "streak", streak.id, streak_view(before), view, None,
                     now)  # fmt: skip
        uow.commit()
    uow.gamification.forget(program_id)
    return view


def list_streaks(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return [streak_view(s) for s in uow.gamification.streaks(program_id)]


def member_streaks(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> list[dict[str, Any]]:
    """Each active streak as the member stands now: current length (0 when broken), best, whether the current
    period still needs an event, the freeze, and the next milestone."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        streaks = [s for s in uow.gamification.streaks(program_id) if s.active]
        periods = uow.gamification.periods(program_id, [s.id for s in streaks], member_id)
    tz = zone(program.timezone)
    views = []
    for streak in streaks:
        index = index_at(streak.unit, now, tz)
        found = streak_rules.state(periods[streak.id], index, streak.freeze)
        upcoming = next((m for m in streak.milestones if m.length > found.length), None)
        views.append({
            "code": streak.code, "name": dict(streak.name), "period": streak.unit.value, "length": found.length,
            "best": found.best, "at_risk": found.at_risk, "freeze": streak.freeze,
            "freeze_available": found.freeze_available if found.run else streak.freeze,
            "since": streak_rules.period_view(streak.unit, found.run.start, tz) if found.run else None,
            "current_period": streak_rules.period_view(streak.unit, index, tz),
            "next_milestone": {"length": upcoming.length, "reward": upcoming.reward.to_json()} if upcoming else None,
        })  # fmt: skip
    return views


# -- badges -------------------------------------------------------------------------------------------------------
def _award_badge(uow: UnitOfWork, program_id: UUID, member_id: UUID, code: str, source: dict[str, Any],
                 now: datetime, *, emit: bool = True) -> bool:  # fmt: skip
    badge = uow.gamification.badge(program_id, code)
    if badge is None or not badge.active:
        log.warning("programme %s: badge %r is unknown or inactive; not awarded", program_id, code)
        return False
    awarded = bool(uow.gamification.award_badge(program_id, badge.id, member_id, now, source))
    if awarded and emit:
        uow.emit(program_id, Event(events.BADGE_AWARDED, {"member_id": str(member_id), "badge": code, **source}))
    return awarded


def badge_view(badge: Badge, holders: int | None = None, members: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(badge.id), "code": badge.code, "name": dict(badge.name), "description": dict(badge.description),
        "image_url": badge.image_url, "active": badge.active,
        "rare_below_percent": None if badge.rare_below_percent is None else _decimal(badge.rare_below_percent),
    }  # fmt: skip
    if holders is not None and members is not None:
        found = rarity(badge, holders, members)
        view |= {"holders": found.holders, "held_by_percent": found.percent, "rare": found.rare}
    return view


def _decimal(value: Any) -> str:
    from treue.domain.rules.spec import decimal_text

    return decimal_text(value)


def create_badge(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        uow.programs.get(program_id, cached=True)
        badge = parse_badge(values, badge_id=new_id())
        uow.gamification.add_badge(program_id, badge, now)
        view = badge_view(badge)
        record_audit(uow, program_id, actor, "badge.create", "badge", badge.id, None, view, None, now)
        uow.commit()
    return view


def update_badge(uow: UnitOfWork, program_id: UUID, code: str, changes: dict[str, Any], now: datetime,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    if "code" in changes:
        raise InvalidInput("the code of a badge cannot change")
    with uow:
        uow.programs.get(program_id, cached=True)
        before = uow.gamification.require_badge(program_id, code)
        current = badge_view(before)
        document = {k: current[k] for k in ("code", "name", "description", "image_url", "rare_below_percent",
                                            "active")} | changes  # fmt: skip
        badge = parse_badge(document, badge_id=before.id)
        uow.gamification.update_badge(program_id, badge)
        view = badge_view(badge)
        record_audit(uow, program_id, actor, "badge.update", "badge", badge.id, current, view, None, now)
        uow.commit()
    return view


def list_badges(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    """Every badge with how many members hold it and whether that makes it rare."""
    with uow:
        uow.programs.get(program_id, cached=True)
        members = uow.gamification.member_count(program_id)
        return [badge_view(badge, holders, members) for badge, holders in uow.gamification.badges(program_id)]


def grant_badge(uow: UnitOfWork, program_id: UUID, member_id: UUID, code: str, now: datetime, reason: str | None = None,
                actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Staff give a member a badge. Idempotent: a member holds a badge once (`awarded` says whether this did)."""
    with uow:
        uow.programs.get(program_id, cached=True)
        badge = uow.gamification.require_badge(program_id, code)
        uow.members.get(program_id, member_id)
        if not badge.active:
            raise InvalidInput(f"badge '{code}' is not active", badge=code)
        awarded = uow.gamification.award_badge(program_id, badge.id, member_id, now, {"by": actor, "reason": reason})
        if awarded:
            uow.emit(program_id, Event(events.BADGE_AWARDED, {"member_id": str(member_id), "badge": code,
                                                              "by": actor}))  # fmt: skip
            record_audit(uow, program_id, actor, "badge.grant", "member", member_id, None, {"badge": code}, reason,
                         now)  # fmt: skip
        uow.commit()
    held = next(b for b in member_badges(uow, program_id, member_id) if b["code"] == code)
    return held | {"awarded": awarded}


def member_badges(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> list[dict[str, Any]]:
    """The badges on the member's profile, oldest first, each with its rarity."""
    with uow:
        uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        members = uow.gamification.member_count(program_id)
        held = uow.gamification.badges_of(program_id, member_id)
    return [badge_view(badge, holders, members) | {"awarded_at": iso(at), "source": _public_source(source)}
            for badge, at, source, holders in held]  # fmt: skip


def _public_source(source: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (source or {}).items() if k in ("rule", "mission", "streak", "instant_win", "by")}


# -- instant wins ------------------------------------------------------------------------------------------------
def _instant_win(uow: UnitOfWork, program: Program, member_id: UUID, campaign: InstantWin, context: EvalContext,
                 source: dict[str, Any], now: datetime, choose: Chooser) -> dict[str, Any] | None:  # fmt: skip
    """One draw for one qualifying event: recorded whatever its outcome; a prize is given only if its budget
    (total, today's cap, the campaign's points) allows, else the draw is no win with the reason."""
    if not _holds(campaign.filter, context):
        return None
    drawn = draw(campaign.prizes, choose)
    prize, reason, transfer_id = drawn.prize, None, None
    if prize is not None:
        day = local_day(now, zone(program.timezone))
        reason = uow.gamification.take_prize(program.id, campaign.id, prize.code, prize.points, day, prize.daily_cap)
    won = prize is not None and reason is None
    given = {"campaign": campaign.code, "instant_win": campaign.code, **source}
    if won and prize is not None:
        if prize.kind is PrizeKind.POINTS:
            transfer_id = new_id()
            _credit(uow, program, member_id, prize.points, transfer_id, now, now,
                    {"reason": "instant win", "campaign": campaign.code, "prize": prize.code, **source})  # fmt: skip
        elif prize.kind is PrizeKind.COUPON and prize.coupon:
            _grant_coupon(uow, program.id, member_id, prize.coupon, f"instant_win:{campaign.code}", source, now)
        elif prize.badge:
            _award_badge(uow, program.id, member_id, prize.badge, given, now)
    draw_id = new_id()
    uow.gamification.add_draw({
        "program_id": program.id, "id": draw_id, "campaign_id": campaign.id, "member_id": member_id,
        "number": drawn.number, "odds_version": campaign.odds_version, "outcome": "won" if won else "no_win",
        "prize": prize.code if prize else None, "reason": reason,
        "points": prize.points if won and prize and prize.kind is PrizeKind.POINTS else 0,
        "coupon": prize.coupon if won and prize else None, "badge": prize.badge if won and prize else None,
        "transfer_id": transfer_id, "purchase_id": _uuid(source, "purchase_id"), "event_id": _uuid(source, "event_id"),
        "drawn_at": now})  # fmt: skip
    view: dict[str, Any] = {
        "draw_id": str(draw_id), "campaign": campaign.code, "name": localised(campaign.name, program.default_locale),
        "outcome": "won" if won else "no_win", "prize": None,
        **({"not_given": {"prize": prize.code, "reason": reason}} if prize is not None and not won else {}),
    }  # fmt: skip
    if won and prize is not None:
        view["prize"] = {"code": prize.code, "kind": prize.kind.value, "points": prize.points or None,
                         "coupon": prize.coupon, "badge": prize.badge}  # fmt: skip
    payload = {"member_id": str(member_id), "campaign": campaign.code, "draw_id": str(draw_id),
               "outcome": view["outcome"], "prize": prize.code if won and prize else None, **source}  # fmt: skip
    uow.emit(program.id, Event(events.INSTANT_WIN_DRAWN, payload))
    if won:
        uow.emit(program.id, Event(events.INSTANT_WIN_WON, payload | {"prize_detail": view["prize"]}))
    return view


def instant_win_view(campaign: InstantWin, row: dict[str, Any] | None = None,
                     counters: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    view = {"id": str(campaign.id), **campaign.document(), "active": campaign.active,
            "odds_version": campaign.odds_version, "odds": campaign.odds()}  # fmt: skip
    prizes = []
    for prize in campaign.prizes:
        item = prize.document() | {"kind": prize.kind.value}
        if counters is not None:
            found = counters.get(prize.code, {})
            item |= {"awarded": found.get("awarded", 0), "awarded_today": found.get("today", 0)}
        prizes.append(item)
    view["prizes"] = prizes
    if row is not None:
        view["points_awarded"] = row["points_awarded"]
    return view


def create_instant_win(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                       actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        program = uow.programs.get(program_id, cached=True)
        campaign = parse_instant_win(values, campaign_id=new_id(), tz=zone(program.timezone))
        for prize in campaign.prizes:
            if prize.badge is not None:
                uow.gamification.require_badge(program_id, prize.badge)
        uow.gamification.add_instant_win(program_id, campaign, now)
        view = instant_win_view(campaign)
        record_audit(uow, program_id, actor, "instant_win.create", "instant_win", campaign.id, None, view, None, now)
        uow.commit()
    uow.gamification.forget(program_id)
    return view


def update_instant_win(uow: UnitOfWork, program_id: UUID, code: str, changes: dict[str, Any], now: datetime,
                       actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Change a campaign's dates, budget, prizes or availability. Changed prizes make a new odds version (draws
    keep the version they used); a prize's total never drops below what was given."""
    if "code" in changes or "event" in changes:
        raise InvalidInput("the code and event of an instant-win campaign cannot change")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        before, row = uow.gamification.instant_win(program, code, lock=True)
        document = before.document() | {k: v for k, v in changes.items() if k != "active"}
        prizes_changed = "prizes" in changes and changes["prizes"] != before.document()["prizes"]
        version = before.odds_version + 1 if prizes_changed else before.odds_version
        campaign = parse_instant_win(document, campaign_id=before.id, tz=zone(program.timezone),
                                     active=bool(changes.get("active", before.active)), odds_version=version)  # fmt: skip
        if campaign.points_budget is not None and campaign.points_budget < row["points_awarded"]:
            raise InvalidInput(f"{row['points_awarded']} points were given already: the budget cannot be lower")
        uow.gamification.update_instant_win(program_id, campaign, now)
        if prizes_changed:
            for prize in campaign.prizes:
                uow.gamification.ensure_prize(program_id, campaign.id, prize.code, prize.total)
            uow.gamification.add_odds(program_id, campaign, now)
        view = instant_win_view(campaign)
        record_audit(uow, program_id, actor, "instant_win.update", "instant_win", campaign.id,
                     instant_win_view(before), view, None, now)  # fmt: skip
        uow.commit()
    uow.gamification.forget(program_id)
    return view


def list_instant_wins(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return [instant_win_view(c, row) for c, row in uow.gamification.instant_wins(program)]


def get_instant_win(uow: UnitOfWork, program_id: UUID, code: str, now: datetime) -> dict[str, Any]:
    """A campaign with its counters: prizes given (in total and today), points given, draws by outcome."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        campaign, row = uow.gamification.instant_win(program, code)
        counters = uow.gamification.prize_counters(program_id, campaign.id, local_day(now, zone(program.timezone)))
        counts = uow.gamification.draw_counts(program_id, campaign.id)
        versions = uow.gamification.odds_versions(program_id, campaign.id)
    return instant_win_view(campaign, row, counters) | {
        "draws": {"won": counts.get("won", 0), "no_win": counts.get("no_win", 0)},
        "odds_versions": [{"version": v["version"], "odds": v["odds"], "created_at": iso(v["created_at"])}
                          for v in versions]}  # fmt: skip


def instant_win_draws(uow: UnitOfWork, program_id: UUID, code: str, limit: int = 100) -> list[dict[str, Any]]:
    """The audit trail: every draw with its random number, the odds version it used and the outcome."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        campaign, _ = uow.gamification.instant_win(program, code)
        rows = uow.gamification.draws(program_id, campaign.id, min(max(limit, 1), 1000))
    return [{"id": str(r["id"]), "member_id": str(r["member_id"]), "number": r["number"],
             "odds_version": r["odds_version"], "outcome": r["outcome"], "prize": r["prize"], "reason": r["reason"],
             "points": r["points"], "coupon": r["coupon"], "badge": r["badge"],
             "transfer_id": str(r["transfer_id"]) if r["transfer_id"] else None,
             "purchase_id": str(r["purchase_id"]) if r["purchase_id"] else None,
             "event_id": str(r["event_id"]) if r["event_id"] else None, "drawn_at": iso(r["drawn_at"])}
            for r in rows]  # fmt: skip


# -- leaderboards ---------------------------------------------------------------------------------------------
def set_leaderboard_consent(uow: UnitOfWork, program_id: UUID, member_id: UUID, consented: bool,
                            nickname: str | None, now: datetime) -> dict[str, Any]:  # fmt: skip
    """The member agrees (or no longer agrees) to appear on leaderboards, optionally under a nickname."""
    nickname = check_nickname(nickname)
    with uow:
        uow.programs.get(program_id, cached=True)
        member = uow.members.get(program_id, member_id)
        uow.gamification.set_consent(program_id, member_id, consented, nickname, now)
        uow.commit()
    return {"member_id": str(member_id), "consented": consented, "nickname": nickname,
            "display_name": display_name(nickname, member.get("first_name"), member.get("last_name"),
                                         member.get("locale") or "en"), "updated_at": iso(now)}  # fmt: skip


def get_leaderboard_consent(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, Any]:
    with uow:
        member = uow.members.get(program_id, member_id)
        found = uow.gamification.consent(program_id, member_id)
    nickname = found["nickname"] if found else None
    return {"member_id": str(member_id), "consented": bool(found and found["consented"]), "nickname": nickname,
            "display_name": display_name(nickname, member.get("first_name"), member.get("last_name"),
                                         member.get("locale") or "en"),
            "updated_at": iso(found["updated_at"]) if found else None}  # fmt: skip


def _ranks(rows: list[dict[str, Any]], locale: str, value: Any) -> list[dict[str, Any]]:
    entries, previous, rank = [], None, 0
    for position, row in enumerate(rows, start=1):
        score = int(row["score"])
        if score != previous:
            rank, previous = position, score
        entries.append({"rank": rank, "display_name": display_name(row["nickname"], row["first_name"],
                                                                   row["last_name"], locale),
                        "value": value(score)})  # fmt: skip
    return entries


def mission_leaderboard(uow: UnitOfWork, program_id: UUID, code: str, now: datetime, window: str | None = None,
                        limit: int = 10, locale: str = "en") -> dict[str, Any]:  # fmt: skip
    """The members who agreed, ranked by their progress in a mission's window (the current one by default)."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        mission = uow.gamification.mission(program, code)
        tz = zone(program.timezone)
        key = window
        current = None
        if key is None:
            if mission.window is WindowKind.DAYS:
                key = "days-0"  # each member's first N days
            else:
                current = _calendar_window(mission, now, tz)
                if current is None and mission.window is WindowKind.CAMPAIGN:
                    current = Window("campaign", mission.starts_at or now, mission.ends_at or now)
                key = current.key if current else _last_key(mission, now, tz)
        rows = uow.gamification.mission_board(program_id, mission.id, key, min(max(limit, 1), 100))
    sum_goal = mission.goal.kind is GoalKind.SUM
    return {"mission": mission.code, "name": localised(mission.name, locale), "window": key,
            "window_start": current.start.astimezone(tz).isoformat() if current else None,
            "window_end": current.end.astimezone(tz).isoformat() if current else None,
            "target": Money(mission.goal.target, program.currency).format() if sum_goal else mission.goal.target,
            "entries": _ranks(rows, locale, lambda s: Money(s, program.currency).format() if sum_goal else s)}  # fmt: skip


def _last_key(mission: Mission, now: datetime, tz: ZoneInfo) -> str:
    """The last window of a mission that has ended (or the first of one that has not started)."""
    at = mission.ends_at - timedelta(microseconds=1) if mission.ends_at and now >= mission.ends_at else (
        mission.starts_at or now)  # fmt: skip
    found = _calendar_window(mission, at, tz)
    return found.key if found else ""


def _calendar_window(mission: Mission, at: datetime, tz: ZoneInfo) -> Window | None:
    """The mission's window at `at` for everyone (week, month, campaign; opt-in aside)."""
    return window_at(mission.window, at, tz, starts_at=mission.starts_at, ends_at=mission.ends_at)


def points_leaderboard(uow: UnitOfWork, program_id: UUID, now: datetime, period: str = "month",
                       day: str | None = None, limit: int = 10, locale: str = "en") -> dict[str, Any]:  # fmt: skip
    """The members who agreed, ranked by points earned in a calendar week or month (in the programme's
    timezone) - the one containing `day` (YYYY-MM-DD), by default the current one."""
    try:
        unit = Unit(period)
    except ValueError:
        raise InvalidInput("period is week or month", field="period") from None
    if unit is Unit.DAY:
        raise InvalidInput("period is week or month", field="period")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        tz = zone(program.timezone)
        try:
            at = datetime.fromisoformat(day).replace(hour=12, tzinfo=tz).astimezone(UTC) if day else now
        except ValueError:
            raise InvalidInput("day is a date YYYY-MM-DD", field="day") from None
        index = index_at(unit, at, tz)
        start, end = period_bounds(unit, index, tz)
        rows = uow.gamification.points_board(program_id, start, end, min(max(limit, 1), 100))
    return {"period": period_key(unit, index), "start": start.astimezone(tz).isoformat(),
            "end": end.astimezone(tz).isoformat(), "entries": _ranks(rows, locale, lambda s: s)}  # fmt: skip
