"""Requests and responses of the GDPR export, erasure and retention (issue 10)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from treue.api.schemas.common import Input, Output
from treue.domain.privacy import REASON_MAX, RETENTION_MAX_MONTHS


class ErasureIn(Input):
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX,
        examples=["the member asked by email (ticket 4711)"],
        description="why the member is erased: kept in the audit log (without personal data)",
    )


class ErasureOut(Output):
    member_id: str
    status: str = Field(description="erased, or already_erased (a second erasure changes nothing)")
    erased_at: str | None = None
    points_forfeited: int | None = Field(None, description="the remaining points written off to breakage")
    wallet_forfeited: dict[str, str] | None = Field(None, description="cashback written off, per currency")
    cleared: dict[str, int] | None = Field(None, description="rows deleted or blanked, per table")


class RetentionIn(Input):
    retention_months: int | None = Field(
        ge=1, le=RETENTION_MAX_MONTHS, examples=[36],
        description="erase members inactive for longer than this many months; null: never (the default)",
    )  # fmt: skip


class RetentionOut(Output):
    retention_months: int | None
    enabled: bool
    updated_at: str | None
    updated_by: str | None


class ExportOut(Output):
    format: str
    exported_at: str
    program: dict[str, Any]
    member: dict[str, Any]
    balances: dict[str, Any]
