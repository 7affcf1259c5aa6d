"""Tier use cases: the ladder, a member's tier and progress, manual assignment, re-assessment after purchases and
refunds, and the `tiers` job (reviews at the review date, downgrade notices, expired assignments).

The ladder and the rules of upgrading and reviewing live in `treue.domain.tiers`; qualifying amounts are counted
from purchases and the ledger when needed (`treue.store.tiers`). Every change of a member's tier is a row of
`tier_changes` and, when the tier in force changes, a tier.upgraded or tier.downgraded event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.benefits import Benefits
from treue.domain.durations import require_aware, zone
from treue.domain.errors import InvalidInput, NotFound, NoTierLadder, TierInUse, TierUnknown
from treue.domain.events import Event
from treue.domain.money import currency_exponent
from treue.domain.programs import Program
from treue.domain.tiers import (
    Change,
    ChangeKind,
    Ladder,
    MemberTier,
    Tier,
    Window,
    format_threshold,
    progress,
    review,
    starting_state,
    upgrade,
    would_be,
)
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import iso

log = logging.getLogger("treue.jobs")
BATCH = 500
MAX_REVIEWS_PER_MEMBER = 240  # a job that did not run for years catches up review by review, within reason


# -- the ladder ----------------------------------------------------------------------------------------------
def ladder_view(ladder: Ladder | None, program: Program) -> dict[str, Any]:
    if ladder is None:
        return {"basis": None, "review": None, "grace_days": 0, "notice_days": 0, "tiers": []}
    return ladder.to_json(currency_exponent(program.currency)) | {"currency": program.currency}


def get_ladder(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return ladder_view(uow.tiers.ladder(program_id), program)


def set_ladder(uow: UnitOfWork, program_id: UUID, data: dict[str, Any], now: datetime,
               actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Replace the programme's ladder. Members keep their state; a tier that members still hold cannot be
    dropped (rename it by keeping its code). Audited."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        ladder = Ladder.parse(data, currency_exponent(program.currency))
        uow.tiers.lock_ladder(program_id)
        before = uow.tiers.ladder(program_id)
        held = uow.tiers.codes_held(program_id)
        dropped = sorted(code for code, count in held.items() if count and not ladder.has(code))
        if dropped:
            raise TierInUse(f"members still hold tier(s) {', '.join(dropped)}: keep them in the ladder",
                            tiers=dropped)  # fmt: skip
        uow.tiers.save_ladder(program_id, ladder, now)
        view = ladder_view(ladder, program)
        record_audit(uow, program_id, actor, "tier_ladder.set", "tier_ladder", program_id,
                     ladder_view(before, program) if before else None, view, None, now)  # fmt: skip
        uow.commit()
    return view


# -- benefits (the earn path asks) -----------------------------------------------------------------------------
def tier_benefits(uow: UnitOfWork, program: Program, member_id: UUID, at: datetime) -> Benefits | None:
    """The benefits of the member's tier at `at`, or None (no ladder). One small query with a ladder."""
    ladder = uow.tiers.ladder(program.id, cached=True)
    if ladder is None:
        return None
    code = uow.tiers.effective_code(program.id, member_id, at) or ladder.lowest.code
    tier: Tier = ladder.tier(code) if ladder.has(code) else ladder.lowest
    return tier.member_benefits()


# -- amounts -----------------------------------------------------------------------------------------------
def _amounts(uow: UnitOfWork, program: Program, ladder: Ladder, member_id: UUID, windows: Sequence[Window],
             end: datetime) -> dict[Window, int]:  # fmt: skip
    tz = zone(program.timezone)
    found = uow.tiers.amounts(program.id, member_id, ladder.basis, [w.start(end, tz) for w in windows], end)
    return dict(zip(windows, found, strict=True))


def _amounts_json(ladder: Ladder, amounts: dict[Window, int], digits: int) -> dict[str, Any]:
    return {str(w): format_threshold(ladder.basis, v, digits) for w, v in amounts.items()}


