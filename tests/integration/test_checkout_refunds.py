"""Refunding a purchase paid (partly) with points or wallet money at checkout gives them back: in proportion to
the share of the order refunded, cumulatively (partial refunds add up to exactly what was paid), points to the
very lots they came from (new lots where those expired), as reverse transfers correcting the payment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.integration.api_helpers import Api
from tests.integration.helpers import buy, enrol, race
from tests.integration.rules_helpers import rule
from treue.services.checkout import CaptureHold, ReserveHold, capture, reserve
from treue.services.expiry import expire_points
from treue.services.points import adjust_points, get_balance
from treue.services.programs import update_program
from treue.services.purchases import LineInput, RecordPurchase, RefundPurchase, refund_purchase
from treue.services.verify import verify
from treue.services.wallet import get_wallet, wallet_history


def order(at, lines: list[LineInput] | None = None, total: str = "50.00") -> RecordPurchase:
    return RecordPurchase(external_order_id="till-1", total=total, currency="EUR", occurred_at=at,
                          lines=lines or [LineInput("SOFA", 1, total, "furniture")])  # fmt: skip


@pytest.fixture
def member(uow_factory, program_id, now) -> UUID:
    """1,000 points and 5.00 in the wallet; purchases earn 1 point per euro and 5% cashback."""
    rule(uow_factory, program_id, now, "cashback", {"type": "cashback_percent", "percent": "5"})
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 1000, "start", now)
    buy(uow_factory, program_id, member, "100.00", now)  # +100 points, +5.00 cashback
    adjust_points(uow_factory(), program_id, member, -100, "back to 1000", now)
    return member


def checkout(uow_factory, program_id, member, now, points=500, wallet="2.00", cmd: RecordPurchase | None = None,
             pay: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Pay 500 points (5.00) and 2.00 wallet money for a 50.00 cart, the rest with money."""
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=points, wallet_amount=wallet), now)
    return capture(uow_factory(), program_id, UUID(hold["id"]), CaptureHold(cmd or order(now), **(pay or {})), now)


def points_of(uow_factory, program_id, member, now) -> int:
    return int(get_balance(uow_factory(), program_id, member, now)["points"])


def test_full_refund_gives_back_the_points_and_wallet_money_paid_to_the_very_lots(uow_factory, program_id, now,
                                                                                    member):  # fmt: skip
    done = checkout(uow_factory, program_id, member, now)
    assert points_of(uow_factory, program_id, member, now) == 1000 - 500 + 50
    assert get_wallet(uow_factory(), program_id, member, now)["balance"] == "5.50"  # 5.00 - 2.00 + 2.50

    refund = refund_purchase(uow_factory(), program_id, UUID(done["purchase"]["id"]), RefundPurchase(), now)

    assert (refund["points_returned"], refund["wallet_returned"]) == (500, "2.00")
    assert (refund["points_taken_back"], refund["cashback"]["taken_back"]) == (50, "2.50")
    payment = refund["payment_returned"]
    assert (payment["points_to_lots"], payment["points_as_new_lots"], payment["wallet_as_new_lots"]) == (
        500, 0, "0.00")  # fmt: skip
    assert points_of(uow_factory, program_id, member, now) == 1000
    assert get_wallet(uow_factory(), program_id, member, now)["balance"] == "5.00"
    with uow_factory() as uow:  # each lot gets back exactly what the payment drew from it
        for paid, returned in ((done["points_transfer_id"], payment["points_transfer_id"]),):
            drawn = {a.lot_id: a.amount for a in uow.ledger.allocations_of(program_id, UUID(paid))}
            back = {a.lot_id: -a.amount for a in uow.ledger.allocations_of(program_id, UUID(returned))}
            assert drawn == back and sum(drawn.values()) == 500
        drawn = {a.lot_id: a.amount for a in uow.wallet.allocations_of(program_id, UUID(done["wallet_transfer_id"]))}
        back = {a.lot_id: -a.amount for a in uow.wallet.allocations_of(program_id, UUID(payment["wallet_transfer_id"]))}
        assert drawn == back and sum(drawn.values()) == 200
    history = wallet_history(uow_factory(), program_id, member)
    returned = next(e for e in history if e["transfer_id"] == payment["wallet_transfer_id"])
    assert (returned["kind"], returned["amount"], returned["explanation"]["refund_id"]) == (
        "reverse", "2.00", refund["id"])  # fmt: skip
    assert verify(uow_factory(), program_id, now) == []


