"""KPI roll-ups (issue 6, P7): every KPI and liability figure read through the daily roll-up equals the figure
read from the raw rows alone, on the worked example of test_kpis, at every stage of rolling up and after rows
recorded late (back-dated purchases, refunds, adjustments), on SQLite and PostgreSQL. Incremental roll-ups hold
exactly what one roll-up from scratch holds; a timezone change rebuilds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select

from tests.integration.helpers import race
from tests.integration.test_kpis import JAN_1, JAN_31, at, worked_example
from treue.jobs.registry import JOBS
from treue.services.kpi_rollups import MARGIN, roll_up, rolled
from treue.services.kpis import kpis, liability_report
from treue.services.points import adjust_points
from treue.services.programs import update_program
from treue.services.purchases import LineInput, RecordPurchase, RefundPurchase, record_purchase, refund_purchase
from treue.store import tables as t
from treue.store.kpis import SPLITS

NOW = datetime(2026, 3, 5, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
# Roll-ups before, inside and after January and February (the watermark trails each by a day).
STAGES = (at(12, 14, year=2025), at(1, 12), at(1, 16, 9), at(2, 1, 22, 40), at(2, 5), at(3, 1), at(3, 4))


def reports(uow_factory: Any, pid: UUID) -> dict[str, Any]:
    found: dict[str, Any] = {
        f"january by {by}": kpis(uow_factory(read_only=True), pid, JAN_1, JAN_31, NOW, by=by) for by in (None, *SPLITS)
    }
    for name, start, end in (("december", date(2025, 12, 1), date(2025, 12, 31)),
                             ("february", date(2026, 2, 1), date(2026, 2, 28)),
                             ("across the months", date(2026, 1, 15), date(2026, 2, 5)),
                             ("march", date(2026, 3, 1), date(2026, 3, 31))):  # fmt: skip
        found[name] = kpis(uow_factory(read_only=True), pid, start, end, NOW)
    found["liability"] = liability_report(uow_factory(read_only=True), pid, date(2025, 11, 1), date(2026, 3, 1), NOW)
    return found


def raw_reports(uow_factory: Any, pid: UUID) -> dict[str, Any]:
    """The reports with the roll-up set aside (its state row removed, then put back)."""
    r = t.kpi_rollups
    with uow_factory() as uow:
        state = uow.conn.execute(select(r).where(r.c.program_id == pid)).mappings().first()
        uow.conn.execute(delete(r).where(r.c.program_id == pid))
        uow.commit()
    assert rolled_state(uow_factory, pid) is None
    found = reports(uow_factory, pid)
    if state is not None:
        with uow_factory() as uow:
            uow.conn.execute(insert(r).values(**state))
            uow.commit()
    return found


def rolled_state(uow_factory: Any, pid: UUID) -> Any:
    with uow_factory(read_only=True) as uow:
        return rolled(uow, uow.programs.get(pid))


def day_rows(uow_factory: Any, pid: UUID) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    f, v = t.kpi_flow_days, t.kpi_revenue_days
    with uow_factory(read_only=True) as uow:
        flows = {tuple(row) for row in uow.conn.execute(
            select(f.c.day, f.c.account_kind, f.c.unit, f.c.kind, f.c.corrected_kind, f.c.amount)
            .where(f.c.program_id == pid, f.c.amount != 0))}  # fmt: skip
        revenue = {tuple(row) for row in uow.conn.execute(
            select(v.c.day, v.c.currency, v.c.amount).where(v.c.program_id == pid, v.c.amount != 0))}  # fmt: skip
    return flows, revenue


def rebuilt_rows(uow_factory: Any, pid: UUID, now: datetime) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The day rows one roll-up from scratch at `now` writes (the programme's state is replaced by it)."""
    with uow_factory() as uow:
        uow.conn.execute(delete(t.kpi_rollups).where(t.kpi_rollups.c.program_id == pid))
        uow.commit()
    assert roll_up(uow_factory(), pid, now)["rebuilt"] is True
    return day_rows(uow_factory, pid)


def test_kpis_through_the_rollup_equal_the_raw_rows_at_every_stage(uow_factory):
    example = worked_example(uow_factory)
    pid = example["program_id"]
    raw = reports(uow_factory, pid)
    assert rolled_state(uow_factory, pid) is None
    assert raw["january by None"]["points_outstanding"] == 180  # the worked example, as test_kpis checks it
    for stage in STAGES:
        done = roll_up(uow_factory(), pid, stage)
        assert done["watermark"] == (stage - MARGIN).isoformat()
        state = rolled_state(uow_factory, pid)
        assert state is not None and state.through_day == (stage - MARGIN).astimezone(BERLIN).date()
        assert reports(uow_factory, pid) == raw, f"rolled up at {stage}"
    flows, revenue = day_rows(uow_factory, pid)
    # Berlin days: A's 50.00 on Dec 15 and the purchases of January up to the 31st (C's 23:30 UTC one is Feb 1).
    assert (date(2025, 12, 15), "EUR", 5000) in revenue and (date(2026, 2, 1), "EUR", 3000) in revenue
    # B's refund of 20.00 on Jan 15 counts on the day of the purchase it refunds.
    assert (date(2026, 1, 12), "EUR", 4000) in revenue and not any(day == date(2026, 1, 15) for day, *_ in revenue)
    # A's December points, valid through Jan 15, expire at the start of Jan 16 (the job ran on the 20th).
    assert (date(2026, 1, 16), "member", "PTS", "expire", "", -50) in flows
    assert (flows, revenue) == rebuilt_rows(uow_factory, pid, STAGES[-1])
    assert roll_up(uow_factory(), pid, STAGES[-1])["rows"] == 0  # nothing new: nothing added twice