# -- after a purchase or a refund ------------------------------------------------------------------------------
def assess_member(uow: UnitOfWork, program: Program, member_id: UUID, at: datetime, now: datetime) -> str | None:
    """Inside a purchase's or refund's transaction (after its rows are written): upgrade the member at once if
    they now qualify for a higher tier. Never lowers a tier (that waits for the review). Returns the new tier
    code on an upgrade. Without a ladder: nothing, and no query."""
    ladder = uow.tiers.ladder(program.id, cached=True)
    if ladder is None or len(ladder.tiers) < 2:
        return None
    end = max(at, now)
    state, enrolled = uow.tiers.state_and_enrolment(program.id, member_id)
    if enrolled is None:
        raise NotFound(f"member {member_id} not found", resource="member")
    current = state or starting_state(ladder, enrolled)
    windows = ladder.windows(ladder.rank(current.tier))
    if not windows:
        return None  # at the top already
    tz = zone(program.timezone)
    amounts = _amounts(uow, program, ladder, member_id, windows, end)
    if upgrade(ladder, current, amounts, end, enrolled, tz) is None:
        return None
    # Qualifies: lock the state (created if none) and decide again on what is stored now.
    locked = uow.tiers.lock_state(program.id, member_id, current, now)
    change = upgrade(ladder, locked, amounts, end, enrolled, tz)
    if change is None:
        return None
    _apply(uow, program, ladder, member_id, locked, change, amounts, "system", None, now)
    return change.to_tier


def _apply(uow: UnitOfWork, program: Program, ladder: Ladder, member_id: UUID, before: MemberTier, change: Change,
           amounts: dict[Window, int], actor: str, reason: str | None, now: datetime) -> None:  # fmt: skip
    """Store the new state and its history row; announce a change of the tier in force."""
    uow.tiers.save_state(program.id, member_id, change.state, now)
    digits = currency_exponent(program.currency)
    uow.tiers.add_change({
        "program_id": program.id, "id": new_id(), "member_id": member_id, "kind": change.kind.value,
        "from_tier": change.from_tier, "to_tier": change.to_tier, "at": change.at, "review_at": change.state.review_at,
        "manual_until": change.state.manual_until if change.state.manual_active(change.at) else None,
        "amounts": _amounts_json(ladder, amounts, digits), "actor": actor, "reason": reason, "created_at": now,
    })  # fmt: skip
    _announce(uow, program, ladder, member_id, before, change, now)


def _announce(uow: UnitOfWork, program: Program, ladder: Ladder, member_id: UUID, before: MemberTier,
              change: Change, now: datetime) -> None:  # fmt: skip
    manual = change.kind in (ChangeKind.ASSIGNED, ChangeKind.UNASSIGNED, ChangeKind.ASSIGNMENT_EXPIRED)
    # An expired assignment is no longer in force at its expiry instant: the change names what was.
    was = change.from_tier if manual else before.effective(change.at)
    becomes = change.state.effective(change.at)
    earned_moved = change.kind in (ChangeKind.UPGRADED, ChangeKind.DOWNGRADED)
    if was == becomes and not earned_moved:
        return
    up = ladder.rank(becomes) > ladder.rank(was) if was != becomes else change.kind is ChangeKind.UPGRADED
    topic = events.TIER_UPGRADED if up else events.TIER_DOWNGRADED
    uow.emit(program.id, Event(topic, {
        "member_id": str(member_id), "from": was, "to": becomes, "earned_from": change.from_tier,
        "earned_to": change.to_tier, "reason": change.kind.value, "at": iso(change.at),
        "secured_until": iso(change.state.manual_until if change.state.manual_active(change.at)
                             else change.state.review_at),
        "manual": change.state.manual_active(change.at)}))  # fmt: skip


