"""Responses of the till routes: identification and offline batches."""

from __future__ import annotations

from pydantic import Field

from treue.api.schemas.common import Output


class TillBalanceOut(Output):
    points: int
    available: int
    pending: int
    value: str
    currency: str


class TillTierOut(Output):
    code: str
    name: dict[str, str]


class IdentifiedOut(Output):
    id: str
    card_number: str
    name: str | None
    status: str
    matched_by: str = Field(description="card_number, phone or email")
    balance: TillBalanceOut
    tier: TillTierOut | None


class TillBatchOut(Output):
    batch_id: str
    received_at: str
    finished_at: str | None
    lines: int
    applied: int
    replayed: int
    conflicts: int
    conflict_codes: dict[str, int]
