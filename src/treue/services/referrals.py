"""Referrals (codes, links, fraud checks, completion, rewards) and social rewards with moderation (issue 7).

- Every member has a referral code (created on first use, or at enrolment when the programme runs referrals)
  and a link `{base}/r/{CODE}`; base: the settings' `link_base`, else the environment's TREUE_PUBLIC_URL.
- Enrolling with a code records a referral: `pending`, or `rejected` with a stable reason from the screen
  (`treue.domain.referrals.screen`). A rejected referral never refuses the enrolment: the member is enrolled,
  the response says why the referral was not accepted.
- `on_event` (in the transaction of the referee's purchase or event) completes a pending referral when the
  settings' CEL condition holds within the window, then runs the rules triggered by `referral.completed` once
  for the referrer (`event.attributes.role == "referrer"`) and once for the referee (`"referee"`): points,
  coupons (grants) and hooks, each posted and explained like any earn.
- `on_refund` reverses a completed referral when its qualifying purchase is refunded within the return window
  so far that the condition no longer holds: the reward points are taken back under the programme's return
  policy, unused granted coupons cancelled.
- The `referrals` job expires pending referrals whose window has passed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.durations import zone
from treue.domain.errors import InvalidInput, NotFound
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.money import Money
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.referrals import (
    COMPLETED_TRIGGER,
    Counts,
    Identity,
    ReferralSettings,
    ReferralStatus,
    Referrer,
    canonical_email,
    fingerprint,
    new_referral_code,
    normalise_referral_code,
    parse_settings,
    period_start,
    referral_link,
    screen,
)
from treue.domain.rules.conditions import ConditionFailed
from treue.domain.rules.context import EventFacts, build_context
from treue.domain.rules.evaluator import Evaluation
from treue.domain.rules.limits import Period, Scope, UsageDelta, UsageKey
from treue.ids import new_id, random_choice
from treue.services.audit import record_audit
from treue.services.earning import budgets_spent, emit_grants_and_hooks, post_earn, run_rules, usage_counted
from treue.services.grants import cancel_grants
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import iso

BATCH = 200


@dataclass(frozen=True)
class ReferralInput:
    """What an enrolment may carry beside the profile: the code it came with and fraud-screen signals."""

    code: str | None = None
    device_id: str | None = None
    ip: str | None = None
    payment_fingerprint: str | None = None


# -- settings ------------------------------------------------------------------------------------------------


def get_settings(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    with uow:
        uow.programs.get(program_id, cached=True)
        found = uow.referrals.settings(program_id)
    return _settings_view(found)


def put_settings(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Replace the programme's referral settings (fields not sent take their defaults)."""
    settings = parse_settings(values)
    with uow:
        uow.programs.get(program_id, cached=True)
        before = uow.referrals.settings(program_id)
        uow.referrals.save_settings(program_id, settings.as_dict(), now)
        record_audit(uow, program_id, actor, "referrals.settings", "program", program_id,
                     before.as_dict() if before else None, settings.as_dict(), None, now)  # fmt: skip
        uow.commit()
    return _settings_view(settings)


def _settings_view(settings: ReferralSettings | None) -> dict[str, Any]:
    if settings is None:
        return {"configured": False, **ReferralSettings().as_dict(), "active": False}
    return {"configured": True, **settings.as_dict()}


def _link_base(settings: ReferralSettings | None) -> str | None:
    base = (settings.link_base if settings else None) or os.environ.get("TREUE_PUBLIC_URL")
    return base.rstrip("/") if base else None


# -- codes ---------------------------------------------------------------------------------------------------


def ensure_code(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, *, device_hash: str | None = None,
                payment_hash: str | None = None) -> str:  # fmt: skip
    """The member's active code, created if there is none (inside the caller's transaction)."""
    found = uow.referrals.code_of(program_id, member_id)
    if found is not None:
        return str(found["code"])
    for _ in range(5):  # 31^8 codes: a collision is rare, but a retry costs nothing
        code = new_referral_code(random_choice)
        if uow.referrals.by_code(program_id, code) is None:
            uow.referrals.add_code({"program_id": program_id, "code": code, "member_id": member_id, "active": True,
                                    "device_hash": device_hash, "payment_hash": payment_hash, "created_at": now})  # fmt: skip
            return code
    raise AssertionError("no free referral code found")  # pragma: no cover


