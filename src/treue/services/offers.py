"""Offers (issue 11): create a card-linked offer, list offers, a member activates one, a member's offers.

An offer runs as a campaign of the rules engine (see `treue.domain.offers`): creating one writes the offer and
its campaign in one transaction, so it applies from the next purchase on (this process forgets its cached rule
set; other processes within the rule cache's few seconds). Activation is a row per member and offer; the rule
reads the member's activated offers (`member.offers`), loaded only for programmes whose rules ask for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.cards import refuse_card_numbers
from treue.domain.durations import zone
from treue.domain.errors import OfferExists, OfferUnavailable
from treue.domain.events import Event
from treue.domain.offers import OfferState, member_state, parse_offer
from treue.domain.programs import Program
from treue.domain.rules import definitions as d
from treue.domain.rules.conditions import ConditionFailed
from treue.domain.rules.context import EventFacts, MemberSnapshot, build_context
from treue.services import rules as rule_cases
from treue.services.audit import record_audit
from treue.services.kpis import rate
from treue.services.partners import require_partner
from treue.services.ports import UnitOfWork
from treue.services.views import iso


def offer_view(row: dict[str, Any], now: datetime, counts: tuple[int, int, int] | None = None) -> dict[str, Any]:
    definition = row["definition"]
    status = "upcoming" if now < row["starts_at"] else "ended" if now >= row["ends_at"] else "running"
    view = {
        "code": row["code"], "kind": row["kind"], "name": row["name"], "description": row["description"],
        "partners": row["partners"], "starts_at": iso(row["starts_at"]), "ends_at": iso(row["ends_at"]),
        "effects": definition.get("effects", []), "limit_per_member": row["limit_per_member"],
        "activation_required": row["activation_required"], "card_linked": definition.get("card_linked", True),
        "audience": definition.get("audience"), "segment": definition.get("segment"),
        "campaign_id": row["campaign_id"], "status": status,
        "created_at": iso(row["created_at"]),
    }  # fmt: skip
    if counts is not None:
        view["members_shown"], view["members_activated"], view["uses"] = counts
    return view


def create_offer(uow: UnitOfWork, program_id: UUID, data: dict[str, Any], now: datetime, *,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """An offer and the campaign it runs as, in one transaction (see `treue.domain.offers.parse_offer`)."""
    refuse_card_numbers(data)
    spec = parse_offer(data)
    definition = spec.campaign_definition()
    with uow:
        program = uow.programs.get(program_id)
        for partner in spec.partners:
            require_partner(uow, program_id, partner)
        if spec.segment is not None:
            uow.segments.get(program_id, spec.segment)  # segment_not_found (404) for an unknown segment
        if uow.cards.offer_exists(program_id, spec.code):
            raise OfferExists(f"an offer with the code {spec.code!r} exists already")
        campaign = d.parse_campaign(definition, timezone=program.timezone, currency=program.currency, valid_from=now)
        rule_cases.create_campaign(uow, program_id, definition, now, actor=actor)  # joins this transaction
        stored = {**dict(data), "card_linked": spec.card_linked, "activation_required": spec.activation_required}
        row = {"program_id": program_id, "code": spec.code, "kind": spec.kind.value, "name": spec.name,
               "description": spec.description, "campaign_id": spec.campaign_id, "partners": list(spec.partners),
               "starts_at": campaign.starts_at, "ends_at": campaign.ends_at,
               "activation_required": spec.activation_required, "limit_per_member": spec.limit_per_member,
               "definition": stored, "created_at": now}  # fmt: skip
        uow.cards.add_offer(row)
        view = offer_view(row, now)
        uow.emit(program_id, Event(events.OFFER_CREATED, {"offer": spec.code, "campaign": spec.campaign_id}))
        record_audit(uow, program_id, actor, "offer.create", "offer", spec.code, None, view, None, now)
        uow.commit()
    uow.rules.forget(program_id)
    return view


def list_offers(uow: UnitOfWork, program_id: UUID, now: datetime) -> list[dict[str, Any]]:
    """Every offer with its funnel: members shown, members activated, uses."""
    with uow:
        uow.programs.get(program_id, cached=True)
        counts = uow.cards.use_counts(program_id)
        return [offer_view(row, now, counts.get(row["code"], (0, 0, 0))) for row in uow.cards.offers(program_id)]


def _campaign(uow: UnitOfWork, program: Program, campaign_id: str) -> d.Campaign | None:
    ruleset = uow.rules.ruleset(program, cached=True)
    return next((c for c in ruleset.campaigns if c.id == campaign_id), None)


def _in_audience(uow: UnitOfWork, program: Program, campaign: d.Campaign | None, member_id: UUID,
                 now: datetime, snapshot: MemberSnapshot | None = None) -> bool:  # fmt: skip
    if campaign is None or campaign.audience is None:
        return True
    if snapshot is None:
        snapshot = uow.rules.member_snapshot(program.id, member_id, now, history=True)
    facts = EventFacts("offer", now, member=snapshot)
    context = build_context(facts, zone(program.timezone), program.currency, campaign.audience.needs)
    try:
        return campaign.audience.holds(context)
    except ConditionFailed:
        return False


def _live(campaign: d.Campaign | None) -> bool:
    return campaign is not None and campaign.status in (d.CampaignStatus.SCHEDULED, d.CampaignStatus.ACTIVE)


def member_offer_view(row: dict[str, Any], activation: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    state = member_state(row["starts_at"], row["ends_at"], activation, row["limit_per_member"],
                         row["activation_required"], now)  # fmt: skip
    uses = int(activation["uses"]) if activation else 0
    limit = row["limit_per_member"]
    return offer_view(row, now) | {
        "state": state.value, "uses": uses, "uses_left": None if limit is None else max(limit - uses, 0),
        "shown_at": iso(activation["shown_at"]) if activation else None,
        "activated_at": iso(activation["activated_at"]) if activation else None,
        "last_used_at": iso(activation["last_used_at"]) if activation else None,
    }  # fmt: skip


def activate_offer(uow: UnitOfWork, program_id: UUID, member_id: UUID, code: str, now: datetime) -> dict[str, Any]:
    """The member activates an offer: from now on it applies to their matching purchases (while it runs and the
    limit per member allows). An offer can be activated before it starts, not after it ended. Activating twice
    changes nothing (`activated: false` the second time)."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        row = uow.cards.get_offer(program_id, code)
        uow.members.get(program_id, member_id)
        campaign = _campaign(uow, program, row["campaign_id"])
        if now >= row["ends_at"] or not _live(campaign):
            raise OfferUnavailable(f"the offer {code!r} has ended or is not published", offer=code)
        if not _in_audience(uow, program, campaign, member_id, now):
            raise OfferUnavailable(f"the offer {code!r} is not available to this member", offer=code)
        before = uow.cards.activation(program_id, code, member_id, lock=True)
        if before is not None and before["activated_at"] is not None:
            return member_offer_view(row, before, now) | {"activated": False}
        uow.cards.activate(program_id, code, member_id, now)
        uow.emit(program_id, Event(events.OFFER_ACTIVATED, {"offer": code, "member_id": str(member_id)}))
        activation = uow.cards.activation(program_id, code, member_id)
        uow.commit()
    return member_offer_view(row, activation, now) | {"activated": True}


