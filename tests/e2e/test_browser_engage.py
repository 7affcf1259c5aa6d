"""Engagement set-up and the simulator in a real browser (Chromium, headless): a manager creates a badge, a mission
(its CEL filter checked as it is typed), a segment, an offer for it, rewords a message with the live preview, and
runs a simulation whose chart is drawn. Screenshots go to test-output/screenshots/. Reuses the server, browser and
sign-in of test_browser_ui.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.browser_support import Site, shot, sign_in

pytestmark = pytest.mark.xdist_group("browser")

DOUBLE = {"id": "double", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]}
DRAFT = {"format": "treue.rules/1", "campaigns": [], "rules": [DOUBLE]}


def test_a_manager_sets_up_engagement(page: Any, site: Site):
    sign_in(page, site, "manager")

    page.goto(f"{site.url}/admin/badges/new")
    page.locator("#f-code").fill("browser-hero")
    page.get_by_label("Name (English)").fill("Browser hero")
    page.get_by_label("Name (German)").fill("Browser-Held")
    page.get_by_role("button", name="Create badge").click()
    page.wait_for_url(re.compile(r".*/admin/badges\?saved=1$"))
    assert page.locator('tr[data-badge="browser-hero"]').is_visible()

    page.goto(f"{site.url}/admin/missions/new")
    page.locator("#f-code").fill("browser-2x")
    page.get_by_label("Name (English)").fill("Two purchases this month")
    page.locator("#f-filter").fill("purchase.totl >= 2000")
    page.locator('#filter-check [data-check="invalid"]').wait_for()
    assert "totl" in page.locator("#filter-check").inner_text()
    page.locator("#f-filter").fill("purchase.total >= 2000")
    page.locator('#filter-check [data-check="valid"]').wait_for()
    page.locator("#f-target").fill("2")
    page.get_by_label("Points").fill("300")
    page.get_by_label("Badge (optional)").select_option("browser-hero")
    page.get_by_role("button", name="Create mission").click()
    page.wait_for_url(re.compile(r".*/admin/missions/browser-2x\?saved=1$"))
    shot(page, "admin-mission-form")  # (a full-page shot before a click can leave Chromium ignoring the click)
    page.goto(f"{site.url}/admin/missions")
    assert "300 points, badge browser-hero" in page.locator('tr[data-mission="browser-2x"]').inner_text()
    shot(page, "admin-missions")

    page.goto(f"{site.url}/admin/segments/new")
    page.locator("#f-code").fill("buyers")
    page.get_by_label("Name (English)").fill("Buyers")
    page.locator("#f-condition").fill("member.frequency >= 1")
    page.locator('#condition-check [data-check="valid"]').wait_for()
    page.get_by_role("button", name="Create segment").click()
    page.wait_for_url(re.compile(r".*/admin/segments/buyers\?saved=1$"))
    assert page.locator("[data-members]").get_attribute("data-members") == "1"  # Lena bought
    page.get_by_role("button", name="Refresh now").click()
    page.locator("[data-refreshed]").wait_for()
    shot(page, "admin-segment")

    page.goto(f"{site.url}/admin/offers/new")
    page.locator("#f-code").fill("buyers-bonus")
    page.get_by_label("Name (English)").fill("200 bonus points for buyers")
    page.get_by_label("Starts (local date)").fill("2030-01-01")
    page.get_by_label("Ends (local date, inclusive)").fill("2030-01-31")
    page.get_by_label("Audience segment (optional)").select_option("buyers")
    page.locator("#f-effects").fill('[{"type": "fixed_points", "points": 200}]')
    page.get_by_role("button", name="Create offer").click()
    page.wait_for_url(re.compile(r".*/admin/offers/buyers-bonus\?saved=1$"))
    page.goto(f"{site.url}/admin/offers")
    assert "buyers" in page.locator('tr[data-offer="buyers-bonus"]').inner_text()
    shot(page, "admin-offers")


def test_a_manager_rewords_a_message_with_the_live_preview(page: Any, site: Site):
    sign_in(page, site, "manager")
    page.goto(f"{site.url}/admin/templates")
    page.locator('a[data-template="welcome/email/en"]').click()
    page.wait_for_url(re.compile(r".*/admin/templates/welcome/email/en$"))
    page.get_by_label("Subject").fill("Hello {{ member.first_name }}, welcome aboard!")
    preview = page.locator("[data-preview-subject]")
    preview.filter(has_text="welcome aboard!").wait_for()
    assert "{{" not in preview.inner_text()  # rendered with the sample member's name
    page.get_by_role("button", name="Save wording").click()
    page.wait_for_url(re.compile(r".*\?saved=1$"))
    assert "welcome aboard!" in page.locator("[data-preview-subject]").inner_text()  # the saved wording, rendered
    shot(page, "admin-template-preview")
    page.get_by_role("button", name="Reset to the default wording").click()
    page.wait_for_url(re.compile(r".*\?saved=reset$"))
    assert "welcome aboard" not in page.get_by_label("Subject").input_value()


def test_an_analyst_runs_a_simulation_and_sees_the_chart(page: Any, site: Site):
    sign_in(page, site, "analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Simulator").click()
    page.wait_for_url(f"{site.url}/admin/simulator")
    page.locator("#f-draft").fill("{ not json")
    page.get_by_role("button", name="Run the simulation").click()
    page.locator("#f-draft-error").wait_for()
    assert page.locator("#f-draft-error").inner_text().startswith("Not valid JSON.")
    page.locator("#f-draft").fill(json.dumps(DRAFT, indent=2))
    page.get_by_role("button", name="Run the simulation").click()
    page.locator("#sim-result").wait_for()
    page.locator('canvas[data-sim-chart="points"][data-drawn="2"]').wait_for()
    issued = page.locator('tr[data-figure="points_issued"] td').all_inner_texts()
    assert issued[0] != issued[1]  # today's programme and the doubling draft differ
    shot(page, "admin-simulator")
