"""The published JSON Schema (draft 2020-12) of a rule definition, a campaign and a rules document.

It describes what `treue.domain.rules.definitions` accepts; the domain parser stays the authority (it also
checks what a schema cannot: CEL expressions against the documented context, effects that need a purchase
trigger, overlapping exclusive groups). Served at `GET /api/v1/rules/schema`, printed by `treue rules schema`
and kept in `docs/rules.schema.json`.
"""

from __future__ import annotations

from typing import Any

from treue.domain.rules.definitions import BUILTIN_TRIGGERS, CAMPAIGN_FIELDS, MAX_PRIORITY, RULE_FIELDS
from treue.domain.rules.effects import MAX_POINTS

SCHEMA_ID = "https://treue.dev/schemas/treue.rules-1.json"
FORMAT = "treue.rules/1"

_ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$", "not": {"const": "base"}}
_TEXT = {"type": "string", "minLength": 1, "pattern": "\\S"}
_DECIMAL = {
    "description": 'an exact decimal as a string ("1.5") or an integer; floating-point numbers are refused',
    "oneOf": [{"type": "string", "pattern": "^\\s*[+-]?(\\d+(\\.\\d*)?|\\.\\d+)\\s*$"}, {"type": "integer"}],
}
_AMOUNT = {
    "description": 'money in major units of the programme currency, as a string ("20.00") or an integer',
    "oneOf": [{"type": "string", "pattern": "^\\s*\\d+(\\.\\d+)?\\s*$"}, {"type": "integer", "minimum": 0}],
}
_POINTS = {"type": "integer", "minimum": 1, "maximum": MAX_POINTS}
_DURATION = {"type": "string", "description": "a duration such as 14D, 2W, 1M or 1Y", "pattern": "^\\S+$"}
_CEL = {"type": "string", "minLength": 1, "description": "a CEL expression over the documented context"}
_LINES = {"description": "CEL over `line` selecting the eligible lines", **_CEL}
_SKUS = {"type": "array", "items": _TEXT}


def _effect(kind: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"type": {"const": kind}, **properties},
        "required": ["type", *required],
        "additionalProperties": False,
    }


EFFECTS: dict[str, dict[str, Any]] = {
    "points_per_amount": _effect(
        "points_per_amount",
        ["points"],
        {"points": _POINTS, "per": _AMOUNT, "lines": _LINES, "exclude_skus": _SKUS, "pending": _DURATION},
    ),
    "points_per_item": _effect(
        "points_per_item", ["points"], {"points": _POINTS, "lines": _LINES, "exclude_skus": _SKUS, "pending": _DURATION}
    ),
    "fixed_points": _effect("fixed_points", ["points"], {"points": _POINTS, "pending": _DURATION}),
    "multiplier": _effect(
        "multiplier", ["factor"], {"factor": {**_DECIMAL, "description": "> 1 and <= 100"}, "pending": _DURATION}
    ),
    "grant_reward": _effect(
        "grant_reward", ["reward"], {"reward": _TEXT, "quantity": {"type": "integer", "minimum": 1, "maximum": 1000}}
    ),
    "grant_coupon": _effect(
        "grant_coupon", ["coupon"], {"coupon": _TEXT, "quantity": {"type": "integer", "minimum": 1, "maximum": 1000}}
    ),
    "cashback_percent": _effect(
        "cashback_percent",
        ["percent"],
        {"percent": {**_DECIMAL, "description": "> 0 and <= 100"}, "lines": _LINES, "exclude_skus": _SKUS},
    ),
    "tier_credit": _effect("tier_credit", ["points"], {"points": _POINTS}),
    "mission_progress": _effect(
        "mission_progress",
        ["mission"],
        {"mission": _TEXT, "steps": {"type": "integer", "minimum": 1, "maximum": 10**6}},
    ),
    "badge": _effect("badge", ["badge"], {"badge": _TEXT}),
}

