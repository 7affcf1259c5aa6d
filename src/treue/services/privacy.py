"""GDPR use cases (issue 10): export a member's data, erase a member, retention of inactive members.

Erasure keeps the ledger whole: the member row stays as a pseudonym (no name, email, phone, birthday, reference,
attributes; a new card number nobody holds), transfers, postings, purchases and their amounts stay, so every sum,
KPI and `treue verify` is unchanged. Personal data elsewhere is deleted (consents, sessions, sign-in codes,
double opt-ins, leaderboard nickname, segment memberships, predictions) or blanked (messages, linked cards,
referral digests, survey comments, and every stored document that quotes the member: audit snapshots, outbox and
webhook payloads, replayed API answers, shop and till results, custom event attributes). What is left on the
member's accounts is written off to breakage by one `adjust` transfer: nobody can spend it any more, so keeping
it would overstate the points liability for ever (docs/privacy.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.errors import NotFound
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.members import new_card_number
from treue.domain.money import Money
from treue.domain.privacy import (
    FORFEIT_REASON,
    Needles,
    check_reason,
    check_retention,
    forfeit,
    inactive_before,
    redact_text,
)
from treue.ids import new_id, random_digits
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import balance_view, iso, member_view, transfer_view

EXPORT_FORMAT = "treue.member-export/1"
EXPORT_HISTORY = 100_000  # every movement and tier change: an export is complete or it is no export
SOURCES = ("staff", "member", "retention")
RETENTION_REASON = "retention: inactive for longer than {months} months"


# -- export -----------------------------------------------------------------------------------------------------
def export_member(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Everything stored about a member as one JSON document (GDPR art. 15 and 20), in one transaction that
    also writes the audit row of who exported it and when."""
    from treue.services.rewards import list_redemptions
    from treue.services.tiers import member_tier
    from treue.services.wallet import get_wallet

    with uow:
        program = uow.programs.get(program_id, cached=True)
        row = uow.members.get(program_id, member_id)
        member = member_view(row, uow.members.consents(program_id, member_id))
        member["erased_at"] = iso(row.get("erased_at"))
        account = uow.ledger.load_account(program_id, member_id)
        wallet = get_wallet(uow, program_id, member_id, now)
        erasure = uow.privacy.erasure(program_id, member_id)
        document = {
            "format": EXPORT_FORMAT, "exported_at": iso(now), "exported_by": actor,
            "program": {"id": str(program_id), "name": program.name, "currency": program.currency},
            "member": member,
            "erasure": _erasure_view(erasure) if erasure else None,
            "balances": {"points": balance_view(member_id, account.balance_at(now), program), "wallet": wallet},
            "tier": member_tier(uow, program_id, member_id, now, history=EXPORT_HISTORY),
            # the points history as the member sees it (newest first), beside the raw transfers below
            "history": [transfer_view(r) for r in uow.ledger.history(program_id, member_id, EXPORT_HISTORY, None)],
            **uow.privacy.export_rows(program_id, member_id),
            "redemptions": list_redemptions(uow, program_id, member_id),  # with their coupons' codes and states
        }  # fmt: skip
        record_audit(uow, program_id, actor, "member.export", "member", member_id, None, None,
                     "data export (GDPR art. 15/20)", now)  # fmt: skip
        uow.commit()
    return document


