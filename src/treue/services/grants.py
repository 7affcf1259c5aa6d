"""Rule grants made real: a `grant_reward` or `grant_coupon` effect issues the member's coupon in the
transaction that earned it (issue 7).

A rule names a reward of the catalogue by its id (or, for convenience, by its SKU, when exactly one active
reward has it): `{"type": "grant_reward", "reward": "<reward id>"}`; `grant_coupon` issues the coupon of a
catalogue reward in the same way (a coupon is how every reward reaches the till). A granted reward is a
redemption that cost the member nothing: as for the club's vouchers, the reward's price in points is posted
issuance -> redemption (the member's balance is untouched), so the ledger knows what grants cost, and the
redemption's status is `granted` (not `active`: cancelling it gives the member no points back).

Each unit of a grant is one row of `reward_grants`, keyed by member, source ("purchase:<id>", "event:<id>",
"referral:<id>:referrer"...), rule, reward and unit: the same source never grants twice. A reward that is
unknown, inactive, outside its dates or out of stock is a grant `skipped` with the reason (stored, and in the
`reward.granted` / `coupon.granted` outbox event): the purchase or event itself goes through.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.coupons import Coupon, CouponStatus, coupon_valid_until, new_coupon_code
from treue.domain.errors import DomainError, NotFound
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.rewards import Reward
from treue.ids import new_id, random_choice
from treue.services.ports import UnitOfWork

log = logging.getLogger("treue.grants")
GRANTED_REDEMPTION_STATUS = "granted"  # not "active": it cost the member no points, so it gives none back


def source_key(source: dict[str, Any]) -> str:
    """The stable name of what granted: a purchase, an event, a refund, a referral's role, an enrolment."""
    for key, prefix in (("referral_id", "referral"), ("purchase_id", "purchase"), ("event_id", "event"),
                        ("refund_id", "refund")):  # fmt: skip
        if source.get(key):
            role = f":{source['role']}" if key == "referral_id" and source.get("role") else ""
            return f"{prefix}:{source[key]}{role}"
    return ":".join(f"{k}={source[k]}" for k in sorted(source))[:200] or "unknown"


