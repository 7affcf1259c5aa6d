"""Requests and responses of segments, recommendations and surveys (issue 8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from treue.api.schemas.common import Input, Output

CODE = "^[a-z0-9][a-z0-9_-]{0,63}$"


class SegmentCreate(Input):
    code: str = Field(pattern=CODE, examples=["champions"])
    kind: Literal["dynamic", "static"] | None = Field(None, description="dynamic when a condition is given")
    name: str | dict[str, str] = Field(examples=[{"de": "Champions", "en": "Champions"}])
    description: str | dict[str, str] | None = None
    condition: str | None = Field(None, max_length=4000, examples=["member.r >= 4 && member.f >= 4"],
                                  description="CEL over member facts (see docs/segments.md)")  # fmt: skip


class SegmentOut(Output):
    code: str
    kind: str
    name: dict[str, str]
    condition: str | None
    members: int
    refreshed_at: str | None


class SegmentRefresh(Input):
    member_ids: list[str] | None = Field(None, max_length=10_000, description="only these members (incremental)")


class SegmentImport(Input):
    members: list[str] | None = Field(None, max_length=100_000, description="member ids, card numbers or emails")
    csv: str | None = Field(None, max_length=5_000_000, description="CSV with a member_id, card_number or email "
                                                                    "column, or one identifier per line")  # fmt: skip
    mode: Literal["add", "replace", "remove"] = "add"


class RefreshOut(Output):
    segment: str
    members: int
    added: int
    removed: int


class ImportOut(RefreshOut):
    mode: str
    matched: int
    unknown: list[str]
    unknown_count: int


class SegmentMembersOut(Output):
    segment: str
    total: int
    limit: int
    offset: int
    members: list[dict[str, Any]]


class MemberSegmentsOut(Output):
    member_id: str
    segments: list[str]
    facts: dict[str, Any]


class RecommendationsOut(Output):
    member_id: str
    points: dict[str, int]
    rewards: list[dict[str, Any]]
    products: list[dict[str, Any]]
    products_basis: str


class SurveyCreate(Input):
    code: str = Field(pattern=CODE, examples=["nps"])
    name: str | dict[str, str] = Field(examples=[{"de": "Kundenzufriedenheit", "en": "Customer satisfaction"}])
    question: str | dict[str, str] | None = Field(None, description="default: the standard NPS question")
    comment_question: str | dict[str, str] | None = None
    repeat: Literal["never", "month", "quarter", "year"] = "never"
    active: bool = True


class SurveyOut(Output):
    code: str
    name: dict[str, str]
    question: dict[str, str]
    repeat: str
    active: bool


class SurveyResponseIn(Input):
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    score: int = Field(ge=0, le=10, description="0-10: how likely the member would recommend us")
    comment: str | None = Field(None, max_length=2000)
    channel: str | None = Field(None, pattern="^[a-z][a-z0-9_-]{0,31}$", examples=["app"])
    occurred_at: datetime | None = Field(None, description="when it was answered (default: now)")


class SurveyResponseOut(Output):
    id: str
    survey: str
    member_id: str
    score: int
    category: str
    channel: str
    points: int


class NpsOut(Output):
    survey: str
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
