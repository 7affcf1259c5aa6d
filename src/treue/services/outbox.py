"""Dispatch outbox messages to subscribers after commit (webhooks, email, streams plug in here)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from treue.services.ports import UnitOfWorkFactory

log = logging.getLogger("treue.outbox")
Handler = Callable[[dict[str, Any]], None]
_handlers: list[Handler] = []


def subscribe(handler: Handler) -> None:
    _handlers.append(handler)


def dispatch_outbox(uow_factory: UnitOfWorkFactory, now: datetime, batch: int = 200,
                    handlers: list[Handler] | None = None) -> dict[str, int]:  # fmt: skip
    """Deliver pending messages once each; a failing handler leaves its message pending for a retry."""
    delivered = failed = 0
    targets = _handlers if handlers is None else handlers
    while True:
        with uow_factory() as uow:
            messages = uow.outbox.claim(batch)
            for message in messages:
                try:
                    for handler in targets:
                        handler(message)
                    uow.outbox.mark(message["program_id"], message["id"], now, None)
                    delivered += 1
                except Exception as error:  # one bad subscriber must not stop the others' messages
                    log.warning("outbox message %s failed: %s", message["id"], error)
                    uow.outbox.mark(message["program_id"], message["id"], None, repr(error)[:500])
                    failed += 1
            uow.commit()
        if len(messages) < batch or failed:
            break
    return {"delivered": delivered, "failed": failed}
