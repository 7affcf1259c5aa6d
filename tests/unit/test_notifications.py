"""Notification decisions without a database: consent, quiet hours, the weekly cap, thresholds, settings and the
sandboxed templates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.errors import InvalidInput, TemplateInvalid, TemplateUnsafe
from treue.domain.notification_templates import DEFAULT_HTML, DEFAULTS, sample
from treue.domain.notifications import (
    TRIGGERS,
    Channel,
    Consent,
    NotificationSettings,
    Purpose,
    QuietHours,
    Template,
    decide,
    default_trigger_settings,
    expiring_threshold,
    next_attempt,
    text_to_html,
)
from treue.services.templating import render

BERLIN = ZoneInfo("Europe/Berlin")
NOON = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
NIGHT = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
SETTINGS = NotificationSettings()


def _decide(purpose: Purpose, chan: Channel, consent: Consent = Consent(), *, week: int = 0, now: datetime = NOON,
            address: str | None = "a@example.org", code: str = "monthly_statement"):  # fmt: skip
    return decide(TRIGGERS[code], purpose, chan, address=address, consent=consent, marketing_last_week=week,
                  settings=SETTINGS, now=now, tz=BERLIN)  # fmt: skip


def test_marketing_needs_consent_per_channel_and_a_confirmed_email():
    m = Purpose.MARKETING
    assert _decide(m, Channel.EMAIL).reason == "no_consent"
    assert _decide(m, Channel.EMAIL, Consent(True, False)).reason == "not_confirmed"
    assert _decide(m, Channel.EMAIL, Consent(True, True)).send
    assert _decide(m, Channel.PUSH).reason == "no_consent"
    assert _decide(m, Channel.PUSH, Consent(True, False)).send  # push has no double opt-in
    assert _decide(m, Channel.INBOX).send  # the member's own page
    assert _decide(m, Channel.EMAIL, Consent(True, True), week=3).reason == "frequency_cap"
    assert _decide(m, Channel.EMAIL, Consent(True, True), week=2).send


def test_transactional_needs_no_consent_but_an_address():
    t = Purpose.TRANSACTIONAL
    assert _decide(t, Channel.EMAIL, code="welcome").send
    assert _decide(t, Channel.EMAIL, week=99, code="welcome").send  # the cap is for marketing only
    assert _decide(t, Channel.EMAIL, address=None, code="welcome").reason == "no_address"


def test_quiet_hours_defer_email_and_push_but_not_the_inbox_or_a_coupon():
    deferred = _decide(Purpose.TRANSACTIONAL, Channel.EMAIL, now=NIGHT, code="welcome")
    assert deferred.send and deferred.deferred and deferred.not_before == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    assert _decide(Purpose.TRANSACTIONAL, Channel.PUSH, now=NIGHT, code="welcome").deferred
    assert not _decide(Purpose.TRANSACTIONAL, Channel.INBOX, now=NIGHT, code="welcome").deferred
    assert not _decide(Purpose.TRANSACTIONAL, Channel.EMAIL, now=NIGHT, code="reward_redeemed").deferred
    early = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # 06:00 in Berlin: same morning's end
    assert _decide(Purpose.TRANSACTIONAL, Channel.EMAIL, now=early, code="welcome").not_before == datetime(
        2026, 3, 3, 7, 0, tzinfo=UTC)  # fmt: skip


def test_quiet_hours_within_a_day_and_across_a_dst_change():
    lunch = QuietHours(time(12), time(14))
    assert lunch.defer(NOON, BERLIN) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert lunch.defer(NIGHT, BERLIN) is None
    night = QuietHours(time(21), time(8))
    # The night before summer time starts (29 March 2026): 08:00 CEST is 06:00 UTC.
    assert night.defer(datetime(2026, 3, 28, 21, 0, tzinfo=UTC), BERLIN) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert QuietHours(time(8), time(8)).defer(NOON, BERLIN) is None


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
       st.integers(0, 23), st.integers(0, 23))  # fmt: skip
def test_a_deferred_message_goes_out_after_now_and_outside_the_quiet_hours(naive, start, end):
    now = naive.replace(tzinfo=UTC)
    quiet = QuietHours(time(start), time(end))
    until = quiet.defer(now, BERLIN)
    if until is None:
        return
    assert now <= until <= now + timedelta(hours=25)
    assert quiet.defer(until, BERLIN) is None or until == now  # at its time it may go (or a DST gap moved it)


def test_the_smallest_threshold_reached_is_due():
    expires = datetime(2026, 4, 3, tzinfo=UTC)
    assert expiring_threshold(expires, expires - timedelta(days=40), (30, 7)) is None
    assert expiring_threshold(expires, expires - timedelta(days=21), (30, 7)) == 30
    assert expiring_threshold(expires, expires - timedelta(days=5), (30, 7)) == 7
    assert expiring_threshold(expires, expires, (30, 7)) is None  # expired: nothing to warn of


def test_retries_back_off_then_stop():
    assert next_attempt(1, NOON) == NOON + timedelta(minutes=1)
    assert next_attempt(5, NOON) == NOON + timedelta(hours=6)
    assert next_attempt(6, NOON) is None


def test_settings_merge_and_refuse_nonsense():
    changed = NotificationSettings.parse({"triggers": {"points_expiring": {"days": [7, 30, 7]}}, "quiet_hours": None})
    assert changed.of("points_expiring").days == (30, 7) and changed.quiet_hours is None
    assert changed.of("welcome") == default_trigger_settings("welcome")
    assert NotificationSettings.parse(changed.as_json()).as_json() == changed.as_json()  # stored and read back
    for bad in ({"triggers": {"welcome": {"channels": ["fax"]}}}, {"weekly_marketing_cap": -1},
                {"triggers": {"points_expiring": {"days": [0]}}}, {"colour": "red"},
                {"triggers": {"welcome": {"purpose": "spam"}}}):  # fmt: skip
        with pytest.raises(InvalidInput):
            NotificationSettings.parse(bad)


def test_every_default_template_renders_strictly_in_both_languages():
    for code in TRIGGERS:
        for loc in ("de", "en"):
            subject, text = DEFAULTS[code][loc]
            done = render(Template(subject, text, DEFAULT_HTML.get(code, {}).get(loc)), sample(code), strict=True)
            assert done.subject and "{{" not in done.text and done.html


def test_the_sandbox_refuses_unsafe_code_and_html_is_escaped():
    with pytest.raises(TemplateUnsafe):
        render(Template("x", "{{ ''.__class__.__mro__ }}"), {})
    with pytest.raises(TemplateUnsafe):
        render(Template("x", "{{ data.clear() }}"), {"data": {"a": 1}})
    with pytest.raises(TemplateInvalid):
        render(Template("x", "{% for %}"), {})
    with pytest.raises(TemplateInvalid):
        render(Template("x", "{{ missing }}"), {}, strict=True)
    assert render(Template("x", "[{{ missing }}]"), {}).text == "[]\n"  # lenient when sending
    done = render(Template("a  \n b", "{{ name }}", "<b>{{ name }}</b>"), {"name": "<i>&"})
    assert done.subject == "a b" and done.text == "<i>&\n" and done.html == "<b>&lt;i&gt;&amp;</b>"
    assert render(Template("{{ n|points }}", "x"), {"n": 1234567}).subject == "1.234.567"


def test_text_becomes_html_with_links_and_escaping():
    html = text_to_html("Hallo <Anna>,\n\nsiehe https://x.example/p?a=1&b=2\nDanke")
    assert "&lt;Anna&gt;" in html and '<a href="https://x.example/p?a=1&amp;b=2">' in html and "<br>" in html


def test_the_smtp_url_names_host_port_tls_and_credentials():
    from treue.services.mail import mailer_from_env, mailer_from_url

    plain = mailer_from_url("smtp://mail.example.org")
    assert (plain.host, plain.port, plain.tls, plain.starttls, plain.user) == ("mail.example.org", 25, False, False,
                                                                                None)  # fmt: skip
    submission = mailer_from_url("smtp://us%40er:p%3Ass@mail.example.org:587?starttls=1", sender="a@b.example")
    assert (submission.port, submission.starttls, submission.user, submission.password, submission.sender) == (
        587, True, "us@er", "p:ss", "a@b.example")  # fmt: skip
    tls = mailer_from_url("smtps://mail.example.org")
    assert tls.tls and tls.port == 465
    with pytest.raises(ValueError):
        mailer_from_url("http://mail.example.org")
    configured = mailer_from_env({"TREUE_SMTP_URL": "smtps://relay:2465", "TREUE_MAIL_FROM": "x@y.example"})
    assert (configured.host, configured.port, configured.tls, configured.sender) == ("relay", 2465, True, "x@y.example")
