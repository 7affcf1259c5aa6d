"""The event stream (NATS JetStream): publish every domain event after commit, and take in purchases at volume.

Publishing: subject `treue.<program_id>.<event type>` (e.g. `treue.0193....points.earned`) in the stream `TREUE`,
created if missing. Each message carries the outbox message id as `Nats-Msg-Id`, so JetStream drops the copy
that a relay retried after a failed commit (within the stream's duplicate window).

Intake: a durable pull consumer on a stream of purchase messages (JSON, see `purchase_command`). A message is
acknowledged only after its purchase committed; a purchase already recorded for (partner, external order id)
counts as done (DuplicateOrder), so a redelivered message changes nothing: at-least-once delivery, exactly-once
effect. A message that can never succeed (malformed, unknown member) is terminated and logged, not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import nats
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from treue.domain.cards import refuse_card_numbers
from treue.domain.errors import DomainError, DuplicateOrder, InvalidInput
from treue.jsoncodec import dumps_bytes
from treue.services.ports import UnitOfWorkFactory
from treue.services.purchases import LineInput, PaymentInput, RecordPurchase, record_purchase
from treue.services.webhooks import relay_outbox

log = logging.getLogger("treue.streams")
T = TypeVar("T")
STREAM = "TREUE"
PREFIX = "treue"
NATS_URL_ENV = "TREUE_NATS_URL"


def subject_for(program_id: UUID, event_type: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{program_id}.{event_type}"


async def ensure_stream(js: JetStreamContext, name: str, subjects: list[str]) -> None:
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(name=name, subjects=subjects)


class JetStreamPublisher:
    """A blocking publisher for the (synchronous) relay: nats-py runs on its own event loop in a thread."""

    def __init__(self, url: str, stream: str = STREAM, prefix: str = PREFIX, timeout: float = 5.0) -> None:
        self.stream, self.prefix, self.timeout = stream, prefix, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="treue-nats", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._js: JetStreamContext | None = None
        self._run(self._connect(url))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout * 2)

    async def _connect(self, url: str) -> None:
        self._nc = await nats.connect(url, connect_timeout=self.timeout, max_reconnect_attempts=3)
        self._js = self._nc.jetstream()
        await ensure_stream(self._js, self.stream, [f"{self.prefix}.>"])

    def __call__(self, program_id: UUID, event_type: str, payload: dict[str, Any], message_id: UUID) -> None:
        assert self._js is not None
        body = dumps_bytes({"id": str(message_id), "program_id": str(program_id), "type": event_type,
                            "data": payload})  # fmt: skip
        self._run(self._js.publish(subject_for(program_id, event_type, self.prefix), body, timeout=self.timeout,
                                   stream=self.stream, headers={"Nats-Msg-Id": str(message_id)}))  # fmt: skip

    def close(self) -> None:
        if self._nc is not None:
            self._run(self._nc.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


_default: JetStreamPublisher | None = None
_default_lock = threading.Lock()


def publisher_from_env() -> JetStreamPublisher | None:
    """The process's publisher when TREUE_NATS_URL is set (connected once), else None: the stream is optional."""
    global _default
    url = os.environ.get(NATS_URL_ENV)
    if not url:
        return None
    with _default_lock:
        if _default is None:
            _default = JetStreamPublisher(url)
        return _default


def relay(uow_factory: UnitOfWorkFactory, now: datetime) -> dict[str, int]:
    """The outbox job: webhook deliveries, and the event stream when configured."""
    return relay_outbox(uow_factory, now, publisher=publisher_from_env())


# -- intake -------------------------------------------------------------------------------------------------
def _text(message: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = message.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"the purchase message lacks {name}")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInput(f"{name} must be a string")
    return str(value)


