"""What the browser tests share: Debian's Chromium, the seeded site (`treue serve` on a free port, on a SQLite
file, with a real SMTP server), screenshots and the staff sign-in. The fixtures on top of it are in conftest.py:
one Playwright and one Chromium per test session, whichever browser test module runs first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import PASSWORD, Inbox
from treue.services.programs import create_program
from treue.services.rewards import create_reward
from treue.services.staff import add_staff
from treue.store.database import make_engine
from treue.store.migrate import migrate
from treue.store.unit_of_work import SqlUnitOfWorkFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]  # fmt: skip
REQUIRE_BROWSER = os.environ.get("TREUE_REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TREUE = Path(sys.executable).with_name("treue")
ROLES = ("owner", "manager", "support", "analyst", "partner")
MEMBER_EMAIL = "lena.koch@example.org"


@dataclass
class Site:
    url: str
    program_id: UUID
    card: str
    staff: dict[str, str]  # role -> email
    inbox: Inbox
    database_url: str


def _chromium_problem() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Debian's chromium is not installed at {CHROMIUM} (make browser-deps installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.lock)"
    return None


def _seed(url: str) -> tuple[UUID, str, dict[str, str]]:
    engine = make_engine(url)
    migrate(engine)
    uow = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    earlier = now - timedelta(days=20)  # past the pending period: the points are available
    program_id = UUID(create_program(uow(), "Möbelhaus Browser", "EUR", "Europe/Berlin", {"default_locale": "de"},
                                     earlier - timedelta(days=1))["id"])  # fmt: skip
    staff = {}
    for role in ROLES:
        email = f"{role}@browser.example"
        add_staff(uow(), program_id, email, role, now, password=PASSWORD, partner="acme" if role == "partner" else None,
                  locale="en")  # fmt: skip
        staff[role] = email
    member = enrol(uow, program_id, earlier, first_name="Lena", last_name="Koch", email=MEMBER_EMAIL, locale="en")
    buy(uow, program_id, member, "249.00", earlier, external_order_id="B-1001")
    buy(uow, program_id, member, "59.90", earlier, external_order_id="B-1002", partner="acme")
    create_reward(uow(), program_id, {"name": {"de": "Kaffee", "en": "Coffee"}, "type": "free_product",
                                      "cost_points": 100, "sku": "COFFEE", "stock": 10}, earlier)  # fmt: skip
    with uow() as tx:
        card = str(tx.members.get(program_id, member)["card_number"])
    engine.dispose()
    return program_id, card, staff


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read().decode() if server.stdout else ""
            raise AssertionError(f"treue serve exited with {server.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("treue serve did not answer /healthz within 30 s")


def shot(page: Any, name: str) -> None:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def sign_in(page: Any, site: Site, role: str) -> None:
    page.goto(f"{site.url}/admin")
    assert "/admin/sign-in" in page.url
    page.get_by_label("Email").fill(site.staff[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/admin")