def rotate_code(
    uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, actor: str = "api"
) -> dict[str, Any]:
    """A new code for the member (the old one leaked): the old code is refused from now on (`code_expired`)."""
    with uow:
        uow.members.get(program_id, member_id)
        old = uow.referrals.code_of(program_id, member_id)
        uow.referrals.retire_codes(program_id, member_id)
        code = ensure_code(uow, program_id, member_id, now,
                           device_hash=old["device_hash"] if old else None,
                           payment_hash=old["payment_hash"] if old else None)  # fmt: skip
        record_audit(uow, program_id, actor, "referrals.rotate_code", "member", member_id,
                     {"code": old["code"]} if old else None, {"code": code}, None, now)  # fmt: skip
        settings = uow.referrals.settings(program_id, cached=True)
        uow.commit()
    base = _link_base(settings)
    return {"member_id": str(member_id), "code": code, "link": referral_link(base, code) if base else None}


# -- enrolment with a code -----------------------------------------------------------------------------------


def refer_on_enrolment(uow: UnitOfWork, program: Program, member_id: UUID, profile: dict[str, Any],
                       given: ReferralInput, now: datetime) -> dict[str, Any] | None:  # fmt: skip
    """Inside the enrolment's transaction: give the new member a code (when the programme runs referrals) and
    record the referral its code names, pending or rejected. None when no code was given."""
    settings = uow.referrals.settings(program.id, cached=True)
    device = fingerprint(program.id, "device", given.device_id)
    payment = fingerprint(program.id, "payment", given.payment_fingerprint)
    ip = fingerprint(program.id, "ip", given.ip)
    if settings is not None:
        ensure_code(uow, program.id, member_id, now, device_hash=device, payment_hash=payment)
    if given.code is None or not given.code.strip():
        return None
    code = normalise_referral_code(given.code)
    found = uow.referrals.by_code(program.id, code) if code else None
    referee = Identity(member_id, profile.get("email"), profile.get("phone"), profile.get("external_ref"),
                       frozenset({device} - {None}), frozenset({payment} - {None}))  # type: ignore[arg-type]  # fmt: skip
    referrer = None
    if found is not None:
        referrer = Referrer(
            Identity(found["member_id"], found["email"], found["phone"], found["external_ref"],
                     frozenset({found["device_hash"]} - {None}), frozenset({found["payment_hash"]} - {None})),
            active=found["status"] == "active", code_active=bool(found["active"]),
        )  # fmt: skip
    effective = settings or dataclasses.replace(ReferralSettings(), active=False)  # no scheme: codes are refused
    counts = Counts()
    if referrer is not None and effective.active:
        local = now.astimezone(zone(program.timezone))
        since = period_start(effective.referrer_period, local, zone(program.timezone))
        counts = Counts(
            referee_known=uow.referrals.referee_known(program.id, member_id, referee.email, referee.phone,
                                                      referee.email_key, referrer.identity.member_id),
            velocity=uow.referrals.velocity(program.id, ip, device, now - timedelta(hours=effective.velocity_hours))
            if effective.velocity_limit is not None else 0,
            referrer_period=uow.referrals.referrer_count(program.id, referrer.identity.member_id, since)
            if effective.referrer_limit is not None else 0,
        )  # fmt: skip
    reason = screen(referee, referrer, counts, effective, code_known=found is not None)
    referral_id = new_id()
    expires_at = effective.window_ends(now) if not reason else None
    status = ReferralStatus.REJECTED if reason else ReferralStatus.PENDING
    row = {"program_id": program.id, "id": referral_id, "referrer_id": referrer.identity.member_id if referrer else None,
           "referee_id": member_id, "code": (code or given.code.strip().upper())[:16], "status": status.value,
           "reason": reason.value if reason else None, "created_at": now,
           "expires_at": expires_at, "email_key": canonical_email(referee.email),
           "ip_hash": ip, "device_hash": device, "payment_hash": payment}  # fmt: skip
    uow.referrals.add(row)
    payload = {"referral_id": str(referral_id), "referee_id": str(member_id),
               "referrer_id": str(row["referrer_id"]) if row["referrer_id"] else None}  # fmt: skip
    if reason:
        uow.emit(program.id, Event(events.REFERRAL_REJECTED, payload | {"reason": reason.value}))
    else:
        uow.emit(program.id, Event(events.REFERRAL_PENDING, payload | {"expires_at": iso(expires_at)}))
    return {"id": str(referral_id), "status": status.value, "reason": row["reason"],
            "referrer_id": payload["referrer_id"], "expires_at": iso(expires_at)}  # fmt: skip


# -- completion (the referee's purchase or event) ------------------------------------------------------------