_CAP = {
    "type": "object",
    "properties": {
        "per": {"enum": ["day", "week", "month", "year", "lifetime"]},
        "points": {"type": "integer", "minimum": 1, "maximum": 10**9},
        "awards": {"type": "integer", "minimum": 1, "maximum": 10**6},
        "key": {
            "type": "string",
            "pattern": "^event\\.attributes\\.[A-Za-z_][A-Za-z0-9_]{0,63}$",
            "description": "count per value of this event attribute (one review reward per product)",
        },
    },
    "required": ["per"],
    "oneOf": [{"required": ["points"]}, {"required": ["awards"]}],
    "additionalProperties": False,
}

_TRIGGER = {
    "type": "string",
    "description": "a built-in trigger, a custom event with a dot (review.created) or 'cron: <5 fields>'",
    "anyOf": [
        {"enum": list(BUILTIN_TRIGGERS)},
        {"pattern": "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$"},
        {"pattern": "^\\s*cron:"},
    ],
}

RULE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": _ID,
        "name": _TEXT,
        "description": {"type": "string"},
        "trigger": _TRIGGER,
        "condition": _CEL,
        "effects": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/effect"}},
        "limits": {
            "type": "object",
            "properties": {
                "per_member": {"type": "array", "items": {"$ref": "#/$defs/cap"}},
                "once_per_member": {"type": "boolean"},
                "min_purchase": {**_AMOUNT, "description": "purchase rules only"},
            },
            "additionalProperties": False,
        },
        "priority": {"type": "integer", "minimum": -MAX_PRIORITY, "maximum": MAX_PRIORITY},
        "mode": {"enum": ["stacking", "exclusive"]},
        "group": {**_TEXT, "description": "exclusive rules only: best-of within the group"},
        "channels": {"type": "array", "items": {"enum": ["store", "online", "app"]}},
        "partners": {"type": "array", "items": _TEXT},
    },
    "required": ["id", "trigger", "effects"],
    "additionalProperties": False,
    "if": {"properties": {"mode": {"const": "exclusive"}}, "required": ["mode"]},
    "then": {"required": ["group"]},
    "else": {"not": {"required": ["group"]}},
}

CAMPAIGN: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": _ID,
        "name": _TEXT,
        "starts": {"type": "string", "description": "local date (2026-07-01) or local date-time, inclusive"},
        "ends": {"type": "string", "description": "local date (through its end) or local date-time, exclusive"},
        "status": {"enum": ["draft", "scheduled", "active", "ended"]},
        "audience": {**_CEL, "description": "CEL over `member` (and `now`)"},
        "budget": {"type": "integer", "minimum": 0, "maximum": 10**12},
        "control_percent": {**_DECIMAL, "description": "share of members held out as a control group, 0 to 50"},
        "limits": {
            "type": "object",
            "properties": {
                "per_member": {"type": "array", "items": {"$ref": "#/$defs/cap"}},
                "once_per_member": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
    },
    "required": ["id", "starts", "ends"],
    "additionalProperties": False,
}


def rules_schema() -> dict[str, Any]:
    """The rules document (`export_rules` / `import_rules`), with `$defs` for a rule, a campaign and an effect."""
    assert set(RULE["properties"]) == set(RULE_FIELDS), "the schema must list exactly the rule fields"
    assert set(CAMPAIGN["properties"]) == set(CAMPAIGN_FIELDS), "the schema must list exactly the campaign fields"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Treue rules document",
        "description": "A programme's rules and campaigns (treue.rules/1). A single rule definition is "
        "#/$defs/rule, a campaign #/$defs/campaign.",
        "type": "object",
        "properties": {
            "format": {"const": FORMAT},
            "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "campaigns": {"type": "array", "items": {"$ref": "#/$defs/campaign"}},
        },
        "additionalProperties": False,
        "$defs": {
            "rule": RULE,
            "campaign": CAMPAIGN,
            "effect": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": list(EFFECTS)}},
                "oneOf": [{"$ref": f"#/$defs/effect_{kind}"} for kind in EFFECTS],
            },
            **{f"effect_{kind}": schema for kind, schema in EFFECTS.items()},
            "cap": _CAP,
        },
    }
