"""Streaks, badges, instant wins and leaderboards on both backends: streak breaks, the freeze and milestone rewards
(and their reversal), idempotent badges (also from a rule's badge effect), the draw with an injected chooser, its
audit record, the daily cap, the prize budget under concurrency, and leaderboard consent and display names."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from tests.integration.helpers import buy, enrol, race
from tests.integration.rules_helpers import event, rule
from treue.domain.errors import BadgeNotFound, GamificationInvalid, InvalidInput
from treue.services import gamification as g
from treue.services.members import EnrolMember, enrol_member
from treue.services.points import adjust_points, get_balance
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.verify import verify
from treue.store import tables as t

DAY = timedelta(days=1)


def balance(uow, pid, member, now):
    return get_balance(uow(), pid, member, now)["points"]


def streak(uow, pid, now, **fields):
    values = {"code": "daily", "name": {"de": "Täglich", "en": "Daily"}, "period": "day", "event": "purchase",
              "milestones": [{"length": 3, "reward": {"points": 30}}, {"length": 5, "reward": {"points": 50}}]}  # fmt: skip
    return g.create_streak(uow(), pid, values | fields, now)


def badge(uow, pid, now, code="first", **fields):
    return g.create_badge(uow(), pid, {"code": code, "name": {"de": "Erster", "en": "First"},
                                       "image_url": "https://cdn.example/first.svg"} | fields, now)  # fmt: skip


def mine(uow, pid, member, now, code="daily"):
    return next(s for s in g.member_streaks(uow(), pid, member, now) if s["code"] == code)


# -- streaks ------------------------------------------------------------------------------------------------
def test_a_streak_grows_breaks_and_restarts_with_milestones_once_per_run(uow_factory, program_id, now):
    streak(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    for day in range(3):
        result = buy(uow_factory, program_id, member, "1.00", now + day * DAY)
    assert result["streaks"][0] == {"code": "daily", "name": "Täglich", "length": 3, "extended": True,
                                    "milestones_reached": [3], "freeze_used": False}  # fmt: skip
    again = buy(uow_factory, program_id, member, "1.00", now + 2 * DAY + timedelta(hours=2))  # same day
    assert again["streaks"][0]["extended"] is False and again["streaks"][0]["milestones_reached"] == []
    assert balance(uow_factory, program_id, member, now + 3 * DAY) == 4 + 30
    assert mine(uow_factory, program_id, member, now + 3 * DAY)["length"] == 3  # today still open
    assert mine(uow_factory, program_id, member, now + 3 * DAY)["at_risk"] is True
    assert mine(uow_factory, program_id, member, now + 4 * DAY)["length"] == 0  # a day missed: broken
    restart = buy(uow_factory, program_id, member, "1.00", now + 5 * DAY)
    assert restart["streaks"][0]["length"] == 1
    for day in (6, 7):
        result = buy(uow_factory, program_id, member, "1.00", now + day * DAY)
    assert result["streaks"][0]["milestones_reached"] == [3]  # a new run reaches the milestone again
    assert balance(uow_factory, program_id, member, now + 8 * DAY) == 7 + 2 * 30
    view = mine(uow_factory, program_id, member, now + 7 * DAY)
    assert (view["length"], view["best"], view["next_milestone"]["length"]) == (3, 3, 5)


def test_the_freeze_bridges_one_missed_period_once(uow_factory, program_id, now):
    streak(uow_factory, program_id, now, freeze=True, period="week", code="weekly", milestones=[])
    member = enrol(uow_factory, program_id, now)
    week = 7 * DAY
    for n in (0, 1, 3):  # week 2 missed: frozen
        result = buy(uow_factory, program_id, member, "1.00", now + n * week)
    assert result["streaks"][0]["length"] == 3 and result["streaks"][0]["freeze_used"] is True
    result = buy(uow_factory, program_id, member, "1.00", now + 5 * week)  # a second gap: broken
    assert result["streaks"][0]["length"] == 1
    assert mine(uow_factory, program_id, member, now + 5 * week, "weekly")["freeze_available"] is True


def test_a_refunded_purchase_leaves_the_streak_and_its_milestone_is_reversed(uow_factory, program_id, now):
    streak(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    bought = [buy(uow_factory, program_id, member, "1.00", now + day * DAY) for day in range(3)]
    assert balance(uow_factory, program_id, member, now + 3 * DAY) == 3 + 30
    refunded = refund_purchase(uow_factory(), program_id, UUID(bought[1]["id"]), RefundPurchase(), now + 2 * DAY)
    assert refunded["gamification_reversed"][0]["streak"] == "daily"
    assert refunded["gamification_reversed"][0]["points_taken_back"] == 30
    assert balance(uow_factory, program_id, member, now + 3 * DAY) == 2
    assert mine(uow_factory, program_id, member, now + 2 * DAY)["length"] == 1
    assert verify(uow_factory(), program_id) == []


# -- badges -------------------------------------------------------------------------------------------------
def test_badges_are_held_once_whoever_grants_them(uow_factory, program_id, now):
    badge(uow_factory, program_id, now, rare_below_percent="50")
    rule(uow_factory, program_id, now, "badge-rule", {"type": "badge", "badge": "first"}, trigger="review.created")
    member = enrol(uow_factory, program_id, now)
    enrol(uow_factory, program_id, now)
    enrol(uow_factory, program_id, now)
    event(uow_factory, program_id, member, "review.created", now)
    event(uow_factory, program_id, member, "review.created", now + timedelta(minutes=1))  # again: no-op
    granted = g.grant_badge(uow_factory(), program_id, member, "first", now, "by hand")
    assert granted["awarded"] is False
    held = g.member_badges(uow_factory(), program_id, member)
    assert [b["code"] for b in held] == ["first"]
    assert held[0]["source"]["rule"] == "badge-rule" and held[0]["image_url"] == "https://cdn.example/first.svg"
    assert held[0]["holders"] == 1 and held[0]["held_by_percent"] == "33.33" and held[0]["rare"] is True
    with uow_factory() as uow:
        count = uow.conn.execute(select(func.count()).select_from(t.member_badges)
                                 .where(t.member_badges.c.program_id == program_id)).scalar_one()  # fmt: skip
    assert count == 1
    listed = g.list_badges(uow_factory(), program_id)
    assert listed[0]["rare"] is True and listed[0]["holders"] == 1


def test_missions_and_streaks_grant_badges_and_unknown_badges_are_refused(uow_factory, program_id, now):
    badge(uow_factory, program_id, now, code="regular")
    with pytest.raises(BadgeNotFound):
        g.create_mission(uow_factory(), program_id, {"code": "m", "name": {"en": "M"}, "goal": {"target": 1,
                         "event": "purchase"}, "reward": {"badge": "nope"}}, now)  # fmt: skip
    g.create_mission(uow_factory(), program_id, {"code": "m", "name": {"en": "M"}, "goal": {"target": 1,
                     "event": "purchase"}, "reward": {"badge": "regular"}, "repeatable": True}, now)  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "1.00", now)
    buy(uow_factory, program_id, member, "1.00", now + 40 * DAY)  # completed again next month: still one badge
    assert [b["code"] for b in g.member_badges(uow_factory(), program_id, member)] == ["regular"]
    assert g.member_badges(uow_factory(), program_id, member)[0]["source"]["mission"] == "m"


# -- instant wins -------------------------------------------------------------------------------------------
def campaign(uow, pid, now, **fields):
    values = {"code": "spin", "name": {"de": "Dreh", "en": "Spin"}, "event": "purchase",
              "prizes": [{"code": "p100", "probability": "10", "points": 100, "total": 3, "daily_cap": 2},
                         {"code": "coffee", "probability": "5", "coupon": "FREE-COFFEE"}]}  # fmt: skip
    return g.create_instant_win(uow(), pid, values | fields, now)


def fixed(number):
    return lambda n: number


def test_the_draw_is_recorded_and_honours_totals_and_daily_caps(uow_factory, program_id, now, monkeypatch):
    campaign(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    monkeypatch.setattr(g, "chooser", fixed(99_999))  # [0, 100000): p100
    first = buy(uow_factory, program_id, member, "1.00", now)
    assert first["instant_win"]["outcome"] == "won" and first["instant_win"]["prize"]["points"] == 100
    second = buy(uow_factory, program_id, member, "1.00", now + timedelta(minutes=1))
    third = buy(uow_factory, program_id, member, "1.00", now + timedelta(minutes=2))  # today's cap of 2 reached
    assert second["instant_win"]["outcome"] == "won"
    assert third["instant_win"] == {**third["instant_win"], "outcome": "no_win", "prize": None,
                                    "not_given": {"prize": "p100", "reason": "daily_cap"}}  # fmt: skip
    tomorrow = now + DAY
    fourth = buy(
        uow_factory,
        program_id,
        member,
        "1.00",
        tomorrow,
    )
    assert fourth["instant_win"]["outcome"] == "won"  # a new day
    fifth = buy(uow_factory, program_id, member, "1.00", tomorrow + timedelta(minutes=1))
    assert fifth["instant_win"]["not_given"]["reason"] == "prize_exhausted"  # 3 in total
    monkeypatch.setattr(g, "chooser", fixed(999_999))
    assert buy(uow_factory, program_id, member, "1.00", tomorrow)["instant_win"]["outcome"] == "no_win"
    monkeypatch.setattr(g, "chooser", fixed(100_000))  # [100000, 150000): the coupon
    coffee = buy(uow_factory, program_id, member, "1.00", tomorrow)
    assert coffee["instant_win"]["prize"]["coupon"] == "FREE-COFFEE"
    draws = g.instant_win_draws(uow_factory(), program_id, "spin")
    assert len(draws) == 7 and {d["odds_version"] for d in draws} == {1}
    assert sorted(d["number"] for d in draws) == [99_999] * 5 + [100_000, 999_999]
    assert [d["reason"] for d in draws if d["outcome"] == "no_win" and d["prize"]] == ["prize_exhausted", "daily_cap"]
    assert balance(uow_factory, program_id, member, tomorrow) == 7 + 300
    view = g.get_instant_win(uow_factory(), program_id, "spin", tomorrow)
    assert view["prizes"][0]["awarded"] == 3 and view["draws"] == {"won": 4, "no_win": 3}
    assert verify(uow_factory(), program_id) == []


def test_odds_changes_make_a_new_version_and_definitions_are_checked(uow_factory, program_id, now):
    campaign(uow_factory, program_id, now)
    changed = g.update_instant_win(uow_factory(), program_id, "spin", {"prizes": [
        {"code": "p100", "probability": "20", "points": 100, "total": 3}]}, now)  # fmt: skip
    assert changed["odds_version"] == 2 and changed["odds"][0] == {"prize": "p100", "from": 0, "to": 200_000}
    with pytest.raises(GamificationInvalid):
        campaign(uow_factory, program_id, now, code="bad", prizes=[{"code": "a", "probability": "60", "points": 1},
                                                                   {"code": "b", "probability": "50", "points": 1}])  # fmt: skip
    with pytest.raises(GamificationInvalid):
        campaign(
            uow_factory, program_id, now, code="bad", prizes=[{"code": "a", "probability": "0.00001", "points": 1}]
        )


def test_the_prize_budget_is_never_exceeded_under_concurrency(uow_factory, program_id, now, backend, monkeypatch):
    if backend != "postgres":
        pytest.skip("concurrency is PostgreSQL's: SQLite serialises every write")
    campaign(uow_factory, program_id, now, points_budget=500,
             prizes=[{"code": "p100", "probability": "100", "points": 100, "total": 7}])  # fmt: skip
    monkeypatch.setattr(g, "chooser", fixed(0))  # every draw wins if the budget allows
    members = [enrol(uow_factory, program_id, now) for _ in range(16)]
    results = race([lambda m=m: buy(uow_factory, program_id, m, "1.00", now) for m in members])
    assert not [r for r in results if isinstance(r, Exception)], results
    won = [r for r in results if r["instant_win"]["outcome"] == "won"]
    assert len(won) == 5  # the points budget (500) binds before the total (7)
    assert {r["instant_win"]["not_given"]["reason"] for r in results if r not in won} == {"points_budget"}
    view = g.get_instant_win(uow_factory(), program_id, "spin", now)
    assert view["points_awarded"] == 500 and view["prizes"][0]["awarded"] == 5
    assert sum(balance(uow_factory, program_id, m, now) for m in members) == 16 + 500
    assert verify(uow_factory(), program_id) == []


def test_the_daily_cap_holds_under_concurrency(uow_factory, program_id, now, backend, monkeypatch):
    if backend != "postgres":
        pytest.skip("concurrency is PostgreSQL's: SQLite serialises every write")
    campaign(uow_factory, program_id, now, prizes=[{"code": "cup", "probability": "100", "coupon": "CUP",
                                                    "daily_cap": 3}])  # fmt: skip
    monkeypatch.setattr(g, "chooser", fixed(0))
    members = [enrol(uow_factory, program_id, now) for _ in range(16)]
    results = race([lambda m=m: buy(uow_factory, program_id, m, "1.00", now) for m in members])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["instant_win"]["outcome"] == "won" for r in results) == 3


# -- leaderboards -------------------------------------------------------------------------------------------
def test_leaderboards_show_only_members_who_agreed_under_privacy_preserving_names(uow_factory, program_id, now):
    g.create_mission(uow_factory(), program_id, {"code": "five", "name": {"en": "Five"}, "reward": {"points": 1},
                                                 "goal": {"target": 5, "event": "purchase"}}, now)  # fmt: skip

    def person(first, last, email):
        return UUID(enrol_member(uow_factory(), program_id, EnrolMember(first_name=first, last_name=last,
                                                                        email=email), now)["id"])  # fmt: skip

    anna, ben, carl = person("Anna", "Meier", "anna@x.example"), person("Ben", "Roth", "ben@x.example"), person(
        "Carl", "Secret", "carl@x.example")  # fmt: skip
    for member, purchases in ((anna, 3), (ben, 2), (carl, 4)):
        for n in range(purchases):
            buy(uow_factory, program_id, member, "10.00", now + timedelta(minutes=n))
    consent = g.set_leaderboard_consent(uow_factory(), program_id, anna, True, None, now)
    assert consent["display_name"] == "Anna M."
    g.set_leaderboard_consent(uow_factory(), program_id, ben, True, "Benny", now)
    g.set_leaderboard_consent(uow_factory(), program_id, carl, False, None, now)  # Carl said no
    board = g.mission_leaderboard(uow_factory(), program_id, "five", now)
    assert board["entries"] == [{"rank": 1, "display_name": "Anna M.", "value": 3},
                                {"rank": 2, "display_name": "Benny", "value": 2}]  # fmt: skip
    adjust_points(uow_factory(), program_id, ben, 1000, "goodwill", now)  # not earned: does not count
    points = g.points_leaderboard(uow_factory(), program_id, now, "month")
    assert points["period"] == "2026-03" and points["entries"][0] == {"rank": 1, "display_name": "Anna M.",
                                                                      "value": 30}  # fmt: skip
    assert "anna@x.example" not in str(points) and "Secret" not in str(board) + str(points)
    with pytest.raises(InvalidInput):
        g.set_leaderboard_consent(uow_factory(), program_id, anna, True, "anna@x.example", now)