# -- progress --------------------------------------------------------------------------------------------------
def member_tier(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime,
                history: int = 20) -> dict[str, Any]:  # fmt: skip
    """Where the member stands: the tier in force, the basis, the amount still needed for the next tier, until
    when the tier is secured, and what the next review would lower it to with the amounts so far."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        state, enrolled = uow.tiers.state_and_enrolment(program_id, member_id)
        if enrolled is None:
            raise NotFound(f"member {member_id} not found", resource="member")
        ladder = uow.tiers.ladder(program_id, cached=True)
        if ladder is None:
            return {"member_id": str(member_id), "tier": None, "basis": None, "note": "the programme has no tiers"}
        current = state or starting_state(ladder, enrolled)
        tz = zone(program.timezone)
        windows = ladder.windows()
        amounts_now = _amounts(uow, program, ladder, member_id, windows, now)
        at_review: dict[Window, int] = {}
        if current.review_at is not None:
            decides = ladder.decision_at(current.review_at, tz)
            # Counted up to now: what is recorded so far, in the windows as they will stand at the decision.
            at_review = {w: v for w, v in zip(windows, uow.tiers.amounts(
                program_id, member_id, ladder.basis, [w.start(decides, tz) for w in windows], now), strict=True)}  # fmt: skip
        found = progress(ladder, current, now, amounts_now, at_review, tz)
        reason = uow.tiers.manual_reason(program_id, member_id) if current.manual_active(now) else None
        changes = uow.tiers.changes_of(program_id, member_id, history)
    digits = currency_exponent(program.currency)

    def amount(value: int) -> str | int:
        return format_threshold(ladder.basis, value, digits)

    return {
        "member_id": str(member_id), "tier": _tier_view(found.tier, ladder, digits), "earned_tier": found.earned.code,
        "since": iso(current.since), "basis": ladder.basis.value, "window": str(found.window),
        "amount": amount(found.amount), **({"currency": program.currency} if ladder.basis.value == "spend" else {}),
        "next_tier": _tier_view(found.next_tier, ladder, digits) if found.next_tier else None,
        "needed": amount(found.needed), "secured_until": iso(found.secured_until),
        "review": None if current.review_at is None else {
            "at": iso(current.review_at), "decides_at": iso(found.review_decides_at),
            "downgrade_to": found.downgrade_to.code if found.downgrade_to else None},
        "manual": None if not current.manual_active(now) else {
            "tier": current.manual, "until": iso(current.manual_until), "reason": reason},
        "perks": sorted(found.tier.benefits.perks),
        "history": [_change_view(c) for c in changes],
    }  # fmt: skip


def _tier_view(tier: Tier, ladder: Ladder, digits: int) -> dict[str, Any]:
    return {"code": tier.code, "name": dict(tier.name), "threshold": format_threshold(ladder.basis, tier.threshold,
            digits), "window": str(tier.window), "benefits": tier.benefits.to_json()}  # fmt: skip


def _change_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"kind": row["kind"], "from": row["from_tier"], "to": row["to_tier"], "at": iso(row["at"]),
            "review_at": iso(row["review_at"]), "manual_until": iso(row["manual_until"]), "amounts": row["amounts"],
            "actor": row["actor"], "reason": row["reason"]}  # fmt: skip


# -- manual assignment ---------------------------------------------------------------------------------------
def assign_tier(uow: UnitOfWork, program_id: UUID, member_id: UUID, code: str, until: datetime | None,
                reason: str | None, now: datetime, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Put a member on a tier by hand (a VIP), until `until` or until removed; the earned tier is kept and
    takes over again afterwards. Audited."""
    if until is not None:
        until = require_aware(until, "until")
        if until <= now:
            raise InvalidInput("until must be in the future")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        ladder = _ladder(uow, program_id)
        if not ladder.has(code):
            raise TierUnknown(f"no tier '{code}' in the ladder (tiers: {', '.join(t.code for t in ladder.tiers)})")
        enrolled = _enrolled(uow, program_id, member_id)
        before = uow.tiers.lock_state(program_id, member_id, starting_state(ladder, enrolled), now)
        after = MemberTier(before.tier, before.since, before.review_at, code, until, before.notice_for)
        change = Change(ChangeKind.ASSIGNED, before.effective(now), code, now, after)
        _apply(uow, program, ladder, member_id, before, change, {}, actor, reason, now)
        uow.tiers.set_manual_reason(program_id, member_id, reason)
        record_audit(uow, program_id, actor, "tier.assign", "member", member_id,
                     {"tier": before.effective(now), "manual": before.manual if before.manual_active(now) else None},
                     {"tier": code, "manual": code, "until": iso(until)}, reason, now)  # fmt: skip
        uow.commit()
    return member_tier(uow, program_id, member_id, now)