def on_event(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, evaluation: Evaluation,
             source: dict[str, Any], now: datetime) -> dict[str, Any]:  # fmt: skip
    """Complete the member's pending referral if this purchase or event meets the condition in the window.

    No query for a programme without referral settings (cached per process); otherwise one indexed query
    ("is this member a pending referee?") unless the referral completes."""
    settings = uow.referrals.settings(program.id, cached=True)
    if settings is None or not settings.active or source.get("moderation") == "pending":
        return {}
    referral = uow.referrals.pending_of_referee(program.id, member_id)
    if referral is None:
        return {}
    at = facts.occurred_at
    if at < referral["created_at"] or at >= referral["expires_at"]:
        return {}  # before the referral, or after its window (the job expires it)
    if not _condition_holds(uow, program, settings, facts, member_id):
        return {}
    completed = {"completed_at": now, "return_until": settings.return_ends(at),
                 "purchase_id": UUID(source["purchase_id"]) if source.get("purchase_id") else None,
                 "event_id": UUID(source["event_id"]) if source.get("event_id") else None}  # fmt: skip
    if not uow.referrals.set_status(program.id, referral["id"], "pending", {"status": "completed", **completed}):
        return {}  # a concurrent purchase completed it
    rewards = _reward(uow, program, referral, facts, now)
    points = sum(r["points"] for r in rewards.values())
    uow.referrals.set_status(program.id, referral["id"], "completed", {"rewards": rewards, "reward_points": points})
    uow.emit(program.id, Event(events.REFERRAL_COMPLETED, {
        "referral_id": str(referral["id"]), "referrer_id": str(referral["referrer_id"]),
        "referee_id": str(member_id), **{k: v for k, v in source.items() if k in ("purchase_id", "event_id")},
        "rewards": {role: {"points": r["points"], "grants": r["grants"]} for role, r in rewards.items()}}))  # fmt: skip
    return {"referral": {"id": str(referral["id"]), "status": "completed", "rewards": _rewards_view(rewards)}}


def _condition_holds(uow: UnitOfWork, program: Program, settings: ReferralSettings, facts: EventFacts,
                     member_id: UUID) -> bool:  # fmt: skip
    condition = settings.condition
    needs = condition.needs
    if needs.get("member") and (facts.member is None or facts.member.enrolled_at is None):
        history = bool(needs["member"] & {"purchase_count", "spend", "*"})
        facts = dataclasses.replace(facts, member=uow.rules.member_snapshot(program.id, member_id, facts.occurred_at,
                                                                            history=history))  # fmt: skip
    context = build_context(facts, zone(program.timezone), program.currency, needs)
    try:
        return condition.holds(context)
    except ConditionFailed:
        return False


