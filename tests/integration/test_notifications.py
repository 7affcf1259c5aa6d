"""Notifications on SQLite and PostgreSQL, with a REAL SMTP server (aiosmtpd) receiving what the worker sends:
triggers from the outbox, the `notifications` job, consent and double opt-in, one-click unsubscribe, quiet hours,
the weekly cap, retries, push through webhooks, and once-only delivery under races."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol, race
from tests.integration.web_helpers import Inbox, smtp_server
from treue.domain.errors import TemplateUnsafe
from treue.services import notifications as cases
from treue.services.mail import MailMessage, SmtpMailer
from treue.services.programs import create_program
from treue.services.rewards import create_reward, redeem_reward
from treue.services.webhooks import create_endpoint, relay_outbox

BASE = "https://loyalty.example"


@pytest.fixture(autouse=True)
def public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREUE_PUBLIC_URL", BASE)


@pytest.fixture
def mail() -> Iterator[tuple[Inbox, SmtpMailer]]:
    with smtp_server() as found:
        yield found


@pytest.fixture
def program(uow_factory, now) -> UUID:
    """Points expire a month after the day they were earned (Berlin)."""
    view = create_program(uow_factory(), "Kaffeehaus", "EUR", "Europe/Berlin",
                          {"expiry_policy": "rolling", "expiry_months": 1}, now)  # fmt: skip
    return UUID(view["id"])


@pytest.fixture(autouse=True)
def own_messages_only(monkeypatch: pytest.MonkeyPatch, program: UUID) -> None:
    """Other tests' programmes queue messages in the same database (every enrolment is welcomed): each test here
    sends only its own programme's, as a worker given `program_id` does."""
    real = cases.send_due
    monkeypatch.setattr(cases, "send_due", lambda *args, **kw: real(*args, **{"program_id": program, **kw}))


def deliver(uow_factory, mailer: SmtpMailer, at: datetime, worker: str = "w1") -> dict[str, int]:
    relay_outbox(uow_factory, at)
    return cases.send_due(uow_factory, lambda: at, worker, mailer)


def to(inbox: Inbox, address: str) -> list[EmailMessage]:
    return [m for m in inbox.messages if m["To"] == address]  # type: ignore[misc]


def text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link(message: EmailMessage, kind: str) -> str:
    found = re.search(rf"{BASE}/api/v1/inbound/notifications/{kind}/(\S+)", text(message))
    assert found, text(message)
    return found.group(1)


def consent_and_confirm(uow_factory, program: UUID, member: UUID, inbox: Inbox, mailer: SmtpMailer, at: datetime,
                        address: str) -> None:  # fmt: skip
    cases.set_consent(uow_factory(), program, member, "email", True, "test", at)
    cases.send_due(uow_factory, lambda: at, "w1", mailer)
    confirmation = to(inbox, address)[-1]
    assert confirmation["Subject"] in ("Bitte bestätigen Sie Ihre E-Mail-Adresse", "Please confirm your email address")
    cases.confirm(uow_factory(), link(confirmation, "confirm"), at)


def test_welcome_mail_in_the_members_language_with_links_and_an_inbox_message(uow_factory, program, now, mail):
    inbox, mailer = mail
    anna = enrol(uow_factory, program, now, email="anna@example.org", first_name="Anna", locale="de")
    bob = enrol(uow_factory, program, now, email="bob@example.org", first_name="Bob", locale="en")
    done = deliver(uow_factory, mailer, now)
    assert done["sent"] == 2 and done["failed"] == 0

    [de] = to(inbox, "anna@example.org")
    [en] = to(inbox, "bob@example.org")
    assert de["Subject"] == "Willkommen bei Kaffeehaus" and en["Subject"] == "Welcome to Kaffeehaus"
    assert "Hallo Anna," in text(de) and "Hello Bob," in text(en)
    assert f"{BASE}/portal/{program}" in text(de)
    html = de.get_body(("html",))
    assert html is not None and f'<a href="{BASE}/portal/{program}">' in html.get_content()  # type: ignore[attr-defined]
    assert de["List-Unsubscribe"] is None  # transactional: no unsubscribe
    # The inbox has it too, unread; reading it is remembered.
    box = cases.inbox(uow_factory(), program, anna)
    assert box["unread"] == 1 and box["messages"][0]["subject"] == "Willkommen bei Kaffeehaus"
    read = cases.mark_read(uow_factory(), program, anna, UUID(box["messages"][0]["id"]), now)
    assert read["unread"] == 0 and cases.inbox(uow_factory(), program, anna)["messages"][0]["read"] is True
    # Relaying and sending again sends nothing more.
    assert deliver(uow_factory, mailer, now + timedelta(minutes=5))["attempted"] == 0
    assert len(inbox.messages) == 2 and cases.inbox(uow_factory(), program, bob)["unread"] == 1


