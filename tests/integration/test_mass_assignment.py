"""Mass assignment, generated from the OpenAPI document: no request can set what the server owns.

For every write operation with a JSON object body: its request schema forbids unknown fields
(`additionalProperties: false`), and the tenancy test's valid body for it plus one protected field it does not
declare (a balance, points, a tier, another programme, an id, a creation time, an erased flag, ...) is refused
with 422 `validation_error` by programme A's own admin key, and changes nothing A owns. Member create and update
are also tried with A's till key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.api_helpers import Api
from tests.integration.test_api_tenancy import World, body_for, build, operations

PROTECTED = {"balance": 10**6, "points": 10**6, "points_balance": 10**6, "tier": "gold", "program_id": None,
             "id": "01a20b52-0000-7000-8000-000000000000", "created_at": "2020-01-01T00:00:00Z",
             "updated_at": "2020-01-01T00:00:00Z", "erased": True, "erased_at": "2020-01-01T00:00:00Z",
             "card_number": "1" * 19, "enrolled_at": "2020-01-01T00:00:00Z", "status": "erased",
             "lifetime_points": 10**6, "secret": "whsec_stolen", "key_hash": "x"}  # fmt: skip


# Bodies that are not a Pydantic model: rule and campaign definitions are parsed by the rules engine, which refuses
# unknown keys itself (422 `rule_invalid`); inbound shop webhooks carry the platform's own order format (signed,
# read for the fields Treue needs).
PARSED_ELSEWHERE = {"POST /rules": "rule_invalid", "PATCH /rules/{rule_id}": "rule_invalid",
                    "POST /rules/validate": "rule_invalid", "POST /rules/import": "rule_invalid",
                    "POST /campaigns": "rule_invalid", "PATCH /campaigns/{campaign_id}": "rule_invalid",
                    "POST /inbound/{platform}/{connection_id}": None}  # fmt: skip


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def _schema(spec: dict[str, Any], ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in ref_or_schema:
        name = ref_or_schema["$ref"].rsplit("/", 1)[-1]
        return spec["components"]["schemas"][name]  # type: ignore[no-any-return]
    return ref_or_schema


def json_bodies(api: Api) -> dict[str, dict[str, Any]]:
    """'METHOD /path' -> the resolved JSON request schema of every write operation that takes a JSON object."""
    spec = api.app.openapi()
    found = {}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if method == "get" or "application/json" not in content or not path.startswith("/api/v1/"):
                continue
            schema = _schema(spec, content["application/json"]["schema"])
            if schema.get("type") == "object" or "properties" in schema:
                found[f"{method.upper()} {path.removeprefix('/api/v1')}"] = schema
    return found


def test_every_request_schema_forbids_unknown_fields(api: Api):
    bodies = json_bodies(api)
    assert len(bodies) >= 60, sorted(bodies)
    open_ = sorted(name for name, schema in bodies.items()
                   if schema.get("additionalProperties") is not False and name not in PARSED_ELSEWHERE)  # fmt: skip
    assert not open_, f"request models that accept unknown fields (inherit schemas.common.Input): {open_}"


def test_protected_fields_are_refused_everywhere_and_change_nothing(api: Api, now):
    w: World = build(api, now)
    api.clock.advance(minutes=1)  # so a rule edit is valid but for the protected field
    schemas = json_bodies(api)
    tried = 0
    with api.unchanged(w.a.program_id):
        for op in operations(api):
            name = str(op)
            if name not in schemas or op.operator_only or PARSED_ELSEWHERE.get(name, "") is None:
                continue
            body = body_for(op, w, now)
            if not isinstance(body, dict):
                continue
            declared = set(schemas[name].get("properties", {}))
            for field, value in PROTECTED.items():
                if field in declared or field in body:
                    continue
                sent = {**body, field: w.b.program_id if field == "program_id" else value}
                path = re.sub(r"\{(\w+)\}", lambda m: w.ids[m.group(1)], op.template)
                query = {q: "x" for q in op.query} or None
                response = w.a.admin.request(op.method, path, json=sent, params=query)
                assert response.status_code == 422, f"{name} with {field}: {response.status_code} {response.text}"
                code = PARSED_ELSEWHERE.get(name, "validation_error")
                assert response.json()["code"] == code, f"{name} with {field}: {response.text}"
                assert field in response.text, f"{name}: the refusal should name {field}: {response.text}"
                tried += 1
        # the till's key on members: the fields a till might try to set on enrolment or a profile change
        member = w.ids["member_id"]
        for field in ("balance", "points", "tier", "program_id", "id", "created_at", "erased", "status"):
            value = w.b.program_id if field == "program_id" else PROTECTED[field]
            for method, path in (("POST", "/members"), ("PATCH", f"/members/{member}")):
                response = w.a.pos.request(method, path, json={"first_name": "Eve", field: value})
                assert response.status_code == 422 and response.json()["code"] == "validation_error", response.text
                tried += 1
    assert tried >= 500, tried
    after = w.a.admin.get(f"/members/{w.ids['member_id']}")
    assert after["status"] == "active" and after["first_name"] != "Eve"
