"""Scheduled triggers (birthday, membership anniversary, cron) and refund-triggered rules, on both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from threading import Barrier
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import WEDNESDAY, by_rule, fixed, rule
from treue.jobs.registry import JOBS
from treue.jobs.scheduler import Scheduler
from treue.services.points import get_balance, get_history
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.scheduled import run_scheduled_rules
from treue.services.verify import verify

BIRTHDAY_0030_BERLIN = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # 2026-11-23 00:30 in Berlin (UTC+1)


def points(uow, pid, member, at):
    return get_balance(uow(), pid, member, at)["points"]


def test_birthday_bonus_on_the_local_birthday_once(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "birthday-bonus", fixed(500), trigger="birthday")
    member = enrol(uow_factory, program_id, now, birthday=date(1990, 11, 23))
    other = enrol(uow_factory, program_id, now, birthday=date(1990, 11, 24))
    day_before = BIRTHDAY_0030_BERLIN - timedelta(hours=1)  # 23:30 on 22 November in Berlin
    assert run_scheduled_rules(uow_factory, day_before, program_id)["awarded"] == 0
    assert points(uow_factory, program_id, member, day_before) == 0

    first = run_scheduled_rules(uow_factory, BIRTHDAY_0030_BERLIN, program_id)
    assert (first["awarded"], first["points"]) == (1, 500)
    again = run_scheduled_rules(uow_factory, BIRTHDAY_0030_BERLIN + timedelta(hours=5), program_id)
    assert again["awarded"] == 0 and again["already_done"] == 1
    assert points(uow_factory, program_id, member, BIRTHDAY_0030_BERLIN) == 500
    assert points(uow_factory, program_id, other, BIRTHDAY_0030_BERLIN) == 0
    [earn] = get_history(uow_factory(), program_id, member)
    assert by_rule(earn["explanation"]) == {"birthday-bonus": 500}
    assert earn["explanation"]["event"] == "birthday"
    assert verify(uow_factory(), program_id) == []


def test_a_missed_birthday_is_caught_up_for_one_day_only(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "birthday-bonus", fixed(500), trigger="birthday")
    yesterday = enrol(uow_factory, program_id, now, birthday=date(1985, 11, 22))
    two_days_ago = enrol(uow_factory, program_id, now, birthday=date(1985, 11, 21))
    result = run_scheduled_rules(uow_factory, BIRTHDAY_0030_BERLIN, program_id)
    assert result["awarded"] == 1
    assert points(uow_factory, program_id, yesterday, BIRTHDAY_0030_BERLIN) == 500
    assert points(uow_factory, program_id, two_days_ago, BIRTHDAY_0030_BERLIN) == 0


def test_the_birthday_condition_sees_the_local_date(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "birthday-bonus", fixed(100), trigger="birthday",
         condition="member.birthday_month_day == now.month_day")  # fmt: skip
    member = enrol(uow_factory, program_id, now, birthday=date(1990, 11, 23))
    assert run_scheduled_rules(uow_factory, BIRTHDAY_0030_BERLIN, program_id)["points"] == 100
    assert points(uow_factory, program_id, member, BIRTHDAY_0030_BERLIN) == 100


def test_february_29_birthdays_are_celebrated_on_february_28_in_common_years(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "birthday-bonus", fixed(200), trigger="birthday")
    leapling = enrol(uow_factory, program_id, now, birthday=date(2000, 2, 29))
    feb_28_2027 = datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert run_scheduled_rules(uow_factory, feb_28_2027, program_id)["awarded"] == 1
    assert run_scheduled_rules(uow_factory, feb_28_2027 + timedelta(days=1), program_id)["awarded"] == 0
    assert points(uow_factory, program_id, leapling, feb_28_2027 + timedelta(days=1)) == 200
    feb_28_2028 = datetime(2028, 2, 28, 9, 0, tzinfo=UTC)  # a leap year: the birthday is the next day
    assert run_scheduled_rules(uow_factory, feb_28_2028, program_id)["awarded"] == 0
    assert run_scheduled_rules(uow_factory, feb_28_2028 + timedelta(days=1), program_id)["awarded"] == 1
    assert points(uow_factory, program_id, leapling, feb_28_2028 + timedelta(days=1)) == 400


def test_membership_anniversary_yearly_but_not_on_the_enrolment_day(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "anniversary", fixed(300), trigger="membership_anniversary")
    enrolled_at = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 3 March 00:30 in Berlin
    member = enrol(uow_factory, program_id, enrolled_at)
    assert run_scheduled_rules(uow_factory, enrolled_at + timedelta(hours=1), program_id)["awarded"] == 0
    assert run_scheduled_rules(uow_factory, datetime(2027, 3, 2, 12, 0, tzinfo=UTC), program_id)["awarded"] == 0
    first = datetime(2027, 3, 3, 8, 0, tzinfo=UTC)
    assert run_scheduled_rules(uow_factory, first, program_id)["awarded"] == 1
    assert run_scheduled_rules(uow_factory, first + timedelta(hours=3), program_id)["awarded"] == 0
    assert run_scheduled_rules(uow_factory, datetime(2028, 3, 3, 8, 0, tzinfo=UTC), program_id)["awarded"] == 1
    assert points(uow_factory, program_id, member, datetime(2028, 3, 4, tzinfo=UTC)) == 600


def test_a_cron_rule_awards_at_the_local_time_it_fires(uow_factory, program_id, now):
    # Mondays 09:00 in Berlin; 2026-03-09 is a Monday, 09:00 Berlin = 08:00 UTC.
    rule(uow_factory, program_id, now, "monday-morning", fixed(25), trigger="cron: 0 9 * * mon")
    members = [enrol(uow_factory, program_id, now) for _ in range(2)]
    assert run_scheduled_rules(uow_factory, datetime(2026, 3, 9, 7, 59, tzinfo=UTC), program_id)["awarded"] == 0
    fired = run_scheduled_rules(uow_factory, datetime(2026, 3, 9, 8, 0, 30, tzinfo=UTC), program_id)
    assert (fired["awarded"], fired["points"]) == (2, 50)
    later = run_scheduled_rules(uow_factory, datetime(2026, 3, 9, 15, 0, tzinfo=UTC), program_id)
    assert later["awarded"] == 0
    next_week = datetime(2026, 3, 16, 8, 5, tzinfo=UTC)
    assert run_scheduled_rules(uow_factory, next_week, program_id)["awarded"] == 2
    assert [points(uow_factory, program_id, m, next_week) for m in members] == [50, 50]
    assert verify(uow_factory(), program_id) == []


def test_the_rules_job_is_registered_and_scheduled(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "birthday-bonus", fixed(500), trigger="birthday")
    member = enrol(uow_factory, program_id, now, birthday=date(1990, 11, 23))
    assert JOBS["rules"](uow_factory, BIRTHDAY_0030_BERLIN, program_id)["awarded"] == 1
    scheduler = Scheduler(uow_factory, lambda: BIRTHDAY_0030_BERLIN)
    assert "rules" in scheduler.jobs
    assert scheduler.run_once()["rules"]["awarded"] == 0  # already done by the job above
    assert points(uow_factory, program_id, member, BIRTHDAY_0030_BERLIN) == 500


def test_two_workers_running_the_job_at_once_award_once(uow_factory, program_id, now, backend):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); the race exists on PostgreSQL only")
    rule(uow_factory, program_id, now, "birthday-bonus", fixed(500), trigger="birthday")
    members = [enrol(uow_factory, program_id, now, birthday=date(1990, 11, 23)) for _ in range(5)]
    start = Barrier(4)

    def run() -> dict[str, int]:
        start.wait()
        return run_scheduled_rules(uow_factory, BIRTHDAY_0030_BERLIN, program_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: run(), range(4)))
    assert sum(r["awarded"] for r in results) == 5
    assert [points(uow_factory, program_id, m, BIRTHDAY_0030_BERLIN) for m in members] == [500] * 5
    assert all(len(get_history(uow_factory(), program_id, m)) == 1 for m in members)
    assert verify(uow_factory(), program_id) == []


def test_a_refund_rule_credits_a_goodwill_bonus(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "goodwill", fixed(20), trigger="refund",
         condition="purchase.total >= 5000 && event.attributes.amount >= 1000")  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    big = buy(uow_factory, program_id, member, "80.00", WEDNESDAY)
    small = buy(uow_factory, program_id, member, "20.00", WEDNESDAY)
    assert points(uow_factory, program_id, member, WEDNESDAY) == 100
    refund = refund_purchase(uow_factory(), program_id, UUID(big["id"]), RefundPurchase(amount="40.00"), WEDNESDAY)
    assert refund["points_taken_back"] == 40
    assert refund["rules"]["points"] == 20
    assert by_rule(refund["rules"]) == {"goodwill": 20}
    assert points(uow_factory, program_id, member, WEDNESDAY) == 100 - 40 + 20
    no_bonus = refund_purchase(uow_factory(), program_id, UUID(small["id"]), RefundPurchase(), WEDNESDAY)
    assert no_bonus["rules"]["points"] == 0
    # The rest of the big purchase: its own points come back, the goodwill bonus stays.
    rest = refund_purchase(uow_factory(), program_id, UUID(big["id"]), RefundPurchase(), WEDNESDAY)
    assert rest["points_taken_back"] == 40
    assert points(uow_factory, program_id, member, WEDNESDAY) == 20 + 20
    assert verify(uow_factory(), program_id) == []


def test_a_refund_without_refund_rules_is_unchanged(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "10.00", WEDNESDAY)
    refund = refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(), WEDNESDAY)
    assert "rules" not in refund
    assert points(uow_factory, program_id, member, WEDNESDAY) == 0
