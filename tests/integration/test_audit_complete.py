"""Audit completeness, generated from the OpenAPI document: every write operation of the API is either an
administrative change (an admin-scope route, or one of the support actions listed below) and then a successful call
writes an audit row in programme A - actor, action, target, before and/or after - or it is listed in NOT_AUDITED
with the reason it is not an administrative change (ledger operations of tills and shops, a member's own choices,
previews that write nothing, recomputed derived data). A new write operation fails this test until it is classified.

Programme A comes from the tenancy test's `build()` and every request body from its `body_for()`, so a new
operation gets its body in one place; OVERRIDES gives a different body or object where A's admin needs one (the
tenancy test's bodies only have to be refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from tests.integration.api_helpers import Api
from tests.integration.test_api_tenancy import Operation, World, body_for, build, operations
from tests.integration.web_helpers import Outbox
from treue.api import auth
from treue.services.notifications import send_due
from treue.store import tables as t

# Write operations that are not administrative changes: each is recorded in its own table (the ledger, the
# till batch log, the member's profile of consents), not in the audit log.
NOT_AUDITED = {
    # ledger operations of tills, shops and partners: the transfer (with its actor) is the record
    "POST /purchases": "a sale recorded by a till or shop (ledger transfer)",
    "POST /purchases/{purchase_id}/refunds": "a refund recorded by a till or shop (ledger transfer)",
    "POST /redemptions": "a redemption at a till (ledger transfer and coupon)",
    "POST /coupons/{code}/consume": "a coupon used at a till (coupon status)",
    "POST /events": "a member's activity reported by a till or app (event log; ledger if it earns)",
    "POST /holds": "a checkout hold at a till (wallet hold)",
    "POST /holds/{hold_id}/capture": "a checkout paid with points (ledger transfer)",
    "POST /holds/{hold_id}/release": "a checkout hold given back at the till",
    "POST /till/batches": "a till's offline batch (the batch log and ledger transfers)",
    "POST /cards/feeds": "a card network's transaction feed (card transactions and ledger transfers)",
    "POST /members": "an enrolment at a till, shop or app (the member row, the enrolment event)",
    "POST /club/subscriptions": "a member joins the paid club at a till or shop (subscription and payment rows)",
    "POST /members/{member_id}/club/payments": "a club payment from the payment provider (payment rows)",
    "POST /members/{member_id}/club/cancel": "a member cancels their club membership (subscription row)",
    # a member's own choices, made through a till, shop or app on the member's behalf
    "POST /members/{member_id}/offers/{offer_code}/activation": "a member activates an offer (activation row)",
    "POST /members/{member_id}/offers/{offer_code}/shown": "an offer was shown to the member (impression count)",
    "POST /members/{member_id}/missions/{mission_code}/opt-in": "a member joins a mission (progress row)",
    "POST /members/{member_id}/leaderboard-consent": "a member's leaderboard choice (stored on the member)",
    "POST /members/{member_id}/inbox/{message_id}/read": "a member read an inbox message (read_at)",
    "POST /surveys/{survey_code}/responses": "a member's survey answer (response row)",
    # nothing is written
    "POST /purchases/preview": "a preview: writes nothing",
    "POST /checkout/preview": "a preview: writes nothing",
    "POST /rules/validate": "a validation: writes nothing",
    "POST /simulations": "a simulation on a copy: writes nothing",
    "POST /notifications/templates/preview": "a preview: writes nothing",
    # derived data, recomputed from what is there (the jobs do the same every interval)
    "POST /segments/{segment_code}/refresh": "recomputes a dynamic segment's members from its definition",
    "POST /recommendations/refresh": "recounts product co-occurrence from purchases",
    # operator routes: no programme's audit log exists yet for a new programme; the operator key is the actor
    "POST /programs": "operator: creates a programme (the programme row records its creation)",
    "POST /programs/{program_id}/keys": "operator: a programme's first keys (api_keys row with created_at)",
}
# Admin-scope routes in NOT_AUDITED: they change no setting (the rest of the admin surface must be audited).
ADMIN_BUT_NOT_A_CHANGE = {"POST /rules/validate", "POST /simulations", "POST /notifications/templates/preview",
                          "POST /segments/{segment_code}/refresh", "POST /recommendations/refresh",
                          "POST /cards/feeds"}  # fmt: skip
# Write routes open to tills and shops that are support actions all the same: they must be audited too.
SUPPORT_ACTIONS = {
    "PATCH /members/{member_id}",
    "POST /members/{member_id}/transfers",
    "POST /redemptions/{redemption_id}/cancel",
    "POST /members/{member_id}/cards",
    "POST /members/{member_id}/cards/{card_id}/unlink",
    "POST /members/{member_id}/referral-code",
    "POST /events/{event_id}/moderation",
    "POST /members/{member_id}/notifications/consents",
}
# Audited, but the route does not pass the caller's key as the actor (the service's default "api" is recorded):
# gaps in files outside this test's reach, named for the lead. None left.
ACTOR_NOT_PASSED: dict[str, str] = {}


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers as they are
            yield from _routes(route.original_router.routes)


def _dependencies(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependencies(sub)


def admin_operations(api: Api) -> set[str]:
    """'METHOD /path' of every route that takes the admin scope only."""
    found = set()
    for route in _routes(api.app.routes):
        if auth.ADMIN in set(_dependencies(route.dependant)):
            found |= {f"{method} {route.path}" for method in route.methods}
    return found


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def _extra_objects(api: Api, w: World) -> dict[str, str]:
    """Objects the admin's calls need beside build()'s: keys to rotate and to revoke, a club plan, an active
    badge, an email message of A's."""
    ids = {"rotate_key_id": api.key(w.a.program_id, "pos", name="rotate-me").key_id or "",
           "revoke_key_id": api.key(w.a.program_id, "pos", name="revoke-me").key_id or ""}  # fmt: skip
    w.a.admin.post("/club/plans", {"code": "audit-plan", "name": {"de": "Club"}, "price": "5.00", "interval": "month"})
    w.a.admin.post("/badges", {"code": "audit-badge", "name": {"de": "Audit"}})
    # a second held transaction (the member is over build()'s fraud cap): approve one, reject the other
    held = w.a.pos.request("POST", "/purchases", json={"member_id": w.ids["member_id"], "external_order_id": "A-HELD",
                                                       "total": "5.00", "occurred_at": api.clock().isoformat(),
                                                       "currency": "EUR"})  # fmt: skip
    assert held.status_code < 300, held.text
    ids["second_held_id"] = next(h["id"] for h in w.a.admin.get("/fraud/held") if h["id"] != w.ids["held_id"])
    # an email sent (by a stand-in mailer): only a sent email can bounce
    send_due(api.uow, api.clock, "audit-test", Outbox(), limit=100, program_id=UUID(w.a.program_id))
    with api.engine.connect() as conn:
        m = t.notification_messages
        ids["email_message_id"] = str(conn.execute(select(m.c.id).where(m.c.program_id == UUID(w.a.program_id),
                                                                        m.c.channel == "email",
                                                                        m.c.status == "sent")).scalars().first())  # fmt: skip
    return ids


