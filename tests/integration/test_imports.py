"""The CSV purchase import stamps every row with the clock when the row is written (members it creates too), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy import select

from treue.services.imports import import_purchases
from treue.store import tables as t

START = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_each_row_is_recorded_at_the_time_it_is_written(uow_factory, program_id):
    ticks = count()
    clock = lambda: START + timedelta(hours=next(ticks))  # noqa: E731  (an hour passes with every reading)
    lines = ["member,order_id,occurred_at,total,currency\n",
             "cust-a,o-1,2026-01-10T10:00:00+00:00,40.00,EUR\n",
             "cust-b,o-2,2026-01-12T10:00:00+00:00,9.99,EUR\n",
             "cust-a,o-3,2026-01-20T10:00:00+00:00,20.50,EUR\n"]  # fmt: skip
    report = import_purchases(uow_factory, program_id, lines, clock, create_members=True)
    assert (report.imported, report.members_created, report.errors) == (3, 2, [])
    p, m, tr = t.purchases, t.members, t.transfers
    with uow_factory(read_only=True) as uow:
        recorded = dict(uow.conn.execute(select(p.c.external_order_id, p.c.created_at).where(p.c.program_id == program_id)).all())  # fmt: skip
        enrolled = dict(uow.conn.execute(select(m.c.external_ref, m.c.enrolled_at).where(m.c.program_id == program_id)).all())  # fmt: skip
        earned = {row.purchase_id: row.created_at for row in uow.conn.execute(
            select(tr.c.purchase_id, tr.c.created_at).where(tr.c.program_id == program_id, tr.c.kind == "earn"))}  # fmt: skip
    # a: enrolled at 10:00, its purchase at 11:00; b: 12:00 and 13:00; a's second purchase at 14:00.
    assert enrolled == {"cust-a": START, "cust-b": START + timedelta(hours=2)}
    assert recorded == {"o-1": START + timedelta(hours=1), "o-2": START + timedelta(hours=3),
                        "o-3": START + timedelta(hours=4)}  # fmt: skip
    assert sorted(earned.values()) == sorted(recorded.values())  # each earn with its purchase
