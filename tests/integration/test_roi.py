"""ROI with a control group (issue 6): members held out of a programme or a campaign earn nothing from it, and the
analysis compares them with the members it reached."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from tests.integration.api_helpers import Api
from tests.integration.helpers import buy, enrol
from treue.domain.control import PROGRAM_UNIT, campaign_unit, in_control
from treue.domain.errors import InvalidInput, NotFound
from treue.services.earning import CONTROL_GROUP
from treue.services.points import get_balance
from treue.services.programs import update_program
from treue.services.purchases import RecordPurchase, preview_purchase
from treue.services.roi import measure_roi
from treue.services.rules import create_campaign

MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def split(members: list[UUID], unit: str, share_bp: int) -> tuple[list[UUID], list[UUID]]:
    control = [m for m in members if in_control(unit, str(m), share_bp)]
    return [m for m in members if m not in control], control


def test_programme_control_group_earns_nothing_and_roi_compares_it(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"control_percent": "50"}, now)
    members = [enrol(uow_factory, program_id, now - timedelta(days=30)) for _ in range(30)]
    treated, control = split(members, PROGRAM_UNIT, 5_000)
    assert treated and control
    for member in treated:  # the programme's members buy for 100.00 and come back once; the held-out for 50.00
        buy(uow_factory, program_id, member, "100.00", now)
        buy(uow_factory, program_id, member, "20.00", now + timedelta(days=1))
    for member in control:
        assert buy(uow_factory, program_id, member, "50.00", now)["points_earned"] == 0
    cart = RecordPurchase("", "50.00", "EUR", now, member_id=control[0])
    skipped = preview_purchase(uow_factory(read_only=True), program_id, cart, now)["skipped"]
    assert [s["reason"] for s in skipped] == [CONTROL_GROUP]  # support sees why nothing was earned
    assert get_balance(uow_factory(), program_id, control[0], now)["available"] == 0
    assert get_balance(uow_factory(), program_id, treated[0], now + timedelta(days=2))["available"] == 120

    r = measure_roi(uow_factory(read_only=True), program_id, *MARCH, margin_percent="30")
    assert r["members"] == {"treated": len(treated), "control": len(control)}
    assert r["revenue_per_member"]["treated"] == "120.00" and r["revenue_per_member"]["control"] == "50.00"
    assert r["revenue_per_member"]["difference"] == "70.00"
    assert r["revenue_per_member"]["interval"] == ["70.00", "70.00"]  # nobody deviates from their group's mean
    assert r["purchase_frequency"]["difference"] == "1.0000"
    n = len(treated)
    assert r["incremental_revenue"] == f"{70 * n}.00"
    assert r["incremental_margin"] == f"{21 * n}.00"  # 30 % of it
    # 120 points per treated member at 1 ct: 1.20 each; ROI = 21.00 / 1.20 = 17.5
    assert r["reward_points"] == 120 * n and r["reward_cost"] == f"{(120 * n) // 100}.{(120 * n) % 100:02d}"
    assert r["roi"] == "17.50" and r["roi_interval"] == ["17.50", "17.50"]


def test_campaign_control_group_skips_only_the_campaign(uow_factory, program_id, now):
    create_campaign(uow_factory(), program_id, {
        "id": "spring", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active", "control_percent": "50",
        "rules": [{"id": "spring-bonus", "trigger": "purchase", "effects": [{"type": "fixed_points", "points": 10}]}],
    }, now)  # fmt: skip
    members = [enrol(uow_factory, program_id, now - timedelta(days=1)) for _ in range(30)]
    treated, control = split(members, campaign_unit("spring"), 5_000)
    assert treated and control
    for member in treated:
        assert buy(uow_factory, program_id, member, "10.00", now)["points_earned"] == 20  # base 10 + campaign 10
    for member in control:
        assert buy(uow_factory, program_id, member, "10.00", now)["points_earned"] == 10  # the base rule still applies
    cart = RecordPurchase("", "10.00", "EUR", now, member_id=control[0])
    skipped = preview_purchase(uow_factory(read_only=True), program_id, cart, now)["skipped"]
    assert {s["rule"]: s["reason"] for s in skipped} == {"spring-bonus": "in the control group of campaign spring"}

    r = measure_roi(uow_factory(read_only=True), program_id, *MARCH, campaign="spring")
    assert r["control_percent"] == "50" and r["members"] == {"treated": len(treated), "control": len(control)}
    assert r["revenue_per_member"]["difference"] == "0.00" and r["reward_points"] == 10 * len(treated)
    assert r["roi"] == "0.00"


def test_roi_refuses_what_it_cannot_measure(uow_factory, program_id, now):
    with pytest.raises(InvalidInput, match="no control group"):
        measure_roi(uow_factory(read_only=True), program_id, *MARCH)
    with pytest.raises(NotFound):
        measure_roi(uow_factory(read_only=True), program_id, *MARCH, campaign="nope")
    with pytest.raises(InvalidInput, match="ends before"):
        measure_roi(uow_factory(read_only=True), program_id, MARCH[1], MARCH[0])
    update_program(uow_factory(), program_id, {"control_percent": "10"}, now)
    with pytest.raises(InvalidInput, match="margin_percent"):
        measure_roi(uow_factory(read_only=True), program_id, *MARCH, margin_percent="120")
    with pytest.raises(InvalidInput, match="both the treated and the control group"):
        measure_roi(uow_factory(read_only=True), program_id, *MARCH)  # no members at all
    with pytest.raises(InvalidInput):
        update_program(uow_factory(), program_id, {"control_percent": "60"}, now)


def test_roi_over_the_api(engine, now):
    api = Api(engine, now)
    try:
        tenant = api.tenant("roi", scopes=("admin", "pos"))
        assert tenant.admin.patch("/program", {"control_percent": "20"})["control_percent"] == "20"
        refused = tenant.admin.request("PATCH", "/program", json={"control_percent": "75"})
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_input"
        for _ in range(12):
            member = tenant.pos.post("/members", {})
            tenant.pos.post("/purchases", {"member_id": member["id"], "external_order_id": member["id"],
                                           "occurred_at": now.isoformat(), "total": "10.00", "currency": "EUR"})  # fmt: skip
        response = tenant.admin.request("GET", "/analytics/roi", params={"from": "2026-03-01", "to": "2026-03-31"})
        if response.status_code == 422:  # 12 members and a 20 % share may leave a group empty: then it says so
            assert "both the treated and the control group" in response.json()["detail"]
        else:
            body = response.json()
            assert body["members"]["treated"] + body["members"]["control"] == 12
        assert tenant.pos.request("GET", "/analytics/roi", params={"from": "2026-03-01", "to": "2026-03-31"}
                                  ).status_code == 403  # fmt: skip
    finally:
        api.client.close()
