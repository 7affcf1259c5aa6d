"""Cashback wallet: credited from a purchase's cashback hooks, pending for the return window, reversed in
proportion by refunds under the return policy; `treue verify` proves the wallet balances."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import rule
from treue.domain.errors import NotFound
from treue.services.programs import update_program
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.verify import verify
from treue.services.wallet import get_wallet, wallet_history


def cashback_rule(uow_factory, program_id, now, percent: str = "5") -> None:
    rule(uow_factory, program_id, now, "cashback", {"type": "cashback_percent", "percent": percent})


def test_a_purchase_credits_its_cashback_to_the_wallet(uow_factory, program_id, now):
    cashback_rule(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "80.00", now)
    assert bought["cashback"]["amount"] == "4.00"
    wallet = get_wallet(uow_factory(), program_id, member, now)
    assert (wallet["balance"], wallet["available"], wallet["pending"], wallet["usable"]) == ("4.00",) * 2 + (
        "0.00", "4.00")  # fmt: skip
    (entry,) = wallet_history(uow_factory(), program_id, member)
    assert (entry["kind"], entry["amount"], entry["purchase_id"]) == ("cashback", "4.00", bought["id"])
    assert entry["explanation"]["cashback"][0]["rule"] == "cashback"
    assert verify(uow_factory(), UUID(str(program_id)), now) == []


def test_no_cashback_rule_no_wallet_and_an_empty_wallet_reads_as_zero(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    assert "cashback" not in buy(uow_factory, program_id, member, "80.00", now)
    wallet = get_wallet(uow_factory(), program_id, member, now)
    assert (wallet["balance"], wallet["currency"]) == ("0.00", "EUR")
    with pytest.raises(NotFound):
        get_wallet(uow_factory(), program_id, UUID(int=7), now)


def test_cashback_is_pending_for_the_return_window_and_may_expire(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"pending_days": 14, "cashback_expiry_months": 6}, now)
    cashback_rule(uow_factory, program_id, now, "10")
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "50.00", now)
    assert bought["cashback"]["expires_at"].startswith("2026-09-02")
    early = get_wallet(uow_factory(), program_id, member, now + timedelta(days=13))
    assert (early["available"], early["pending"], early["usable"]) == ("0.00", "5.00", "0.00")
    later = get_wallet(uow_factory(), program_id, member, now + timedelta(days=15))
    assert (later["available"], later["pending"], later["next_expiry_amount"]) == ("5.00", "0.00", "5.00")
    expired = get_wallet(uow_factory(), program_id, member, now + timedelta(days=200))
    assert (expired["balance"], expired["available"]) == ("5.00", "0.00")  # expired, not yet written off


def test_partial_refunds_reverse_cashback_in_proportion_and_in_total_exactly(uow_factory, program_id, now):
    cashback_rule(uow_factory, program_id, now, "3")
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "33.33", now)  # 3% = 0.99 (floor)
    purchase = UUID(bought["id"])
    first = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="11.11"), now)
    assert first["cashback"]["taken_back"] == "0.33"
    second = refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(), now)
    assert second["cashback"]["taken_back"] == "0.66"
    assert get_wallet(uow_factory(), program_id, member, now)["balance"] == "0.00"
    kinds = [e["kind"] for e in wallet_history(uow_factory(), program_id, member)]
    assert kinds == ["reverse", "reverse", "cashback"]
    assert verify(uow_factory(), program_id, now) == []


def test_only_pending_policy_forgives_cashback_already_available(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"return_policy": "only_pending"}, now)  # pending_days 0
    cashback_rule(uow_factory, program_id, now, "10")
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "20.00", now)
    refunded = refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(), now)
    assert (refunded["cashback"]["taken_back"], refunded["cashback"]["forgiven"]) == ("0.00", "2.00")
    assert refunded["cashback"]["transfer_id"] is None
    assert get_wallet(uow_factory(), program_id, member, now)["balance"] == "2.00"
    assert verify(uow_factory(), program_id, now) == []


def test_within_balance_takes_back_from_other_cashback_when_the_purchases_own_is_gone(uow_factory, program_id, now):
    """The purchase's own credit first, then other available wallet money, never below zero."""
    cashback_rule(uow_factory, program_id, now, "10")
    member = enrol(uow_factory, program_id, now)
    first = buy(uow_factory, program_id, member, "20.00", now)  # 2.00
    buy(uow_factory, program_id, member, "10.00", now)  # 1.00
    refunded = refund_purchase(uow_factory(), program_id, UUID(first["id"]), RefundPurchase(), now)
    assert refunded["cashback"]["taken_back"] == "2.00"
    assert get_wallet(uow_factory(), program_id, member, now)["balance"] == "1.00"
    assert verify(uow_factory(), program_id, now) == []
