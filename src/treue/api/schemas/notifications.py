"""Requests and responses of notifications: settings, templates, consents, the inbox and the message log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from treue.api.schemas.common import Input, Output

ChannelName = Literal["email", "inbox", "push"]
ConsentChannelName = Literal["email", "push", "sms", "post"]
LocaleName = Literal["de", "en"]
TriggerName = Field(min_length=1, max_length=40, examples=["points_expiring"])


class TriggerSettingsIn(Input):
    enabled: bool | None = None
    channels: list[ChannelName] | None = None
    purpose: Literal["transactional", "marketing"] | None = None
    mode: Literal["immediate", "digest"] | None = Field(None, description="points_earned only")
    days: list[int] | None = Field(None, description="points_expiring only: days before the expiry, e.g. [30, 7]")


class QuietHoursIn(Input):
    start: str = Field(pattern=r"^\d\d:\d\d$", examples=["21:00"])
    end: str = Field(pattern=r"^\d\d:\d\d$", examples=["08:00"])


class SettingsIn(Input):
    triggers: dict[str, TriggerSettingsIn] | None = None
    quiet_hours: QuietHoursIn | None = Field(None, description="local time of the member; null: none")
    weekly_marketing_cap: int | None = Field(None, ge=0, le=100)


class SettingsOut(Output):
    triggers: dict[str, dict[str, Any]]
    quiet_hours: dict[str, str] | None
    weekly_marketing_cap: int


class TemplateKey(Input):
    trigger: str = TriggerName
    channel: ChannelName = "email"
    locale: LocaleName = "de"


class TemplateIn(TemplateKey):
    subject: str = Field(min_length=1, max_length=20_000)
    text: str = Field(min_length=1, max_length=20_000)
    html: str | None = Field(None, max_length=20_000, description="email only; default: the text as HTML")


class DraftIn(Input):
    subject: str = Field(max_length=20_000)
    text: str = Field(max_length=20_000)
    html: str | None = Field(None, max_length=20_000)


class PreviewIn(TemplateKey):
    template: DraftIn | None = Field(None, description="a draft to render instead of the saved template")
    data: dict[str, Any] | None = Field(None, description="values that replace the sample data")


class TemplateOut(Output):
    trigger: str
    channel: str
    locale: str
    subject: str
    text: str
    html: str | None


class ConsentIn(Input):
    channel: ConsentChannelName
    granted: bool
    source: str | None = Field(None, max_length=64, examples=["shop-checkout"])


class ConsentsOut(Output):
    member_id: str
    channels: dict[str, dict[str, Any]]


class BounceIn(Input):
    reason: str | None = Field(None, max_length=500, examples=["550 5.1.1 user unknown"])
    permanent: bool = True


class ResendIn(Input):
    reason: str | None = Field(None, max_length=500, examples=["the member found no email in their inbox"])


class MessageOut(Output):
    id: str
    member_id: str
    trigger: str
    channel: str
    status: str


class InboxOut(Output):
    member_id: str
    unread: int
    messages: list[dict[str, Any]]


class ReadOut(Output):
    id: str
    read: bool
    unread: int