def test_partial_refunds_add_up_to_exactly_what_was_paid(uow_factory, program_id, now, member):
    done = checkout(uow_factory, program_id, member, now)
    purchase = UUID(done["purchase"]["id"])
    got = [refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount=amount), now)
           for amount in ("16.67", "16.67")]  # fmt: skip
    got.append(refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(), now))  # the rest: 16.66
    # 500 points and 200 cents laid out over 5000 cents, cut at 1667 and 3334 (floor): 166/167/167, 66/67/67.
    assert [r["points_returned"] for r in got] == [166, 167, 167]
    assert [r["wallet_returned"] for r in got] == ["0.66", "0.67", "0.67"]
    assert points_of(uow_factory, program_id, member, now) == 1000
    assert get_wallet(uow_factory(), program_id, member, now)["balance"] == "5.00"
    assert verify(uow_factory(), program_id, now) == []


def test_two_partial_refunds_summing_to_the_whole(uow_factory, program_id, now, member):
    done = checkout(uow_factory, program_id, member, now, points=333, wallet="1.11")
    purchase = UUID(done["purchase"]["id"])
    first = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="12.34"), now)
    second = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="37.66"), now)
    assert (first["points_returned"], second["points_returned"]) == (82, 251)  # floor(333 * 1234 / 5000) = 82
    assert (first["wallet_returned"], second["wallet_returned"]) == ("0.27", "0.84")  # floor(111 * 1234 / 5000)
    assert points_of(uow_factory, program_id, member, now) == 1000
    assert verify(uow_factory(), program_id, now) == []


def test_refund_by_lines_gives_back_the_lines_share(uow_factory, program_id, now, member):
    lines = [LineInput("SOFA", 1, "30.00", "furniture"), LineInput("LAMP", 2, "10.00", "lights")]
    done = checkout(uow_factory, program_id, member, now, cmd=order(now, lines))
    purchase = UUID(done["purchase"]["id"])
    lamps = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(lines=[("LAMP", 2)]), now)
    assert (lamps["amount"], lamps["points_returned"], lamps["wallet_returned"]) == ("20.00", 200, "0.80")
    sofa = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(lines=[("SOFA", 1)]), now)
    assert (sofa["amount"], sofa["points_returned"], sofa["wallet_returned"]) == ("30.00", 300, "1.20")
    assert points_of(uow_factory, program_id, member, now) == 1000
    assert verify(uow_factory(), program_id, now) == []


def test_earn_on_money_only_refunds_the_share_of_the_money_total(uow_factory, program_id, now, member):
    update_program(uow_factory(), program_id, {"earn_on_money_only": True}, now)
    done = checkout(uow_factory, program_id, member, now)  # recorded total: 43.00 paid with money
    purchase = UUID(done["purchase"]["id"])
    half = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="21.50"), now)
    assert (half["points_returned"], half["wallet_returned"]) == (250, "1.00")
    rest = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(), now)
    assert (rest["points_returned"], rest["wallet_returned"]) == (250, "1.00")
    assert verify(uow_factory(), program_id, now) == []


def test_a_purchase_captured_with_money_only_or_without_a_hold_returns_nothing(uow_factory, program_id, now, member):
    done = checkout(uow_factory, program_id, member, now, pay={"points": 0, "wallet_amount": "0"})
    assert (done["paid"]["points"], done["paid"]["wallet"]) == (0, "0.00")
    refund = refund_purchase(uow_factory(), program_id, UUID(done["purchase"]["id"]), RefundPurchase(), now)
    assert (refund["points_returned"], refund["wallet_returned"]) == (0, "0.00")
    assert refund["payment_returned"]["points_transfer_id"] is None
    assert refund["payment_returned"]["wallet_transfer_id"] is None
    plain = buy(uow_factory, program_id, member, "10.00", now)
    refund = refund_purchase(uow_factory(), program_id, UUID(plain["id"]), RefundPurchase(), now)
    assert (refund["points_returned"], refund["wallet_returned"], "payment_returned" in refund) == (0, "0.00", False)
    assert points_of(uow_factory, program_id, member, now) == 1000
    assert verify(uow_factory(), program_id, now) == []


