"""Fixtures of the browser tests (the helpers are in browser_support.py). Defined here, once, so that every browser
test module shares one Playwright driver and one Chromium: two sync Playwright instances in one process refuse
to start ("Sync API inside the asyncio loop")."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REQUIRE_BROWSER,
    SCREENSHOTS,
    TREUE,
    Site,
    _chromium_problem,
    _seed,
    _wait_until_up,
)
from tests.integration.web_helpers import free_port, smtp_server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    problem = _chromium_problem()
    if problem:
        if REQUIRE_BROWSER:
            pytest.fail(f"{problem} (TREUE_REQUIRE_BROWSER=1: the browser tests may not be skipped)")
        pytest.skip(f"SKIPPED browser tests: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")  # each module its own server and data: one module's changes are not another's
def site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'treue.db'}"
    program_id, card, staff = _seed(url)
    port = free_port()
    with smtp_server() as (inbox, mailer):
        env = {**os.environ, "TREUE_DATABASE_URL": url, "TREUE_SMTP_HOST": mailer.host,
               "TREUE_SMTP_PORT": str(mailer.port), "TREUE_PORTAL_PROGRAM": str(program_id)}  # fmt: skip
        server = subprocess.Popen([str(TREUE), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, server)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            yield Site(base, program_id, card, staff, inbox, url)
        finally:
            server.terminate()
            server.wait(timeout=20)


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()
