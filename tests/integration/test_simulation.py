"""The simulator: the current side reproduces what was recorded; the draft side follows the draft; nothing is
written; the period is in the programme's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from tests.integration.api_helpers import Api
from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import event, fixed, rule
from treue.domain.errors import InvalidInput, RuleInvalid
from treue.services.points import get_balance
from treue.services.purchases import RefundPurchase, get_purchase, refund_purchase
from treue.services.simulation import simulate

DRAFT = {
    "format": "treue.rules/1",
    "rules": [
        {"id": "double", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]},
        {"id": "welcome", "trigger": "purchase", "effects": [fixed(100)], "limits": {"once_per_member": True}},
        {"id": "review", "trigger": "review.created", "effects": [fixed(50)]},
    ],
    "campaigns": [],
}


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_a_draft_is_replayed_beside_the_current_rules_and_nothing_is_written(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "bonus", fixed(10), condition="purchase.total >= 2000")
    anna, ben = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    recorded = [buy(uow_factory, program_id, anna, "30.00", at(4)), buy(uow_factory, program_id, anna, "10.00", at(5)),
                buy(uow_factory, program_id, ben, "50.00", at(6)), buy(uow_factory, program_id, None, "25.00", at(6))]  # fmt: skip
    buy(uow_factory, program_id, anna, "40.00", at(7, 23, 30))  # 00:30 on 8 March in Berlin: after the period
    event(uow_factory, program_id, anna, "review.created", at(5, 12))
    refund_purchase(uow_factory(), program_id, UUID(recorded[2]["id"]), RefundPurchase(amount="25.00"), at(6, 12))
    balances = [get_balance(uow_factory(), program_id, m, at(9))["points"] for m in (anna, ben)]

    report = simulate(uow_factory(read_only=True), program_id, DRAFT, date(2026, 3, 4), date(2026, 3, 7))

    current, draft = report["current"], report["draft"]
    earned = sum(get_purchase(uow_factory(), program_id, UUID(p["id"]))["points_earned"] for p in recorded)
    assert current["points_issued"] == earned == 40 + 10 + 60  # today's rules reproduce what was recorded
    assert (current["purchases"], current["events"], current["members"]) == (4, 1, 2)
    assert current["revenue"] == "90.00"  # 30 + 10 + (50 - 25 refunded) + 25 anonymous
    assert (current["points_taken_back"], current["points_net"]) == (30, 80)
    # Draft: Anna 30 + 30 + 100 welcome, review 50, then 10 + 10; Ben 50 + 50 + 100, half refunded.
    assert (draft["points_issued"], draft["points_taken_back"], draft["points_net"]) == (430, 100, 330)
    assert draft["top_rules"][:2] == [{"rule": "welcome", "points": 200, "cost": "2.00"},
                                      {"rule": "base", "points": 90, "cost": "0.90"}]  # fmt: skip
    assert draft["projected_liability"] == "3.30" and current["projected_liability"] == "0.80"
    assert draft["cost_per_100_revenue"] == "3.66"  # 3.30 per 90.00 of revenue, rounded down
    assert report["difference"] == {"points_issued": 320, "points_net": 250}
    assert [(m["member_id"], m["change"]) for m in report["most_affected"]] == [(str(anna), 180), (str(ben), 70)]
    assert [get_balance(uow_factory(), program_id, m, at(9))["points"] for m in (anna, ben)] == balances


def test_bad_drafts_and_periods_are_refused(uow_factory, program_id, now):
    with pytest.raises(RuleInvalid) as caught:
        simulate(uow_factory(), program_id, {"rules": [{"id": "x", "trigger": "purchase", "effects": [fixed(-1)]}]},
                 date(2026, 3, 1), date(2026, 3, 2))  # fmt: skip
    assert caught.value.extra["location"] == "rules[0].effects[0].points"
    with pytest.raises(InvalidInput):
        simulate(uow_factory(), program_id, DRAFT, date(2026, 3, 2), date(2026, 3, 1))
    buy(uow_factory, program_id, None, "5.00", at(4))
    buy(uow_factory, program_id, None, "5.00", at(4, 11))
    with pytest.raises(InvalidInput, match="at most 1"):
        simulate(uow_factory(), program_id, DRAFT, date(2026, 3, 4), date(2026, 3, 4), limit=1)


def test_the_api_simulates_for_admin_keys_only_and_locates_bad_drafts(engine, now):
    api = Api(engine, now)
    shop = api.tenant("Möbelhaus", scopes=("admin", "pos"))
    member = shop.admin.post("/members", {"external_ref": "sim-1"})["id"]
    for day, total in ((4, "30.00"), (5, "10.00")):
        shop.pos.post("/purchases", {"member_id": member, "external_order_id": f"S-{day}", "total": total,
                                     "currency": "EUR", "occurred_at": at(day).isoformat()})  # fmt: skip
    body = {"draft": DRAFT, "from": "2026-03-04", "to": "2026-03-07"}
    report = shop.admin.ok("POST", "/simulations", 200, json=body)  # 200: a report, nothing created
    assert (report["current"]["points_issued"], report["draft"]["points_issued"]) == (40, 40 + 40 + 100)
    api.refused(shop.pos, "POST", "/simulations", 403, "forbidden", shop.program_id, json=body)
    bad = {**body, "draft": {"rules": [{"id": "x", "trigger": "purchase", "condition": "purchase.totl > 1",
                                        "effects": [fixed(1)]}]}}  # fmt: skip
    problem = api.refused(shop.admin, "POST", "/simulations", 422, "rule_invalid", shop.program_id, json=bad)
    assert problem["location"] == "rules[0].condition"
    api.client.close()


def _ladder(basis: str, silver: str | int, gold: str | int, window: str = "12M") -> dict[str, object]:
    zero = "0" if basis == "spend" else 0
    return {"basis": basis, "tiers": [
        {"code": "basis", "name": {"de": "Basis"}, "threshold": zero, "window": window},
        {"code": "silber", "name": {"de": "Silber"}, "threshold": silver, "window": window},
        {"code": "gold", "name": {"de": "Gold"}, "threshold": gold, "window": window}]}  # fmt: skip


def test_members_per_tier_today_and_under_a_draft_ladder(uow_factory, program_id, now):
    from treue.services.tiers import set_ladder

    set_ladder(uow_factory(), program_id, _ladder("spend", "100.00", "1000.00"), now)
    anna, ben, cleo = (enrol(uow_factory, program_id, datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(3))
    buy(uow_factory, program_id, anna, "150.00", datetime(2026, 2, 10, tzinfo=UTC))  # before the period: silber
    buy(uow_factory, program_id, anna, "20.00", at(4))
    buy(uow_factory, program_id, ben, "60.00", at(5))
    buy(uow_factory, program_id, cleo, "1200.00", at(6))  # gold at once
    report = simulate(uow_factory(read_only=True), program_id, DRAFT, date(2026, 3, 4), date(2026, 3, 7))
    assert report["current"]["members_per_tier"] == {"basis": 1, "silber": 1, "gold": 1}
    assert report["draft"]["members_per_tier"] == {"basis": 1, "silber": 1, "gold": 1}  # no draft ladder: today's

    cheaper = {**DRAFT, "tiers": _ladder("spend", "50.00", "160.00")}  # spend over 12 months, counted at the end
    report = simulate(uow_factory(read_only=True), program_id, cheaper, date(2026, 3, 4), date(2026, 3, 7))
    assert report["draft"]["members_per_tier"] == {"basis": 0, "silber": 1, "gold": 2}  # Anna 170, Ben 60, Cleo 1200
    by_count = {**DRAFT, "tiers": _ladder("purchases", 2, 5)}
    report = simulate(uow_factory(read_only=True), program_id, by_count, date(2026, 3, 4), date(2026, 3, 7))
    assert report["draft"]["members_per_tier"] == {"basis": 2, "silber": 1, "gold": 0}  # Anna bought twice
    by_points = {**DRAFT, "tiers": _ladder("status_points", 200, 2000)}  # the draft's points in the period
    report = simulate(uow_factory(read_only=True), program_id, by_points, date(2026, 3, 4), date(2026, 3, 7))
    # the draft doubles and adds 100 once: Anna 20+20+100 = 140, Ben 60+60+100 = 220, Cleo 2400+100
    assert report["draft"]["members_per_tier"] == {"basis": 1, "silber": 1, "gold": 1}
    with pytest.raises(RuleInvalid, match="tiers"):
        simulate(uow_factory(read_only=True), program_id, {**DRAFT, "tiers": {"basis": "spend", "tiers": []}},
                 date(2026, 3, 4), date(2026, 3, 7))  # fmt: skip


SHARED_BUDGET = {**DRAFT, "campaigns": [
    {"id": "spring", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active", "budget": 70,
     "rules": [{"id": "spring-bonus", "trigger": "purchase", "effects": [fixed(30)]},
               {"id": "spring-review", "trigger": "review.created", "effects": [fixed(20)]}]}]}  # fmt: skip
EXCLUSIVE_BUDGET = {**DRAFT, "campaigns": [{**SHARED_BUDGET["campaigns"][0], "rules": [
    {"id": "spring-bonus", "trigger": "purchase", "mode": "exclusive", "group": "promo", "effects": [fixed(30)]}]}]}  # fmt: skip


@pytest.mark.parametrize(("draft", "processes"), [(SHARED_BUDGET, 2), (SHARED_BUDGET, 3), (EXCLUSIVE_BUDGET, 2)])
def test_replays_in_several_processes_give_the_same_report(uow_factory, program_id, now, engine, monkeypatch,
                                                           draft, processes):  # fmt: skip
    """Split by member (each process replays both sides for its members, and a campaign budget that runs out
    across members is settled in the period's order) or, with a budgeted exclusive rule, side by side."""
    from treue.services import simulation

    rule(uow_factory, program_id, now, "bonus", fixed(10), condition="purchase.total >= 2000")
    members = [enrol(uow_factory, program_id, now) for _ in range(6)]
    for index in range(24):
        member = members[index % 6] if index % 7 else None
        buy(uow_factory, program_id, member, f"{10 + index * 3}.00", at(4 + index % 3, 9 + index % 5))
    event(uow_factory, program_id, members[0], "review.created", at(5, 12))
    event(uow_factory, program_id, members[3], "review.created", at(4, 9))
    alone = simulate(uow_factory(read_only=True), program_id, draft, date(2026, 3, 4), date(2026, 3, 7))
    assert alone["draft"]["top_rules"][0] == {"rule": "base", "points": 902, "cost": "9.02"}  # 1,068 less 166 anonymous
    spring = {r["rule"]: r["points"] for r in alone["draft"]["top_rules"] if r["rule"].startswith("spring")}
    assert sum(spring.values()) == 70  # the budget ran out part-way through the period
    monkeypatch.setattr(simulation, "PARALLEL_FROM", 1)
    spawned: list[int] = []
    real = simulation.ProcessPoolExecutor
    monkeypatch.setattr(simulation, "ProcessPoolExecutor",
                        lambda workers, **kw: spawned.append(workers) or real(workers, **kw))  # fmt: skip
    url = engine.url.render_as_string(hide_password=False)
    together = simulate(uow_factory(read_only=True), program_id, draft, date(2026, 3, 4), date(2026, 3, 7),
                        database_url=url, processes=processes)  # fmt: skip
    assert spawned == [processes - 1 if draft is SHARED_BUDGET else 1]
    assert together == alone


def test_the_collector_pauses_only_while_replaying():
    import gc

    from treue.services.simulation import collection_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("a replay that fails")
    assert gc.isenabled()  # back on, even after a failure
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