def fulfil_grants(uow: UnitOfWork, program_id: UUID, member_id: UUID, grants: list[dict[str, Any]],
                  source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """Issue what the rules granted: one coupon per unit, each once per source.

    Each grant dict (as in the explanation) is completed in place with `status` ("granted", "skipped" or
    "already_granted"), `coupon_codes` and, for a skipped one, `note`: the outbox event that follows carries
    them."""
    key = source_key(source)
    done = {(g["rule"], g["kind"], g["code"], g["seq"]): g for g in uow.referrals.grants_of(program_id, member_id, key)}
    rows: list[dict[str, Any]] = []
    for grant in grants:
        reward, why = _reward(uow, program_id, grant["code"], now)
        codes: list[str] = []
        notes: list[str] = []
        statuses: set[str] = set()
        for seq in range(1, int(grant.get("quantity", 1)) + 1):
            earlier = done.get((grant["rule"], grant["kind"], grant["code"], seq))
            if earlier is not None:
                statuses.add("already_granted")
                if earlier["coupon_code"]:
                    codes.append(earlier["coupon_code"])
                continue
            row = {"program_id": program_id, "id": new_id(), "member_id": member_id, "source": key,
                   "rule": grant["rule"], "kind": grant["kind"], "code": grant["code"], "seq": seq,
                   "status": "skipped", "reward_id": reward.id if reward else None, "redemption_id": None,
                   "transfer_id": None, "coupon_code": None, "note": why, "created_at": now, "cancelled_at": None}  # fmt: skip
            if reward is not None and why is None:
                issued = _issue(uow, program_id, member_id, reward, key, now)
                if isinstance(issued, str):
                    row["note"] = issued
                else:
                    row.update(issued, status="granted")
                    codes.append(issued["coupon_code"])
            statuses.add(row["status"])
            if row["note"]:
                notes.append(row["note"])
            rows.append(row)
        grant["status"] = "granted" if "granted" in statuses else sorted(statuses)[0] if statuses else "skipped"
        grant["coupon_codes"] = codes
        if notes:
            grant["note"] = notes[0]
            log.info("programme %s: grant %s %s for member %s skipped: %s", program_id, grant["kind"],
                     grant["code"], member_id, notes[0])  # fmt: skip
    uow.referrals.add_grants(rows)


def _reward(uow: UnitOfWork, program_id: UUID, code: str, now: datetime) -> tuple[Reward | None, str | None]:
    """The catalogue reward a rule names (id, or the SKU of exactly one active reward) and why it cannot be
    granted now (None: it can)."""
    reward: Reward | None = None
    try:
        reward = uow.rewards.get(program_id, UUID(code))
    except (ValueError, NotFound):
        matches = [r for r in uow.rewards.all(program_id, True) if r.sku == code]
        if len(matches) == 1:
            reward = matches[0]
    if reward is None:
        return None, f"reward_unknown: no reward of the catalogue is named {code!r}"
    try:
        reward.check_redeemable(now, 0)  # active, within its dates, in stock (a grant ignores per-member limits)
    except DomainError as refused:
        return reward, f"{refused.code}: {refused.detail}"
    return reward, None


def _issue(uow: UnitOfWork, program_id: UUID, member_id: UUID, reward: Reward, key: str,
           now: datetime) -> dict[str, Any] | str:  # fmt: skip
    """One coupon of `reward`, one from stock, its cost posted issuance -> redemption; a note if out of stock."""
    if not uow.rewards.take_from_stock(program_id, reward.id):  # a conditional UPDATE: never below zero
        return "reward_out_of_stock: the reward is out of stock"
    redemption_id, transfer_id = new_id(), new_id()
    transfer = Transfer(transfer_id, TransferKind.REDEEM, now,
                        move(system_account_id(program_id, AccountKind.ISSUANCE),
                             system_account_id(program_id, AccountKind.REDEMPTION), reward.cost_points),
                        member_id=member_id, redemption_id=redemption_id,
                        explanation={"reason": "rule grant", "source": key, "reward_id": str(reward.id),
                                     "cost_points": reward.cost_points})  # fmt: skip
    uow.ledger.record(program_id, transfer, [], now, actor="rules")
    uow.rewards.add_redemption({"program_id": program_id, "id": redemption_id, "member_id": member_id,
                                "reward_id": reward.id, "transfer_id": transfer_id, "cost_points": reward.cost_points,
                                "status": GRANTED_REDEMPTION_STATUS, "created_at": now})  # fmt: skip
    coupon = Coupon(new_id(), new_coupon_code(random_choice), member_id, reward.id, redemption_id,
                    CouponStatus.ISSUED, coupon_valid_until(now, reward.coupon_valid_days, reward.valid_until))  # fmt: skip
    uow.rewards.add_coupon(program_id, coupon, now)
    return {"redemption_id": redemption_id, "transfer_id": transfer_id, "coupon_code": coupon.code}


def cancel_grants(uow: UnitOfWork, program_id: UUID, member_id: UUID, source: dict[str, Any], now: datetime,
                  why: str) -> list[dict[str, Any]]:  # fmt: skip
    """Take back the unused coupons a source granted (a reversed referral, a rejected event): the coupon is
    cancelled, the reward goes back to stock and its cost back to issuance. A coupon already used stays (and is
    reported `kept`)."""
    out = []
    for grant in uow.referrals.grants_of(program_id, member_id, source_key(source)):
        if grant["status"] != "granted":
            continue
        view = {"code": grant["code"], "coupon_code": grant["coupon_code"]}
        coupon = uow.rewards.coupon_of_redemption(program_id, grant["redemption_id"])
        if coupon is None or not uow.rewards.set_coupon_status(program_id, coupon.id, CouponStatus.CANCELLED,
                                                               expected=CouponStatus.ISSUED):  # fmt: skip
            out.append(view | {"status": "kept"})
            continue
        uow.referrals.cancel_grant(program_id, grant["id"], now)
        uow.referrals.set_redemption_status(program_id, grant["redemption_id"], "cancelled", now)
        uow.rewards.return_to_stock(program_id, grant["reward_id"])
        redemption = uow.rewards.get_redemption(program_id, grant["redemption_id"])
        transfer = Transfer(new_id(), TransferKind.REVERSE, now,
                            move(system_account_id(program_id, AccountKind.REDEMPTION),
                                 system_account_id(program_id, AccountKind.ISSUANCE), redemption["cost_points"]),
                            member_id=member_id, redemption_id=grant["redemption_id"], corrects_id=grant["transfer_id"],
                            explanation={"reason": "grant cancelled", "note": why,
                                         "reward_id": str(grant["reward_id"])})  # fmt: skip
        uow.ledger.record(program_id, transfer, [], now, actor="rules")
        out.append(view | {"status": "cancelled"})
    return out