def unassign_tier(uow: UnitOfWork, program_id: UUID, member_id: UUID, reason: str | None, now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Remove a manual assignment: the earned tier is in force again. Audited."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        ladder = _ladder(uow, program_id)
        enrolled = _enrolled(uow, program_id, member_id)
        before = uow.tiers.lock_state(program_id, member_id, starting_state(ladder, enrolled), now)
        if not before.manual_active(now):
            raise InvalidInput("the member has no manual tier assignment")
        after = MemberTier(before.tier, before.since, before.review_at, None, None, before.notice_for)
        change = Change(ChangeKind.UNASSIGNED, before.effective(now), before.tier, now, after)
        _apply(uow, program, ladder, member_id, before, change, {}, actor, reason, now)
        uow.tiers.set_manual_reason(program_id, member_id, None)
        record_audit(uow, program_id, actor, "tier.unassign", "member", member_id,
                     {"tier": before.effective(now), "manual": before.manual, "until": iso(before.manual_until)},
                     {"tier": before.tier, "manual": None}, reason, now)  # fmt: skip
        uow.commit()
    return member_tier(uow, program_id, member_id, now)


def _ladder(uow: UnitOfWork, program_id: UUID) -> Ladder:
    ladder = uow.tiers.ladder(program_id)
    if ladder is None:
        raise NoTierLadder("the programme has no tier ladder: set one with PUT /tiers")
    return ladder  # type: ignore[no-any-return]


def _enrolled(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> datetime:
    enrolled = uow.tiers.enrolled_at(program_id, member_id)
    if enrolled is None:
        raise NotFound(f"member {member_id} not found", resource="member")
    return enrolled  # type: ignore[no-any-return]


# -- the tiers job -------------------------------------------------------------------------------------------
def run_tiers_job(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None) -> dict[str, int]:
    """Reviews whose decision time (review date plus grace) has come, downgrade notices within the notice period,
    and manual assignments that expired. Each member's step in its own transaction under the state's row lock,
    and each moves the state on (the next review date, the review noticed, the assignment cleared), so a second
    run in the same period - or a second worker at the same time - finds nothing left to do."""
    now = require_aware(now, "now").astimezone(UTC)
    counts = {"renewed": 0, "upgraded": 0, "downgraded": 0, "notices": 0, "assignments_expired": 0}
    with uow_factory(read_only=True) as uow:
        programs = [uow.programs.get(program_id)] if program_id else [p for p, _ in uow.programs.list()]
    for program in programs:
        with uow_factory(read_only=True) as uow:
            ladder = uow.tiers.ladder(program.id)
        if ladder is None:
            continue
        _run_program(uow_factory, program, ladder, now, counts)
    return counts


def _run_program(uow_factory: UnitOfWorkFactory, program: Program, ladder: Ladder, now: datetime,
                 counts: dict[str, int]) -> None:  # fmt: skip
    # The grace period is in local days; ask for a day more and decide exactly per member.
    review_before = now - timedelta(days=max(ladder.grace_days - 1, 0))
    _each(uow_factory, lambda uow, after: uow.tiers.reviews_due(program.id, review_before, after, BATCH),
          lambda uow, member: _review(uow, program, ladder, member, now, counts))  # fmt: skip
    if ladder.notice_days:
        notice_before = now + timedelta(days=ladder.notice_days + 1)
        _each(uow_factory, lambda uow, after: uow.tiers.notices_due(program.id, notice_before, now, after, BATCH),
              lambda uow, member: _notice(uow, program, ladder, member, now, counts))  # fmt: skip
    _each(uow_factory, lambda uow, after: uow.tiers.assignments_expired(program.id, now, after, BATCH),
          lambda uow, member: _expire_assignment(uow, program, ladder, member, now, counts))  # fmt: skip


def _each(uow_factory: UnitOfWorkFactory, page: Any, step: Any) -> None:
    after: UUID | None = None
    while True:
        with uow_factory(read_only=True) as uow:
            members = page(uow, after)
        if not members:
            return
        for member_id in members:
            with uow_factory() as uow:
                step(uow, member_id)
                uow.commit()
        after = members[-1]


def _review(uow: UnitOfWork, program: Program, ladder: Ladder, member_id: UUID, now: datetime,
            counts: dict[str, int]) -> None:  # fmt: skip
    tz = zone(program.timezone)
    enrolled = _enrolled(uow, program.id, member_id)
    state = uow.tiers.state(program.id, member_id, lock=True)
    windows = ladder.windows()
    for _ in range(MAX_REVIEWS_PER_MEMBER):
        if state is None or state.review_at is None:
            return
        decided = ladder.decision_at(state.review_at, tz)
        if decided > now:
            return
        amounts = _amounts(uow, program, ladder, member_id, windows, decided)
        change = review(ladder, state, amounts, enrolled, tz)
        _apply(uow, program, ladder, member_id, state, change, amounts, "tiers job", None, now)
        counts[change.kind.value] += 1
        state = change.state
    log.warning("programme %s: member %s has more tier reviews due than one run makes", program.id, member_id)


def _notice(uow: UnitOfWork, program: Program, ladder: Ladder, member_id: UUID, now: datetime,
            counts: dict[str, int]) -> None:  # fmt: skip
    tz = zone(program.timezone)
    state = uow.tiers.state(program.id, member_id, lock=True)
    if state is None or state.review_at is None or state.review_at <= now or state.notice_for == state.review_at:
        return
    if state.review_at - timedelta(days=ladder.notice_days) > now:
        return  # the candidate query asked a day ahead
    decides = ladder.decision_at(state.review_at, tz)
    windows = ladder.windows()
    amounts = dict(zip(windows, uow.tiers.amounts(program.id, member_id, ladder.basis,
                                                 [w.start(decides, tz) for w in windows], now), strict=True))  # fmt: skip
    lower = would_be(ladder, state, amounts)
    if lower.code == state.tier:
        return  # would keep the tier: nothing to warn about (asked again next run, in case of a refund)
    current = ladder.tier(state.tier) if ladder.has(state.tier) else ladder.lowest
    digits = currency_exponent(program.currency)
    needed = max(0, current.threshold - amounts.get(current.window, 0))
    uow.emit(program.id, Event(events.TIER_WILL_DOWNGRADE, {
        "member_id": str(member_id), "tier": state.tier, "would_be": lower.code, "review_at": iso(state.review_at),
        "decides_at": iso(decides), "basis": ladder.basis.value, "window": str(current.window),
        "needed_to_keep": format_threshold(ladder.basis, needed, digits)}))  # fmt: skip
    uow.tiers.save_state(program.id, member_id, MemberTier(state.tier, state.since, state.review_at, state.manual,
                                                           state.manual_until, state.review_at), now)  # fmt: skip
    counts["notices"] += 1


def _expire_assignment(uow: UnitOfWork, program: Program, ladder: Ladder, member_id: UUID, now: datetime,
                       counts: dict[str, int]) -> None:  # fmt: skip
    state = uow.tiers.state(program.id, member_id, lock=True)
    if state is None or state.manual is None or state.manual_until is None or state.manual_until > now:
        return
    after = MemberTier(state.tier, state.since, state.review_at, None, None, state.notice_for)
    change = Change(ChangeKind.ASSIGNMENT_EXPIRED, state.manual, state.tier, state.manual_until, after)
    _apply(uow, program, ladder, member_id, state, change, {}, "tiers job", None, now)
    uow.tiers.set_manual_reason(program.id, member_id, None)
    counts["assignments_expired"] += 1
