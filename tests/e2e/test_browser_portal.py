"""The member portal's engagement pages in a real browser (Playwright, Debian's Chromium, headless), in English on
a phone and in German on a desktop: the tier progress bar on the card, activating an offer, joining a mission,
copying the invitation link, changing a consent, answering the survey and reading the inbox.

It runs its own `treue serve` on its own SQLite file (the programme here has tiers, offers, missions, a club and
surveys, which would change what tests/e2e/test_browser_ui.py counts), with the browser and helpers of that file.
Screenshots go to test-output/screenshots/portal-*.png.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.e2e.browser_support import SCREENSHOTS, TREUE, _wait_until_up, shot
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Inbox, free_port, smtp_server
from treue.services import club as club_cases
from treue.services import gamification as game_cases
from treue.services import notifications as notice_cases
from treue.services import offers as offer_cases
from treue.services.programs import create_program
from treue.services.surveys import create_survey, survey_nps
from treue.services.tiers import set_ladder
from treue.services.webhooks import relay_outbox
from treue.store.database import make_engine
from treue.store.migrate import migrate
from treue.store.unit_of_work import SqlUnitOfWorkFactory

pytestmark = pytest.mark.xdist_group("browser")  # with the other browser tests: one worker, one Chromium
PUBLIC_URL = "https://treue.example"
MEMBERS = {"en": "ella.berg@example.org", "de": "jonas.wolf@example.org"}


@dataclass
class Portal:
    url: str
    program_id: UUID
    members: dict[str, UUID]  # language -> member id
    inbox: Inbox
    database_url: str

    @functools.cached_property
    def uow(self) -> SqlUnitOfWorkFactory:
        """Reads what the services see, beside the server (SQLite: one file, two processes)."""
        return SqlUnitOfWorkFactory(make_engine(self.database_url))


def _seed(url: str) -> tuple[UUID, dict[str, UUID]]:
    engine = make_engine(url)
    migrate(engine)
    uow = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    earlier = now - timedelta(days=20)  # past the pending period: the points are available
    program_id = UUID(create_program(uow(), "Möbelhaus Portal", "EUR", "Europe/Berlin",
                                     {"default_locale": "de"}, earlier - timedelta(days=1))["id"])  # fmt: skip
    set_ladder(uow(), program_id, {"basis": "spend", "tiers": [
        {"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0"},
        {"code": "silber", "name": {"de": "Silber", "en": "Silver"}, "threshold": "500.00"}]}, earlier)  # fmt: skip
    today = now.date()
    for code, en, de in (("spring", "Double points on garden furniture", "Doppelte Punkte auf Gartenmöbel"),
                         ("lamps", "50 bonus points on lamps", "50 Extrapunkte auf Lampen")):  # fmt: skip
        offer_cases.create_offer(uow(), program_id, {
            "code": code, "kind": "targeted", "name": {"de": de, "en": en}, "starts": str(today - timedelta(days=1)),
            "ends": str(today + timedelta(days=30)), "effects": [{"type": "fixed_points", "points": 50}]}, earlier)  # fmt: skip
    for code, en, de in (("three", "Three purchases", "Drei Einkäufe"), ("two", "Two purchases", "Zwei Einkäufe")):
        game_cases.create_mission(uow(), program_id, {
            "code": code, "name": {"de": de, "en": en}, "opt_in": True,
            "goal": {"type": "count", "target": 3 if code == "three" else 2, "event": "purchase"},
            "window": {"type": "month"}, "reward": {"points": 300}}, earlier)  # fmt: skip
    game_cases.create_streak(uow(), program_id, {"code": "weekly", "name": {"de": "Jede Woche", "en": "Every week"},
                                                 "period": "week", "event": "purchase", "freeze": True}, earlier)  # fmt: skip
    game_cases.create_badge(uow(), program_id, {"code": "welcome", "name": {"de": "Willkommen", "en": "Welcome"},
                                                "rare_below_percent": "10"}, earlier)  # fmt: skip
    create_survey(uow(), program_id, {"code": "nps", "name": {"de": "NPS", "en": "NPS"}}, earlier)
    club_cases.create_plan(uow(), program_id, {"code": "plus", "name": {"de": "Plus", "en": "Plus"}, "price": "9.90",
                                               "interval": "month", "trial_days": 14,
                                               "benefits": {"earn_multiplier": "1.5"}}, earlier)  # fmt: skip
    members = {}
    for lang, email in MEMBERS.items():
        first, last = email.split("@")[0].split(".")
        member = enrol(uow, program_id, earlier, first_name=first.title(), last_name=last.title(), email=email,
                       locale=lang)  # fmt: skip
        buy(uow, program_id, member, "249.00", earlier)
        buy(uow, program_id, member, "31.00", earlier + timedelta(days=1))
        game_cases.grant_badge(uow(), program_id, member, "welcome", earlier)
        members[lang] = member
    relay_outbox(uow, now)  # the welcome and points messages reach the members' inboxes
    engine.dispose()
    return program_id, members


@pytest.fixture(scope="session")
def portal(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    url = f"sqlite:///{tmp_path_factory.mktemp('portal') / 'treue.db'}"
    program_id, members = _seed(url)
    port = free_port()
    with smtp_server() as (inbox, mailer):
        env = {**os.environ, "TREUE_DATABASE_URL": url, "TREUE_SMTP_HOST": mailer.host,
               "TREUE_SMTP_PORT": str(mailer.port), "TREUE_PORTAL_PROGRAM": str(program_id),
               "TREUE_PUBLIC_URL": PUBLIC_URL}  # fmt: skip
        server = subprocess.Popen([str(TREUE), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, server)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            yield Portal(base, program_id, members, inbox, url)
        finally:
            server.terminate()
            server.wait(timeout=20)


WORDS = {  # what the member reads and clicks, per language
    "en": {"email": "Email", "send": "Send me a code", "code": "Code from the email", "sign_in": "Sign in",
           "hello": "Hello Ella", "on_the_way": "On the way to Silver", "offers": "Offers", "missions": "Missions",
           "invite": "Invite friends", "preferences": "Preferences", "messages": "Messages", "card": "My card",
           "activate": "Activate Double points on garden furniture", "join": "Join Three purchases",
           "copy": "Copy", "copied": "Copied.", "channel": "Text message (SMS)", "save": "Save preferences",
           "saved": "Saved.", "answer": "Answer the survey", "comment": "Anything you want to tell us? (optional)",
           "send_answer": "Send my answer", "thanks": "Thank you for your answer.", "read": "Mark as read",
           "progress": "0 of 3 purchases in"},
    "de": {"email": "E-Mail", "send": "Code senden", "code": "Code aus der E-Mail", "sign_in": "Anmelden",
           "hello": "Hallo Jonas", "on_the_way": "Auf dem Weg zu Silber", "offers": "Angebote", "missions": "Missionen",
           "invite": "Freunde einladen", "preferences": "Einstellungen", "messages": "Nachrichten", "card": "Meine Karte",
           "activate": "50 Extrapunkte auf Lampen aktivieren", "join": "Bei Zwei Einkäufe mitmachen",
           "copy": "Kopieren", "copied": "Kopiert.", "channel": "Push-Benachrichtigungen",
           "save": "Einstellungen speichern", "saved": "Gespeichert.", "answer": "An der Umfrage teilnehmen",
           "comment": "Möchten Sie uns noch etwas sagen? (freiwillig)", "send_answer": "Antwort senden",
           "thanks": "Vielen Dank für Ihre Antwort.", "read": "Als gelesen markieren", "progress": "0 von 2 Einkäufen"},
}  # fmt: skip
SETTINGS = {"en": ("offer", "spring", "three", "sms"), "de": ("offer", "lamps", "two", "push")}


def _sign_in(tab: Any, portal: Portal, lang: str) -> None:
    words, email = WORDS[lang], MEMBERS[lang]
    tab.goto(f"{portal.url}/portal")
    tab.get_by_label(words["email"]).fill(email)
    before = len(portal.inbox.codes_for(email))
    tab.get_by_role("button", name=words["send"]).click()
    tab.get_by_label(words["code"]).wait_for()
    deadline = time.monotonic() + 10
    while len(portal.inbox.codes_for(email)) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    tab.get_by_label(words["code"]).fill(portal.inbox.codes_for(email)[-1])
    tab.get_by_role("button", name=words["sign_in"]).click()
    tab.wait_for_url(f"{portal.url}/portal/card")


@pytest.mark.parametrize("lang", ["en", "de"])
def test_a_member_uses_the_portal_pages(browser: Any, portal: Portal, lang: str):
    """English on a phone, German on a desktop; each language has its own member, offer, mission and channel."""
    words = WORDS[lang]
    _, offer, mission, channel = SETTINGS[lang]
    viewport = {"width": 390, "height": 844} if lang == "en" else {"width": 1280, "height": 900}
    context = browser.new_context(locale="en-US" if lang == "en" else "de-DE", viewport=viewport,
                                  is_mobile=lang == "en")  # fmt: skip
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    refused: list[str] = []
    tab.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    member = portal.members[lang]
    try:
        _sign_in(tab, portal, lang)
        assert tab.get_by_role("heading", level=1).inner_text() == words["hello"]
        bar = tab.get_by_label(words["on_the_way"])
        assert bar.is_visible() and bar.evaluate("e => e.tagName") == "PROGRESS"
        assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("280.00", "500.00")  # 249.00 + 31.00
        shot(tab, f"portal-card-tier-{lang}")

        tab.get_by_role("link", name=words["offers"], exact=True).click()
        tab.get_by_role("button", name=words["activate"]).click()
        tab.wait_for_url(f"**/portal/offers?activated={offer}")
        assert tab.locator(f'[data-offer="{offer}"]').get_attribute("data-state") == "activated"
        states = {o["code"]: o["state"] for o in offer_cases.member_offers(portal.uow(), portal.program_id, member,
                                                                           datetime.now(UTC))}  # fmt: skip
        assert states[offer] == "activated"
        shot(tab, f"portal-offers-{lang}")

        tab.goto(f"{portal.url}/portal/missions")
        tab.get_by_role("button", name=words["join"]).click()
        tab.wait_for_url(f"**/portal/missions?joined={mission}")
        assert words["progress"] in tab.locator(f'[data-mission="{mission}"]').inner_text()
        assert tab.locator(f"#progress-{mission}").is_visible()
        assert tab.locator('[data-badge="welcome"]').is_visible() and tab.locator('[data-streak="weekly"]').is_visible()
        shot(tab, f"portal-missions-{lang}")

        tab.goto(f"{portal.url}/portal/invite")
        link = tab.locator("[data-share-target]").input_value()
        assert link.startswith(f"{PUBLIC_URL}/r/")
        tab.get_by_role("button", name=words["copy"], exact=True).click()
        tab.get_by_role("status").filter(has_text=words["copied"]).wait_for()
        assert tab.evaluate("navigator.clipboard.readText()") == link
        assert tab.get_by_role("link", name="WhatsApp").get_attribute("href").startswith("https://wa.me/?text=")
        shot(tab, f"portal-invite-{lang}")

        tab.goto(f"{portal.url}/portal/preferences")
        box = tab.get_by_label(words["channel"])
        assert not box.is_checked()
        box.check()
        tab.get_by_role("button", name=words["save"]).click()
        tab.wait_for_url("**/portal/preferences?saved=1")
        assert words["saved"] in tab.get_by_role("status").inner_text()
        consents = notice_cases.get_consents(portal.uow(), portal.program_id, member)["channels"]
        assert consents[channel]["granted"] is True and consents["email"]["granted"] is False
        shot(tab, f"portal-preferences-{lang}")

        tab.goto(f"{portal.url}/portal/card")
        tab.get_by_role("link", name=words["answer"]).click()
        tab.get_by_label("9", exact=True).check()
        tab.get_by_label(words["comment"]).fill("Schnell und freundlich" if lang == "de" else "Quick and friendly")
        tab.get_by_role("button", name=words["send_answer"]).click()
        tab.wait_for_url("**/portal/survey/nps?done=1")
        assert words["thanks"] in tab.get_by_role("status").inner_text()
        assert survey_nps(portal.uow(), portal.program_id, "nps", None, None)["promoters"] >= 1
        shot(tab, f"portal-survey-{lang}")

        tab.goto(f"{portal.url}/portal/inbox")
        unread = int(tab.locator("[data-unread]").get_attribute("data-unread"))
        assert unread >= 1
        first = tab.locator('[data-read="no"]').first
        message = first.get_attribute("data-message")
        first.locator("summary").click()
        shot(tab, f"portal-inbox-{lang}")
        first.get_by_role("button", name=words["read"]).click()
        tab.wait_for_url("**/portal/inbox*")
        assert tab.locator(f'[data-message="{message}"]').get_attribute("data-read") == "yes"
        assert notice_cases.inbox(portal.uow(), portal.program_id, member)["unread"] == unread - 1
        assert not [text for text in refused if "Content Security Policy" in text], refused
    finally:
        context.close()
