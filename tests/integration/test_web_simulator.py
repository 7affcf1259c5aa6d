"""The simulator page over HTTP on SQLite and PostgreSQL: a draft (typed or uploaded, JSON or YAML) replayed over
seeded purchases beside today's programme, the figures the same as the simulation service's own; refused drafts
and periods show the message next to their field; only roles with `simulations.run`."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.services.simulation import simulate
from treue.web.i18n import decimal_money, number

DRAFT = {"format": "treue.rules/1", "campaigns": [], "rules": [
    {"id": "double", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]},
    {"id": "welcome", "trigger": "purchase", "effects": [{"type": "fixed_points", "points": 100}],
     "limits": {"once_per_member": True}}]}  # fmt: skip
YAML_DRAFT = """format: treue.rules/1
rules:
  - id: double
    trigger: purchase
    effects:
      - {type: multiplier, factor: "2"}
  - id: welcome
    trigger: purchase
    effects:
      - {type: fixed_points, points: 100}
    limits: {once_per_member: true}
"""
PERIOD = {"from": "2026-02-01", "to": "2026-03-01", "top": "10"}


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


@pytest.fixture
def seeded(web: Web, program_id: UUID) -> list[UUID]:
    members = [enrol(web.uow, program_id, datetime(2026, 1, 20, tzinfo=UTC)) for _ in range(3)]
    for day, (member, total) in enumerate([(members[0], "30.00"), (members[0], "12.50"), (members[1], "80.00"),
                                           (members[2], "9.99"), (None, "25.00")], start=3):  # fmt: skip
        buy(web.uow, program_id, member, total, datetime(2026, 2, day, 11, tzinfo=UTC))
    return members


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="f-{name}-error">([^<]*)<', html)
    assert found, f"no error next to {name}"
    return found.group(1)


def run(client, data: dict[str, str], files=None, **headers: str):
    token = csrf_of(client.get("/admin/simulator").text)
    return client.post("/admin/simulator", data={"csrf_token": token, **data}, files=files, headers=headers)


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("manager", True), ("analyst", True),
                                               ("support", False), ("partner", False)])  # fmt: skip
def test_the_simulator_is_for_roles_that_run_simulations(web: Web, program_id: UUID, role: str, allowed: bool):
    client = web.signed_in(program_id, role, partner="default" if role == "partner" else None)
    assert client.get("/admin/simulator").status_code == (200 if allowed else 403)
    assert ('href="/admin/simulator"' in client.get("/admin").text) is allowed
    if not allowed:
        token = csrf_of(client.get("/admin").text)
        refused = client.post("/admin/simulator", data={"csrf_token": token, "draft": json.dumps(DRAFT), **PERIOD})
        assert refused.status_code == 403


def test_the_form_starts_from_todays_rules_and_the_last_30_days(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "analyst")
    html = client.get("/admin/simulator").text
    assert "treue.rules/1" in html and 'value="2026-02-01"' in html and 'value="2026-03-02"' in html


def test_a_draft_is_run_and_both_sides_shown_as_the_service_reports_them(web: Web, program_id: UUID, seeded):
    client = web.signed_in(program_id, "analyst")
    response = run(client, {"draft": json.dumps(DRAFT), **PERIOD})
    assert response.status_code == 200, response.text
    expected = simulate(web.uow(read_only=True), program_id, DRAFT, date(2026, 2, 1), date(2026, 3, 1))
    now, draft = expected["current"], expected["draft"]
    assert draft["points_issued"] != now["points_issued"]  # the draft makes a difference worth showing
    page = text_of(response.text)
    for key in ("points_issued", "points_net"):
        row = re.search(rf'<tr data-figure="{key}">(.*?)</tr>', response.text, re.S)
        assert row, key
        cells = text_of(row.group(1))
        assert (
            f"{number(now[key], 'en')} {number(draft[key], 'en')} {number(expected['difference'][key], 'en')}" in cells
        )
    liability = text_of(re.search(r'<tr data-figure="projected_liability">(.*?)</tr>', response.text, re.S).group(1))
    assert f"{decimal_money(now['projected_liability'], 'EUR', 'en')} " \
           f"{decimal_money(draft['projected_liability'], 'EUR', 'en')}" in liability  # fmt: skip
    assert f"{now['purchases']} purchases" in page
    for item in draft["top_rules"]:
        assert item["rule"] in page
    for member in expected["most_affected"]:
        assert member["member_id"] in response.text

    charts = json.loads(re.search(r'id="sim-chart-data">(.*?)</script>', response.text, re.S).group(1))
    assert charts["points"]["series"][0]["data"] == [now["points_issued"], now["points_taken_back"], now["points_net"]]
    assert charts["points"]["series"][1]["data"][0] == draft["points_issued"]
    assert charts["money"]["series"][1]["data"][0] == draft["projected_liability"]
    assert 'data-sim-chart="points"' in response.text and "<script>" not in response.text  # no inline script


def test_an_uploaded_yaml_draft_gives_the_same_report(web: Web, program_id: UUID, seeded):
    client = web.signed_in(program_id, "manager")
    typed = run(client, {"draft": json.dumps(DRAFT), **PERIOD})
    uploaded = run(client, {"draft": "", **PERIOD}, files={"draft_file": ("draft.yaml", YAML_DRAFT.encode(),
                                                                          "application/yaml")})  # fmt: skip
    assert uploaded.status_code == 200, uploaded.text
    figures = [
        re.search(r'<tr data-figure="points_issued">(.*?)</tr>', r.text, re.S).group(1) for r in (typed, uploaded)
    ]
    assert figures[0] == figures[1]


def test_htmx_gets_the_result_area_only(web: Web, program_id: UUID, seeded):
    client = web.signed_in(program_id, "analyst")
    response = run(client, {"draft": json.dumps(DRAFT), **PERIOD}, **{"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="simulator">') and "<html" not in response.text
    assert 'id="sim-result"' in response.text


def test_bad_drafts_and_periods_show_the_message_next_to_the_field(web: Web, program_id: UUID, seeded):
    client = web.signed_in(program_id, "analyst")
    broken = run(client, {"draft": '{"format": "treue.rules/1", "rules": [', **PERIOD})
    assert broken.status_code == 422 and field_error(broken.text, "draft").startswith("Not valid JSON.")
    bad_rule = DRAFT | {"rules": [{"id": "x", "trigger": "purchase", "condition": "purchase.totl > 1",
                                   "effects": [{"type": "fixed_points", "points": 1}]}]}  # fmt: skip
    refused = run(client, {"draft": json.dumps(bad_rule), **PERIOD})
    assert refused.status_code == 422 and "totl" in field_error(refused.text, "draft")
    assert 'id="sim-result"' not in refused.text
    backwards = run(client, {"draft": json.dumps(DRAFT), "from": "2026-03-01", "to": "2026-02-01"})
    assert backwards.status_code == 422 and "ends before it starts" in field_error(backwards.text, "to")
    no_date = run(client, {"draft": json.dumps(DRAFT), "from": "1. Februar", "to": "2026-02-01"})
    assert field_error(no_date.text, "from") == "A date (YYYY-MM-DD), please."
    as_htmx = run(client, {"draft": "[1, 2]", **PERIOD}, **{"HX-Request": "true"})
    assert as_htmx.status_code == 200 and field_error(as_htmx.text, "draft")  # htmx 2 would not swap a 422 in
