"""Webhook rules without I/O: filters, urls, the retry schedule and the disabling rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from treue.domain.errors import InvalidInput, WebhookInvalid
from treue.domain.webhooks import DEFAULT_SCHEDULE, DeliveryPolicy, check_filters, check_url, matches, parse_duration

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("filters", "event", "expected"), [
    (["*"], "points.earned", True),
    (["points.*"], "points.earned", True),
    (["points.*"], "points", False),
    (["points.*"], "pointsx.earned", False),
    (["club.*"], "club.perk_granted", True),
    (["purchase.recorded"], "purchase.recorded", True),
    (["purchase.recorded"], "purchase.refunded", False),
    (["tier.*", "member.enrolled"], "member.enrolled", True),
])  # fmt: skip
def test_filters_match_exact_types_prefix_wildcards_and_everything(filters, event, expected):
    assert matches(filters, event) is expected


@pytest.mark.parametrize("bad", [[], ["points.*.x"], ["Points"], ["points..earned"], ["*.earned"], [""]])
def test_bad_filters_are_refused(bad):
    with pytest.raises(WebhookInvalid):
        check_filters(bad)


def test_filters_are_stored_sorted_without_duplicates():
    assert check_filters(["points.*", "*", "points.*"]) == ["*", "points.*"]


@pytest.mark.parametrize("url", ["ftp://x.example", "https://", "x.example/hook", "https://" + "a" * 2000])
def test_only_http_urls_with_a_host(url):
    with pytest.raises(WebhookInvalid):
        check_url(url)
    assert check_url(" https://shop.example/hook ") == "https://shop.example/hook"


def test_the_default_schedule_follows_standard_webhooks_then_stops():
    policy = DeliveryPolicy()
    assert policy.schedule == DEFAULT_SCHEDULE
    waits = [policy.next_attempt(n, NOW) for n in range(1, 9)]
    assert [w - NOW for w in waits[:7] if w] == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30),
                                                 timedelta(hours=2), timedelta(hours=5), timedelta(hours=10),
                                                 timedelta(hours=10)]  # fmt: skip
    assert waits[7] is None


def test_a_schedule_is_configurable_in_plain_units():
    policy = DeliveryPolicy.parse("1s,2m,3h,1d", "2d", 4)
    assert policy.schedule == (timedelta(seconds=1), timedelta(minutes=2), timedelta(hours=3), timedelta(days=1))
    assert policy.disable_after == timedelta(days=2) and policy.disable_min_failures == 4
    assert parse_duration("30m") == timedelta(minutes=30)
    for bad in ("5", "m", "1.5h", "-1s", "3w"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)


def test_disabling_needs_both_enough_failures_and_enough_time():
    policy = DeliveryPolicy(disable_after=timedelta(days=5), disable_min_failures=10)
    since = NOW - timedelta(days=5)
    assert policy.should_disable(10, since, NOW)
    assert not policy.should_disable(9, since, NOW)  # long, but too few
    assert not policy.should_disable(500, NOW - timedelta(days=4, hours=23), NOW)  # many, but too recent
    assert not policy.should_disable(10, None, NOW)
