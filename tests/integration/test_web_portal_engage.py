"""The portal's engagement pages over HTTP on SQLite and PostgreSQL: the card's tier progress and expiring points,
offers, missions with streaks and badges, the invitation link, the club, the NPS survey, preferences and the
inbox. Each page needs a signed-in member, shows only that member's data, changes what the services return when
its form is sent, and changes nothing on bad input."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Outbox, Web, csrf_of, text_of
from treue.services import club as club_cases
from treue.services import gamification as game_cases
from treue.services import notifications as notice_cases
from treue.services import offers as offer_cases
from treue.services import referrals as referral_cases
from treue.services.members import get_member
from treue.services.programs import create_program
from treue.services.segments import create_segment, import_members
from treue.services.surveys import create_survey, survey_nps
from treue.services.tiers import set_ladder
from treue.services.webhooks import relay_outbox

PAGES = ("/portal/offers", "/portal/missions", "/portal/invite", "/portal/club", "/portal/preferences",
         "/portal/inbox", "/portal/survey/nps")  # fmt: skip


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def web(engine, now, outbox) -> Web:
    return Web(engine, Clock(now), mailer=outbox)


def member_signs_in(web: Web, outbox: Outbox, program_id: UUID, email: str, locale: str = "en",
                    spend: str | None = "120.00") -> tuple[TestClient, UUID]:  # fmt: skip
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Mia", email=email, locale=locale)
    if spend:
        buy(web.uow, program_id, member_id, spend, web.clock())
    client = web.client()
    form = client.get(f"/portal/{program_id}/sign-in")
    client.post(f"/portal/{program_id}/sign-in", data={"email": email, "csrf_token": csrf_of(form.text)})
    form = client.get(f"/portal/{program_id}/sign-in")
    signed = client.post(f"/portal/{program_id}/verify", data={"email": email, "code": outbox.code(),
                                                               "csrf_token": csrf_of(form.text)})  # fmt: skip
    assert signed.status_code == 303, signed.text
    return client, member_id


def test_signed_out_visitors_are_sent_to_sign_in(web: Web, program_id: UUID):
    visitor = web.client()
    for path in PAGES:
        response = visitor.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/portal", path
    for path in ("/portal/offers/x/activate", "/portal/missions/x/opt-in", "/portal/club/join", "/portal/club/cancel",
                 "/portal/survey/nps", "/portal/preferences", f"/portal/inbox/{program_id}/read"):  # fmt: skip
        assert visitor.post(path, data={"csrf_token": "x"}).status_code == 303, path


# -- the card: tier progress and points expiring soon -------------------------------------------------------------
def test_the_card_shows_the_tier_progress_bar_and_points_expiring_soon(web: Web, outbox: Outbox, now):
    program_id = UUID(create_program(web.uow(), "Kaffeehaus", "EUR", "Europe/Berlin",
                                     {"expiry_policy": "rolling", "expiry_months": 1}, now)["id"])  # fmt: skip
    set_ladder(web.uow(), program_id, {"basis": "spend", "tiers": [
        {"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0"},
        {"code": "silber", "name": {"de": "Silber", "en": "Silver"}, "threshold": "500.00",
         "benefits": {"earn_multiplier": "1.5"}}]}, now)  # fmt: skip
    client, _ = member_signs_in(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/card")
    assert page.status_code == 200
    bar = re.search(r'<progress id="tier-progress" max="([^"]+)" value="([^"]+)" data-percent="(\d+)"', page.text)
    assert bar and bar.groups() == ("500.00", "120.00", "24")
    assert '<label for="tier-progress">On the way to Silver</label>' in page.text
    text = text_of(page.text)
    assert "€120.00 so far of €500.00: €380.00 more to reach Silver." in text
    assert "Expiring soon" in text and "120 points on" in text  # a month after the purchase: within 90 days

    buy(web.uow, program_id, get_member_id(web, program_id, "mia@example.org"), "400.00", now)
    text = text_of(client.get("/portal/card").text)
    assert "You have reached the highest tier." in text and "1.5 \u00d7 points on purchases" in text
    client.cookies.set("treue_lang", "de")
    german = client.get("/portal/card")
    assert "1,5 \u00d7 Punkte auf Einkäufe" in text_of(german.text)


def get_member_id(web: Web, program_id: UUID, email: str) -> UUID:
    with web.uow() as uow:
        return UUID(str(uow.members.find(program_id, email=email)[0]["id"]))


def test_the_card_has_no_tier_section_without_a_ladder(web: Web, outbox: Outbox, program_id: UUID):
    client, _ = member_signs_in(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/card")
    assert page.status_code == 200 and "tier-progress" not in page.text


# -- offers ---------------------------------------------------------------------------------------------------------
def _offer(web: Web, program_id: UUID, code: str, **fields) -> None:
    data = {"code": code, "kind": "targeted", "name": {"de": f"Angebot {code}", "en": f"Offer {code}"},
            "starts": "2026-03-01", "ends": "2026-03-31", "effects": [{"type": "fixed_points", "points": 50}],
            **fields}  # fmt: skip
    offer_cases.create_offer(web.uow(), program_id, data, web.clock())


def test_a_member_activates_an_offer_and_cannot_touch_another_segments(web: Web, outbox: Outbox, program_id: UUID):
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org")
    tom = enrol(web.uow, program_id, web.clock(), email="tom@example.org")
    create_segment(web.uow(), program_id, {"code": "vip", "name": {"de": "VIP"}, "kind": "static"}, web.clock())
    import_members(web.uow(), program_id, "vip", [str(tom)], web.clock())
    _offer(web, program_id, "spring")
    _offer(web, program_id, "viponly", segment="vip")

    page = client.get("/portal/offers")
    assert page.status_code == 200
    assert re.findall(r'data-offer="([^"]+)" data-state="([^"]+)"', page.text) == [("spring", "shown")]
    assert "Valid until Mar 31, 2026" in text_of(page.text)  # the offer's last day, not the instant after it
    assert offer_cases.offer_stats(web.uow(), program_id, "spring", web.clock())["shown"] == 1  # the funnel counts it

    assert client.post("/portal/offers/spring/activate", data={}).status_code == 403  # no CSRF token
    refused = client.post("/portal/offers/viponly/activate", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    assert client.post("/portal/offers/nosuch/activate", data={"csrf_token": csrf_of(page.text)}).status_code == 404
    states = {o["code"]: o["state"] for o in offer_cases.member_offers(web.uow(), program_id, mia, web.clock())}
    assert states == {"spring": "shown"}

    done = client.post("/portal/offers/spring/activate", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/portal/offers?activated=spring"
    states = {o["code"]: o["state"] for o in offer_cases.member_offers(web.uow(), program_id, mia, web.clock())}
    assert states == {"spring": "activated"}
    after = client.get(done.headers["location"])
    assert 'data-offer="spring" data-state="activated"' in after.text and "/activate" not in after.text
    assert "Activated. The offer applies to your next matching purchases." in text_of(after.text)


# -- missions, streaks, badges ----------------------------------------------------------------------------------------
def test_a_member_opts_into_a_mission_and_sees_streaks_and_badges(web: Web, outbox: Outbox, program_id: UUID):
    at = web.clock()
    game_cases.create_mission(web.uow(), program_id, {
        "code": "three", "name": {"de": "Drei Einkäufe", "en": "Three purchases"}, "opt_in": True,
        "goal": {"type": "count", "target": 3, "event": "purchase"}, "window": {"type": "month"},
        "reward": {"points": 500}}, at)  # fmt: skip
    game_cases.create_mission(web.uow(), program_id, {
        "code": "bigones", "name": {"de": "Große", "en": "Big spenders"}, "opt_in": True,
        "audience": "member.tier == 'gold'", "goal": {"type": "count", "target": 1, "event": "purchase"},
        "window": {"type": "month"}, "reward": {"points": 5}}, at)  # fmt: skip
    game_cases.create_streak(web.uow(), program_id, {"code": "weekly", "name": {"de": "Jede Woche", "en": "Weekly"},
                                                     "period": "week", "event": "purchase", "freeze": True}, at)  # fmt: skip
    game_cases.create_badge(web.uow(), program_id, {"code": "first", "name": {"de": "Erster", "en": "First"},
                                                    "rare_below_percent": "50"}, at)  # fmt: skip
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org")
    for _ in range(3):
        enrol(web.uow, program_id, at)  # members without the badge: holding it is rare
    game_cases.grant_badge(web.uow(), program_id, mia, "first", at)

    page = client.get("/portal/missions")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Three purchases" in text and "Big spenders" not in text  # outside its audience: not shown
    assert "Current run: 1 · best: 1" in text and "freeze available" in text
    assert 'data-badge="first"' in page.text and "Rare" in text and "held by 25% of members" in text

    csrf = csrf_of(page.text)
    assert client.post("/portal/missions/bigones/opt-in", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/portal/missions/nosuch/opt-in", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/portal/missions/three/opt-in", data={}).status_code == 403
    mine = {m["code"]: m["opted_in"] for m in game_cases.member_missions(web.uow(), program_id, mia, at)}
    assert mine == {"three": False}

    done = client.post("/portal/missions/three/opt-in", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/portal/missions?joined=three"
    assert game_cases.member_missions(web.uow(), program_id, mia, at)[0]["opted_in"] is True
    buy(web.uow, program_id, mia, "10.00", at + timedelta(minutes=1))
    after = client.get("/portal/missions")
    assert re.search(r'<progress id="progress-three" max="3" value="1"', after.text)
    assert "1 of 3 purchases in March 2026" in text_of(after.text)
    client.cookies.set("treue_lang", "de")
    german = text_of(client.get("/portal/missions").text)
    assert "1 von 3 Einkäufen im März 2026" in german and "im Besitz von" in german


# -- invite friends -----------------------------------------------------------------------------------------------
def test_the_invitation_page_gives_the_members_code_link_and_share_buttons(web: Web, outbox: Outbox, program_id: UUID,
                                                                          monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    monkeypatch.setenv("TREUE_PUBLIC_URL", "https://treue.example")
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/invite")
    assert page.status_code == 200
    mine = referral_cases.member_referrals(web.uow(), program_id, mia, web.clock())
    assert mine["link"] == f"https://treue.example/r/{mine['code']}"
    assert f'data-referral-code="{mine["code"]}"' in page.text and f'value="{mine["link"]}"' in page.text
    assert 'href="mailto:?subject=' in page.text and 'href="https://wa.me/?text=' in page.text
    assert "treue.example%2Fr%2F" + mine["code"] in page.text  # the link inside the shared text, encoded
    assert '<script src="/static/portal.js" defer></script>' in page.text and "data-copy=" in page.text
    assert re.search(r'data-referrals="sent">0<', page.text)
    other, _ = member_signs_in(web, outbox, program_id, "tom@example.org")
    assert mine["code"] not in other.get("/portal/invite").text  # each member sees their own code only


# -- club ---------------------------------------------------------------------------------------------------------
PLUS = {"code": "plus", "name": {"de": "Plus", "en": "Plus"}, "price": "9.90", "interval": "month", "trial_days": 14,
        "benefits": {"earn_multiplier": "1.5", "perks": ["free_shipping"]}}  # fmt: skip


def test_a_member_starts_a_trial_and_cancels_at_the_period_end(web: Web, outbox: Outbox, program_id: UUID):
    club_cases.create_plan(web.uow(), program_id, PLUS, web.clock())
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/club")
    assert page.status_code == 200 and "Start free trial" in page.text
    assert "Try it free for 14 days. Afterwards it costs €9.90" in text_of(page.text)
    assert client.post("/portal/club/join", data={"plan": "plus"}).status_code == 403
    unknown = client.post("/portal/club/join", data={"plan": "nosuch", "csrf_token": csrf_of(page.text)})
    assert unknown.status_code == 404
    assert club_cases.member_club(web.uow(), program_id, mia, web.clock())["subscription"] is None

    joined = client.post("/portal/club/join", data={"plan": "plus", "csrf_token": csrf_of(page.text)})
    assert joined.status_code == 303
    sub = club_cases.member_club(web.uow(), program_id, mia, web.clock())["subscription"]
    assert sub["status"] == "trialing" and sub["cancel_at"] is None
    page = client.get("/portal/club?done=joined")
    text = text_of(page.text)
    assert "Welcome to the club." in text and "Trial" in text and "1.5 \u00d7 points on purchases" in text
    assert "Start free trial" not in page.text  # one running membership at a time

    cancelled = client.post("/portal/club/cancel", data={"csrf_token": csrf_of(page.text)})
    assert cancelled.status_code == 303
    sub = club_cases.member_club(web.uow(), program_id, mia, web.clock())["subscription"]
    assert sub["cancel_at"] == sub["trial_ends_at"]  # at the end of the trial, not at once
    assert sub["status"] == "trialing"
    page = client.get("/portal/club?done=cancelled")
    assert "Cancelled. Your membership ends on Mar 16, 2026." in text_of(page.text)
    again = client.post("/portal/club/cancel", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 409


def test_a_plan_without_trial_says_honestly_that_the_portal_takes_no_payment(web: Web, outbox: Outbox,
                                                                            program_id: UUID):  # fmt: skip
    club_cases.create_plan(web.uow(), program_id, PLUS | {"trial_days": 0}, web.clock())
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org", locale="de")
    page = client.get("/portal/club")
    assert "Start free trial" not in page.text and "data-payment-needed" in page.text
    assert "die dieses Portal nicht annehmen kann" in text_of(page.text)
    forced = client.post("/portal/club/join", data={"plan": "plus", "csrf_token": csrf_of(page.text)})
    assert forced.status_code == 402 and 'role="alert"' in forced.text
    assert club_cases.member_club(web.uow(), program_id, mia, web.clock())["subscription"] is None


# -- NPS survey ---------------------------------------------------------------------------------------------------
def test_a_member_answers_the_survey_once(web: Web, outbox: Outbox, program_id: UUID):
    create_survey(web.uow(), program_id, {"code": "nps", "name": {"de": "NPS", "en": "NPS"}}, web.clock())
    client, _ = member_signs_in(web, outbox, program_id, "mia@example.org")
    card = client.get("/portal/card")
    assert 'href="/portal/survey/nps"' in card.text  # the card invites to the open survey
    page = client.get("/portal/survey/nps")
    assert page.status_code == 200 and "How likely is it that you would recommend us" in page.text
    assert page.text.count('type="radio" name="score"') == 11

    csrf = csrf_of(page.text)
    for bad in ("11", "", "seven", "-1"):
        refused = client.post("/portal/survey/nps", data={"score": bad, "comment": "x", "csrf_token": csrf})
        assert refused.status_code == 422 and "Choose a score from 0 to 10." in refused.text
    long = client.post("/portal/survey/nps", data={"score": "9", "comment": "x" * 2001, "csrf_token": csrf})
    assert long.status_code == 422
    assert client.post("/portal/survey/nps", data={"score": "9"}).status_code == 403
    assert survey_nps(web.uow(), program_id, "nps", None, None)["responses"] == 0

    done = client.post("/portal/survey/nps", data={"score": "9", "comment": "Gern wieder", "csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/portal/survey/nps?done=1"
    result = survey_nps(web.uow(), program_id, "nps", None, None)
    assert result["responses"] == 1 and result["promoters"] == 1
    after = client.get(done.headers["location"])
    assert 'data-answered="9"' in after.text and "Thank you for your answer." in text_of(after.text)
    assert 'name="score"' not in after.text
    again = client.post("/portal/survey/nps", data={"score": "3", "csrf_token": csrf})
    assert again.status_code == 409 and "You have answered this survey already." in again.text
    assert survey_nps(web.uow(), program_id, "nps", None, None)["responses"] == 1
    assert 'href="/portal/survey/nps"' not in client.get("/portal/card").text
    assert client.get("/portal/survey/other").status_code == 404


# -- preferences --------------------------------------------------------------------------------------------------
def test_preferences_change_consents_and_language(web: Web, outbox: Outbox, program_id: UUID):
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/preferences")
    assert page.status_code == 200 and page.text.count('type="checkbox"') == 4
    csrf = csrf_of(page.text)

    def channels() -> dict[str, bool]:
        found = notice_cases.get_consents(web.uow(), program_id, mia)["channels"]
        return {name: view["granted"] for name, view in found.items()}

    assert channels() == {"email": False, "push": False, "sms": False, "post": False}
    for bad in ({"locale": "fr", "consent_sms": "yes"}, {"locale": "de", "consent_fax": "yes"},
                {"locale": "de", "consent_sms": "maybe"}):  # fmt: skip
        refused = client.post("/portal/preferences", data={**bad, "csrf_token": csrf})
        assert refused.status_code == 422, bad
    assert client.post("/portal/preferences", data={"locale": "de", "consent_sms": "yes"}).status_code == 403
    assert channels() == {"email": False, "push": False, "sms": False, "post": False}
    assert get_member(web.uow(), program_id, mia)["locale"] == "en"

    saved = client.post("/portal/preferences", data={"locale": "de", "consent_sms": "yes", "consent_email": "yes",
                                                     "csrf_token": csrf})  # fmt: skip
    assert saved.status_code == 303 and saved.headers["location"] == "/portal/preferences?saved=1"
    assert channels() == {"email": True, "push": False, "sms": True, "post": False}
    assert get_member(web.uow(), program_id, mia)["locale"] == "de"
    page = client.get(saved.headers["location"])
    assert page.headers["content-language"] == "de" and "Gespeichert." in text_of(page.text)
    assert "data-email-unconfirmed" in page.text  # email marketing waits for the double opt-in

    withdrawn = client.post("/portal/preferences", data={"locale": "de", "consent_email": "yes", "csrf_token": csrf})
    assert withdrawn.status_code == 303
    assert channels() == {"email": True, "push": False, "sms": False, "post": False}  # an unticked box withdraws


# -- inbox --------------------------------------------------------------------------------------------------------
def test_the_inbox_lists_the_members_messages_and_marks_them_read(web: Web, outbox: Outbox, program_id: UUID):
    client, mia = member_signs_in(web, outbox, program_id, "mia@example.org")
    _, tom = member_signs_in(web, outbox, program_id, "tom@example.org")
    relay_outbox(web.uow, web.clock())  # the welcome and points messages reach the inbox
    box = notice_cases.inbox(web.uow(), program_id, mia)
    assert box["unread"] >= 1
    theirs = notice_cases.inbox(web.uow(), program_id, tom)["messages"][0]["id"]

    page = client.get("/portal/inbox")
    assert page.status_code == 200
    shown = re.findall(r'data-message="([^"]+)" data-read="(yes|no)"', page.text)
    assert [m for m, _ in shown] == [m["id"] for m in box["messages"]]  # newest first, as the service orders them
    assert theirs not in page.text
    csrf = csrf_of(page.text)
    assert client.post(f"/portal/inbox/{theirs}/read", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/portal/inbox/not-an-id/read", data={"csrf_token": csrf}).status_code == 404
    assert notice_cases.inbox(web.uow(), program_id, tom)["unread"] >= 1

    first = box["messages"][0]["id"]
    read = client.post(f"/portal/inbox/{first}/read", data={"csrf_token": csrf})
    assert read.status_code == 303
    after = notice_cases.inbox(web.uow(), program_id, mia)
    assert after["unread"] == box["unread"] - 1 and after["messages"][0]["read"] is True
    assert f'data-message="{first}" data-read="yes"' in client.get("/portal/inbox").text
