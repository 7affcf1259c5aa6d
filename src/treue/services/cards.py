"""Card-linked earning (issue 11): link and unlink payment cards, match a purchase's payment token to the member
who had it linked at the purchase's time, and record what was matched.

Matching costs nothing for a purchase without a payment token. With one, it is one indexed query
(`payment_cards` by programme, token and time); the purchase's `payment` row and the uses of card-linked offers are
written after the purchase in the same transaction (`after_purchase`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.cards import CardDisplay, Payment, check_token, payment_of, refuse_card_numbers
from treue.domain.durations import require_aware
from treue.domain.errors import CardTokenTaken, InvalidInput
from treue.domain.events import Event
from treue.domain.offers import code_of_campaign
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rules.evaluator import Evaluation
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.partners import require_partner
from treue.services.ports import UnitOfWork
from treue.services.views import iso


def card_view(row: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A linked card as shown: display data only (the token is the provider's, not a secret of the card)."""
    display = CardDisplay(row["brand"], row["last4"], row["exp_month"], row["exp_year"])
    status = "unlinked" if row["unlinked_at"] is not None else "linked"
    if status == "linked" and now is not None and display.expired_at(now):
        status = "expired"  # still matches: a provider may keep a token across a card's renewal
    return {"id": str(row["id"]), "member_id": str(row["member_id"]), "token": row["token"],
            "brand": row["brand"], "last4": row["last4"], "exp_month": row["exp_month"], "exp_year": row["exp_year"],
            "fingerprint": row["fingerprint"], "linked_at": iso(row["linked_at"]),
            "unlinked_at": iso(row["unlinked_at"]), "unlink_reason": row["unlink_reason"], "status": status}  # fmt: skip