def test_rows_recorded_after_the_rollup_are_read_raw_even_when_back_dated(uow_factory):
    example = worked_example(uow_factory)
    pid, b, c, d = example["program_id"], example["b"], example["c"], example["d"]
    roll_up(uow_factory(), pid, at(3, 1))
    before = reports(uow_factory, pid)["january by None"]
    late = at(3, 2)
    # A till that was offline sends January's purchase in March; B's app purchase is refunded again, once with the
    # refund dated in January and once today; D gets points back-dated to January by hand.
    _purchase(uow_factory, pid, c, "80.00", at(1, 25), "offline-1", recorded=late)
    bought = purchase_of(uow_factory, pid, b)
    refund_purchase(uow_factory(), pid, bought, RefundPurchase(amount="10.00", occurred_at=at(1, 28)), late)
    refund_purchase(uow_factory(), pid, bought, RefundPurchase(amount="5.00", occurred_at=late), late)
    adjust_points(uow_factory(), pid, d, 7, "goodwill", late)
    # And today's purchase refunded within minutes: tomorrow's roll-up has its refund but not its day.
    today = _purchase(uow_factory, pid, c, "12.00", late, "today-1")
    refund_purchase(uow_factory(), pid, today, RefundPurchase(amount="2.00"), at(3, 2, 10, 5))
    after = reports(uow_factory, pid)
    assert after == raw_reports(uow_factory, pid)
    january = after["january by None"]
    # A purchase's revenue is net of all its refunds, whenever they are dated: 205 + 80 - 10 - 5.
    assert (january["purchases"], january["revenue"]["amount"]) == (5, "270.00")
    assert january["historical_clv"]["amount"] == "80.00"  # (50 + 205 + 80 - 10 - 5) / 4
    # The late purchase earned 80 points and 5 from January's campaign (Jan 25 lies in it).
    assert january["points_moved"]["earned"] == before["points_moved"]["earned"] + 85
    # The next roll-up takes the late rows in and the figures stay; it holds what one from scratch holds.
    assert roll_up(uow_factory(), pid, at(3, 3, 12))["through_day"] == "2026-03-02"
    assert reports(uow_factory, pid) == after
    assert after["march"]["historical_clv"]["amount"] == "72.00"  # (320 + February's 30 + 12 - 2) / 5 members
    assert day_rows(uow_factory, pid) == rebuilt_rows(uow_factory, pid, at(3, 3, 12))


def _purchase(uow_factory: Any, pid: UUID, member: UUID, total: str, occurred: datetime, order: str,
              recorded: datetime | None = None) -> UUID:  # fmt: skip
    command = RecordPurchase(total=total, currency="EUR", occurred_at=occurred, member_id=member,
                             external_order_id=order, lines=[LineInput("SKU-1", 1, total, "misc")])  # fmt: skip
    return UUID(record_purchase(uow_factory(), pid, command, recorded or occurred)["id"])


def purchase_of(uow_factory: Any, pid: UUID, member: UUID) -> UUID:
    p = t.purchases
    with uow_factory(read_only=True) as uow:
        found = uow.conn.execute(select(p.c.id).where(p.c.program_id == pid, p.c.member_id == member)).scalar_one()
    return UUID(str(found))


def test_a_new_timezone_sets_the_rollup_aside_until_it_is_rebuilt(uow_factory):
    pid = worked_example(uow_factory)["program_id"]
    JOBS["kpi_rollup"](uow_factory, at(3, 1), pid)
    assert rolled_state(uow_factory, pid) is not None
    update_program(uow_factory(), pid, {"timezone": "America/New_York"}, at(3, 1, 12))
    assert rolled_state(uow_factory, pid) is None  # Berlin's days are not New York's
    raw = reports(uow_factory, pid)
    assert raw["january by None"]["purchases"] == 5  # both of C's are on Jan 31 in New York (4 in Berlin)
    done = JOBS["kpi_rollup"](uow_factory, at(3, 2), pid)
    assert done == {"rolled_up": 1, "rows": done["rows"], "refused": {}} and done["rows"] > 0
    state = rolled_state(uow_factory, pid)
    assert state is not None and state.timezone == "America/New_York"
    assert reports(uow_factory, pid) == raw


def test_two_first_roll_ups_at_once_add_nothing_twice(uow_factory):
    pid = worked_example(uow_factory)["program_id"]
    results = race([lambda: roll_up(uow_factory(), pid, at(3, 1)) for _ in range(2)])
    assert not [r for r in results if isinstance(r, Exception)]
    # One rolled everything up; the other waited for its lock, then found nothing left to add.
    assert sorted(r["rows"] for r in results)[0] == 0 and sorted(r["rows"] for r in results)[1] > 0
    assert day_rows(uow_factory, pid) == rebuilt_rows(uow_factory, pid, at(3, 1))