def test_points_paid_from_lots_that_expired_come_back_as_new_lots(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"expiry_policy": "rolling", "expiry_months": 1,
                                               "cashback_expiry_months": 1}, now)  # fmt: skip
    rule(uow_factory, program_id, now, "cashback", {"type": "cashback_percent", "percent": "10"})
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "80.00", now)  # 80 points and 8.00 cashback, both expiring in a month
    done = checkout(uow_factory, program_id, member, now, points=60, wallet="6.00", cmd=order(now, total="20.00"))
    later = now + timedelta(days=40)
    assert expire_points(uow_factory, later, program_id)["points_expired"] == 20 + 20  # both purchases' leftovers
    refund = refund_purchase(uow_factory(), program_id, UUID(done["purchase"]["id"]), RefundPurchase(), later)
    payment = refund["payment_returned"]
    assert (payment["points"], payment["points_to_lots"], payment["points_as_new_lots"]) == (60, 0, 60)
    assert (payment["wallet"], payment["wallet_as_new_lots"]) == ("6.00", "6.00")
    balance = get_balance(uow_factory(), program_id, member, later)
    # The 20 points and 2.00 cashback the checkout earned expired; within_balance takes them back from the rest.
    assert (balance["points"], balance["available"], refund["points_taken_back"]) == (40, 40, 20)
    wallet = get_wallet(uow_factory(), program_id, member, later)
    assert (wallet["available"], refund["cashback"]["taken_back"]) == ("4.00", "2.00")
    assert wallet["next_expiry_at"] > later.isoformat()  # the new lot expires a month after the refund
    assert verify(uow_factory(), program_id, later) == []


def test_replaying_a_refund_shows_what_it_returned_and_changes_nothing(uow_factory, program_id, now, member):
    done = checkout(uow_factory, program_id, member, now)
    purchase = UUID(done["purchase"]["id"])
    cmd = RefundPurchase(amount="25.00", external_refund_id="R-1")
    first = refund_purchase(uow_factory(), program_id, purchase, cmd, now)
    again = refund_purchase(uow_factory(), program_id, purchase, cmd, now)
    assert (first["points_returned"], first["wallet_returned"]) == (250, "1.00")
    assert (again["replayed"], again["points_returned"], again["wallet_returned"]) == (True, 250, "1.00")
    assert points_of(uow_factory, program_id, member, now) == 1000 - 500 + 50 + 250 - 25
    assert verify(uow_factory(), program_id, now) == []


@pytest.fixture
def api(engine, now):
    world = Api(engine, now)
    yield world
    world.client.close()


def test_the_refund_response_of_the_api_shows_points_and_wallet_returned(api: Api, now):
    shop = api.tenant("Möbel")
    member = shop.pos.post("/members", {"external_ref": "m-1"})
    shop.admin.post(f"/members/{member['id']}/adjustments", {"points": 800, "reason": "start"})
    hold = shop.pos.post("/holds", {"member_id": member["id"], "points": 400})
    done = shop.pos.post(f"/holds/{hold['id']}/capture", {"external_order_id": "o-1", "occurred_at": now.isoformat(),
                                                          "total": "20.00", "currency": "EUR"}, status=200)  # fmt: skip
    refund = shop.pos.post(f"/purchases/{done['purchase']['id']}/refunds", {"amount": "10.00"})
    assert (refund["points_returned"], refund["wallet_returned"]) == (200, "0.00")


def test_concurrent_refunds_and_a_checkout_of_one_member_return_exactly_what_was_paid(uow_factory, program_id, now,
                                                                                       member, backend):  # fmt: skip
    if backend != "postgres":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); the races exist on PostgreSQL only")
    done = checkout(uow_factory, program_id, member, now)
    purchase = UUID(done["purchase"]["id"])
    refunds = [lambda i=i: refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="12.50"), now)
               for i in range(4)]  # fmt: skip
    other = [lambda: checkout(uow_factory, program_id, member, now, points=100, wallet="1.00",
                              cmd=RecordPurchase(external_order_id="till-2", total="10.00", currency="EUR",
                                                 occurred_at=now))]  # fmt: skip
    results = race(refunds + other)
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["points_returned"] for r in results[:4]) == 500
    assert sorted(r["wallet_returned"] for r in results[:4]) == ["0.50"] * 4
    # 1000 - 500 + 50 + 500 - 50, then the second checkout: -100 + 10
    assert points_of(uow_factory, program_id, member, now) == 910
    assert verify(uow_factory(), program_id, now) == []