def test_no_marketing_mail_without_consent_and_confirmed_address_and_one_click_unsubscribe(uow_factory, program, now,
                                                                                            mail):  # fmt: skip
    inbox, mailer = mail
    yes = enrol(uow_factory, program, now, email="yes@example.org", locale="de")
    never = enrol(uow_factory, program, now, email="never@example.org", locale="de")
    unconfirmed = enrol(uow_factory, program, now, email="unconfirmed@example.org", locale="en",
                        consents={"email": True})  # consent given, link never followed  # fmt: skip
    buy(uow_factory, program, yes, "42.00", now)
    deliver(uow_factory, mailer, now)  # welcome mails, and the confirmation for `unconfirmed` (consent at enrolment)
    assert sorted(m["Subject"] for m in to(inbox, "unconfirmed@example.org")) == [
        "Please confirm your email address", "Welcome to Kaffeehaus"]  # fmt: skip
    consent_and_confirm(uow_factory, program, yes, inbox, mailer, now, "yes@example.org")
    assert cases.get_consents(uow_factory(), program, yes)["channels"]["email"]["effective"] is True
    assert cases.get_consents(uow_factory(), program, unconfirmed)["channels"]["email"]["effective"] is False

    april = datetime(2026, 4, 1, 9, 0, tzinfo=now.tzinfo)  # 11:00 in Berlin, the first of the month
    result = cases.run_notifications_job(uow_factory, april, program)
    assert result["statements"] == 4 and result["suppressed"] == 2  # 1 email, 3 inbox (the member's own page)
    cases.send_due(uow_factory, lambda: april, "w1", mailer)
    statements = [m for m in inbox.messages if "Auszug" in m["Subject"] or "statement" in m["Subject"]]
    [statement] = statements
    assert statement["To"] == "yes@example.org" and statement["Subject"] == "Ihr Punkte-Auszug für 2026-03"
    assert "Im 2026-03 gesammelt: 42" in text(statement)
    unsubscribe = link(statement, "unsubscribe")
    url = f"{BASE}/api/v1/inbound/notifications/unsubscribe/{unsubscribe}"
    assert statement["List-Unsubscribe"] == f"<{url}>"
    assert statement["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    log = {m["member_id"]: m for m in cases.list_messages(uow_factory(), program, code="monthly_statement",
                                                         chan="email")}  # fmt: skip
    assert log[str(never)]["status"] == "suppressed" and log[str(never)]["reason"] == "no_consent"
    assert log[str(unconfirmed)]["reason"] == "not_confirmed"

    # One click: consent withdrawn; the next month's statement does not go out.
    assert cases.unsubscribe(uow_factory(), unsubscribe, april)["unsubscribed"] is True
    assert cases.get_consents(uow_factory(), program, yes)["channels"]["email"]["granted"] is False
    may = datetime(2026, 5, 1, 9, 0, tzinfo=now.tzinfo)
    cases.run_notifications_job(uow_factory, may, program)
    cases.send_due(uow_factory, lambda: may, "w1", mailer)
    assert [m for m in inbox.messages if "Auszug" in m["Subject"] or "statement" in m["Subject"]] == statements
    assert cases.run_notifications_job(uow_factory, may, program)["statements"] == 0


