"""The admin overview over HTTP on SQLite and PostgreSQL: the KPIs from services/kpis.py, the chart data as a
JSON block (no inline script), the period picker, the CSV exports, and who may see them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Web, text_of
from treue.services.tiers import set_ladder

LADDER = {"basis": "spend", "tiers": [{"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0"},
                                     {"code": "gold", "name": {"de": "Gold", "en": "Gold"}, "threshold": "200.00"}]}  # fmt: skip


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


@pytest.fixture
def shop(web: Web, program_id: UUID) -> list[UUID]:
    """Three members enrolled in February, two of them buying (one enough for gold) a week ago."""
    set_ladder(web.uow(), program_id, LADDER, web.clock() - timedelta(days=40))
    earlier = web.clock() - timedelta(days=30)
    members = [enrol(web.uow, program_id, earlier, first_name=name, email=f"{name.lower()}@example.org")
               for name in ("Anna", "Ben", "Cleo")]  # fmt: skip
    buy(web.uow, program_id, members[0], "250.00", web.clock() - timedelta(days=7))
    buy(web.uow, program_id, members[1], "40.00", web.clock() - timedelta(days=7))
    return members


def chart_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert found, "no chart data block"
    return json.loads(found.group(1))


def test_the_overview_shows_kpis_and_chart_data_without_inline_script(web: Web, program_id: UUID, shop):
    client = web.signed_in(program_id, "analyst")
    page = client.get("/admin?days=30")
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert re.search(r'data-kpi="active">2<', page.text)  # two of three members bought
    assert re.search(r'data-kpi="revenue">€290.00<', page.text)
    assert re.search(r'data-kpi="outstanding">290<', page.text)
    assert "Retention by enrolment month" in text
    # Every <script> either loads a static file or is a JSON data block: the CSP forbids inline code.
    for tag in re.findall(r"<script[^>]*>", page.text):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    assert '<script src="/static/chart.umd.js" defer></script>' in page.text
    data = chart_data(page.text)
    assert data["points"]["labels"][-1] == "2026-03" and len(data["points"]["labels"]) == 12
    issued = data["points"]["series"][0]
    assert issued["label"] == "Points issued" and sum(issued["data"]) == 290
    tiers = dict(zip(data["tiers"]["labels"], data["tiers"]["series"][0]["data"], strict=True))
    assert tiers == {"basis": 2, "gold": 1}


def test_the_overview_in_german_formats_numbers_and_translates_legends(web: Web, program_id: UUID, shop):
    client = web.signed_in(program_id, "owner", locale="de")
    buy(web.uow, program_id, shop[2], "1234.50", web.clock() - timedelta(days=1))
    page = client.get("/admin")
    assert "Umsatz der Mitglieder" in page.text
    assert re.search(r'data-kpi="revenue">1\.524,50\xa0€<', page.text)
    assert chart_data(page.text)["points"]["series"][1]["label"] == "Punkte eingelöst"


def test_a_date_range_is_picked_and_kept_in_the_export_links(web: Web, program_id: UUID, shop):
    client = web.signed_in(program_id, "manager")
    page = client.get("/admin?start=2026-03-01&end=2026-03-02")
    assert re.search(r'data-kpi="active">0<', page.text)  # the purchases were in February
    assert 'href="/admin/export/kpis.csv?start=2026-03-01&amp;end=2026-03-02"' in page.text
    assert 'value="2026-03-01"' in page.text


def test_exports_are_csv_files(web: Web, program_id: UUID, shop):
    client = web.signed_in(program_id, "analyst")
    kpis = client.get("/admin/export/kpis.csv?days=30")
    assert kpis.status_code == 200 and kpis.headers["content-type"].startswith("text/csv")
    assert "attachment" in kpis.headers["content-disposition"]
    figures = {row["figure"]: row["value"] for row in csv.DictReader(io.StringIO(kpis.text))}
    assert figures["members_active"] == "2" and figures["revenue.amount"] == "290.00"
    liability = list(csv.DictReader(io.StringIO(client.get("/admin/export/liability.csv?days=30").text)))
    assert liability[-1]["month"] == "2026-03" and liability[-1]["closing"] == "290"
    tiers = list(csv.DictReader(io.StringIO(client.get("/admin/export/tiers.csv").text)))
    assert {row["tier"]: row["members"] for row in tiers} == {"basis": "2", "gold": "1"}
    retention = list(csv.DictReader(io.StringIO(client.get("/admin/export/retention.csv").text)))
    assert retention and {"cohort", "members", "month", "active", "rate"} <= set(retention[0])
    assert client.get("/admin/export/secrets.csv").status_code == 404


def test_a_partner_sees_its_own_figures_but_no_kpis_or_exports(web: Web, program_id: UUID, shop):
    client = web.signed_in(program_id, "partner", partner="default")
    page = client.get("/admin")
    assert page.status_code == 200
    assert "chart-data" not in page.text and 'data-kpi="active"' not in page.text
    assert client.get("/admin/export/kpis.csv").status_code == 404
