"""Rules, campaigns, custom events and the checkout preview.

Rule and campaign definitions are free-form JSON objects (the format of `docs/rules.md`, published as a JSON
Schema at `GET /api/v1/rules/schema`); the domain validates them and answers 422 `rule_invalid` with the
`location` of the problem.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from treue.api.schemas.cards import PaymentIn
from treue.api.schemas.common import Amount, Input, Output
from treue.api.schemas.purchases import Line

Definition = dict[str, Any]


class RuleVersionOut(Output):
    version: int
    valid_from: str
    created_at: str | None = None
    created_by: str | None = None
    definition: Definition


class RuleOut(Output):
    id: str
    name: str
    campaign: str | None
    status: Literal["active", "archived"]
    version: int
    valid_from: str
    definition: Definition
    versions: list[RuleVersionOut] | None = None


class RuleValidation(Output):
    valid: bool
    id: str
    name: str
    trigger: str
    new: bool = Field(description="false: the definition would become the next version of the rule with its id")
    reads: dict[str, list[str]] = Field(description="the context fields the rule reads")


class CampaignOut(Output):
    id: str
    name: str
    status: str
    starts: str | None
    ends: str | None
    budget: dict[str, int] | None
    definition: Definition


class RulesDocument(Output):
    format: str
    rules: list[Definition]
    campaigns: list[Definition]


class ImportReport(Output):
    dry_run: bool
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    restored: list[str]
    archived: list[str]


class EventCreate(Input):
    name: str = Field(min_length=1, max_length=100, examples=["review.created"])
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = Field(None, description="default: now")
    moderation: Literal["pending"] | None = Field(
        None, description='"pending": the points stay pending until POST /events/{id}/moderation approves them'
    )


class EventOut(Output):
    id: str
    member_id: str
    name: str
    attributes: dict[str, Any]
    occurred_at: str
    recorded_at: str
    transfer_id: str | None
    moderation: str | None = None


class PreviewCreate(Input):
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    partner: str = Field("default", min_length=1, max_length=64)
    store: str | None = Field(None, max_length=64)
    channel: Literal["store", "online", "app"] = "store"
    external_order_id: str | None = Field(None, max_length=200, description="optional for a preview")
    occurred_at: datetime | None = Field(None, description="default: now")
    total: Amount
    currency: str = Field(pattern="^[A-Z]{3}$")
    lines: list[Line] = Field(default_factory=list, max_length=1000)
    payment: PaymentIn | None = Field(None, description="the payment token, matched like a purchase's (issue 11)")


class PreviewLineOut(Output):
    sku: str
    quantity: int
    amount: str
    points: int = Field(description="the points this line earns, of all rules (they add up with cart_points)")
    rules: list[dict[str, Any]] = Field(description="[{rule, points}]: which rules counted this line, and for how much")


class PreviewOut(Output):
    member_id: str | None
    total: str
    currency: str
    points: int
    lines: list[PreviewLineOut]
    cart_points: list[dict[str, Any]] = Field(description="[{rule, points}]: points for the whole cart, no line's")
    rules: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
