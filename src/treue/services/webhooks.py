"""Outbound webhooks: endpoints a programme registers, the relay that turns outbox messages into deliveries
(and stream messages) after commit, and the delivery of due attempts by `treue worker run`.

Deliveries follow Standard Webhooks (https://www.standardwebhooks.com): the body is
`{"type", "timestamp", "data"}`, signed with the endpoint's `whsec_` secret in the `webhook-id`,
`webhook-timestamp` and `webhook-signature` headers; the id stays the same on every retry so a receiver can
drop duplicates.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from standardwebhooks.webhooks import Webhook

from treue.domain.errors import InvalidInput, NotFound
from treue.domain.events import Event
from treue.domain.webhooks import (
    FAILED,
    PENDING,
    SECRET_PREFIX,
    STATUSES,
    SUCCEEDED,
    WEBHOOK_DISABLED,
    DeliveryPolicy,
    check_filters,
    check_url,
    matches,
    succeeded,
)
from treue.ids import new_id
from treue.jsoncodec import dumps
from treue.services import outbox as outbox_service
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("treue.webhooks")
# (program_id, event type, payload, outbox message id): the event stream plugs in here (treue.services.streams).
Publisher = Callable[[UUID, str, dict[str, Any], UUID], None]
USER_AGENT = "Treue-Webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def endpoint_view(row: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    view = {
        "id": str(row["id"]),
        "url": row["url"],
        "events": list(row["filters"]),
        "description": row["description"],
        "enabled": bool(row["enabled"]),
        "disabled_reason": row["disabled_reason"],
        "consecutive_failures": row["consecutive_failures"],
        "failing_since": row["failing_since"].isoformat() if row["failing_since"] else None,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
    if with_secret:
        view["secret"] = row["secret"]
    return view


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "endpoint_id": str(row["endpoint_id"]),
        "message_id": str(row["message_id"]),
        "event_type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": _iso(row["next_attempt_at"]) if row["status"] == PENDING else None,
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "created_at": row["created_at"].isoformat(),
        "delivered_at": _iso(row["delivered_at"]),
        "attempt_log": [
            {"number": a["number"], "started_at": a["started_at"].isoformat(), "duration_ms": a["duration_ms"],
             "status_code": a["status_code"], "error": a["error"], "worker": a["worker"]}
            for a in row.get("attempt_log", [])
        ],
    }  # fmt: skip


def _endpoint(uow: UnitOfWork, program_id: UUID, endpoint_id: UUID, lock: bool = False) -> dict[str, Any]:
    found: dict[str, Any] | None = uow.webhooks.endpoint(program_id, endpoint_id, lock=lock)
    if found is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return found


# -- endpoints (admin) -------------------------------------------------------------------------------------
def create_endpoint(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                    actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Register an endpoint; its signing secret is generated here and shown to the admin."""
    row: dict[str, Any] = {
        "program_id": program_id, "id": new_id(), "url": check_url(str(values.get("url") or "")),
        "filters": check_filters(list(values.get("events") or [])), "secret": new_secret(),
        "description": values.get("description"), "enabled": bool(values.get("enabled", True)),
        "disabled_reason": None, "consecutive_failures": 0, "failing_since": None, "created_at": now,
        "updated_at": now,
    }  # fmt: skip
    with uow:
        uow.programs.get(program_id, cached=True)
        uow.webhooks.add_endpoint(row)
        view = endpoint_view(row)
        record_audit(uow, program_id, actor, "webhook.create", "webhook", row["id"], None, view, None, now)
        uow.commit()
    return endpoint_view(row, with_secret=True)


