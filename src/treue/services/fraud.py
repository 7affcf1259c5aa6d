"""Fraud controls (issue 10): velocity caps on earning and redeeming, held earns staff approve or reject, and the
anomaly scan that raises alerts.

Caps (`treue.domain.fraud`) are counted in fixed windows in the database: one counter row per programme, action,
subject (member, payment card, device, IP address) and window, added to by a single upsert that returns the new
totals. The upsert takes the rows' locks until commit, so two racing requests of one subject queue there and the
second sees the first's count: both cannot slip under a cap.

- Earning over a cap is not refused: the earn is posted as usual but its lots are held (the moderation mechanism
  of `services.events`: `post_earn(held_until=...)`) - in the balance as pending, not spendable - until staff
  approve (each lot becomes available when the rules meant it to) or reject (a reverse transfer takes back what
  is left of the held lots; campaign budgets and usage counters get their share back).
- Redeeming over a cap is refused with `velocity_cap_exceeded` (429, `retry_after` seconds); the transaction rolls
  back, so nothing changed - not even the counters.
- A programme without fraud settings pays nothing: its settings are cached per process (no query); with caps an
  earn or a redemption costs one statement (the upsert), and a hold a few more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.durations import zone
from treue.domain.errors import (
    FraudAlertNotFound,
    FraudHoldDecided,
    FraudHoldNotFound,
    InvalidInput,
    VelocityCapExceeded,
)
from treue.domain.events import Event
from treue.domain.fraud import (
    Action,
    Breach,
    FraudSettings,
    Origin,
    alert_period,
    breaches,
    find_cap_hits,
    find_referral_clusters,
    find_refund_patterns,
    find_spikes,
    parse_settings,
    retry_after,
    subjects,
    tallies,
)
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.domain.programs import Program, ReturnPolicy
from treue.domain.rules.evaluator import Evaluation
from treue.domain.rules.limits import Period, Scope, UsageDelta, UsageKey
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.earning import budgets_spent, usage_counted
from treue.services.events import HELD_UNTIL
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import iso

__all__ = ["HELD_UNTIL", "hold_earn", "refuse_redemption", "screen"]  # what the earn and redeem paths use
COUNTER_DAYS = 2  # counter rows older than this are pruned by the scan (the longest window is a day)
DECISIONS = ("approve", "reject")


# -- settings -------------------------------------------------------------------------------------------------
def get_settings(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    """The programme's caps and alert thresholds; `configured` false: none set (no caps, the defaults shown)."""
    with uow:
        uow.programs.get(program_id, cached=True)
        found = uow.fraud.settings(program_id)
    return (found or FraudSettings()).as_dict() | {"configured": found is not None}


