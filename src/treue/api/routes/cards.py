"""Card-linked earning: linked cards, card feeds, offers (issue 11).

Cards are linked by the payment provider's token; a card number anywhere in a request is refused
(`card_number_refused`) and neither stored nor logged nor echoed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, Context, allow
from treue.api.routes.common import canonical, given
from treue.api.schemas.cards import (
    CardLinkCreate,
    CardOut,
    CardUnlink,
    FeedCreate,
    FeedOut,
    MemberOfferOut,
    MerchantCreate,
    MerchantOut,
    OfferCreate,
    OfferOut,
    OfferStatsOut,
)
from treue.api.schemas.common import PROBLEMS
from treue.services import card_feeds, cards, offers
from treue.services.keys import Scope

router = APIRouter(tags=["cards"], responses=PROBLEMS)
# The merchant's shop, till, app or back office; a coalition partner's key does not manage members' cards.
CARD_WRITE = allow(Scope.ADMIN, Scope.SHOP, Scope.POS)


@router.post("/members/{member_id}/cards", status_code=201, response_model=CardOut)
def link_card(member_id: UUID, body: CardLinkCreate, ctx: Context = Depends(CARD_WRITE)) -> JSONResponse:
    """Link a payment card by its provider token and display data (brand, last 4, expiry). Never send a card
    number: it is refused (card_number_refused). Linking the member's own linked token again returns that link;
    a token linked to another member is refused (card_token_taken)."""
    data = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cards.link_card(
        uow, ctx.program_id, member_id, data, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/members/{member_id}/cards", response_model=list[CardOut])
def member_cards(member_id: UUID, include_unlinked: bool = False, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The member's linked cards (with `include_unlinked`, also the history of unlinked ones)."""
    return cards.member_cards(ctx.uow(), ctx.program_id, member_id, ctx.now(), include_unlinked=include_unlinked)


@router.post("/members/{member_id}/cards/{card_id}/unlink", response_model=CardOut)
def unlink_card(member_id: UUID, card_id: UUID, body: CardUnlink | None = None,
                ctx: Context = Depends(CARD_WRITE)) -> JSONResponse:  # fmt: skip
    """Unlink a card now: purchases paid with it from now on are no longer the member's. The link stays as
    history; purchases made while it was linked keep matching (e.g. when a feed brings them later)."""
    reason = body.reason if body else None
    return idempotency.run(ctx, canonical(body), lambda uow: cards.unlink_card(
        uow, ctx.program_id, member_id, card_id, ctx.now(), reason, actor=ctx.principal.actor), status=200)  # fmt: skip


@router.post("/cards/merchants", status_code=201, response_model=MerchantOut)
def set_merchant(body: MerchantCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Map an acquirer's merchant id to a partner (its feed lines become that partner's purchases)."""
    return idempotency.run(ctx, canonical(body), lambda uow: cards.set_merchant(
        uow, ctx.program_id, body.merchant_id, body.partner, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/cards/merchants", response_model=list[MerchantOut])
def list_merchants(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cards.list_merchants(ctx.uow(), ctx.program_id)


@router.post("/cards/feeds", status_code=201, response_model=FeedOut)
def import_feed(body: FeedCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Import an acquirer's card-transaction feed (CSV or JSON Lines, at most 10,000 lines per request; the CLI
    takes any size). Idempotent per line (partner + authorisation code + type): importing a file again changes
    nothing. Lines that cannot be applied are listed in `errors` and change nothing; the rest is applied."""
    return idempotency.run(ctx, canonical(body), lambda uow: card_feeds.import_feed(
        lambda: uow, ctx.program_id, body.content, body.format, ctx.now(), filename=body.filename, atomic=True))  # fmt: skip


@router.get("/cards/feeds")
def recent_feeds(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The latest imported feeds with their summaries."""
    return card_feeds.recent_feeds(ctx.uow, ctx.program_id)


@router.post("/offers", status_code=201, response_model=OfferOut)
def create_offer(body: OfferCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """A card-linked offer ("5 % cashback at partner X in December"): applies by itself to purchases paid with a
    linked card of members who activated it, inside its window, at its partners, up to its limit per member."""
    data = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: offers.create_offer(
        uow, ctx.program_id, data, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/offers", response_model=list[OfferOut])
def list_offers(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """Every offer with its funnel: members shown, members activated, uses."""
    return offers.list_offers(ctx.uow(), ctx.program_id, ctx.now())


@router.post("/members/{member_id}/offers/{offer_code}/activation", status_code=201, response_model=MemberOfferOut)
def activate_offer(member_id: UUID, offer_code: str, ctx: Context = Depends(CARD_WRITE)) -> JSONResponse:
    """The member activates the offer; from now on it applies to their matching purchases."""
    return idempotency.run(ctx, b"", lambda uow: offers.activate_offer(uow, ctx.program_id, member_id, offer_code,
                                                                         ctx.now()))  # fmt: skip


@router.post("/members/{member_id}/offers/{offer_code}/shown", response_model=MemberOfferOut)
def offer_shown(member_id: UUID, offer_code: str, ctx: Context = Depends(CARD_WRITE)) -> JSONResponse:
    """Record that the offer was shown to the member (the first step of the offer's funnel)."""
    return idempotency.run(ctx, b"", lambda uow: offers.mark_shown(uow, ctx.program_id, member_id, offer_code,
                                                                     ctx.now()), status=200)  # fmt: skip


@router.get("/members/{member_id}/offers", response_model=list[MemberOfferOut])
def member_offers(member_id: UUID, include_ended: bool = False, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The offers the member can see, and where the member stands with each (available, activated, used...)."""
    return offers.member_offers(ctx.uow(), ctx.program_id, member_id, ctx.now(), include_ended=include_ended)


@router.get("/offers/{offer_code}/stats", response_model=OfferStatsOut)
def offer_stats(offer_code: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The offer's funnel (issue 8): members shown -> activated -> who used it, uses, rates, and for a segment's
    offer the segment's size."""
    return offers.offer_stats(ctx.uow(), ctx.program_id, offer_code, ctx.now())