# -- erasure ----------------------------------------------------------------------------------------------------
def erase_member(uow: UnitOfWork, program_id: UUID, member_id: UUID, reason: str | None, now: datetime,
                 actor: str = "api", source: str = "staff",
                 inactive_since: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Erase a member's personal data for good, keeping the ledger's sums (see the module's docstring).

    Idempotent: a member erased already is left as it is and the answer says `already_erased`. With
    `inactive_since` (the retention job) a member active since then is skipped (`status: active`)."""
    text = check_reason(reason)
    if source not in SOURCES:
        raise ValueError(f"unknown erasure source {source!r}")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        # Lock order of every use case: the member's points account first (404 for another programme's member).
        account = uow.ledger.lock_accounts(program_id, [member_id])[member_id]
        member = uow.privacy.lock_member(program_id, member_id)
        if member is None:  # pragma: no cover - the account exists only with its member
            raise NotFound(f"member {member_id} not found", resource="member")
        if member["erased_at"] is not None:
            done = uow.privacy.erasure(program_id, member_id)
            return {"member_id": str(member_id), "status": "already_erased", "erased_at": iso(member["erased_at"]),
                    **({"erasure": _erasure_view(done)} if done else {})}  # fmt: skip
        if inactive_since is not None and not uow.privacy.inactive_members(program_id, inactive_since, 1,
                                                                           only=[member_id]):  # fmt: skip
            return {"member_id": str(member_id), "status": "active"}
        contained, whole = uow.privacy.personal_values(program_id, member)
        needles = Needles.of(contained, whole)
        released = uow.privacy.release_holds(program_id, member_id, now)
        transfer_id, points = _write_off_points(uow, program_id, account, now, actor)
        wallets = _write_off_wallets(uow, program_id, member_id, now, actor)
        cleared = uow.privacy.clear_member_rows(program_id, member_id, now)
        if released:
            cleared["checkout_holds"] = released
        uow.privacy.pseudonymise_member(program_id, member_id, new_card_number(random_digits), now)
        uow.privacy.begin_redaction(program_id, member_id, now)
        identifiers = [member["email"], member["phone"], member["external_ref"], member["card_number"]]
        for name, count in uow.privacy.redact_documents(program_id, member_id, identifiers, needles).items():
            cleared[name] = cleared.get(name, 0) + count
        uow.privacy.end_redaction(program_id, member_id)
        kept_reason = redact_text(text, needles) or text
        record = {"program_id": program_id, "member_id": member_id, "erased_at": now, "actor": actor,
                  "source": source, "reason": kept_reason, "points_forfeited": points, "transfer_id": transfer_id,
                  "wallet_forfeited": wallets, "cleared": dict(sorted(cleared.items()))}  # fmt: skip
        uow.privacy.add_erasure(record)
        summary = {"points_forfeited": points, "wallet_forfeited": wallets, "source": source}
        record_audit(uow, program_id, actor, "member.erase", "member", member_id, None,
                     {**summary, "cleared": record["cleared"]}, kept_reason, now)  # fmt: skip
        uow.emit(program_id, Event(events.MEMBER_ERASED, {"member_id": str(member_id), "erased_at": iso(now),
                                                          **summary}))  # fmt: skip
        uow.commit()
    currency = program.currency
    return {"member_id": str(member_id), "status": "erased", "erased_at": iso(now), "source": source,
            "points_forfeited": points, "transfer_id": str(transfer_id) if transfer_id else None,
            "wallet_forfeited": {c: Money(m, c).format() for c, m in wallets.items()} or {},
            "currency": currency, "cleared": record["cleared"]}  # fmt: skip


def _write_off_points(uow: UnitOfWork, program_id: UUID, account: Any, now: datetime,
                      actor: str) -> tuple[UUID | None, int]:  # fmt: skip
    draw, points = forfeit(account)
    if points == 0:
        return None, 0
    breakage = system_account_id(program_id, AccountKind.BREAKAGE)
    transfer = Transfer(new_id(), TransferKind.ADJUST, now, move(account.account_id, breakage, points),
                        member_id=account.member_id,
                        explanation={"reason": FORFEIT_REASON, "points": points, "by": actor})  # fmt: skip
    uow.ledger.record(program_id, transfer, [(account, draw)], now, actor=actor)
    return transfer.id, points


def _write_off_wallets(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime,
                       actor: str) -> dict[str, int]:  # fmt: skip
    out: dict[str, int] = {}
    for currency in uow.privacy.wallet_currencies(program_id, member_id):
        wallet = uow.wallet.lock(program_id, member_id, currency)
        if wallet is None:  # pragma: no cover - listed because it exists
            continue
        draw, amount = forfeit(wallet.account)
        if amount == 0:
            continue
        breakage = system_account_id(program_id, AccountKind.BREAKAGE, currency)
        transfer = Transfer(new_id(), TransferKind.ADJUST, now, move(wallet.account_id, breakage, amount, currency),
                            member_id=member_id, explanation={"reason": FORFEIT_REASON, "currency": currency,
                                                              "amount": Money(amount, currency).format(), "by": actor})  # fmt: skip
        uow.wallet.record(program_id, transfer, wallet, draw, now, actor=actor)
        out[currency] = amount
    return out


def _erasure_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"erased_at": iso(row["erased_at"]), "actor": row["actor"], "source": row["source"],
            "reason": row["reason"], "points_forfeited": row["points_forfeited"],
            "transfer_id": str(row["transfer_id"]) if row["transfer_id"] else None,
            "wallet_forfeited": row["wallet_forfeited"], "cleared": row["cleared"]}  # fmt: skip


# -- retention --------------------------------------------------------------------------------------------------
def get_retention(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    with uow:
        uow.programs.get(program_id, cached=True)
        row = uow.privacy.settings(program_id)
    return _retention_view(row)


def set_retention(uow: UnitOfWork, program_id: UUID, months: Any, now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Erase members automatically after `months` of inactivity (None: never). Audited."""
    value = check_retention(months)
    with uow:
        uow.programs.get(program_id, cached=True)
        before = _retention_view(uow.privacy.settings(program_id))
        uow.privacy.save_settings(program_id, value, actor, now)
        after = _retention_view(uow.privacy.settings(program_id))
        record_audit(uow, program_id, actor, "privacy.retention", "program", program_id,
                     {"retention_months": before["retention_months"]}, {"retention_months": value}, None, now)  # fmt: skip
        uow.commit()
    return after


def _retention_view(row: dict[str, Any] | None) -> dict[str, Any]:
    months = row["retention_months"] if row else None
    return {"retention_months": months, "enabled": months is not None,
            "updated_at": iso(row["updated_at"]) if row else None, "updated_by": row["updated_by"] if row else None}  # fmt: skip


def run_retention(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None,
                  dry_run: bool = False, batch: int = 200, actor: str = "jobs.retention") -> dict[str, Any]:  # fmt: skip
    """Erase the members of every programme with retention on (or of one) whose last activity is older than its
    setting, in batches, one transaction per member. Idempotent: an erased member is no longer a candidate.
    With `dry_run` only the candidates are listed (ids and last activity, nothing personal)."""
    with uow_factory(read_only=True) as uow:
        programs = uow.privacy.programs_with_retention(program_id)
    erased = skipped = 0
    candidates: list[dict[str, Any]] = []
    points = 0
    for pid, months in programs:
        before = inactive_before(now, months)
        after: UUID | None = None
        while True:
            with uow_factory(read_only=True) as uow:
                found = uow.privacy.inactive_members(pid, before, batch, after=after)
            if not found:
                break
            after = found[-1][0]
            for member_id, last in found:
                if dry_run:
                    candidates.append({"program_id": str(pid), "member_id": str(member_id),
                                       "last_activity": iso(last)})  # fmt: skip
                    continue
                done = erase_member(uow_factory(), pid, member_id, RETENTION_REASON.format(months=months), now,
                                    actor=actor, source="retention", inactive_since=before)  # fmt: skip
                if done["status"] == "erased":
                    erased += 1
                    points += done["points_forfeited"]
                else:
                    skipped += 1
            if len(found) < batch:
                break
    result: dict[str, Any] = {"programs": len(programs), "dry_run": dry_run}
    if dry_run:
        return result | {"candidates": candidates, "would_erase": len(candidates)}
    return result | {"erased": erased, "skipped": skipped, "points_forfeited": points}
