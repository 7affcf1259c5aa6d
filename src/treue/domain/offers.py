"""Offers a member activates, e.g. card-linked offers: "5 % Cashback bei Partner X im Dezember".

An offer is a promise with a window, the partners it is valid at, what it gives (the rules engine's effects:
`cashback_percent` credits the wallet, `points_per_amount`, `fixed_points` or `multiplier` give points), a limit
per member and whether the member must activate it first. It does not need an evaluator of its own: an offer
compiles into a campaign of the rules engine (`campaign_definition`) - the window is the campaign's, the limit
per member its cap (`awards` per lifetime), an optional audience (CEL over `member`) its audience - with one
purchase rule whose condition asks for

    purchase.payment.card_linked          the purchase was paid with a card the member had linked (card-linked)
    && "xmas5" in member.offers           the member had activated the offer by the purchase's time

So an offer applies in the same evaluation, transfer and explanation as every other rule, is previewed at
checkout, reversed by refunds (points, cashback, and the member's use when the whole purchase goes back) and
counted in the campaign KPIs.

A member's relation to an offer goes shown -> activated -> used (`OfferState`). Targeted offers (personal
coupons or bonus-points offers shown to a segment, issue 8) are the same thing without the card-linked
condition (`kind` "targeted", `card_linked: false`) and with a `segment`: the campaign's audience then also asks
`"<segment>" in member.segments`, so only the segment's members see it, may activate it and get it. A personal
coupon is a `grant_coupon` (or `grant_reward`) effect: the coupon is issued with the first qualifying purchase
after the activation.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treue.domain.errors import InvalidInput
from treue.domain.texts import localized

CAMPAIGN_PREFIX = "offer-"
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,57}$")
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EFFECTS = (
    "cashback_percent",
    "points_per_amount",
    "points_per_item",
    "fixed_points",
    "multiplier",
    "grant_coupon",
    "grant_reward",
)
FIELDS = ("code", "kind", "name", "description", "partners", "starts", "ends", "effects", "limit_per_member",
          "activation_required", "card_linked", "audience", "condition", "min_purchase", "budget", "status",
          "segment")  # fmt: skip


class OfferKind(enum.StrEnum):
    CARD_LINKED = "card_linked"
    TARGETED = "targeted"


class OfferState(enum.StrEnum):
    AVAILABLE = "available"  # the member may activate it (or, without activation, it simply applies)
    SHOWN = "shown"  # shown to the member, not activated yet
    ACTIVATED = "activated"  # applies to the member's next matching purchases
    USED = "used"  # applied at least once (and can still apply while the limit allows)
    EXHAUSTED = "exhausted"  # used as often as the limit per member allows
    ENDED = "ended"  # its window is over


def campaign_id_of(code: str) -> str:
    return f"{CAMPAIGN_PREFIX}{code}"


def code_of_campaign(campaign_id: str | None) -> str | None:
    """The offer code of an offer's campaign id, or None for another campaign."""
    if campaign_id and campaign_id.startswith(CAMPAIGN_PREFIX):
        return campaign_id[len(CAMPAIGN_PREFIX) :]
    return None


def check_code(code: Any) -> str:
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidInput("code must be 1-58 lower-case letters, digits, '_' or '-'", field="code")
    return code


@dataclass(frozen=True, slots=True)
class OfferSpec:
    """An offer as defined (its window and effects are checked when its campaign is parsed)."""

    code: str
    kind: OfferKind
    name: dict[str, str]
    description: dict[str, str]
    partners: tuple[str, ...]
    starts: str
    ends: str
    effects: tuple[Mapping[str, Any], ...]
    limit_per_member: int | None
    activation_required: bool
    card_linked: bool
    audience: str | None = None
    condition: str | None = None
    min_purchase: str | int | None = None
    budget: int | None = None
    status: str = "active"
    segment: str | None = None  # targeted offers (issue 8): shown to, activated and used by this segment only

    @property
    def campaign_id(self) -> str:
        return campaign_id_of(self.code)

    def rule_condition(self) -> str | None:
        """The CEL condition of the offer's rule: card-linked, activated, and the offer's own condition."""
        parts = []
        if self.card_linked:
            parts.append("purchase.payment.card_linked")
        if self.activation_required:
            parts.append(f'"{self.code}" in member.offers')
        if self.condition:
            parts.append(f"(\n{self.condition}\n)")
        return " && ".join(parts) or None

    def campaign_audience(self) -> str | None:
        """The audience of the offer's campaign: its own audience and, for a segment's offer, membership."""
        parts = [f'"{self.segment}" in member.segments'] if self.segment else []
        if self.audience:
            parts.append(f"(\n{self.audience}\n)")
        return " && ".join(parts) or None

    def campaign_definition(self) -> dict[str, Any]:
        """The campaign (with its one rule) the offer runs as, in the rules engine's plain-data form."""
        rule: dict[str, Any] = {"id": self.campaign_id, "name": self.name.get("en") or self.name["de"],
                                "trigger": "purchase", "effects": [dict(e) for e in self.effects]}  # fmt: skip
        when = self.rule_condition()
        if when:
            rule["condition"] = when
        if self.partners:
            rule["partners"] = list(self.partners)
        if self.min_purchase is not None:
            rule["limits"] = {"min_purchase": self.min_purchase}
        campaign: dict[str, Any] = {"id": self.campaign_id, "name": rule["name"], "starts": self.starts,
                                    "ends": self.ends, "status": self.status, "rules": [rule]}  # fmt: skip
        if self.limit_per_member is not None:
            campaign["limits"] = {"per_member": [{"per": "lifetime", "awards": self.limit_per_member}]}
        audience = self.campaign_audience()
        if audience:
            campaign["audience"] = audience
        if self.budget is not None:
            campaign["budget"] = self.budget
        return campaign