def purchase_command(message: dict[str, Any]) -> tuple[UUID, RecordPurchase]:
    """A purchase message: the fields of POST /purchases plus `program_id`. Amounts are decimal strings."""
    try:
        program_id = UUID(str(message.get("program_id")))
        occurred_raw = _text(message, "occurred_at", required=True)
        occurred_at = datetime.fromisoformat(str(occurred_raw))
        member = _text(message, "member_id")
        lines = [LineInput(str(x["sku"]), int(x["quantity"]), str(x["unit_price"]), x.get("category"), x.get("name"))
                 for x in message.get("lines") or []]  # fmt: skip
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidInput(f"malformed purchase message: {error}") from None
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at needs a timezone")
    command = RecordPurchase(
        external_order_id=str(_text(message, "external_order_id", required=True)),
        total=str(_text(message, "total", required=True)), currency=str(_text(message, "currency", required=True)),
        occurred_at=occurred_at, member_id=UUID(member) if member else None,
        card_number=_text(message, "card_number"), external_ref=_text(message, "external_ref"),
        partner=_text(message, "partner") or "default", store=_text(message, "store"),
        channel=_text(message, "channel") or "store", lines=lines, payment=_payment(message.get("payment")),
    )  # fmt: skip
    return program_id, command


def _payment(value: Any) -> PaymentInput | None:
    """`"payment": {"token": ..., "brand": ..., "fingerprint": ...}` (issue 11); a card number is refused (its
    refusal, logged by the intake, never repeats it)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("payment must be an object with a token")
    refuse_card_numbers(value)
    token = _text(value, "token", required=True)
    return PaymentInput(str(token), _text(value, "brand"), _text(value, "fingerprint"))


def intake_one(uow_factory: UnitOfWorkFactory, data: bytes, now: datetime) -> str:
    """Record one purchase message: `recorded`, or `duplicate` (recorded before: already done).
    Raises DomainError when the message can never succeed."""
    try:
        message = json.loads(data)
    except ValueError as error:
        raise InvalidInput(f"the purchase message is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise InvalidInput("the purchase message must be a JSON object")
    program_id, command = purchase_command(message)
    try:
        record_purchase(uow_factory(), program_id, command, now)
    except DuplicateOrder:
        return "duplicate"
    return "recorded"


@dataclass
class IntakeReport:
    recorded: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"recorded": self.recorded, "duplicate": self.duplicate, "rejected": self.rejected,
                "errors": self.errors[-20:]}  # fmt: skip


async def run_intake(uow_factory: UnitOfWorkFactory, clock: Callable[[], datetime], url: str, stream: str,
                     subject: str, durable: str, *, ack_wait: float = 30.0, batch: int = 50,
                     stop_when_idle: bool = False, stop: asyncio.Event | None = None) -> IntakeReport:  # fmt: skip
    """Consume purchase messages until stopped (or, with stop_when_idle, until a fetch finds none).

    Each message is recorded in its own transaction and acknowledged only after that commit: a process that
    dies in between leaves the message unacknowledged, and JetStream delivers it again after `ack_wait`.
    """
    report = IntakeReport()
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream, [subject])
        config = ConsumerConfig(ack_wait=ack_wait, max_ack_pending=batch * 4)
        subscription = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        while stop is None or not stop.is_set():
            try:
                messages = await subscription.fetch(batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                if stop_when_idle:
                    break
                continue
            for message in messages:
                try:
                    outcome = await asyncio.to_thread(intake_one, uow_factory, message.data, clock())
                except DomainError as error:
                    report.rejected += 1
                    report.errors.append(f"{error.code}: {error.detail}")
                    log.warning("purchase message rejected (%s): %s", error.code, error.detail)
                    await message.term()  # it can never succeed: do not deliver it again
                    continue
                except Exception as error:  # e.g. the database is away: the message comes back shortly
                    log.warning("purchase message not recorded, will retry: %r", error)
                    report.errors.append(repr(error)[:200])
                    await message.nak(delay=5)
                    await asyncio.sleep(1)
                    continue
                setattr(report, outcome, getattr(report, outcome) + 1)
                await message.ack()  # only now: the purchase is committed
    finally:
        await nc.close()
    return report
