"""Fraud controls' pure rules (issue 10): settings, fixed windows in UTC hours and local days, caps, anomalies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from treue.domain.errors import InvalidInput
from treue.domain.fraud import (
    Action,
    AlertKind,
    AlertThresholds,
    Cap,
    Origin,
    Subject,
    Tally,
    Total,
    Window,
    alert_period,
    breaches,
    earning_spike,
    find_cap_hits,
    find_referral_clusters,
    find_refund_patterns,
    find_spikes,
    parse_settings,
    refunds_after_redemptions,
    retry_after,
    subjects,
    tallies,
    window_end,
    window_start,
)

BERLIN = ZoneInfo("Europe/Berlin")
PROGRAM = UUID("00000000-0000-7000-8000-000000000001")
MEMBER = UUID("00000000-0000-7000-8000-0000000000aa")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_an_hour_is_a_utc_clock_hour_and_a_day_the_programmes_local_day():
    t = at("2026-03-02T23:30:00+00:00")  # 00:30 on 3 March in Berlin
    assert window_start(Window.HOUR, t, BERLIN) == at("2026-03-02T23:00:00+00:00")
    assert window_end(Window.HOUR, t, BERLIN) == at("2026-03-03T00:00:00+00:00")
    assert window_start(Window.DAY, t, BERLIN) == at("2026-03-02T23:00:00+00:00")  # local midnight
    assert window_end(Window.DAY, t, BERLIN) == at("2026-03-03T23:00:00+00:00")
    assert window_start(Window.DAY, t, ZoneInfo("UTC")) == at("2026-03-02T00:00:00+00:00")


def test_a_local_day_on_a_dst_change_is_23_hours_long():
    t = at("2026-03-29T12:00:00+02:00")  # clocks go forward at 02:00 in Berlin
    assert window_end(Window.DAY, t, BERLIN) - window_start(Window.DAY, t, BERLIN) == timedelta(hours=23)


def test_settings_parse_validate_and_round_trip():
    values = {"caps": [{"action": "earn", "subject": "device", "window": "hour", "max_count": 3},
                       {"action": "redeem", "subject": "member", "window": "day", "max_points": 5000}],
              "alerts": {"cap_hits": 2}}  # fmt: skip
    settings = parse_settings(values)
    assert settings.caps_for(Action.EARN) == (Cap(Action.EARN, Subject.DEVICE, Window.HOUR, 3, None),)
    assert settings.alerts.cap_hits == 2 and settings.alerts.refund_days == 14
    assert parse_settings(settings.as_dict()) == settings
    assert parse_settings({**values, "active": False}).caps_for(Action.EARN) == ()
    for bad in ({"caps": [{"action": "earn", "subject": "member", "window": "week", "max_count": 1}]},
                {"caps": [{"action": "earn", "subject": "member", "window": "day"}]},
                {"caps": [{"action": "earn", "subject": "member", "window": "day", "max_count": 0}]},
                {"caps": [{"action": "earn", "subject": "member", "window": "day", "max_count": True}]},
                {"alerts": {"spike_factor": 2.5}}, {"alerts": {"nope": 1}}, {"limits": []},
                {"caps": [{"action": "earn", "subject": "member", "window": "day", "max_count": 1}] * 2}):  # fmt: skip
        with pytest.raises(InvalidInput):
            parse_settings(bad)


def test_subjects_are_digests_and_absent_ones_are_not_counted():
    known = subjects(PROGRAM, MEMBER, Origin(device_id="Phone-1", ip=None), "tok_1")
    assert set(known) == {Subject.MEMBER, Subject.DEVICE, Subject.CARD}
    assert known[Subject.MEMBER] == str(MEMBER) and "Phone-1" not in known[Subject.DEVICE]
    assert subjects(PROGRAM, MEMBER, Origin(device_id=" phone-1 "), None)[Subject.DEVICE] == known[Subject.DEVICE]
    caps = [
        Cap(Action.EARN, Subject.IP, Window.DAY, 1),
        Cap(Action.EARN, Subject.DEVICE, Window.DAY, 1),
        Cap(Action.EARN, Subject.MEMBER, Window.DAY, None, 100),
        Cap(Action.EARN, Subject.MEMBER, Window.HOUR, 5),
    ]
    rows = tallies(caps, known, at("2026-03-02T10:15:00+00:00"), BERLIN)
    assert [r.subject.split(":")[0] for r in rows] == ["device", "member", "member"]  # sorted; no IP given
    assert rows == sorted(rows)


def test_a_cap_allows_its_limit_and_breaks_above_it():
    now = at("2026-03-02T10:15:00+00:00")
    known = {Subject.MEMBER: str(MEMBER)}
    cap = Cap(Action.REDEEM, Subject.MEMBER, Window.DAY, 2, 300)
    key = Tally(Action.REDEEM, f"member:{MEMBER}", Window.DAY, window_start(Window.DAY, now, BERLIN))
    assert breaches([cap], known, {key: Total(2, 300)}, now, BERLIN) == []
    over = breaches([cap], known, {key: Total(3, 300)}, now, BERLIN)
    assert [(b.cap, b.count) for b in over] == [(cap, 3)]
    assert breaches([cap], known, {key: Total(1, 301)}, now, BERLIN)[0].points == 301
    assert retry_after(over, now) == int((at("2026-03-02T23:00:00+00:00") - now).total_seconds())
    assert breaches([Cap(Action.REDEEM, Subject.DEVICE, Window.DAY, 1)], known, {key: Total(9, 9)}, now, BERLIN) == []


def test_refunds_count_only_soon_after_a_redemption():
    r = at("2026-03-01T10:00:00+00:00")
    refunds = [r - timedelta(hours=1), r + timedelta(days=1), r + timedelta(days=13), r + timedelta(days=15)]
    assert refunds_after_redemptions([r], refunds, 14) == 2
    assert refunds_after_redemptions([], refunds, 14) == 0
    found = find_refund_patterns({MEMBER: ([r], refunds)}, AlertThresholds(refunds_after_redemption=2))
    assert [(f.kind, f.member_id, f.details["refunds"]) for f in found] == [
        (AlertKind.REFUNDS_AFTER_REDEMPTIONS, MEMBER, 2)]  # fmt: skip
    assert find_refund_patterns({MEMBER: ([r], refunds)}, AlertThresholds(refunds_after_redemption=3)) == []


def test_a_spike_is_measured_against_the_members_own_history():
    # 10 points a day for 30 days; 50 today is 5x
    assert earning_spike(50, 300, 30, 5, 50)
    assert not earning_spike(49, 300, 30, 5, 10)
    assert not earning_spike(50, 300, 30, 5, 51)  # below the minimum: too small to matter
    assert earning_spike(1000, 0, 30, 5, 1000)  # no history at all
    found = find_spikes({MEMBER: 2000}, {MEMBER: 3000}, AlertThresholds(spike_factor=5, spike_min_points=1000))
    assert [f.kind for f in found] == [AlertKind.EARNING_SPIKE]
    assert find_spikes({MEMBER: 2000}, {MEMBER: 30000}, AlertThresholds()) == []


def test_referral_clusters_and_cap_hits_use_their_thresholds():
    th = AlertThresholds(referrals_per_fingerprint=3, cap_hits=2)
    found = find_referral_clusters({("device", "abc"): 3, ("ip", "def"): 2}, th)
    assert [(f.subject, f.member_id) for f in found] == [("device:abc", None)]
    assert [f.member_id for f in find_cap_hits({MEMBER: 2, PROGRAM: 1}, th)] == [MEMBER]


def test_alerts_are_kept_per_local_day():
    assert alert_period(at("2026-03-02T23:30:00+00:00"), BERLIN).isoformat() == "2026-03-03"
