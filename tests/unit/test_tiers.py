"""The tier ladder without a database: windows in the programme's timezone, validation, qualification, upgrades,
reviews with grace, manual assignments and progress, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from treue.domain.errors import InvalidInput
from treue.domain.tiers import (
    Basis,
    ChangeKind,
    Ladder,
    MemberTier,
    Review,
    Window,
    WindowKind,
    format_threshold,
    next_anniversary,
    progress,
    review,
    starting_state,
    upgrade,
    would_be,
)

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
ENROLLED = datetime(2025, 6, 15, 8, 0, tzinfo=UTC)
SIX, TWELVE = Window(WindowKind.ROLLING, 6), Window(WindowKind.ROLLING, 12)


def furniture(**changes: object) -> Ladder:
    data = {"basis": "spend", "grace_days": 0, "tiers": [
        {"code": "basis", "name": {"de": "Basis"}, "threshold": "0", "window": "6M"},
        {"code": "bronze", "name": {"de": "Bronze"}, "threshold": "500.00", "window": "6M",
         "benefits": {"cashback_percent": "10"}},
        {"code": "silber", "name": {"de": "Silber"}, "threshold": "2000.00", "window": "12M",
         "benefits": {"cashback_percent": "20", "perks": ["free_shipping"]}},
        {"code": "gold", "name": {"de": "Gold"}, "threshold": "5000.00", "window": "12M",
         "benefits": {"cashback_percent": "20", "perks": ["free_shipping"], "earn_multiplier": "1.5"}}]} | changes  # fmt: skip
    return Ladder.parse(data, 2)


def test_windows_parse_and_start_in_programme_time():
    assert Window.parse("6M") == SIX and str(Window.parse("calendar_year")) == "calendar_year"
    for bad in ("6", "0M", "121M", "6W", 6, None):
        with pytest.raises(InvalidInput):
            Window.parse(bad)
    # Rolling: the last 6 months at the same local time (winter -> summer time), the first instant excluded.
    summer = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)
    assert SIX.start(summer, TZ) == T0 + timedelta(microseconds=1)
    assert SIX.ends_after(T0, TZ) == summer
    # Calendar year: local 1 January; a window ending at local midnight of 1 January is the year before.
    year = Window(WindowKind.CALENDAR_YEAR)
    new_year = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert year.start(T0, TZ) == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert year.start(new_year, TZ) == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert year.ends_after(T0, TZ) == new_year
    assert Window(WindowKind.LIFETIME).start(T0, TZ) is None and Window(WindowKind.LIFETIME).ends_after(T0, TZ) is None


def test_ladder_parses_exact_thresholds_and_benefits_and_round_trips():
    ladder = furniture()
    assert ladder.basis is Basis.SPEND and [t.threshold for t in ladder.tiers] == [0, 50000, 200000, 500000]
    gold = ladder.tier("gold")
    assert gold.benefits.earn_multiplier == Fraction(3, 2) and gold.member_benefits().source == "tier:gold"
    assert Ladder.parse(ladder.to_json(2), 2) == ladder
    assert format_threshold(Basis.SPEND, 123456, 2) == "1234.56" and format_threshold(Basis.PURCHASES, 3, 2) == 3


@pytest.mark.parametrize("changes", [
    {"basis": "balance"}, {"review": "weekly"}, {"grace_days": -1}, {"notice_days": 400}, {"tiers": []},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "1.00"}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0"}, {"code": "a", "name": {"de": "B"},
                                                                       "threshold": "1"}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0"}, {"code": "b", "name": {"de": "B"},
                                                                       "threshold": "0"}]},
    {"tiers": [{"code": "A!", "name": {"de": "A"}, "threshold": "0"}]},
    {"tiers": [{"code": "a", "name": {"fr": "A"}, "threshold": "0"}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0", "colour": "red"}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": 0.5}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0.001"}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0", "benefits": {"earn_multiplier": "0.5"}}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0", "benefits": {"cashback_percent": 2.5}}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0", "benefits": {"perks": ["Free Shipping"]}}]},
    {"tiers": [{"code": "a", "name": {"de": "A"}, "threshold": "0", "benefits": {"vip": True}}]},
])  # fmt: skip
def test_bad_ladders_are_refused(changes):
    with pytest.raises(InvalidInput):
        furniture(**changes)


def test_purchase_and_point_thresholds_are_whole_numbers():
    data = {"basis": "purchases", "tiers": [{"code": "a", "name": {"de": "A"}, "threshold": 0},
                                            {"code": "b", "name": {"de": "B"}, "threshold": "2"}]}  # fmt: skip
    with pytest.raises(InvalidInput):
        Ladder.parse(data, 2)


def test_qualified_takes_each_tier_in_its_own_window():
    ladder = furniture()
    assert ladder.qualified({SIX: 60000, TWELVE: 60000}).code == "bronze"
    assert ladder.qualified({SIX: 10000, TWELVE: 250000}).code == "silber"  # silver counts 12 months
    assert ladder.qualified({SIX: 0, TWELVE: 0}).code == "basis"
    assert ladder.windows() == (SIX, TWELVE) and ladder.windows(2) == (TWELVE,) and ladder.windows(3) == ()


def test_upgrade_is_immediate_and_secured_until_the_end_of_the_window():
    ladder = furniture()
    state = starting_state(ladder, ENROLLED)
    assert upgrade(ladder, state, {SIX: 49999, TWELVE: 49999}, T0, ENROLLED, TZ) is None
    change = upgrade(ladder, state, {SIX: 50000, TWELVE: 50000}, T0, ENROLLED, TZ)
    assert change is not None and change.kind is ChangeKind.UPGRADED and change.to_tier == "bronze"
    assert change.state.since == T0 and change.state.review_at == datetime(2026, 9, 2, 9, 0, tzinfo=UTC)
    # A member never goes down here, whatever the amounts.
    assert upgrade(ladder, change.state, {SIX: 0, TWELVE: 0}, T0, ENROLLED, TZ) is None


def test_review_renews_downgrades_or_upgrades_after_grace():
    ladder = furniture(grace_days=14)
    review_at = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)
    state = MemberTier("silber", T0, review_at)
    assert ladder.decision_at(review_at, TZ) == review_at + timedelta(days=14)
    kept = review(ladder, state, {SIX: 0, TWELVE: 200000}, ENROLLED, TZ)
    assert kept.kind is ChangeKind.RENEWED and kept.state.review_at == datetime(2027, 9, 2, 9, 0, tzinfo=UTC)
    down = review(ladder, state, {SIX: 60000, TWELVE: 60000}, ENROLLED, TZ)
    assert (down.kind, down.to_tier, down.at) == (ChangeKind.DOWNGRADED, "bronze", review_at + timedelta(days=14))
    assert down.state.since == down.at and down.state.review_at == datetime(2027, 3, 16, 10, 0, tzinfo=UTC)
    bottom = review(ladder, state, {SIX: 0, TWELVE: 0}, ENROLLED, TZ)
    assert bottom.to_tier == "basis" and bottom.state.review_at is None
    assert review(ladder, state, {SIX: 0, TWELVE: 600000}, ENROLLED, TZ).kind is ChangeKind.UPGRADED


def test_anniversary_reviews():
    ladder = furniture(review="anniversary")
    assert ladder.review is Review.ANNIVERSARY
    assert ladder.review_at(ladder.tier("gold"), T0, ENROLLED, TZ) == datetime(2026, 6, 14, 22, 0, tzinfo=UTC)
    leap = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert next_anniversary(leap, T0, TZ) == datetime(2027, 2, 27, 23, 0, tzinfo=UTC)  # 28 Feb local
    assert ladder.review_at(ladder.lowest, T0, ENROLLED, TZ) is None


def test_manual_assignment_overrides_until_it_expires():
    until = T0 + timedelta(days=30)
    state = MemberTier("bronze", T0, None, "gold", until)
    assert state.effective(T0) == "gold" and state.effective(until) == "bronze"
    assert MemberTier("bronze", T0, None, "gold", None).effective(T0 + timedelta(days=9999)) == "gold"


def test_progress_figures():
    ladder = furniture()
    review_at = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)
    state = MemberTier("bronze", T0, review_at)
    found = progress(ladder, state, T0, {SIX: 55000, TWELVE: 55000}, {SIX: 20000, TWELVE: 55000}, TZ)
    assert found.tier.code == "bronze" and found.next_tier is not None and found.next_tier.code == "silber"
    assert found.window == TWELVE and found.amount == 55000 and found.needed == 145000
    assert found.secured_until == review_at and found.review_decides_at == review_at
    assert found.downgrade_to is not None and found.downgrade_to.code == "basis"
    kept = progress(ladder, state, T0, {SIX: 55000, TWELVE: 55000}, {SIX: 55000, TWELVE: 55000}, TZ)
    assert kept.downgrade_to is None
    top = progress(ladder, MemberTier("gold", T0, review_at), T0, {SIX: 0, TWELVE: 900000}, {}, TZ)
    assert top.next_tier is None and top.needed == 0
    assert would_be(ladder, MemberTier("silber", T0, review_at), {SIX: 0, TWELVE: 600000}).code == "silber"