def test_a_consent_withdrawn_after_queueing_stops_the_marketing_mail(uow_factory, program, now, mail):
    inbox, mailer = mail
    member = enrol(uow_factory, program, now, email="late@example.org")
    consent_and_confirm(uow_factory, program, member, inbox, mailer, now, "late@example.org")
    april = datetime(2026, 4, 1, 9, 0, tzinfo=now.tzinfo)
    assert cases.run_notifications_job(uow_factory, april, program)["statements"] == 2  # email and inbox
    cases.set_consent(uow_factory(), program, member, "email", False, "support call", april)
    assert cases.send_due(uow_factory, lambda: april, "w1", mailer)["suppressed"] == 1
    assert all(m["Subject"] != "Ihr Punkte-Auszug für 2026-03" for m in inbox.messages)


def test_expiring_points_notice_once_per_lot_and_threshold(uow_factory, program, now, mail):
    inbox, mailer = mail
    member = enrol(uow_factory, program, now, email="exp@example.org", locale="en")
    buy(uow_factory, program, member, "120.00", now)  # 120 points, expire at the end of 2026-04-02 (Berlin)
    deliver(uow_factory, mailer, now)
    inbox.messages.clear()

    later = now + timedelta(days=10)  # 21 days left: the 30-day notice
    assert cases.run_notifications_job(uow_factory, later, program)["expiring"] == 2  # email and inbox
    assert cases.run_notifications_job(uow_factory, later, program)["expiring"] == 0
    cases.send_due(uow_factory, lambda: later, "w1", mailer)
    [notice] = inbox.messages
    assert notice["Subject"] == "120 points valid only until 2026-04-02" and "(21 days left)" in text(notice)

    week = datetime(2026, 3, 28, 9, 0, tzinfo=now.tzinfo)  # 5 days left: the 7-day notice, once
    assert cases.run_notifications_job(uow_factory, week, program)["expiring"] == 2
    assert cases.run_notifications_job(uow_factory, week + timedelta(hours=1), program)["expiring"] == 0
    cases.send_due(uow_factory, lambda: week, "w1", mailer)
    assert [m["Subject"] for m in inbox.messages] == ["120 points valid only until 2026-04-02"] * 2
    assert "(5 days left)" in text(inbox.messages[1])