def mark_shown(uow: UnitOfWork, program_id: UUID, member_id: UUID, code: str, now: datetime) -> dict[str, Any]:
    """The offer was shown to the member (portal, app, email): the funnel's first step. The first time counts."""
    with uow:
        uow.programs.get(program_id, cached=True)
        row = uow.cards.get_offer(program_id, code)
        uow.members.get(program_id, member_id)
        uow.cards.show(program_id, [code], member_id, now)
        activation = uow.cards.activation(program_id, code, member_id)
        uow.commit()
    return member_offer_view(row, activation, now)


def member_offers(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, *,
                  include_ended: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """The offers a member can see: published, in their audience, not ended (unless `include_ended`), with where
    the member stands (available, shown, activated, used, exhausted, ended)."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        activations = uow.cards.activations_of(program_id, member_id)
        found = []
        snapshot: MemberSnapshot | None = None
        for row in uow.cards.offers(program_id):
            activation = activations.get(row["code"])
            view = member_offer_view(row, activation, now)
            if view["state"] == OfferState.ENDED.value and not include_ended:
                continue
            campaign = _campaign(uow, program, row["campaign_id"])
            if campaign is not None and campaign.audience is not None and snapshot is None:
                snapshot = uow.rules.member_snapshot(program_id, member_id, now, history=True)  # once, for all offers
            activated = activation is not None and activation["activated_at"] is not None
            if row["definition"].get("segment") and not activated and snapshot is not None \
                    and row["definition"]["segment"] not in snapshot.segments:  # fmt: skip
                continue  # a segment's offer: only its members see it (issue 8), unless they activated it already
            if activation is None and not (_live(campaign) and _in_audience(uow, program, campaign, member_id, now,
                                                                            snapshot)):  # fmt: skip
                continue
            found.append(view)
        return found


def offer_stats(uow: UnitOfWork, program_id: UUID, code: str, now: datetime) -> dict[str, Any]:
    """An offer's funnel: members shown, activated and who used it, uses, and (for a segment's offer) the
    segment's size; rates are decimal strings (4 places) or null."""
    with uow:
        uow.programs.get(program_id, cached=True)
        row = uow.cards.get_offer(program_id, code)
        shown, activated, used, uses = uow.cards.funnel(program_id, code)
        segment = row["definition"].get("segment")
        size = uow.segments.count(program_id, segment) if segment else None
    return {"offer": code, "kind": row["kind"], "segment": segment, "segment_members": size,
            "status": offer_view(row, now)["status"], "shown": shown, "activated": activated, "used": used,
            "uses": uses, "activation_rate": rate(activated, shown), "use_rate": rate(used, activated),
            "reach": rate(shown, size) if size is not None else None}  # fmt: skip