def save_settings(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Replace the programme's fraud settings (validated first; audited with before and after)."""
    settings = parse_settings(values)
    with uow:
        uow.programs.get(program_id, cached=True)
        before = uow.fraud.settings(program_id)
        uow.fraud.save_settings(program_id, settings.as_dict(), now)
        record_audit(uow, program_id, actor, "fraud.settings", "program", program_id,
                     before.as_dict() if before else None, settings.as_dict(), None, now)  # fmt: skip
        uow.commit()
    return settings.as_dict() | {"configured": True}


# -- the hooks on the earn and redeem paths ----------------------------------------------------------------------
def screen(uow: UnitOfWork, program: Program, action: Action, member_id: UUID, points: int, at: datetime,
           origin: Origin | None = None, payment_token: str | None = None) -> list[Breach]:  # fmt: skip
    """Count one `action` of `points` for the member (and the card, device and IP it carries) and return the
    caps it breaks. No query when the programme has no caps for the action (cached settings); else one upsert.
    Call it after the member's account lock (the fixed lock order: account, then counters)."""
    settings = uow.fraud.settings(program.id, cached=True)
    if settings is None:
        return []
    caps = settings.caps_for(action)
    if not caps:
        return []
    tz = zone(program.timezone)
    known = subjects(program.id, member_id, origin, payment_token)
    totals = uow.fraud.count(program.id, tallies(caps, known, at, tz), points)
    return breaches(caps, known, totals, at, tz)


def refuse_redemption(uow: UnitOfWork, program: Program, member_id: UUID, points: int, now: datetime,
                      origin: Origin | None = None) -> None:  # fmt: skip
    """Raise `velocity_cap_exceeded` if this redemption goes over a redeem cap (the caller's transaction then
    rolls back: the count it added goes with it)."""
    broken = screen(uow, program, Action.REDEEM, member_id, points, now, origin)
    if broken:
        raise VelocityCapExceeded(
            "the redemption goes over the programme's velocity limit: " + ", ".join(b.cap.name for b in broken),
            caps=[b.as_dict() for b in broken], retry_after=retry_after(broken, now))  # fmt: skip


def hold_earn(uow: UnitOfWork, program: Program, member_id: UUID, transfer_id: UUID, meant: Sequence[NewLot],
              evaluation: Evaluation, broken: Sequence[Breach], now: datetime, *,
              purchase_id: UUID | None = None) -> dict[str, Any]:  # fmt: skip
    """Record the hold of an earn posted with `post_earn(held_until=HELD_UNTIL)`: its lots as the rules meant
    them (for the approval), what it took from campaign budgets and usage counters (for a rejection), and why."""
    hold_id = new_id()
    reasons = [b.as_dict() for b in broken]
    held = {"lots": [{"lot_id": str(lot.id), "points": lot.amount, "available_at": lot.available_at.isoformat()}
                     for lot in meant],
            "budgets": budgets_spent(evaluation), "usage": usage_counted(evaluation)}  # fmt: skip
    uow.fraud.add_hold({"program_id": program.id, "id": hold_id, "member_id": member_id, "transfer_id": transfer_id,
                        "purchase_id": purchase_id, "points": evaluation.points, "reasons": reasons, "held": held,
                        "status": "pending", "created_at": now})  # fmt: skip
    uow.emit(program.id, Event(events.FRAUD_TRANSACTION_HELD, {
        "hold_id": str(hold_id), "member_id": str(member_id), "transfer_id": str(transfer_id),
        "purchase_id": str(purchase_id) if purchase_id else None, "points": evaluation.points,
        "caps": [b.cap.name for b in broken]}))  # fmt: skip
    return {"hold_id": str(hold_id), "status": "pending", "points": evaluation.points, "reasons": reasons}


# -- held transactions ------------------------------------------------------------------------------------------
def hold_view(row: dict[str, Any]) -> dict[str, Any]:
    name = " ".join(x for x in (row.get("first_name"), row.get("last_name")) if x) or None
    return {
        "id": str(row["id"]), "member_id": str(row["member_id"]), "member_name": name,
        "card_number": row.get("card_number"), "transfer_id": str(row["transfer_id"]),
        "purchase_id": str(row["purchase_id"]) if row["purchase_id"] else None, "points": row["points"],
        "reasons": row["reasons"], "status": row["status"], "created_at": iso(row["created_at"]),
        "decided_at": iso(row["decided_at"]), "decided_by": row["decided_by"], "note": row["note"],
        "reverse_transfer_id": str(row["reverse_transfer_id"]) if row["reverse_transfer_id"] else None,
    }  # fmt: skip


def list_holds(uow: UnitOfWork, program_id: UUID, status: str | None = "pending",
               limit: int = 100) -> list[dict[str, Any]]:  # fmt: skip
    """Held earns, newest first (`status` pending, approved, rejected; None: all)."""
    if status is not None and status not in ("pending", "approved", "rejected"):
        raise InvalidInput("status is pending, approved or rejected", field="status")
    with uow:
        uow.programs.get(program_id, cached=True)
        return [hold_view(r) for r in uow.fraud.holds(program_id, status, min(max(limit, 1), 500))]


def decide_hold(uow: UnitOfWork, program_id: UUID, hold_id: UUID, decision: str, now: datetime,
                actor: str = "api", note: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Approve (the held points become available as the rules meant) or reject (what is left of them is
    reversed) a held earn. Final; audited; `fraud.transaction_approved` / `fraud.transaction_rejected`."""
    if decision not in DECISIONS:
        raise InvalidInput("decision is approve or reject", field="decision")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        hold = uow.fraud.hold(program_id, hold_id)
        if hold is None:
            raise FraudHoldNotFound("no held transaction with that id", resource="fraud_hold")
        member_id = hold["member_id"]
        held = hold["held"]
        lot_ids = [UUID(lot["lot_id"]) for lot in held["lots"]]
        # The member's account lock first (as every earn and spend): decisions on one member queue here.
        account = uow.ledger.lock_accounts(program_id, [member_id], lot_ids=lot_ids)[member_id]
        status = "approved" if decision == "approve" else "rejected"
        if not uow.fraud.decide(program_id, hold_id, {"status": status, "decided_at": now, "decided_by": actor,
                                                      "note": note}):  # fmt: skip
            raise FraudHoldDecided(f"the held transaction was {hold['status']} already", decided=hold["status"])
        view: dict[str, Any] = {"id": str(hold_id), "member_id": str(member_id), "status": status,
                                "points": hold["points"]}  # fmt: skip
        if decision == "approve":
            released = []
            for lot in held["lots"]:
                at = max(datetime.fromisoformat(lot["available_at"]), now)
                uow.referrals.release_lot(program_id, UUID(lot["lot_id"]), at)  # the moderation's release
                released.append({"points": lot["points"], "available_at": at.isoformat()})
            view["lots"] = released
            topic = events.FRAUD_TRANSACTION_APPROVED
        else:
            view.update(_reverse(uow, program, account, hold, set(lot_ids), now, actor))
            topic = events.FRAUD_TRANSACTION_REJECTED
        record_audit(uow, program_id, actor, f"fraud.hold.{decision}", "fraud_hold", hold_id, {"status": "pending"},
                     {"status": status, **{k: v for k, v in view.items() if k in ("points_reversed", "lots")}},
                     note, now)  # fmt: skip
        uow.emit(program_id, Event(topic, {"hold_id": str(hold_id), "member_id": str(member_id),
                                           "transfer_id": str(hold["transfer_id"]), "points": hold["points"],
                                           "purchase_id": str(hold["purchase_id"]) if hold["purchase_id"] else None,
                                           "note": note}))  # fmt: skip
        uow.commit()
    return view


def _reverse(uow: UnitOfWork, program: Program, account: Any, hold: dict[str, Any], lot_ids: set[UUID],
             now: datetime, actor: str) -> dict[str, Any]:  # fmt: skip
    """Take back what is left of the held lots (never the member's other points), give campaign budgets and
    usage counters back what the earn used, and leave the purchase with nothing earned (a later refund of it then
    takes nothing)."""
    left = sum(lot.remaining for lot in account.lots if lot.id in lot_ids and not lot.is_expired(now))
    out: dict[str, Any] = {"points_reversed": 0, "reverse_transfer_id": None}
    if left > 0:
        result = account.take_back(left, now, lot_ids, ReturnPolicy.ONLY_PENDING)
        transfer = Transfer(new_id(), TransferKind.REVERSE, now,
                            move(account.account_id, system_account_id(program.id, AccountKind.ISSUANCE), result.taken),
                            member_id=account.member_id, purchase_id=hold["purchase_id"],
                            corrects_id=hold["transfer_id"],
                            explanation={"reason": "held earn rejected", "hold_id": str(hold["id"]),
                                         "points_reversed": result.taken})  # fmt: skip
        uow.ledger.record(program.id, transfer, [(account, result.draw)], now, actor=actor)
        uow.fraud.decide_reverse(program.id, hold["id"], transfer.id)
        out.update(points_reversed=result.taken, reverse_transfer_id=str(transfer.id))
    held = hold["held"]
    for spent in held.get("budgets", ()):
        uow.rules.return_budget(program.id, spent["campaign"], spent["points"])
    uow.rules.return_usage(program.id, account.member_id, [
        UsageDelta(UsageKey(Scope(u["scope"]), u["owner"], Period(u["period"]), u["key"]), u["points"], u["awards"])
        for u in held.get("usage", ())])  # fmt: skip
    if hold["purchase_id"] is not None:
        uow.fraud.clear_purchase_points(program.id, hold["purchase_id"])
    return out


# -- alerts -----------------------------------------------------------------------------------------------------
def alert_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "kind": row["kind"], "subject": row["subject"], "period": row["period"],
            "member_id": str(row["member_id"]) if row["member_id"] else None, "details": row["details"],
            "status": row["status"], "raised_at": iso(row["raised_at"]),
            "acknowledged_at": iso(row["acknowledged_at"]), "acknowledged_by": row["acknowledged_by"],
            "note": row["note"]}  # fmt: skip


def list_alerts(
    uow: UnitOfWork, program_id: UUID, status: str | None = "open", limit: int = 100
) -> list[dict[str, Any]]:
    if status is not None and status not in ("open", "acknowledged"):
        raise InvalidInput("status is open or acknowledged", field="status")
    with uow:
        uow.programs.get(program_id, cached=True)
        return [alert_view(r) for r in uow.fraud.alerts(program_id, status, min(max(limit, 1), 500))]


def acknowledge_alert(uow: UnitOfWork, program_id: UUID, alert_id: UUID, now: datetime, actor: str = "api",
                      note: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Mark an alert as seen (audited). Acknowledging it again changes nothing."""
    with uow:
        uow.programs.get(program_id, cached=True)
        found = uow.fraud.alert(program_id, alert_id)
        if found is None:
            raise FraudAlertNotFound("no fraud alert with that id", resource="fraud_alert")
        if uow.fraud.acknowledge(program_id, alert_id, {"status": "acknowledged", "acknowledged_at": now,
                                                        "acknowledged_by": actor, "note": note}):  # fmt: skip
            record_audit(uow, program_id, actor, "fraud.alert.acknowledge", "fraud_alert", alert_id,
                         {"status": "open"}, {"status": "acknowledged"}, note, now)  # fmt: skip
        row = uow.fraud.alert(program_id, alert_id)
        uow.commit()
    assert row is not None
    return alert_view(row)


def scan(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None) -> dict[str, Any]:
    """The `fraud_scan` job: every programme with fraud settings (or the one named, with the default thresholds
    if it has none) is scanned at most once per UTC hour; each anomaly raises one alert per kind, subject and
    local day, with `fraud.alert_raised`. Old counter rows are pruned."""
    if program_id is None:
        with uow() as reading:
            programs = reading.fraud.programs_with_settings()
    else:
        programs = [program_id]
    results = {str(p): scan_program(uow(), p, now) for p in programs}
    return {"programs": len(results), "alerts": sum(r.get("alerts", 0) for r in results.values()),
            "results": results}  # fmt: skip


def scan_program(uow: UnitOfWork, program_id: UUID, now: datetime) -> dict[str, Any]:
    period = now.strftime("%Y-%m-%dT%H")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        settings = uow.fraud.settings(program_id) or FraudSettings()
        if not settings.active:
            return {"skipped": "fraud controls are off", "alerts": 0}
        if not uow.fraud.claim_scan(program_id, period, now):
            return {"skipped": f"scanned in {period} already", "alerts": 0}
        th = settings.alerts
        day = timedelta(days=1)
        findings = find_refund_patterns(uow.fraud.redemptions_and_refunds(
            program_id, now - 2 * th.refund_days * day, now - th.refund_days * day), th)  # fmt: skip
        findings += find_referral_clusters(
            uow.fraud.referral_fingerprints(program_id, now - th.referral_days * day, th.referrals_per_fingerprint), th
        )
        recent = uow.fraud.points_earned(program_id, now - day, now)
        if recent:
            baseline = uow.fraud.points_earned(program_id, now - day - th.baseline_days * day, now - day)
            findings += find_spikes(recent, baseline, th)
        findings += find_cap_hits(uow.fraud.holds_per_member(program_id, now - th.cap_hit_days * day), th)
        on = alert_period(now, zone(program.timezone)).isoformat()
        raised = 0
        for finding in findings:
            alert_id = new_id()
            if uow.fraud.add_alert({"program_id": program_id, "id": alert_id, "kind": finding.kind.value,
                                    "subject": finding.subject, "period": on, "member_id": finding.member_id,
                                    "details": finding.details, "status": "open", "raised_at": now}):  # fmt: skip
                raised += 1
                uow.emit(program_id, Event(events.FRAUD_ALERT_RAISED, {
                    "alert_id": str(alert_id), "kind": finding.kind.value, "subject": finding.subject,
                    "member_id": str(finding.member_id) if finding.member_id else None, "period": on,
                    "details": finding.details}))  # fmt: skip
        pruned = uow.fraud.prune_counters(program_id, now - COUNTER_DAYS * day)
        uow.fraud.finish_scan(program_id, period, raised)
        uow.commit()
    return {"alerts": raised, "findings": len(findings), "counters_pruned": pruned}
