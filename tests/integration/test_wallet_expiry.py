"""Expired wallet money is written off by the `expire` job: one transfer per expired wallet lot, wallet ->
the programme's breakage account of the currency; a second run writes nothing; `treue verify` stays clean."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy import func, select

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import rule
from treue.domain.ledger import AccountKind, system_account_id
from treue.jobs.registry import JOBS
from treue.jobs.scheduler import DEFAULT_JOBS
from treue.services.checkout import CaptureHold, ReserveHold, capture, reserve
from treue.services.expiry import expire_wallets
from treue.services.programs import update_program
from treue.services.purchases import LineInput, RecordPurchase
from treue.services.verify import verify
from treue.services.wallet import get_wallet, wallet_history
from treue.store import tables as t


def setup(uow_factory, program_id, now) -> UUID:
    update_program(uow_factory(), program_id, {"cashback_expiry_months": 1}, now)
    rule(uow_factory, program_id, now, "cashback", {"type": "cashback_percent", "percent": "10"})
    return enrol(uow_factory, program_id, now)


def breakage_of(uow_factory, program_id) -> int:
    with uow_factory() as uow:
        p = t.postings
        found = uow.conn.execute(
            select(func.coalesce(func.sum(p.c.amount), 0)).where(
                p.c.program_id == program_id,
                p.c.account_id == system_account_id(program_id, AccountKind.BREAKAGE, "EUR"),
            )
        ).scalar()
    return int(found)


def test_the_expire_job_writes_off_expired_wallet_money_once(uow_factory, program_id, now):
    member = setup(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "50.00", now)  # 5.00 cashback, expiring a month later
    later = now + timedelta(days=10)
    buy(uow_factory, program_id, member, "20.00", later)  # 2.00, expiring later still
    assert "expire" in DEFAULT_JOBS  # the scheduler of `treue serve` runs it

    assert JOBS["expire"](uow_factory, later, program_id)["wallet_lots_expired"] == 0  # nothing expired yet
    after = now + timedelta(days=35)
    first = JOBS["expire"](uow_factory, after, program_id)
    assert (first["wallet_lots_expired"], first["wallet_members"], first["wallet_expired"]) == (1, 1, {"EUR": "5.00"})
    assert "points_expired" in first  # points expiry runs in the same job
    second = JOBS["expire"](uow_factory, after, program_id)
    assert (second["wallet_lots_expired"], second["wallet_expired"]) == (0, {})

    wallet = get_wallet(uow_factory(), program_id, member, after)
    assert (wallet["balance"], wallet["available"]) == ("2.00", "2.00")
    assert breakage_of(uow_factory, program_id) == 500
    history = wallet_history(uow_factory(), program_id, member)
    expired = [e for e in history if e["kind"] == "expire"]
    assert len(expired) == 1 and (expired[0]["amount"], expired[0]["explanation"]["reason"]) == ("-5.00", "expiry")
    assert verify(uow_factory(), program_id, after) == []


def test_only_the_remainder_of_a_partly_spent_lot_is_written_off(uow_factory, program_id, now):
    member = setup(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "50.00", now)  # 5.00
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, wallet_amount="3.50"), now)
    cart = RecordPurchase(external_order_id="till-1", total="10.00", currency="EUR", occurred_at=now,
                          lines=[LineInput("LAMP", 1, "10.00")])  # fmt: skip
    capture(uow_factory(), program_id, UUID(hold["id"]), CaptureHold(cart), now)  # +1.00 cashback, same expiry day
    after = now + timedelta(days=40)
    done = expire_wallets(uow_factory, after, program_id)
    assert (done["wallet_lots_expired"], done["wallet_expired"]) == (2, {"EUR": "2.50"})  # 1.50 + 1.00
    assert get_wallet(uow_factory(), program_id, member, after)["balance"] == "0.00"
    assert expire_wallets(uow_factory, after, program_id)["wallet_lots_expired"] == 0
    assert verify(uow_factory(), program_id, after) == []


def test_wallets_of_other_programmes_are_left_alone(uow_factory, program_id, now):
    member = setup(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "50.00", now)
    after = now + timedelta(days=40)
    other = UUID(int=0)  # no such programme: nothing of this one is touched
    assert expire_wallets(uow_factory, after, other)["wallet_lots_expired"] == 0
    assert get_wallet(uow_factory(), program_id, member, after)["balance"] == "5.00"