def list_endpoints(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        return [endpoint_view(row) for row in uow.webhooks.endpoints(program_id)]


def get_endpoint(uow: UnitOfWork, program_id: UUID, endpoint_id: UUID) -> dict[str, Any]:
    with uow:
        row = _endpoint(uow, program_id, endpoint_id)
        counts = uow.webhooks.count(program_id, endpoint_id)
    return endpoint_view(row, with_secret=True) | {"deliveries": {s: counts.get(s, 0) for s in STATUSES}}


def update_endpoint(uow: UnitOfWork, program_id: UUID, endpoint_id: UUID, changes: dict[str, Any], now: datetime,
                    actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Change url, filters, description or enabled; `rotate_secret` issues a new secret. Enabling again clears
    the failure count, so a fixed endpoint gets a fresh chance."""
    with uow:
        before = _endpoint(uow, program_id, endpoint_id, lock=True)
        values: dict[str, Any] = {"updated_at": now}
        if changes.get("url") is not None:
            values["url"] = check_url(str(changes["url"]))
        if changes.get("events") is not None:
            values["filters"] = check_filters(list(changes["events"]))
        if "description" in changes:
            values["description"] = changes["description"]
        if changes.get("enabled") is not None:
            values["enabled"] = bool(changes["enabled"])
            if values["enabled"]:
                values.update(disabled_reason=None, consecutive_failures=0, failing_since=None)
            elif before["enabled"]:
                values["disabled_reason"] = "disabled by an admin"
        if changes.get("rotate_secret"):
            values["secret"] = new_secret()
        uow.webhooks.update_endpoint(program_id, endpoint_id, values)
        after = before | values
        record_audit(uow, program_id, actor, "webhook.update", "webhook", endpoint_id, endpoint_view(before),
                     endpoint_view(after), None, now)  # fmt: skip
        uow.commit()
    return endpoint_view(after, with_secret=True)


def list_deliveries(uow: UnitOfWork, program_id: UUID, endpoint_id: UUID, status: str | None = None,
                    limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
    """The delivery log: newest first, each with its attempts (status code, error, duration)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    with uow:
        _endpoint(uow, program_id, endpoint_id)
        rows = uow.webhooks.deliveries(program_id, endpoint_id, status, max(1, min(limit, 500)))
    return [delivery_view(row) for row in rows]


def redeliver(uow: UnitOfWork, program_id: UUID, endpoint_id: UUID, now: datetime, *,
              delivery_id: UUID | None = None, failed_since: datetime | None = None,
              actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Send again: one delivery (whatever its outcome), or every failed one created since a time."""
    if (delivery_id is None) == (failed_since is None):
        raise InvalidInput("give either delivery_id or failed_since")
    with uow:
        _endpoint(uow, program_id, endpoint_id)
        if delivery_id is not None:
            found = uow.webhooks.delivery(program_id, delivery_id)
            if found is None or found["endpoint_id"] != endpoint_id:
                raise NotFound(f"no delivery {delivery_id} for webhook endpoint {endpoint_id}")
        ids = [delivery_id] if delivery_id is not None else None
        count = uow.webhooks.requeue(program_id, endpoint_id, ids, failed_since, now)
        record_audit(uow, program_id, actor, "webhook.redeliver", "webhook", endpoint_id, None,
                     {"delivery_id": str(delivery_id) if delivery_id else None, "failed_since": _iso(failed_since),
                      "requeued": count}, None, now)  # fmt: skip
        uow.commit()
    return {"requeued": count}


# -- the relay: outbox -> deliveries (and the stream) -------------------------------------------------------
def fan_out(uow: UnitOfWork, message: dict[str, Any], now: datetime) -> int:
    """Inside the caller's transaction: one delivery per enabled endpoint whose filters match the message."""
    program_id = message["program_id"]
    rows = [
        {"program_id": program_id, "id": new_id(), "endpoint_id": endpoint["id"], "message_id": message["id"],
         "event_type": message["topic"], "payload": message["payload"], "created_at": message["created_at"],
         "status": PENDING, "attempts": 0, "next_attempt_at": now}
        for endpoint in uow.webhooks.endpoints(program_id, enabled_only=True)
        if matches(endpoint["filters"], message["topic"])
    ]  # fmt: skip
    return int(uow.webhooks.add_deliveries(rows)) if rows else 0


def relay_outbox(uow_factory: UnitOfWorkFactory, now: datetime, batch: int = 200,
                 publisher: Publisher | None = None) -> dict[str, int]:  # fmt: skip
    """Dispatch the outbox (see `services.outbox`): each message's webhook deliveries are written in the same
    transaction that marks it dispatched; with a `publisher` it also goes to the event stream."""
    handlers: list[outbox_service.Handler] = [fan_out]
    if publisher is not None:

        def publish(uow: UnitOfWork, message: dict[str, Any], now: datetime) -> None:
            publisher(message["program_id"], message["topic"], message["payload"], message["id"])

        handlers.append(publish)
    done = outbox_service.dispatch_outbox(uow_factory, now, handlers, batch)
    return {"relayed": done["delivered"], "deliveries": done["produced"], "failed": done["failed"]}


# -- delivery -------------------------------------------------------------------------------------------------
def signed_request(delivery: dict[str, Any], secret: str, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of one attempt, signed at `now`."""
    body = dumps({"type": delivery["event_type"], "timestamp": delivery["created_at"].isoformat(),
                  "data": delivery["payload"]})  # fmt: skip
    msg_id = f"msg_{delivery['id']}"
    signature = Webhook(secret).sign(msg_id, now, body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature, "content-type": "application/json", "user-agent": USER_AGENT}  # fmt: skip
    return body.encode(), headers


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    if succeeded(response.status_code):
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def deliver_due(uow_factory: UnitOfWorkFactory, clock: Callable[[], datetime], worker: str,
                policy: DeliveryPolicy | None = None, limit: int = 20, client: httpx.Client | None = None,
                program_id: UUID | None = None) -> dict[str, int]:  # fmt: skip
    """Claim due deliveries (one transaction), POST each outside any transaction, record each outcome in its own.

    A claim is a lease: if this process dies mid-request, the delivery becomes claimable again when
    `policy.lease` has passed and another worker sends it (a receiver may thus see a webhook-id twice).
    With `program_id`, only that programme's deliveries are claimed.
    """
    policy = policy or DeliveryPolicy()
    now = clock()
    with uow_factory() as uow:
        claimed = uow.webhooks.claim_due(now, limit, worker, now + policy.lease, program_id)
        uow.commit()
    done = {"attempted": 0, "succeeded": 0, "failed": 0, "disabled": 0}
    if not claimed:
        return done
    own = client is None
    http = client or httpx.Client(timeout=policy.timeout_seconds, follow_redirects=False)
    try:
        for delivery in claimed:
            started = clock()
            body, headers = signed_request(delivery, delivery["secret"], started)
            began = time.perf_counter()  # a duration, not the time of day: the clock stays passed in
            status_code, error = _post(http, delivery["url"], body, headers)
            duration_ms = int((time.perf_counter() - began) * 1000)
            outcome = _record(uow_factory(), delivery, worker, policy, clock(), started, duration_ms, status_code,
                              error)  # fmt: skip
            done["attempted"] += 1
            done[outcome] += 1
            if outcome == "disabled":
                done["failed"] += 1
    finally:
        if own:
            http.close()
    return done


def _record(uow: UnitOfWork, delivery: dict[str, Any], worker: str, policy: DeliveryPolicy, now: datetime,
            started: datetime, duration_ms: int, status_code: int | None, error: str | None) -> str:  # fmt: skip
    program_id, endpoint_id = delivery["program_id"], delivery["endpoint_id"]
    number = delivery["attempts"]  # counted at the claim
    ok = error is None
    with uow:
        uow.webhooks.add_attempt({"program_id": program_id, "delivery_id": delivery["id"], "number": number,
                                  "started_at": started, "duration_ms": duration_ms, "status_code": status_code,
                                  "error": error, "worker": worker[:100]})  # fmt: skip
        if ok:
            values: dict[str, Any] = {"status": SUCCEEDED, "delivered_at": now, "last_status_code": status_code,
                                      "last_error": None}  # fmt: skip
        else:
            retry_at = policy.next_attempt(number, now)
            values = {"status": PENDING if retry_at else FAILED, "next_attempt_at": retry_at,
                      "last_status_code": status_code, "last_error": error}  # fmt: skip
        if not uow.webhooks.finish(program_id, delivery["id"], worker, values):
            uow.commit()  # the lease lapsed and another worker took over: keep the log line, leave its state
            return "succeeded" if ok else "failed"
        endpoint = _endpoint(uow, program_id, endpoint_id, lock=True)
        outcome = "succeeded" if ok else "failed"
        if ok:
            uow.webhooks.update_endpoint(program_id, endpoint_id, {"consecutive_failures": 0, "failing_since": None})
        else:
            failures = endpoint["consecutive_failures"] + 1
            since = endpoint["failing_since"] or started
            changes: dict[str, Any] = {"consecutive_failures": failures, "failing_since": since}
            if endpoint["enabled"] and policy.should_disable(failures, since, now):
                reason = f"{failures} failed attempts in a row since {since.isoformat()}"
                changes |= {"enabled": False, "disabled_reason": reason[:200], "updated_at": now}
                uow.emit(program_id, Event(WEBHOOK_DISABLED, {"webhook_id": str(endpoint_id), "url": endpoint["url"],
                                                              "reason": reason, "last_error": error}))  # fmt: skip
                outcome = "disabled"
            uow.webhooks.update_endpoint(program_id, endpoint_id, changes)
        uow.commit()
    return outcome
