"""Rules, campaigns and custom events.

Rule and campaign definitions travel as free-form JSON objects; the domain checks them and refuses with 422
`rule_invalid` and the `location` of the problem (`line` and `column` for CEL). Rule and campaign writes need
an admin key; events are recorded by any writing key. The literal paths (`/rules/schema`, `/rules/export`,
`/rules/validate`, `/rules/import`) are declared before `/rules/{rule_id}`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, WRITE, Context
from treue.api.errors import ApiProblem
from treue.api.routes.common import canonical, uuid_of
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.rules import (
    CampaignOut,
    Definition,
    EventCreate,
    EventOut,
    ImportReport,
    RuleOut,
    RulesDocument,
    RuleValidation,
)
from treue.domain.rules.schema import rules_schema
from treue.services import events as event_cases
from treue.services import rules as cases

router = APIRouter(responses=PROBLEMS)

RULE_EXAMPLE = {"id": "weekend-double", "name": "Doppelte Punkte am Wochenende", "trigger": "purchase",
                "condition": "now.weekday >= 6", "effects": [{"type": "multiplier", "factor": "2"}]}  # fmt: skip
DefinitionBody = Body(..., examples=[RULE_EXAMPLE], description="a rule definition (see GET /rules/schema)")
ImportFlag = Query(False)


def fingerprint(data: Any) -> bytes:
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits (found by fuzzing): the stdlib encoder takes any size
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


# -- rules ------------------------------------------------------------------------------------------------
@router.post("/rules", status_code=201, response_model=RuleOut, tags=["rules"])
def create_rule(body: Definition = DefinitionBody, campaign: str | None = None, valid_from: datetime | None = None,
                ctx: Context = Depends(ADMIN)) -> JSONResponse:  # fmt: skip
    """Create a rule (version 1), of the programme or of a campaign (`?campaign=`), valid from now or `valid_from`."""
    return idempotency.run(ctx, fingerprint(body), lambda uow: cases.create_rule(
        uow, ctx.program_id, body, ctx.now(), campaign=campaign, valid_from=valid_from,
        actor=ctx.principal.actor))  # fmt: skip


@router.get("/rules", response_model=list[RuleOut], tags=["rules"])
def list_rules(include_archived: bool = False, campaign: str | None = None,
               ctx: Context = Depends(READ)) -> list[dict[str, Any]]:  # fmt: skip
    """The rules with their latest version, by id."""
    return cases.list_rules(ctx.uow(), ctx.program_id, include_archived=include_archived, campaign=campaign)


@router.get("/rules/schema", tags=["rules"])
def schema(ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a rules document; a rule definition is `#/$defs/rule`."""
    return rules_schema()


