"""The `kpi_rollup` job: daily sums of the history the KPIs read again and again (member and wallet postings,
members' revenue), so that a KPI reads a few thousand day rows and the raw rows since, not the whole ledger.

A run adds what was recorded or occurred since the last one: rows recorded in [old watermark, new watermark)
that occurred before the new end day, and rows recorded before the old watermark that occurred in [old end day,
new end day). The watermark trails the clock by `MARGIN`, so that a row is still read raw, not missed, when the
writer took its time between reading the clock and committing: a transaction, and also a job or an import that
writes every row with the time it started at (`created_at` is the writer's `now`). A change of the programme's timezone moves every local day: the roll-up is
then rebuilt.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from treue.domain.analytics.rollups import SlotStraddlesMidnight, slot_day
from treue.domain.durations import require_aware, start_of_local_day, zone
from treue.domain.errors import InvalidInput
from treue.domain.programs import Program
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.store.kpi_rollups import KpiRollups, Part, Rolled

# How far the watermark trails the clock: longer than any writer holds its `now` before the last commit - a
# transaction (milliseconds), a job over a million members (minutes), an import of millions of rows (hours). The
# rows of that last day are read raw, which costs little with the indexes by time.
MARGIN = timedelta(days=1)


def _store(uow: UnitOfWork) -> KpiRollups:
    # The roll-up tables are not part of the unit of work's protocol; they are written on its connection.
    return KpiRollups(cast(Any, uow).conn)


def rolled(uow: UnitOfWork, program: Program) -> Rolled | None:
    """The programme's roll-up for a KPI read, or None (none yet, or kept in another timezone: read raw)."""
    state = _store(uow).state(program.id)
    if state is None or state[0] != program.timezone:
        return None
    timezone, through_day, watermark = state
    return Rolled(timezone, through_day, start_of_local_day(through_day, zone(timezone)), watermark)


def roll_up(uow: UnitOfWork, program_id: UUID, now: datetime) -> dict[str, Any]:
    """Add to the programme's roll-up what it lacks up to `now` - MARGIN, in one transaction."""
    now = require_aware(now, "now")
    with uow:
        program = uow.programs.get(program_id)
        tz = zone(program.timezone)
        store = _store(uow)
        state = store.claim(program_id, now)
        watermark = now - MARGIN
        through = watermark.astimezone(tz).date()
        if state[0] != program.timezone:
            store.clear(program_id)
            parts = [Part(None, watermark, None, start_of_local_day(through, tz))]
            rebuilt = True
        else:
            _, old_through, old_watermark = state
            watermark, through = max(watermark, old_watermark), max(through, old_through)
            if (watermark, through) == (old_watermark, old_through):
                return {"program_id": str(program_id), "through_day": through.isoformat(), "rows": 0}
            through_at = start_of_local_day(through, tz)
            parts = [Part(old_watermark, watermark, None, through_at),
                     Part(None, old_watermark, start_of_local_day(old_through, tz), through_at)]  # fmt: skip
            rebuilt = False
        flows: Counter[tuple[date, str, str, str, str]] = Counter()
        revenue: Counter[tuple[date, str]] = Counter()
        for part in parts:
            for slot, account_kind, unit, kind, corrected, amount in store.flow_slots(program_id, part):
                flows[(_day(slot, tz), account_kind, unit, kind, corrected)] += amount
            for slot, currency, amount in store.revenue_slots(program_id, part):
                revenue[(_day(slot, tz), currency)] += amount
        store.add_flow_days(program_id, flows)
        store.add_revenue_days(program_id, revenue)
        store.save_state(program_id, program.timezone, through, watermark, now)
        uow.commit()
    return {"program_id": str(program_id), "through_day": through.isoformat(), "watermark": watermark.isoformat(),
            "rebuilt": rebuilt, "rows": len(flows) + len(revenue)}  # fmt: skip


def _day(slot: int, tz: ZoneInfo) -> date:
    try:
        return slot_day(slot, tz)
    except SlotStraddlesMidnight as error:
        raise InvalidInput(f"{error}: KPIs of this programme are read from the raw rows") from None


def roll_up_all(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None) -> dict[str, Any]:
    """The job: every programme's roll-up (or one's), each in its own transaction."""
    with uow_factory(read_only=True) as uow:
        programs = [program_id] if program_id else [p.id for p, _ in uow.programs.list()]
    done, refused = [], {}
    for pid in programs:
        try:
            done.append(roll_up(uow_factory(), pid, now))
        except InvalidInput as error:  # one programme's old zone does not stop the others'
            refused[str(pid)] = str(error)
    return {"rolled_up": len(done), "rows": sum(d["rows"] for d in done), "refused": refused}
