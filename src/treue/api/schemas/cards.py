"""Requests and responses of card-linked earning: linked cards, payments, card feeds, offers (issue 11).

Every request model that can carry card data looks through ALL its values before any other validation: what looks
like a full card number (13-19 digits passing the Luhn check) refuses the request with the problem
`card_number_refused`, which never repeats the number (a validation error would echo the input).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from treue.api.schemas.common import Amount, Input, Output
from treue.domain.cards import refuse_card_numbers


class NoCardNumbers(Input):
    """Refuses a card number in any field, before the fields are validated (so nothing echoes it)."""

    @model_validator(mode="before")
    @classmethod
    def _no_card_numbers(cls, data: Any) -> Any:
        refuse_card_numbers(data)  # raises CardNumberRefused: a domain problem, not a validation error
        return data


class PaymentIn(NoCardNumbers):
    token: str = Field(min_length=1, max_length=200, description="the payment provider's token, never a card number")
    brand: str | None = Field(None, max_length=16, examples=["visa"])
    fingerprint: str | None = Field(None, max_length=200, description="the provider's card fingerprint, if any")


class CardLinkCreate(NoCardNumbers):
    token: str = Field(min_length=1, max_length=200, examples=["tok_1Nv0aZ2eZvKYlo2C"],
                       description="the token the payment provider or card-linking service issued for the card")  # fmt: skip
    brand: str = Field(max_length=16, examples=["visa"])
    last4: str = Field(min_length=1, max_length=8, examples=["4242"], description="the card's last 4 digits")
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    fingerprint: str | None = Field(None, max_length=200)


class CardUnlink(NoCardNumbers):
    reason: str | None = Field(None, max_length=200)


class CardOut(Output):
    id: str
    member_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    linked_at: str
    unlinked_at: str | None
    status: str


class MerchantCreate(Input):
    merchant_id: str = Field(min_length=1, max_length=64, description="the acquirer's merchant id")
    partner: str = Field("default", min_length=1, max_length=64, description="the partner code it maps to")


class MerchantOut(Output):
    merchant_id: str
    partner: str


class FeedCreate(Input):
    format: Literal["csv", "jsonl"] = "csv"
    content: str = Field(max_length=20_000_000, description="the feed file's text (CSV with a header, or JSON Lines)")
    filename: str | None = Field(None, max_length=255)


class FeedOut(Output):
    feed_id: str
    lines: int
    sales: int
    refunds: int
    chargebacks: int
    already_imported: int
    errors: list[dict[str, Any]]


class OfferCreate(NoCardNumbers):
    code: str = Field(pattern="^[a-z0-9][a-z0-9_-]{0,57}$", examples=["xmas5"])
    kind: Literal["card_linked", "targeted"] = "card_linked"
    name: str | dict[str, str] = Field(examples=[{"de": "5 % Cashback bei Partner X im Dezember",
                                                  "en": "5 % cashback at partner X in December"}])  # fmt: skip
    description: str | dict[str, str] | None = None
    partners: list[str] = Field(default_factory=list, description="partner codes it is valid at (empty: all)")
    starts: str = Field(examples=["2026-12-01"], description="local date or date-time, inclusive")
    ends: str = Field(examples=["2026-12-31"], description="local date (through its end) or date-time, exclusive")
    effects: list[dict[str, Any]] = Field(min_length=1, examples=[[{"type": "cashback_percent", "percent": "5"}]])
    limit_per_member: int | None = Field(None, ge=1, description="how often it applies per member")
    activation_required: bool = True
    card_linked: bool | None = Field(
        None, description="only purchases paid with a linked card (default for card_linked)"
    )
    audience: str | None = Field(None, description="CEL over member: who may see and activate it")
    condition: str | None = Field(None, description="more CEL the purchase must meet")
    min_purchase: Amount | None = None
    budget: int | None = Field(None, ge=0, description="points the offer may give in all")
    status: Literal["draft", "scheduled", "active", "ended"] = "active"
    segment: str | None = Field(
        None,
        pattern="^[a-z0-9][a-z0-9_-]{0,63}$",
        description="targeted offers (issue 8): only this segment's members see and get it",
    )


class OfferOut(Output):
    code: str
    kind: str
    name: dict[str, str]
    partners: list[str]
    starts_at: str
    ends_at: str
    status: str


class OfferStatsOut(Output):
    offer: str
    segment: str | None
    segment_members: int | None
    shown: int
    activated: int
    used: int
    uses: int
    activation_rate: str | None
    use_rate: str | None


class MemberOfferOut(OfferOut):
    state: str
    uses: int
