"""The wallet in the domain: cashback from hooks, lots pending and expiring, spending, proportional take-back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from treue.domain.errors import CurrencyMismatch, InsufficientWallet
from treue.domain.money import Money, Rounding
from treue.domain.programs import Program, ReturnPolicy
from treue.domain.rules.effects import Cashback, TierCredit
from treue.domain.wallet import WalletAccount, cashback_lot, cashback_of, cashback_to_take_back

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def program(**kw) -> Program:
    return Program(uuid.uuid4(), "P", "EUR", "Europe/Berlin", **kw)


def wallet() -> WalletAccount:
    member = uuid.uuid4()
    return WalletAccount.empty(member, uuid.uuid4(), "EUR")


def test_cashback_sums_the_cashback_hooks_only_and_refuses_another_currency():
    hooks = (Cashback(Money(150, "EUR"), "5", rule="r1"), TierCredit(3), Cashback(Money(50, "EUR"), "1", rule="tier"))
    total, lines = cashback_of(hooks, "EUR")
    assert total == Money(200, "EUR")
    assert [line["rule"] for line in lines] == ["r1", "tier"]
    assert cashback_of((), "EUR")[0] == Money(0, "EUR")
    with pytest.raises(CurrencyMismatch):
        cashback_of((Cashback(Money(1, "CHF"), "1"),), "EUR")


def test_cashback_is_pending_for_the_return_window_and_expires_if_the_programme_says_so():
    p = program(pending_days=14, cashback_expiry_months=3)
    lot = cashback_lot(p, uuid.uuid4(), Money(500, "EUR"), NOW, None)
    w = wallet()
    w.credit(lot, uuid.uuid4())
    assert w.balance_at(NOW).pending == 500 and w.balance_at(NOW).available == 0
    assert w.balance_at(NOW + timedelta(days=15)).available == 500
    assert lot.expires_at is not None and w.balance_at(lot.expires_at).available == 0
    assert cashback_lot(program(), uuid.uuid4(), Money(1, "EUR"), NOW, None).expires_at is None


def test_spending_draws_available_money_and_never_more():
    w = wallet()
    w.credit(cashback_lot(program(), uuid.uuid4(), Money(300, "EUR"), NOW, None), uuid.uuid4())
    draw = w.spend(Money(120, "EUR"), NOW)
    assert sum(draw.allocations.values()) == 120 and w.balance == 180
    with pytest.raises(InsufficientWallet):
        w.spend(Money(181, "EUR"), NOW)
    with pytest.raises(CurrencyMismatch):
        w.spend(Money(1, "CHF"), NOW)
    assert w.balance_at(NOW, held=100).usable == 80


def test_refunds_take_back_cashback_in_proportion_on_cumulative_amounts():
    shares = [cashback_to_take_back(99, 3333, before, 1111, Rounding.FLOOR) for before in (0, 1111, 2222)]
    assert shares == [33, 33, 33] and sum(shares) == 99
    assert cashback_to_take_back(10, 1000, 0, 1000, Rounding.FLOOR) == 10


def test_take_back_follows_the_return_policy():
    purchase = uuid.uuid4()
    w = wallet()
    lot = cashback_lot(program(), uuid.uuid4(), Money(200, "EUR"), NOW, purchase)
    w.credit(lot, uuid.uuid4())
    pending_only = w.take_back(Money(200, "EUR"), NOW, {lot.id}, ReturnPolicy.ONLY_PENDING)
    assert (pending_only.taken, pending_only.forgiven) == (0, 200)
    within = w.take_back(Money(150, "EUR"), NOW, {lot.id}, ReturnPolicy.WITHIN_BALANCE)
    assert (within.taken, within.forgiven, w.balance) == (150, 0, 50)
