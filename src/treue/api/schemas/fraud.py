"""Request and response bodies of the fraud controls (issue 10)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from treue.api.schemas.common import Input, Output


class CapIn(Input):
    action: Literal["earn", "redeem"] = Field(description="earn: over the cap the points are held; redeem: refused")
    subject: Literal["member", "card", "device", "ip"] = Field(
        description="counted per member, payment card (token), device id or client IP address"
    )
    window: Literal["hour", "day"] = Field(description="a UTC clock hour or the programme's local calendar day")
    max_count: int | None = Field(None, ge=1, description="at most this many earns or redemptions per window")
    max_points: int | None = Field(None, ge=1, description="at most this many points per window")


class AlertThresholdsIn(Input):
    refunds_after_redemption: int | None = Field(None, ge=1, description="refunds by one member soon after redeeming")
    refund_days: int | None = Field(None, ge=1, le=365, description="... within this many days after a redemption")
    referrals_per_fingerprint: int | None = Field(None, ge=1, description="referrals from one device, IP or card")
    referral_days: int | None = Field(None, ge=1, le=365)
    spike_factor: int | None = Field(None, ge=1, description="last 24 hours versus the member's daily average")
    spike_min_points: int | None = Field(None, ge=1)
    baseline_days: int | None = Field(None, ge=1, le=365)
    cap_hits: int | None = Field(None, ge=1, description="held earns of one member ...")
    cap_hit_days: int | None = Field(None, ge=1, le=365, description="... within this many days")


class FraudSettingsIn(Input):
    active: bool = True
    caps: list[CapIn] = Field(default_factory=list, max_length=32)
    alerts: AlertThresholdsIn | None = Field(None, description="thresholds left out keep their defaults")

    def values(self) -> dict[str, Any]:
        return {"active": self.active, "caps": [c.model_dump() for c in self.caps],
                "alerts": self.alerts.model_dump(exclude_none=True) if self.alerts else {}}  # fmt: skip


class FraudSettingsOut(Output):
    configured: bool
    active: bool
    caps: list[dict[str, Any]]
    alerts: dict[str, int]


class HoldDecisionIn(Input):
    reason: str | None = Field(None, max_length=1000, description="why (kept in the audit log and the event)")


class HoldOut(Output):
    id: str
    member_id: str
    points: int
    status: str
    reasons: list[dict[str, Any]]
    created_at: str


class AlertAcknowledgeIn(Input):
    note: str | None = Field(None, max_length=1000)


class AlertOut(Output):
    id: str
    kind: str
    subject: str
    period: str
    status: str
    details: dict[str, Any]
    raised_at: str