def test_two_workers_racing_send_each_expiry_notice_once(uow_factory, program, now, mail, backend):
    if backend != "postgres":
        pytest.skip("two concurrent writers: PostgreSQL (SQLite serialises writers)")
    inbox, mailer = mail
    members = [enrol(uow_factory, program, now, email=f"r{i}@example.org") for i in range(3)]
    for member in members:
        buy(uow_factory, program, member, "10.00", now)
        buy(uow_factory, program, member, "20.00", now + timedelta(days=1))  # a second lot
    deliver(uow_factory, mailer, now)
    inbox.messages.clear()
    at = now + timedelta(days=25)
    results = race([lambda: cases.run_notifications_job(uow_factory, at, program) for _ in range(4)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["expiring"] for r in results) == 12  # 6 lots x (email + inbox), whoever inserted them
    sends = race([lambda i=i: cases.send_due(uow_factory, lambda: at, f"w{i}", mailer, limit=2)
                  for i in range(4)] * 2)  # fmt: skip
    assert not [r for r in sends if isinstance(r, Exception)], sends
    cases.send_due(uow_factory, lambda: at, "w-final", mailer)
    subjects = sorted((m["To"], m["Subject"]) for m in inbox.messages)
    assert len(subjects) == 6 and len(set(subjects)) == 6, subjects


def test_quiet_hours_defer_email_in_the_members_timezone(uow_factory, program, now, mail):
    inbox, mailer = mail
    night = datetime(2026, 3, 2, 21, 30, tzinfo=now.tzinfo)  # 22:30 in Berlin; 16:30 in New York
    berlin = enrol(uow_factory, program, night, email="berlin@example.org")
    enrol(uow_factory, program, night, email="ny@example.org", attributes={"timezone": "America/New_York"})
    done = deliver(uow_factory, mailer, night)
    assert done["sent"] == 1 and [m["To"] for m in inbox.messages] == ["ny@example.org"]
    [queued] = cases.list_messages(uow_factory(), program, member_id=berlin, chan="email")
    assert queued["status"] == "queued" and queued["not_before"] == "2026-03-03T07:00:00+00:00"  # 08:00 Berlin
    assert cases.inbox(uow_factory(), program, berlin)["unread"] == 1  # the inbox is not held back
    assert cases.send_due(uow_factory, lambda: night + timedelta(hours=9), "w1", mailer)["attempted"] == 0
    assert cases.send_due(uow_factory, lambda: night + timedelta(hours=9, minutes=30), "w1", mailer)["sent"] == 1
    assert [m["To"] for m in inbox.messages] == ["ny@example.org", "berlin@example.org"]


def test_the_weekly_cap_limits_marketing_per_member(uow_factory, program, now, mail):
    inbox, mailer = mail
    cases.update_settings(uow_factory(), program, {"weekly_marketing_cap": 2, "triggers": {
        "points_earned": {"purpose": "marketing", "channels": ["email", "inbox"]}}}, now)  # fmt: skip
    member = enrol(uow_factory, program, now, email="cap@example.org")
    consent_and_confirm(uow_factory, program, member, inbox, mailer, now, "cap@example.org")
    for day in range(3):
        buy(uow_factory, program, member, "10.00", now + timedelta(days=day))
    deliver(uow_factory, mailer, now + timedelta(days=2))
    earned = [m for m in to(inbox, "cap@example.org") if "Punkte gesammelt" in m["Subject"]]
    assert len(earned) == 2
    log = cases.list_messages(uow_factory(), program, member_id=member, code="points_earned", chan="email")
    assert sorted(m["reason"] or "" for m in log) == ["", "", "frequency_cap"]
    assert len(cases.inbox(uow_factory(), program, member)["messages"]) >= 3  # the inbox takes them all
    # A week later there is room again.
    buy(uow_factory, program, member, "10.00", now + timedelta(days=9, hours=1))  # 7 days after the two mails
    deliver(uow_factory, mailer, now + timedelta(days=9, hours=1))
    assert len([m for m in to(inbox, "cap@example.org") if "Punkte gesammelt" in m["Subject"]]) == 3


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.sent = failures, []  # type: ignore[var-annotated]

    def send(self, message: MailMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("smtp down")
        self.sent.append(message)


def test_failed_sends_are_retried_with_backoff_then_logged_failed(uow_factory, program, now):
    member = enrol(uow_factory, program, now, email="retry@example.org")
    flaky = Flaky(2)
    relay_outbox(uow_factory, now)
    assert cases.send_due(uow_factory, lambda: now, "w1", flaky)["retrying"] == 1
    [row] = cases.list_messages(uow_factory(), program, member_id=member, chan="email")
    assert row["status"] == "queued" and row["attempts"] == 1 and "smtp down" in row["last_error"]
    assert cases.send_due(uow_factory, lambda: now + timedelta(seconds=30), "w1", flaky)["attempted"] == 0
    assert cases.send_due(uow_factory, lambda: now + timedelta(minutes=1), "w1", flaky)["retrying"] == 1
    assert cases.send_due(uow_factory, lambda: now + timedelta(minutes=7), "w1", flaky)["sent"] == 1
    assert len(flaky.sent) == 1
    other = enrol(uow_factory, program, now, email="dead@example.org")
    relay_outbox(uow_factory, now)
    dead = Flaky(100)
    for step in range(6):
        cases.send_due(uow_factory, lambda step=step: now + timedelta(hours=7 * step), "w1", dead)
    [row] = cases.list_messages(uow_factory(), program, member_id=other, chan="email")
    assert row["status"] == "failed" and row["attempts"] == 6


def test_reward_mail_carries_the_coupon_code_and_its_qr_code_inline(uow_factory, program, now, mail):
    inbox, mailer = mail
    member = enrol(uow_factory, program, now, email="qr@example.org", locale="en")
    buy(uow_factory, program, member, "100.00", now)
    reward = create_reward(uow_factory(), program, {"name": {"de": "Becher", "en": "Mug"}, "type": "merchandise",
                                                    "cost_points": 50}, now)  # fmt: skip
    redeemed = redeem_reward(uow_factory(), program, member, UUID(reward["id"]), now)
    deliver(uow_factory, mailer, now)
    [mail_] = [m for m in to(inbox, "qr@example.org") if m["Subject"] == "Your reward: Mug"]
    code = redeemed["coupon"]["code"]
    assert code in text(mail_)
    html = mail_.get_body(("html",))
    assert html is not None and 'src="cid:coupon-qr"' in html.get_content()  # type: ignore[attr-defined]
    images = [p for p in mail_.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<coupon-qr>"
    assert images[0].get_payload(decode=True)[:8] == b"\x89PNG\r\n\x1a\n"


def test_push_goes_out_as_a_webhook_event(uow_factory, program, now):
    endpoint = create_endpoint(uow_factory(), program, {"url": "https://push.example/hook",
                                                        "events": ["notification.push"]}, now)  # fmt: skip
    cases.update_settings(uow_factory(), program, {"triggers": {"points_earned": {"channels": ["push"]}}}, now)
    member = enrol(uow_factory, program, now, locale="de")
    buy(uow_factory, program, member, "30.00", now)
    relay_outbox(uow_factory, now)
    assert cases.send_due(uow_factory, lambda: now, "w1", None)["sent"] == 1
    assert relay_outbox(uow_factory, now)["deliveries"] == 1
    with uow_factory() as uow:
        [delivery] = uow.webhooks.deliveries(program, UUID(endpoint["id"]), None, 10)
    assert delivery["event_type"] == "notification.push"
    assert delivery["payload"]["member_id"] == str(member) and delivery["payload"]["title"] == \
        "Sie haben 30 Punkte gesammelt"  # fmt: skip


def test_daily_digest_sums_a_days_points_into_one_message(uow_factory, program, now):
    cases.update_settings(uow_factory(), program, {"triggers": {"points_earned": {"mode": "digest"}}}, now)
    member = enrol(uow_factory, program, now)
    buy(uow_factory, program, member, "10.00", now)
    buy(uow_factory, program, member, "15.00", now + timedelta(hours=2))
    relay_outbox(uow_factory, now + timedelta(hours=2))
    assert not [m for m in cases.inbox(uow_factory(), program, member)["messages"] if m["trigger"] == "points_earned"]
    assert cases.run_notifications_job(uow_factory, now + timedelta(hours=3), program)["digests"] == 0  # same day
    next_day = now + timedelta(days=1)
    assert cases.run_notifications_job(uow_factory, next_day, program)["digests"] == 1
    assert cases.run_notifications_job(uow_factory, next_day, program)["digests"] == 0
    [digest] = [m for m in cases.inbox(uow_factory(), program, member)["messages"] if m["trigger"] == "points_earned"]
    assert digest["subject"] == "Heute gesammelt: 25 Punkte" and "bei 2 Gelegenheiten" in digest["text"]


def test_points_that_become_available_are_announced_once(uow_factory, now):
    program = UUID(create_program(uow_factory(), "P", "EUR", "Europe/Berlin", {"pending_days": 14}, now)["id"])
    member = enrol(uow_factory, program, now)
    buy(uow_factory, program, member, "50.00", now)
    assert cases.run_notifications_job(uow_factory, now + timedelta(days=1), program)["available"] == 0
    at = now + timedelta(days=15)
    assert cases.run_notifications_job(uow_factory, at, program)["available"] == 1
    assert cases.run_notifications_job(uow_factory, at, program)["available"] == 0
    [note] = [m for m in cases.inbox(uow_factory(), program, member)["messages"] if m["trigger"] == "points_available"]
    assert note["subject"] == "50 Punkte sind jetzt einlösbar"


def test_a_switched_off_trigger_sends_nothing_and_templates_are_sandboxed(uow_factory, program, now):
    cases.update_settings(uow_factory(), program, {"triggers": {"welcome": {"enabled": False}}}, now)
    member = enrol(uow_factory, program, now, email="off@example.org")
    relay_outbox(uow_factory, now)
    assert cases.list_messages(uow_factory(), program, member_id=member) == []
    with pytest.raises(TemplateUnsafe):
        cases.save_template(uow_factory(), program, "welcome", "email", "de",
                            {"subject": "x", "text": "{{ program.__class__.__mro__ }}"}, now)  # fmt: skip
    saved = cases.save_template(uow_factory(), program, "welcome", "email", "de",
                                {"subject": "Hi {{ member.first_name }}", "text": "Karte {{ card_number }}"}, now)  # fmt: skip
    assert saved["preview"]["subject"] == "Hi Alex"
    cases.update_settings(uow_factory(), program, {"triggers": {"welcome": {"enabled": True}}}, now)
    other = enrol(uow_factory, program, now, email="on@example.org", first_name="<b>Eve</b>")
    relay_outbox(uow_factory, now)
    [row] = cases.list_messages(uow_factory(), program, member_id=other, chan="email")
    assert row["subject"] == "Hi <b>Eve</b>" and row["text"].startswith("Karte 9276 ")


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def test_tier_mission_referral_and_club_events_become_messages(uow_factory, program, now):
    from treue.domain.events import Event

    member = enrol(uow_factory, program, now, locale="en")
    friend = enrol(uow_factory, program, now, locale="de")
    relay_outbox(uow_factory, now)
    facts = [
        ("tier.upgraded", {"member_id": str(member), "from": "basis", "to": "gold"}),
        ("tier.will_downgrade", {"member_id": str(member), "tier": "gold", "would_be": "basis",
                                 "decides_at": "2026-12-31T23:00:00+00:00", "needed_to_keep": "80.00"}),
        ("mission.completed", {"member_id": str(member), "mission": "five-visits"}),
        ("referral.completed", {"referrer_id": str(member), "referee_id": str(friend),
                                "rewards": {"referrer": {"points": 500, "grants": []}}}),
        ("club.payment_failed", {"member_id": str(member), "plan": "plus", "amount": "4.90", "currency": "EUR",
                                 "period_end": "2026-04-02T10:00:00+00:00"}),
    ]  # fmt: skip
    with uow_factory() as uow:
        for name, payload in facts:
            uow.emit(program, Event(name, payload))
        uow.commit()
    relay_outbox(uow_factory, now)
    relay_outbox(uow_factory, now)  # again: nothing twice
    subjects = sorted(m["subject"] for m in cases.inbox(uow_factory(), program, member)["messages"])
    assert subjects == ["Congratulations: you are now gold", "Keep your gold tier", "Mission completed: five-visits",
                        "Payment for plus failed", "Welcome to Kaffeehaus", "Your referral paid off"]  # fmt: skip
    keep = next(
        m for m in cases.inbox(uow_factory(), program, member)["messages"] if m["trigger"] == "tier_will_downgrade"
    )
    assert "on 2027-01-01 you would move down to basis. Still needed: 80.00." in keep["text"]  # Berlin date
    assert [m["subject"] for m in cases.inbox(uow_factory(), program, friend)["messages"]] == [
        "Willkommen bei Kaffeehaus"
    ]
    pushes = cases.list_messages(uow_factory(), program, member_id=member, chan="push")
    assert [m["trigger"] for m in pushes] == ["mission_completed"] and pushes[0]["status"] == "queued"