def _overrides(extra: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per operation: other path objects ("ids") or another body for A's own admin."""
    return {
        "POST /keys/{key_id}/rotate": {"ids": {"key_id": extra["rotate_key_id"]}},
        "DELETE /keys/{key_id}": {"ids": {"key_id": extra["revoke_key_id"]}},
        "PATCH /rules/{rule_id}": {"body": {"priority": 5}},
        "PATCH /club/plans/{code}": {"ids": {"code": "audit-plan"}},
        "POST /members/{member_id}/badges": {"body": {"badge": "audit-badge"}},
        "POST /notifications/messages/{message_id}/bounce": {"ids": {"message_id": extra["email_message_id"]}},
        "POST /notifications/messages/{message_id}/resend": {"ids": {"message_id": extra["email_message_id"]}},
        "POST /members/{member_id}/cards/{card_id}/unlink": {"body": {"reason": "lost"}},
        "POST /fraud/held/{held_id}/reject": {"ids": {"held_id": extra["second_held_id"]}},
    }


def audit_rows(api: Api, program_id: str) -> dict[Any, Any]:
    with api.engine.connect() as conn:
        rows = conn.execute(select(t.audit_log).where(t.audit_log.c.program_id == UUID(program_id)))
        return {row.id: row for row in rows}


def test_every_administrative_write_writes_an_audit_row(api: Api, now):
    w = build(api, now)
    api.clock.advance(minutes=1)  # rule versions need a later valid_from than build()'s
    extra = _extra_objects(api, w)
    overrides = _overrides(extra)
    admin = admin_operations(api)
    writes = [op for op in operations(api) if op.method != "GET"]
    unclassified = [str(op) for op in writes if str(op) not in admin | SUPPORT_ACTIONS | set(NOT_AUDITED)]
    assert not unclassified, f"classify these write operations (audited, or NOT_AUDITED with why): {unclassified}"
    wrongly_excluded = set(NOT_AUDITED) & admin - ADMIN_BUT_NOT_A_CHANGE
    assert not wrongly_excluded, f"admin-scope routes must be audited: {wrongly_excluded}"
    listed = set(NOT_AUDITED) | SUPPORT_ACTIONS | set(ACTOR_NOT_PASSED)
    assert listed <= {str(op) for op in writes}, f"listed but no such operation: {listed - {str(op) for op in writes}}"

    checked: dict[str, list[str]] = {}
    failures: list[str] = []
    for op in sorted(writes, key=lambda o: o.method == "DELETE" or o.template.endswith("/erase")):  # those last
        name = str(op)
        if name in NOT_AUDITED:
            continue
        before = audit_rows(api, w.a.program_id)
        try:
            response = _call(api, w, op, overrides.get(name, {}), now)
        except (AssertionError, KeyError) as error:  # no body in body_for() yet, or an object build() lacks
            failures.append(f"{name}: cannot call it: {type(error).__name__} {error}".splitlines()[0])
            continue
        if not 200 <= response.status_code < 300:
            failures.append(f"{name}: {response.status_code} {response.text[:200]}")
            continue
        new = [row for key, row in audit_rows(api, w.a.program_id).items() if key not in before]
        if not new:
            failures.append(f"{name}: succeeded without an audit row")
            continue
        for row in new:
            assert row.action and row.target_type and row.target_id, f"{name}: {row}"
            assert row.before is not None or row.after is not None, f"{name}: neither before nor after in {row}"
            expected = "api" if name in ACTOR_NOT_PASSED else "key:admin"
            assert row.actor == expected, f"{name}: actor {row.actor!r}, expected {expected!r}"
        checked[name] = sorted({row.action for row in new})
    assert not failures, "\n".join(failures)
    assert len(checked) >= 40, checked  # the admin surface really was walked
    print(f"\naudited operations: {len(checked)}; not audited (listed): {len(NOT_AUDITED)}")


def _call(api: Api, w: World, op: Operation, override: dict[str, Any], now: Any) -> Any:
    ids = w.ids | override.get("ids", {})
    path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], op.template)
    known = {"external_order_id": w.order_id, "member_id": w.ids["member_id"]}
    query = {name: known.get(name, "x") for name in op.query}
    body = override["body"] if "body" in override else body_for(op, w, now)
    return w.a.admin.request(op.method, path, json=body, params=query or None)