def parse_offer(data: Mapping[str, Any]) -> OfferSpec:
    """An offer from plain data:

        {"code": "xmas5", "name": {"de": "5 % Cashback bei Partner X im Dezember", "en": "..."},
         "partners": ["partner-x"], "starts": "2026-12-01", "ends": "2026-12-31",
         "effects": [{"type": "cashback_percent", "percent": "5"}], "limit_per_member": 3}

    `starts`/`ends` are local dates (through the end of `ends`) or local date-times, as for campaigns.
    `activation_required` (default true), `card_linked` (default true for kind card_linked), `audience` (CEL over
    member: who may see and activate it), `condition` (more CEL over the purchase), `min_purchase`, `budget` (points).
    """
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown offer fields: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    try:
        kind = OfferKind(data.get("kind") or OfferKind.CARD_LINKED)
    except ValueError:
        raise InvalidInput("kind must be card_linked or targeted", field="kind") from None
    effects = data.get("effects")
    if not isinstance(effects, list) or not effects:
        raise InvalidInput("an offer needs effects, e.g. [{\"type\": \"cashback_percent\", \"percent\": \"5\"}]",
                           field="effects")  # fmt: skip
    for index, effect in enumerate(effects):
        if not isinstance(effect, Mapping) or effect.get("type") not in EFFECTS:
            raise InvalidInput(f"effects[{index}].type must be one of {', '.join(EFFECTS)}", field="effects")
    partners = data.get("partners") or []
    if not isinstance(partners, list) or any(not isinstance(p, str) or not p.strip() for p in partners):
        raise InvalidInput("partners is a list of partner codes", field="partners")
    limit = data.get("limit_per_member")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10**6):
        raise InvalidInput("limit_per_member must be a whole number from 1", field="limit_per_member")
    for flag in ("activation_required", "card_linked"):
        if data.get(flag) is not None and not isinstance(data.get(flag), bool):
            raise InvalidInput(f"{flag} must be true or false", field=flag)
    for key in ("starts", "ends"):
        if not isinstance(data.get(key), str):
            raise InvalidInput(f"{key} is a local date (2026-12-01) or date-time", field=key)
    status = data.get("status") or "active"
    if status not in ("draft", "scheduled", "active", "ended"):
        raise InvalidInput("status must be draft, scheduled, active or ended", field="status")
    card_linked = data.get("card_linked")
    segment = data.get("segment")
    if segment is not None and (not isinstance(segment, str) or not _SEGMENT.match(segment)):
        raise InvalidInput("segment is a segment code", field="segment")
    return OfferSpec(
        code=check_code(data.get("code")), kind=kind, name=localized(data.get("name"), "name", required=True),
        description=localized(data.get("description"), "description"),
        partners=tuple(dict.fromkeys(partners)), starts=str(data["starts"]), ends=str(data["ends"]),
        effects=tuple(dict(e) for e in effects), limit_per_member=limit,
        activation_required=data.get("activation_required", True) is not False,
        card_linked=(kind is OfferKind.CARD_LINKED) if card_linked is None else bool(card_linked),
        audience=data.get("audience"), condition=data.get("condition"), min_purchase=data.get("min_purchase"),
        budget=data.get("budget"), status=status, segment=segment,
    )  # fmt: skip


def member_state(starts_at: datetime, ends_at: datetime, activation: Mapping[str, Any] | None,
                 limit_per_member: int | None, activation_required: bool, now: datetime) -> OfferState:  # fmt: skip
    """Where a member stands with an offer at `now`."""
    uses = int(activation["uses"]) if activation else 0
    if limit_per_member is not None and uses >= limit_per_member:
        return OfferState.EXHAUSTED
    if now >= ends_at:
        return OfferState.ENDED
    if uses > 0:
        return OfferState.USED
    if activation and activation.get("activated_at") is not None:
        return OfferState.ACTIVATED
    if not activation_required:
        return OfferState.AVAILABLE
    if activation and activation.get("shown_at") is not None:
        return OfferState.SHOWN
    return OfferState.AVAILABLE
