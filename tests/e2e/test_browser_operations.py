"""The operations and set-up pages in a real browser (Playwright, Debian's Chromium) against `treue serve`: an owner
creates an API key and rotates it (both secrets work during the grace period), imports a CSV and watches the
progress finish, edits the programme settings (a refused value first), and reads the audit log. Screenshots go to
test-output/screenshots/. The server and its seeded database are the fixtures of test_browser_ui.py (imported, so
this module gets a server of its own: what it imports does not change the other module's figures)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.browser_support import Site, shot, sign_in

pytestmark = pytest.mark.xdist_group("browser")


def _api_status(server: Site, token: str) -> int:
    request = urllib.request.Request(f"{server.url}/api/v1/program", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_an_owner_runs_operations_and_sets_the_programme_up(page: Any, site: Site):
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    sign_in(page, site, "owner")

    # An API key: created, its secret shown once, then rotated with a grace period.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    page.wait_for_url(f"{site.url}/admin/operations/keys")
    page.get_by_label("Name (where the key is used, e.g. till 3)").fill("Till 7")
    page.get_by_label("Scope").select_option(label="Till (POS)")
    page.get_by_role("button", name="Create key").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Key created"
    first = page.locator("[data-secret]").input_value()
    assert first.startswith("trk_") and _api_status(site, first) == 200
    shot(page, "admin-ops-key-created")
    page.get_by_role("link", name="Back to the keys").click()
    assert "Till 7" in page.locator('[data-table="keys"]').inner_text()
    page.get_by_role("link", name="Rotate Till 7").click()
    page.get_by_label("Grace period for the old secret").select_option(label="24 hours")
    page.get_by_role("button", name="Rotate key").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Key rotated"
    second = page.locator("[data-secret]").input_value()
    assert second != first and second.split("_")[1] == first.split("_")[1]  # same key, same prefix
    assert _api_status(site, second) == 200 and _api_status(site, first) == 200  # the old one: in its grace period
    shot(page, "admin-ops-key-rotated")
    page.get_by_role("link", name="Back to the keys").click()
    assert "old secret valid until" in page.locator('[data-table="keys"]').inner_text()
    shot(page, "admin-ops-keys")

    # An import: uploaded, run in the background, its progress polled until it has finished.
    page.get_by_role("navigation", name="Operations").get_by_role("link", name="Import").click()
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    rows = [f"{site.card},OPS-{n},{at},{n}.00,EUR" for n in range(1, 41)] + [f"{site.card},OPS-BAD,{at},zehn,EUR"]
    content = "member,order_id,occurred_at,total,currency\n" + "\n".join(rows) + "\n"
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "ops.csv", "mimeType": "text/csv", "buffer": content.encode()}]
    )
    page.get_by_role("button", name="Start import").click()
    page.wait_for_url("**/admin/operations/import/*")
    page.locator('[data-import="finished"]').wait_for(timeout=30_000)
    assert page.locator('[data-count="imported"]').inner_text() == "40"
    assert page.locator('[data-count="refused"]').inner_text() == "1"
    assert "'zehn' is not a decimal amount" in page.locator('[data-table="refused"]').inner_text()
    assert page.locator("progress").get_attribute("value") == "100"
    shot(page, "admin-ops-import")

    # Programme settings: a refused value next to its field, then saved.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Set-up").click()
    page.get_by_role("navigation", name="Set-up").get_by_role("link", name="Programme").click()
    page.wait_for_url(f"{site.url}/admin/programme")
    pending = page.get_by_label("Days points stay pending (the return window)")
    pending.fill("4000")  # more than ten years: the service refuses it
    page.get_by_role("button", name="Save settings").click()
    assert "pending_days must be between 0 and 3650" in page.locator("#f-pending_days-error").inner_text()
    shot(page, "admin-programme-error")
    page.get_by_label("Days points stay pending (the return window)").fill("14")
    page.get_by_label("Points expire").select_option(label="a number of months after earning")
    page.get_by_label("Months after earning (rolling expiry)").fill("36")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url(f"{site.url}/admin/programme?saved=1")
    assert "Saved." in page.get_by_role("status").inner_text()
    assert page.get_by_label("Days points stay pending (the return window)").input_value() == "14"
    program = json.loads(_get(site, "/api/v1/program", second))
    assert program["pending_days"] == 14 and program["expiry"] == {"policy": "rolling", "months": 36, "day": None,
                                                                   "years": 1}  # fmt: skip
    shot(page, "admin-programme")

    # The audit log shows all of it, newest first, with before and after.
    page.goto(f"{site.url}/admin/operations/audit")
    actions = page.locator('[data-table="audit"] tbody tr[data-action]').evaluate_all(
        "rows => rows.map(row => row.dataset.action)"
    )
    assert actions[:4] == ["program.update", "purchases.import", "api_key.rotate", "api_key.create"]
    assert "pending_days" in page.locator('[data-table="audit"]').inner_text()
    page.get_by_label("Action").fill("api_key")
    page.locator('[data-table="audit"] tbody tr[data-action="program.update"]').wait_for(state="detached")
    shot(page, "admin-ops-audit")
    assert not [text for text in refused if "Content Security Policy" in text], refused


def _get(server: Site, path: str, token: str) -> str:
    request = urllib.request.Request(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())