def _reward(uow: UnitOfWork, program: Program, referral: dict[str, Any], facts: EventFacts,
            now: datetime) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The rules triggered by `referral.completed`, once per role; what each gave, to show and to give back."""
    rules = uow.rules.ruleset(program, cached=True)
    if not rules.entries(COMPLETED_TRIGGER):
        return {}
    out: dict[str, dict[str, Any]] = {}
    roles = (("referrer", referral["referrer_id"]), ("referee", referral["referee_id"]))
    for role, member_id in roles:
        attributes = {"role": role, "referral_id": str(referral["id"]), "referrer_id": str(referral["referrer_id"]),
                      "referee_id": str(referral["referee_id"])}  # fmt: skip
        role_facts = EventFacts(COMPLETED_TRIGGER, facts.occurred_at, purchase=facts.purchase, attributes=attributes)
        earning = run_rules(uow, program, rules, role_facts, member_id)
        evaluation = earning.evaluation
        transfer_id = None
        if evaluation.points > 0:
            transfer_id, _ = post_earn(uow, program, member_id, earning, facts.occurred_at, now,
                                       {"event": COMPLETED_TRIGGER, "referral_id": str(referral["id"]), "role": role})  # fmt: skip
        explained = evaluation.explanation()
        emit_grants_and_hooks(uow, program.id, member_id, evaluation, {"referral_id": str(referral["id"]), "role": role},
                              now)  # fmt: skip
        out[role] = {"member_id": str(member_id), "points": evaluation.points,
                     "transfer_id": str(transfer_id) if transfer_id else None,
                     "grants": [{"kind": g["kind"], "code": g["code"], "quantity": g["quantity"]}
                                for g in explained.get("grants", ())],
                     "budgets": budgets_spent(evaluation), "usage": usage_counted(evaluation)}  # fmt: skip
    return out


def _rewards_view(rewards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {role: {"member_id": r["member_id"], "points": r["points"], "transfer_id": r["transfer_id"],
                   "grants": r["grants"]} for role, r in rewards.items()}  # fmt: skip


# -- refunds -------------------------------------------------------------------------------------------------


def on_refund(uow: UnitOfWork, program: Program, purchase: Purchase, refund: dict[str, Any],
              now: datetime) -> dict[str, Any]:  # fmt: skip
    """Reverse the referral this purchase completed, if it is refunded within the return window so far that the
    condition no longer holds for what was kept."""
    settings = uow.referrals.settings(program.id, cached=True)
    if settings is None:
        return {}
    referral = uow.referrals.completed_by_purchase(program.id, purchase.id)
    if referral is None or refund["occurred_at"] > referral["return_until"]:
        return {}
    uow.flush()  # this refund's row first, so that it counts
    refunded = sum(r["amount_minor"] for r in uow.purchases.refunds_of(program.id, purchase.id))
    kept = dataclasses.replace(purchase, total=Money(max(purchase.total.minor - refunded, 0), purchase.total.currency))
    facts = EventFacts("purchase", purchase.occurred_at, purchase=kept)
    assert purchase.member_id is not None
    if kept.total.minor > 0 and _condition_holds(uow, program, settings, facts, purchase.member_id):
        return {}
    if not uow.referrals.set_status(program.id, referral["id"], "completed", {"status": "reversed", "ended_at": now}):
        return {}
    taken = _take_back(uow, program, referral, now)
    uow.emit(program.id, Event(events.REFERRAL_REVERSED, {
        "referral_id": str(referral["id"]), "referrer_id": str(referral["referrer_id"]),
        "referee_id": str(referral["referee_id"]), "purchase_id": str(purchase.id), "refund_id": str(refund["id"]),
        "reversed": taken}))  # fmt: skip
    return {"referral": {"id": str(referral["id"]), "status": "reversed", "reversed": taken}}


def _take_back(uow: UnitOfWork, program: Program, referral: dict[str, Any], now: datetime) -> dict[str, Any]:
    rewards: dict[str, dict[str, Any]] = referral["rewards"] or {}
    out: dict[str, Any] = {}
    for role, reward in sorted(rewards.items(), key=lambda item: item[1]["member_id"]):  # lock order: by member id
        member_id = UUID(reward["member_id"])
        view: dict[str, Any] = {"member_id": reward["member_id"], "points_taken_back": 0, "points_forgiven": 0}
        if reward.get("transfer_id") and reward["points"] > 0:
            earn_id = UUID(reward["transfer_id"])
            lot_ids = uow.referrals.lots_of(program.id, [earn_id])
            account = uow.ledger.lock_accounts(program.id, [member_id], lot_ids=lot_ids)[member_id]
            result = account.take_back(reward["points"], now, set(lot_ids), program.return_policy)
            if result.taken:
                transfer = Transfer(
                    new_id(), TransferKind.REVERSE, now,
                    move(account.account_id, system_account_id(program.id, AccountKind.ISSUANCE), result.taken),
                    member_id=member_id, corrects_id=earn_id,
                    explanation={"reason": "referral reversed", "referral_id": str(referral["id"]), "role": role,
                                 "points_due": reward["points"], "points_taken_back": result.taken,
                                 "points_forgiven": result.forgiven, "return_policy": program.return_policy.value},
                )  # fmt: skip
                uow.ledger.record(program.id, transfer, [(account, result.draw)], now)
                uow.emit(program.id, Event(events.POINTS_REVERSED, {
                    "member_id": str(member_id), "points": result.taken, "transfer_id": str(transfer.id),
                    "referral_id": str(referral["id"])}))  # fmt: skip
            view.update(points_taken_back=result.taken, points_forgiven=result.forgiven)
            for spent in reward.get("budgets", ()):
                uow.rules.return_budget(program.id, spent["campaign"], spent["points"])
            uow.rules.return_usage(program.id, member_id, [
                UsageDelta(UsageKey(Scope(u["scope"]), u["owner"], Period(u["period"]), u["key"]), u["points"],
                           u["awards"]) for u in reward.get("usage", ())])  # fmt: skip
        view["coupons"] = cancel_grants(uow, program.id, member_id, {"referral_id": str(referral["id"]), "role": role},
                                        now, "referral reversed")  # fmt: skip
        out[role] = view
    return out


# -- expiry --------------------------------------------------------------------------------------------------


def expire_referrals(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None) -> dict[str, Any]:
    """The `referrals` job: pending referrals whose window ended are `expired` (once each: a conditional UPDATE;
    running it twice, or on two workers, expires nothing twice)."""
    expired = 0
    seen: set[tuple[UUID, UUID]] = set()
    while True:
        with uow_factory(read_only=True) as uow:
            due = [d for d in uow.referrals.due_to_expire(program_id, now, BATCH) if d not in seen]
        if not due:
            return {"expired": expired}
        for pid, referral_id in due:
            seen.add((pid, referral_id))
            with uow_factory() as uow:
                row = uow.referrals.get(pid, referral_id)
                if row is None or not uow.referrals.set_status(pid, referral_id, "pending",
                                                               {"status": "expired", "ended_at": now}):  # fmt: skip
                    continue
                uow.emit(pid, Event(events.REFERRAL_EXPIRED, {
                    "referral_id": str(referral_id), "referrer_id": str(row["referrer_id"]),
                    "referee_id": str(row["referee_id"]), "expired_at": iso(row["expires_at"])}))  # fmt: skip
                uow.commit()
                expired += 1


# -- reading -------------------------------------------------------------------------------------------------


def member_referrals(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> dict[str, Any]:
    """The member's code and link (the code is created on first ask), and how the referrals they sent went."""
    with uow:
        uow.members.get(program_id, member_id)
        code = ensure_code(uow, program_id, member_id, now)
        settings = uow.referrals.settings(program_id, cached=True)
        sent = uow.referrals.of_referrer(program_id, member_id)
        own = uow.referrals.of_referee(program_id, member_id)
        coupons_cost = uow.referrals.grant_cost(program_id, "referral:", member_id)
        uow.commit()
    base = _link_base(settings)
    stats = _tally([{"status": r["status"], "reason": r["reason"], "n": 1, "points": 0} for r in sent])
    earned = sum(int((r["rewards"] or {}).get("referrer", {}).get("points", 0)) for r in sent
                 if r["status"] == "completed")  # fmt: skip
    return {"member_id": str(member_id), "code": code, "link": referral_link(base, code) if base else None,
            **stats, "reward_points": earned, "coupon_cost_points": coupons_cost,
            "referrals": [referral_view(r) for r in sent],
            "referred_by": referral_view(own) if own else None}  # fmt: skip