def link_card(uow: UnitOfWork, program_id: UUID, member_id: UUID, data: dict[str, Any], now: datetime, *,
              actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Link a payment card to a member by its provider token and display data (`token`, `brand`, `last4`,
    `exp_month`, `exp_year`, optional `fingerprint`). A card number anywhere in `data` is refused and not kept.

    The same member linking the same token again gets the link it has (`created: false`); a token linked to
    another member of the programme is refused (card_token_taken) until that member unlinks it."""
    refuse_card_numbers(data)
    token = check_token(data.get("token"), "token")  # type: ignore[arg-type]
    display = CardDisplay.of(data.get("brand"), data.get("last4"), _int(data, "exp_month"),  # type: ignore[arg-type]
                             _int(data, "exp_year"))  # fmt: skip
    fingerprint = data.get("fingerprint")
    if fingerprint is not None and (not isinstance(fingerprint, str) or not 1 <= len(fingerprint) <= 200):
        raise InvalidInput("fingerprint must be 1 to 200 characters", field="fingerprint")
    with uow:
        uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        existing = uow.cards.active_link(program_id, token)
        if existing is not None:
            if existing["member_id"] != member_id:
                raise CardTokenTaken("this card is linked to another member of the programme")
            return card_view(existing, now) | {"created": False}
        row = {"program_id": program_id, "id": new_id(), "member_id": member_id, "token": token,
               "fingerprint": fingerprint, "brand": display.brand, "last4": display.last4,
               "exp_month": display.exp_month, "exp_year": display.exp_year, "linked_at": now, "unlinked_at": None,
               "unlink_reason": None}  # fmt: skip
        uow.cards.link(row)
        view = card_view(row, now)
        uow.emit(program_id, Event(events.CARD_LINKED, {"member_id": str(member_id), "card_id": view["id"],
                                                        "brand": display.brand, "last4": display.last4}))  # fmt: skip
        record_audit(uow, program_id, actor, "card.link", "card", view["id"], None,
                     {k: view[k] for k in ("member_id", "brand", "last4", "linked_at")}, None, now)  # fmt: skip
        uow.commit()
    return view | {"created": True}


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{key} must be a whole number", field=key)
    return value


def unlink_card(uow: UnitOfWork, program_id: UUID, member_id: UUID, card_id: UUID, now: datetime,
                reason: str | None = None, *, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """End a link now: purchases paid with the token from now on are not the member's. The link stays as history
    (purchases before now keep matching, e.g. when a feed brings them later). Unlinking twice changes nothing."""
    if reason is not None:
        refuse_card_numbers(reason)
    with uow:
        row = uow.cards.get_link(program_id, member_id, card_id, lock=True)
        if row["unlinked_at"] is not None:
            return card_view(row, now)
        uow.cards.unlink(program_id, card_id, now, reason)
        row = {**row, "unlinked_at": now, "unlink_reason": reason}
        uow.emit(program_id, Event(events.CARD_UNLINKED, {"member_id": str(member_id), "card_id": str(card_id)}))
        record_audit(uow, program_id, actor, "card.unlink", "card", str(card_id), None,
                     {"unlinked_at": iso(now), "reason": reason}, None, now)  # fmt: skip
        uow.commit()
    return card_view(row, now)


def member_cards(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, *,
                 include_unlinked: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    with uow:
        uow.members.get(program_id, member_id)
        return [card_view(row, now) for row in uow.cards.links_of(program_id, member_id,
                                                                  include_unlinked=include_unlinked)]  # fmt: skip


# -- matching -------------------------------------------------------------------------------------------------
def match_payment(uow: UnitOfWork, program_id: UUID, token: str, brand: str | None, fingerprint: str | None,
                  at: datetime) -> Payment:  # fmt: skip
    """The payment of a purchase: its token checked (never a card number) and matched to the link in force at
    the purchase's time `at`, if any (inside the caller's transaction)."""
    payment = payment_of(token, brand, fingerprint)
    found = uow.cards.match(program_id, payment.token, require_aware(at, "occurred_at"))
    if found is None:
        return payment
    card_id, member_id = found
    return Payment(payment.token, payment.brand, payment.fingerprint, card_id, member_id)


def after_purchase(uow: UnitOfWork, program: Program, purchase: Purchase, evaluation: Evaluation | None,
                   now: datetime) -> dict[str, Any] | None:  # fmt: skip
    """After a purchase was written (same transaction): the offers it used, and its payment row if it was paid
    with a token. Returns the purchase's `payment` view, or None without a payment."""
    used: list[str] = []
    member_id = purchase.member_id
    if member_id is not None and evaluation is not None:
        codes = sorted({code for a in evaluation.awards if (code := code_of_campaign(a.campaign)) is not None})
        if codes:
            used = uow.cards.use_offers(program.id, codes, member_id, purchase.occurred_at)
            for code in used:
                uow.emit(program.id, Event(events.OFFER_USED, {"offer": code, "member_id": str(member_id),
                                                               "purchase_id": str(purchase.id)}))  # fmt: skip
    payment = purchase.payment
    if payment is None:
        return None
    linked = payment.card_linked and payment.member_id == member_id
    uow.cards.add_payment({
        "program_id": program.id, "purchase_id": purchase.id, "token": payment.token, "brand": payment.brand,
        "fingerprint": payment.fingerprint, "card_id": payment.card_id if linked else None,
        "matched_member_id": payment.member_id if linked else None, "offers": used, "created_at": now})  # fmt: skip
    return {"card_linked": linked, "card_id": str(payment.card_id) if linked else None, "brand": payment.brand,
            "offers": used}  # fmt: skip


# -- merchants ------------------------------------------------------------------------------------------------
def set_merchant(uow: UnitOfWork, program_id: UUID, merchant_id: str, partner: str, now: datetime, *,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Map an acquirer's merchant id to a partner of the programme ("default": the programme itself)."""
    merchant_id = (merchant_id or "").strip()
    if not 1 <= len(merchant_id) <= 64:
        raise InvalidInput("merchant_id must be 1 to 64 characters", field="merchant_id")
    with uow:
        uow.programs.get(program_id, cached=True)
        code = require_partner(uow, program_id, partner)
        uow.cards.set_merchant(program_id, merchant_id, code, now)
        record_audit(uow, program_id, actor, "card.merchant", "merchant", merchant_id, None, {"partner": code},
                     None, now)  # fmt: skip
        uow.commit()
    return {"merchant_id": merchant_id, "partner": code}


def list_merchants(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return [{"merchant_id": m, "partner": p} for m, p in sorted(uow.cards.merchants(program_id).items())]
