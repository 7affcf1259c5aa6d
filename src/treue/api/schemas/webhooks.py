"""Webhook endpoints, their delivery log and redelivery."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from treue.api.schemas.common import Input, Output

Filters = list[str]


class WebhookCreate(Input):
    url: str = Field(max_length=2000, examples=["https://shop.example/hooks/treue"])
    events: Filters = Field(min_length=1, max_length=50, examples=[["points.*", "purchase.recorded"]],
                            description="event types, prefixes such as `points.*`, or `*` for every event")  # fmt: skip
    description: str | None = Field(None, max_length=500)
    enabled: bool = True


class WebhookUpdate(Input):
    url: str | None = Field(None, max_length=2000)
    events: Filters | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = Field(None, description="true again after a fix clears the failure count")
    rotate_secret: bool = Field(False, description="issue a new signing secret (the old one stops at once)")


class WebhookSummary(Output):
    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None


class WebhookOut(WebhookSummary):
    secret: str | None = Field(None, description="whsec_...: shown on create, on GET of one endpoint and on update")


class Redeliver(Input):
    delivery_id: str | None = Field(None, description="send this delivery again")
    failed_since: datetime | None = Field(None, description="or: every failed delivery created since this time")


class AttemptOut(Output):
    number: int
    started_at: str
    duration_ms: int
    status_code: int | None
    error: str | None


class DeliveryOut(Output):
    id: str
    event_type: str
    status: str
    attempts: int
    attempt_log: list[AttemptOut]