def program_stats(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    with uow:
        uow.programs.get(program_id, cached=True)
        rows = uow.referrals.counts(program_id)
        coupons = uow.referrals.grant_cost(program_id, "referral:")
    stats = _tally(rows)
    points = sum(int(r["points"] or 0) for r in rows if r["status"] == "completed")
    return {**stats, "reward_points": points, "coupon_cost_points": coupons, "reward_cost_points": points + coupons}


def _tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"sent": 0, **{s.value: 0 for s in ReferralStatus if s is not ReferralStatus.REJECTED},
                           "rejected": 0, "rejected_by_reason": {}}  # fmt: skip
    for row in rows:
        n = int(row["n"])
        out["sent"] += n
        out[row["status"]] += n
        if row["status"] == "rejected":
            reasons = out["rejected_by_reason"]
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + n
    return out


def list_referrals(
    uow: UnitOfWork, program_id: UUID, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    if status is not None and status not in {s.value for s in ReferralStatus}:
        raise InvalidInput("status must be one of " + ", ".join(s.value for s in ReferralStatus), field="status")
    with uow:
        uow.programs.get(program_id, cached=True)
        return [referral_view(r) for r in uow.referrals.listing(program_id, status, min(max(limit, 1), 1000))]


def get_referral(uow: UnitOfWork, program_id: UUID, referral_id: UUID) -> dict[str, Any]:
    with uow:
        row = uow.referrals.get(program_id, referral_id)
    if row is None:
        raise NotFound(f"referral {referral_id} not found", resource="referral")
    return referral_view(row)


def referral_view(row: dict[str, Any]) -> dict[str, Any]:
    rewards = row["rewards"] or {}
    return {"id": str(row["id"]), "referrer_id": str(row["referrer_id"]) if row["referrer_id"] else None,
            "referee_id": str(row["referee_id"]), "code": row["code"], "status": row["status"], "reason": row["reason"],
            "created_at": iso(row["created_at"]), "expires_at": iso(row["expires_at"]),
            "completed_at": iso(row["completed_at"]), "return_until": iso(row["return_until"]),
            "ended_at": iso(row["ended_at"]),
            "purchase_id": str(row["purchase_id"]) if row["purchase_id"] else None,
            "event_id": str(row["event_id"]) if row["event_id"] else None,
            "reward_points": row["reward_points"], "rewards": _rewards_view(rewards)}  # fmt: skip
