"""Dispatch outbox messages after commit to the handlers that act on them (webhooks, the event stream).

A handler gets the unit of work of the dispatch, so what it writes (a webhook's deliveries) commits together
with the mark that the message is dispatched: a crash in between leaves both undone, nothing is lost. Each
message's handlers run in a savepoint: when one fails, what the others wrote for it is rolled back, the message
is marked failed and stays pending for a retry. Side effects outside the database (a stream publish) may
therefore happen twice for one message, never zero times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from treue.services.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("treue.outbox")
# (the dispatch's unit of work, the message, now) -> how many things it produced (e.g. deliveries), or None
Handler = Callable[[UnitOfWork, dict[str, Any], datetime], int | None]


def subscribers() -> list[Handler]:
    """Handlers every dispatch runs besides the caller's: notifications (issue 8) queue their messages in the
    same transaction that marks an event dispatched."""
    from treue.services.notifications import on_event

    return [on_event]


def dispatch_outbox(uow_factory: UnitOfWorkFactory, now: datetime, handlers: Sequence[Handler],
                    batch: int = 200) -> dict[str, int]:  # fmt: skip
    """Hand every pending message to `handlers` (and the `subscribers`), once each; returns dispatched, failed and
    produced counts (what the caller's handlers produced)."""
    delivered = failed = produced = 0
    own = len(handlers)
    handlers = [*handlers, *subscribers()]
    while True:
        with uow_factory() as uow:
            messages = uow.outbox.claim(batch)
            for message in messages:
                try:
                    with uow.conn.begin_nested():  # type: ignore[attr-defined]  # one savepoint per message
                        made = [handler(uow, message, now) for handler in handlers]
                    uow.outbox.mark(message["program_id"], message["id"], now, None)
                    delivered += 1
                    produced += sum(n for n in made[:own] if n)
                except Exception as error:  # one bad message must not hold up the others
                    log.warning("outbox message %s failed: %s", message["id"], error)
                    uow.outbox.mark(message["program_id"], message["id"], None, repr(error)[:500])
                    failed += 1
            uow.commit()
        if len(messages) < batch or failed:
            break
    return {"delivered": delivered, "failed": failed, "produced": produced}