@router.get("/rules/export", response_model=RulesDocument, tags=["rules"])
def export(ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The programme's rules and campaigns (latest versions, not archived) as a `treue.rules/1` document."""
    return cases.export_rules(ctx.uow(), ctx.program_id)


@router.post("/rules/validate", response_model=RuleValidation, tags=["rules"])
def validate(body: Definition = DefinitionBody, campaign: str | None = None,
             ctx: Context = Depends(ADMIN)) -> dict[str, Any]:  # fmt: skip
    """Check a definition without saving anything (as a new rule, or as the next version of the rule with its id):
    200 with what it reads from the context, or 422 `rule_invalid` with the `location` of the problem."""
    return cases.validate_rule(ctx.uow(read_only=True), ctx.program_id, body, ctx.now(), campaign=campaign)


@router.post("/rules/import", response_model=ImportReport, tags=["rules"])
def import_rules(body: Definition = Body(..., description="a treue.rules/1 document (GET /rules/export)"),
                 dry_run: bool = ImportFlag, archive_missing: bool = ImportFlag,
                 ctx: Context = Depends(ADMIN)) -> JSONResponse:  # fmt: skip
    """Bring the rules and campaigns to what the document says (matched by id; idempotent). `dry_run` only
    reports; `archive_missing` archives rules the document does not name. The flags may also be given as
    booleans in the body."""
    document = dict(body)
    flags = {"dry_run": dry_run, "archive_missing": archive_missing}
    for name in flags:
        if name in document:
            value = document.pop(name)
            if not isinstance(value, bool):
                raise ApiProblem(422, "validation_error", f"{name}: must be true or false")
            flags[name] = flags[name] or value
    return idempotency.run(ctx, fingerprint(body), lambda uow: cases.import_rules(
        uow, ctx.program_id, document, ctx.now(), actor=ctx.principal.actor, **flags), status=200)  # fmt: skip


@router.get("/rules/{rule_id}", response_model=RuleOut, tags=["rules"])
def get_rule(rule_id: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """A rule with its version history, oldest first."""
    return cases.get_rule(ctx.uow(), ctx.program_id, rule_id)


@router.patch("/rules/{rule_id}", response_model=RuleOut, tags=["rules"])
def edit_rule(rule_id: str, body: Definition = Body(..., examples=[{"priority": 5, "condition": None}]),
              valid_from: datetime | None = None, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:  # fmt: skip
    """A new version: the latest definition with these changes (null removes a field), valid from now or
    `valid_from` (never before now). Events before it keep being evaluated with the older version."""
    return cases.edit_rule(ctx.uow(), ctx.program_id, rule_id, body, ctx.now(), valid_from=valid_from,
                           actor=ctx.principal.actor)  # fmt: skip


@router.post("/rules/{rule_id}/archive", response_model=RuleOut, tags=["rules"])
def archive(rule_id: str, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Stop evaluating a rule; its versions and awards stay readable. Archiving twice is harmless."""
    return idempotency.run(ctx, b"", lambda uow: cases.archive_rule(
        uow, ctx.program_id, rule_id, ctx.now(), actor=ctx.principal.actor), status=200)  # fmt: skip


# -- campaigns ------------------------------------------------------------------------------------------------
CAMPAIGN_EXAMPLE = {"id": "app-first-order", "name": "500 Bonuspunkte für die erste Bestellung in der App",
                    "starts": "2026-04-01", "ends": "2026-06-30", "status": "scheduled", "budget": 500000,
                    "rules": [{"id": "app-first-order-bonus", "trigger": "purchase", "channels": ["app"],
                               "condition": "member.purchase_count == 0",
                               "effects": [{"type": "fixed_points", "points": 500}]}]}  # fmt: skip


@router.post("/campaigns", status_code=201, response_model=CampaignOut, tags=["campaigns"])
def create_campaign(body: Definition = Body(..., examples=[CAMPAIGN_EXAMPLE]),
                    ctx: Context = Depends(ADMIN)) -> JSONResponse:  # fmt: skip
    """A campaign with its rules (optional `rules`), window, audience and budget."""
    return idempotency.run(ctx, fingerprint(body), lambda uow: cases.create_campaign(
        uow, ctx.program_id, body, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/campaigns", response_model=list[CampaignOut], tags=["campaigns"])
def list_campaigns(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_campaigns(ctx.uow(), ctx.program_id)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
def get_campaign(campaign_id: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """A campaign with its budget (points, spent, left) and its rules."""
    return cases.get_campaign(ctx.uow(), ctx.program_id, campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
def update_campaign(campaign_id: str, body: Definition = Body(..., examples=[{"status": "ended"}]),
                    ctx: Context = Depends(ADMIN)) -> dict[str, Any]:  # fmt: skip
    """Change name, window, audience, caps, budget or status (null removes a field); rules are edited one by one."""
    return cases.update_campaign(ctx.uow(), ctx.program_id, campaign_id, body, ctx.now(), actor=ctx.principal.actor)


# -- custom events ----------------------------------------------------------------------------------------------
@router.post("/events", status_code=201, response_model=EventOut, tags=["events"])
def record_event(body: EventCreate, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Record a member's custom event (review.created, social.shared...) and award what its rules give. Any
    well-formed name is stored; it is evaluated against the rules that exist. Send an Idempotency-Key."""
    command = event_cases.RecordEvent(
        name=body.name, member_id=uuid_of(body.member_id, "member_id"), card_number=body.card_number,
        external_ref=body.external_ref, attributes=body.attributes, occurred_at=body.occurred_at,
        moderation=body.moderation,
    )  # fmt: skip
    return idempotency.run(ctx, canonical(body), lambda uow: event_cases.record_event(
        uow, ctx.program_id, command, ctx.now()))  # fmt: skip


@router.get("/events", response_model=list[EventOut], tags=["events"])
def list_events(member_id: str, limit: int = Query(50, ge=1, le=500),
                ctx: Context = Depends(READ)) -> list[dict[str, Any]]:  # fmt: skip
    """A member's custom events, newest first."""
    member = uuid_of(member_id, "member_id")
    assert member is not None
    return event_cases.list_events(ctx.uow(), ctx.program_id, member, limit)
