"""The web UI in a real browser: Playwright drives Debian's Chromium (headless) against `treue serve` on a free
port, on a SQLite file seeded through the services, with a real SMTP server (aiosmtpd) for the portal's codes.

Screenshots of the main pages go to test-output/screenshots/ for review. Without Chromium these tests are
skipped, unless TREUE_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.e2e.browser_support import MEMBER_EMAIL, ROLES, Site, shot, sign_in
from treue.services.members import resolve_member
from treue.services.rewards import list_redemptions, list_rewards, redeem_reward
from treue.store.database import make_engine
from treue.store.unit_of_work import SqlUnitOfWorkFactory

pytestmark = pytest.mark.xdist_group("browser")  # one worker, one server, one browser for all of them


NAVIGATION = {  # what each role finds in the main navigation
    "owner": {"Overview", "Members", "Card look-up", "Set-up", "Rules", "Simulator", "Fraud review", "Operations"},
    "manager": {"Overview", "Members", "Card look-up", "Set-up", "Rules", "Simulator", "Fraud review", "Operations"},
    "support": {"Overview", "Members", "Card look-up", "Fraud review"},
    "analyst": {"Overview", "Rules", "Simulator"},
    "partner": {"Overview", "Card look-up"},
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_signs_in_and_sees_only_what_it_may(page: Any, site: Site, role: str):
    sign_in(page, site, role)
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    links = set(page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts())
    assert links == NAVIGATION[role]
    issued = page.locator('[data-kpi="issued"]').inner_text()
    assert issued == ("59" if role == "partner" else "308")  # a partner counts only its own purchases
    shot(page, f"admin-overview-{role}")

    page.goto(f"{site.url}/admin/members")
    if "Members" in NAVIGATION[role]:
        assert page.get_by_role("heading", level=1).inner_text() == "Members"
    else:
        assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
        if role == "analyst":
            shot(page, "admin-forbidden")
    page.goto(f"{site.url}/admin/rules")
    expected = "Rules" if "Rules" in NAVIGATION[role] else "Not allowed"
    assert page.get_by_role("heading", level=1).inner_text() == expected
    page.goto(f"{site.url}/admin/rewards")
    expected = "Rewards" if "Set-up" in NAVIGATION[role] else "Not allowed"
    assert page.get_by_role("heading", level=1).inner_text() == expected

    page.goto(f"{site.url}/admin")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site.url}/admin/sign-in")


def test_keyboard_users_skip_to_the_content_and_switch_language(page: Any, site: Site):
    page.goto(f"{site.url}/admin/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.get_by_role("link", name="Skip to content").bounding_box()["x"] >= 0  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.get_by_role("link", name="DE").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Anmeldung zum Verwaltungsbereich"
    assert page.locator("html").get_attribute("lang") == "de"
    shot(page, "admin-sign-in-de")


def test_support_finds_a_member_by_typing_and_reads_the_history(page: Any, site: Site):
    sign_in(page, site, "support")
    page.goto(f"{site.url}/admin/members")
    page.get_by_label("Name, email, phone or card number").fill("koch")  # HTMX searches as one types
    page.get_by_role("link", name="Lena Koch").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Lena Koch"
    assert page.locator('[data-balance="available"]').inner_text() == "308"
    assert "Purchase B-1001" in page.locator("table.history").inner_text()
    shot(page, "admin-member-profile")


def test_a_cashier_looks_a_member_up_by_card_number(page: Any, site: Site):
    sign_in(page, site, "partner")
    page.goto(f"{site.url}/admin/lookup")
    page.get_by_label("Card number").fill(site.card)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/admin/lookup?card={site.card}")
    assert page.get_by_role("heading", level=2).inner_text().strip() == "Lena Koch"
    assert page.locator('[data-balance="available"]').inner_text() == "308"
    assert page.get_by_role("link", name="Open the profile").count() == 0  # partners may not open profiles
    shot(page, "admin-card-lookup")


def test_the_rule_editor_checks_the_condition_while_typing_and_previews_a_cart(page: Any, site: Site):
    sign_in(page, site, "manager")
    page.goto(f"{site.url}/admin/rules/new")
    page.get_by_label("Id (a-z, 0-9, . _ -)").fill("big-carts")
    condition = page.get_by_label("Condition (CEL)")
    condition.fill("purchase.totl >= 100")
    error = page.locator('[data-check="invalid"]')
    error.wait_for()
    assert "line 1, column 10" in error.inner_text()
    condition.fill("purchase.total >= 100")
    page.locator('[data-check="valid"]').wait_for()

    page.get_by_label("Cart total (EUR)").fill("120.00")
    page.get_by_label("Card number (optional: without one nothing is earned)").fill(site.card)
    page.get_by_role("button", name="Test", exact=True).click()
    page.locator("[data-preview-points]").wait_for()
    assert page.locator("[data-preview-points]").get_attribute("data-preview-points") == "120"
    shot(page, "admin-rule-editor")

    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url(f"{site.url}/admin/rules/big-carts?saved=1")
    assert "Saved." in page.get_by_role("status").inner_text()


def test_a_member_signs_in_with_the_emailed_code_and_sees_the_card(browser: Any, site: Site):
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(10_000)
    phone = context.new_page()
    try:
        phone.goto(f"{site.url}/portal")
        assert phone.url.endswith(f"/portal/{site.program_id}/sign-in")
        shot(phone, "portal-sign-in")
        phone.get_by_label("Email").fill(MEMBER_EMAIL)
        before = len(site.inbox.codes_for(MEMBER_EMAIL))
        phone.get_by_role("button", name="Send me a code").click()
        phone.get_by_label("Code from the email").wait_for()
        deadline = time.monotonic() + 10
        while len(site.inbox.codes_for(MEMBER_EMAIL)) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        code = site.inbox.codes_for(MEMBER_EMAIL)[-1]
        phone.get_by_label("Code from the email").fill(code)
        phone.get_by_role("button", name="Sign in").click()
        phone.wait_for_url(f"{site.url}/portal/card")
        assert phone.get_by_role("heading", level=1).inner_text() == "Hello Lena"
        assert phone.locator("[data-card]").get_attribute("data-card") == site.card
        assert phone.locator(".qr svg").is_visible()
        assert phone.locator('[data-balance="available"]').inner_text() == "308"
        shot(phone, "portal-card")
    finally:
        context.close()


def test_the_overview_draws_its_charts_under_the_content_security_policy(page: Any, site: Site):
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    sign_in(page, site, "analyst")
    for chart in ("points", "liability", "tiers"):
        page.locator(f'canvas[data-chart="{chart}"][data-drawn]').wait_for()  # Chart.js ran: static files only
    assert page.locator('[data-kpi="active"]').inner_text() == "1"
    assert page.locator("table.heatmap td").count() >= 1
    with page.expect_download() as download:
        page.get_by_role("link", name="Liability per month").click()
    assert download.value.suggested_filename.startswith("treue-liability-")
    assert not [text for text in refused if "Content Security Policy" in text], refused
    shot(page, "admin-overview-charts")


def test_a_manager_sets_the_programme_up_through_the_forms(page: Any, site: Site):
    sign_in(page, site, "manager")
    page.get_by_role("link", name="Set-up").click()
    page.get_by_role("link", name="New reward").click()
    page.get_by_label("Name (English)").fill("Cinema ticket")
    page.get_by_label("Name (German)").fill("Kinokarte")
    page.get_by_label("Type").select_option(label="Experience")
    page.get_by_label("Stock (empty: unlimited)").fill("20")
    page.get_by_role("button", name="Save reward").click()  # no cost: refused, the message next to the field
    assert page.locator("#f-cost_points-error").inner_text() == "Required."
    assert page.get_by_label("Name (English)").input_value() == "Cinema ticket"
    shot(page, "admin-reward-form-error")
    page.get_by_label("Cost in points").fill("150")
    page.get_by_role("button", name="Save reward").click()
    page.wait_for_url(f"{site.url}/admin/rewards?saved=1")
    assert "Cinema ticket" in page.locator('[data-table="rewards"]').inner_text()
    shot(page, "admin-rewards")

    page.get_by_role("navigation", name="Set-up").get_by_role("link", name="Tiers").click()
    for row, (code, name, threshold) in enumerate([("basis", "Basis", "0"), ("gold", "Gold", "1000.00")], start=1):
        page.get_by_label(f"Code, tier {row}", exact=True).fill(code)
        page.get_by_label(f"Name (German), tier {row}", exact=True).fill(name)
        page.get_by_label(f"Name (English), tier {row}", exact=True).fill(name)
        page.get_by_label(f"Threshold, tier {row}", exact=True).fill(threshold)
    page.get_by_role("button", name="Save ladder").click()
    page.wait_for_url(f"{site.url}/admin/tiers?saved=1")
    assert page.get_by_label("Code, tier 2", exact=True).input_value() == "gold"
    shot(page, "admin-tiers")

    page.get_by_role("navigation", name="Set-up").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    starts = datetime.now(UTC).date() + timedelta(days=30)  # later: the other tests' points stay as they are
    page.get_by_label("Id (a-z, 0-9, . _ -)").fill("autumn")
    page.get_by_label("Name", exact=True).fill("Autumn double points")
    page.get_by_label("Starts (local date)").fill(starts.isoformat())
    page.get_by_label("Ends (local date, inclusive)").fill((starts + timedelta(days=30)).isoformat())
    page.get_by_label("Status").select_option(label="Scheduled")
    page.get_by_label("Budget in points (empty: none)").fill("50000")
    page.get_by_label("Rules (JSON list, as in the rule editor)").fill(
        '[{"id": "autumn-x2", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]}]'
    )
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(f"{site.url}/admin/campaigns/autumn?saved=1")
    assert page.locator("[data-budget-left]").get_attribute("data-budget-left") == "50000"
    shot(page, "admin-campaign")


def _member_signs_in(phone: Any, site: Site) -> None:
    phone.goto(f"{site.url}/portal")
    phone.get_by_label("Email").fill(MEMBER_EMAIL)
    before = len(site.inbox.codes_for(MEMBER_EMAIL))
    phone.get_by_role("button", name="Send me a code").click()
    phone.get_by_label("Code from the email").wait_for()
    deadline = time.monotonic() + 10
    while len(site.inbox.codes_for(MEMBER_EMAIL)) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    phone.get_by_label("Code from the email").fill(site.inbox.codes_for(MEMBER_EMAIL)[-1])
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url(f"{site.url}/portal/card")


def test_a_member_redeems_a_reward_and_shows_the_coupon(browser: Any, site: Site):
    """Last in this file: it spends 100 of the member's points, which the tests above count."""
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(10_000)
    phone = context.new_page()
    try:
        _member_signs_in(phone, site)
        phone.get_by_role("link", name="Rewards").click()
        coffee = phone.locator("li[data-affordable]", has_text="Coffee")
        assert coffee.get_attribute("data-affordable") == "yes"
        shot(phone, "portal-rewards")
        phone.get_by_role("button", name="Redeem Coffee").click()
        phone.wait_for_url("**/portal/coupons/*?new=1")
        code = phone.locator("[data-coupon]").get_attribute("data-coupon")
        assert code and phone.locator(".qr svg").is_visible()
        assert "Show this coupon at the till." in phone.get_by_role("status").inner_text()
        shot(phone, "portal-coupon")
        phone.get_by_role("link", name="My coupons", exact=True).click()
        assert code in phone.locator("main").inner_text()
        phone.get_by_role("link", name="My card", exact=True).click()
        assert phone.locator('[data-balance="available"]').inner_text() == "208"
    finally:
        context.close()


def test_support_cancels_the_redemption_on_the_profile(page: Any, site: Site):
    """Support gives a redemption's points back, with a reason (the member's own redemption above, or one made
    here if this test runs alone)."""
    engine = make_engine(site.database_url)
    uow = SqlUnitOfWorkFactory(engine)
    with uow() as unit:
        member = resolve_member(unit, site.program_id, card_number=site.card)
    if not any(r["status"] == "active" for r in list_redemptions(uow(), site.program_id, member)):
        coffee = next(r for r in list_rewards(uow(), site.program_id) if r["name"]["en"] == "Coffee")
        redeem_reward(uow(), site.program_id, member, UUID(coffee["id"]), datetime.now(UTC))
    engine.dispose()
    sign_in(page, site, "support")
    page.goto(f"{site.url}/admin/members?q=koch")
    page.get_by_role("link", name="Lena Koch").click()
    before = int(page.locator('[data-balance="available"]').inner_text())
    page.get_by_label("Reason", exact=True).last.fill("changed her mind")
    page.get_by_role("button", name="Cancel redemption").click()
    assert "100 points are back" in page.get_by_role("status").first.inner_text()
    assert int(page.locator('[data-balance="available"]').inner_text()) == before + 100
    shot(page, "admin-member-support")
