"""Ledger invariants under random use of the real services on the real database (SQLite and PostgreSQL),
and proof that `verify` and the database itself catch what the services would never do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from tests.integration.helpers import buy, enrol
from treue.domain.errors import (
    AlreadyCancelled,
    Conflict,
    CouponInvalid,
    DomainError,
    InsufficientPoints,
    InvalidInput,
    RedemptionLimitReached,
    RefundExceedsPurchase,
    RewardOutOfStock,
)
from treue.domain.ledger import POINTS, AccountKind, member_account_id, system_account_id
from treue.domain.money import Rounding, divide
from treue.domain.programs import ReturnPolicy
from treue.domain.purchases import points_to_take_back
from treue.ids import new_id
from treue.services.expiry import expire_points
from treue.services.points import adjust_points, get_balance, get_lots, transfer_points
from treue.services.programs import create_program, get_program, update_program
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.rewards import cancel_redemption, consume_coupon, create_reward, list_rewards, redeem_reward
from treue.services.verify import verify
from treue.store import tables as t
from treue.store.unit_of_work import SqlUnitOfWorkFactory

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
E = TypeVar("E")


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# Rewards of each run: (cost, stock, per-member limit)
REWARDS = [(5, 4, None), (20, 2, 1), (45, 1, None)]


def test_ledger_invariants_hold_under_random_operations(engine: Engine, backend: str) -> None:
    factory = SqlUnitOfWorkFactory(engine)

    class LedgerMachine(RuleBasedStateMachine):
        """Drives the use cases at random; after every step `verify` is clean and every balance is the sum
        of what the use cases reported. A refused request (a DomainError we predicted) changes nothing."""

        @initialize(
            policy=st.sampled_from(ReturnPolicy),
            rounding=st.sampled_from(Rounding),
            pending_days=st.sampled_from([0, 3, 14]),
            first=st.lists(st.integers(0, 20000), min_size=2, max_size=2),
        )
        def start(self, policy: ReturnPolicy, rounding: Rounding, pending_days: int, first: list[int]) -> None:
            self.now = START
            self.policy, self.rounding = policy, rounding
            settings_ = {"return_policy": policy.value, "rounding": rounding.value, "pending_days": pending_days,
                         "expiry_policy": "rolling", "expiry_months": 1}  # fmt: skip
            self.pid = UUID(create_program(factory(), "Property", "EUR", "Europe/Berlin", settings_, self.now)["id"])
            self.rewards: list[dict[str, Any]] = []
            for cost, stock, limit in REWARDS:
                view = create_reward(factory(), self.pid, {"name": {"de": f"Prämie {cost}"}, "type": "merchandise",
                                     "cost_points": cost, "stock": stock, "per_member_limit": limit}, self.now)  # fmt: skip
                self.rewards.append({"id": UUID(view["id"]), "cost": cost, "stock": stock, "limit": limit})
            self.points: dict[UUID, int] = {}  # the model: what each member should hold
            self.members: list[UUID] = []
            self.purchases: list[dict[str, Any]] = []
            self.redemptions: list[dict[str, Any]] = []
            for index, cents in enumerate(first):  # two members who bought something
                self.enrol(bonus=0)
                self.purchase(index, cents)

        # -- helpers ---------------------------------------------------------------------------
        def balance(self, member: UUID) -> dict[str, Any]:
            return get_balance(factory(), self.pid, member, self.now)

        def snapshot(self) -> tuple[Any, ...]:
            """Everything a refused request must leave untouched."""
            pid = self.pid
            with engine.connect() as conn:
                counts = tuple(
                    conn.execute(select(func.count()).select_from(table).where(table.c.program_id == pid)).scalar()
                    for table in (t.transfers, t.postings, t.lots, t.allocations, t.refunds, t.redemptions,
                                  t.coupons, t.audit_log, t.outbox)
                )  # fmt: skip
                rows = [
                    sorted(conn.execute(select(t.accounts.c.id, t.accounts.c.balance).where(t.accounts.c.program_id == pid)).all()),
                    sorted(conn.execute(select(t.lots.c.id, t.lots.c.remaining).where(t.lots.c.program_id == pid)).all()),
                    sorted(conn.execute(select(t.rewards.c.id, t.rewards.c.stock).where(t.rewards.c.program_id == pid)).all()),
                    sorted(conn.execute(select(t.purchases.c.id, t.purchases.c.refunded_minor).where(t.purchases.c.program_id == pid)).all()),
                    sorted(conn.execute(select(t.coupons.c.id, t.coupons.c.status).where(t.coupons.c.program_id == pid)).all()),
                    sorted(conn.execute(select(t.redemptions.c.id, t.redemptions.c.status).where(t.redemptions.c.program_id == pid)).all()),
                ]  # fmt: skip
            return counts, rows

        def attempt(self, what: str, action: Callable[[], E], refusal: type[DomainError] | None) -> E | None:
            """Run a use case we predict to succeed (refusal None) or to be refused with exactly `refusal`."""
            event(f"{what}: {refusal.__name__ if refusal else 'ok'}")
            if refusal is None:
                return action()
            before = self.snapshot()
            with pytest.raises(DomainError) as refused:
                action()
            assert type(refused.value) is refusal, f"expected {refusal.__name__}, got {refused.value!r}"
            assert self.snapshot() == before, f"{refusal.__name__} changed the database"
            return None

        # -- rules -----------------------------------------------------------------------------
        @precondition(lambda self: len(self.members) < 5)
        @rule(bonus=st.sampled_from([0, 50, 150]))
        def enrol(self, bonus: int) -> None:
            member = enrol(factory, self.pid, self.now)
            self.members.append(member)
            self.points[member] = 0
            if bonus:  # a welcome bonus: points available at once
                result = adjust_points(factory(), self.pid, member, bonus, "welcome", self.now)
                assert result["balance_after"] == bonus
                self.points[member] = bonus

        @rule(who=st.integers(0, 4) | st.none(), cents=st.integers(0, 30000))
        def purchase(self, who: int | None, cents: int) -> None:
            member = None if who is None else self.members[who % len(self.members)]
            result = buy(factory, self.pid, member, euros(cents), self.now)
            earned = divide(cents, 100, self.rounding) if member else 0
            assert result["points_earned"] == earned
            self.purchases.append({"id": UUID(result["id"]), "member": member, "total": cents, "earned": earned,
                                   "refunded": 0})  # fmt: skip
            if member:
                self.points[member] += earned

        @precondition(lambda self: self.purchases)
        @rule(index=st.integers(0, 10**6), cents=st.integers(1, 15000))
        def refund_part(self, index: int, cents: int) -> None:
            self.refund(index, cents)

        @precondition(lambda self: self.purchases)
        @rule(index=st.integers(0, 10**6))
        def refund_rest(self, index: int) -> None:
            self.refund(index, None)

        def refund(self, index: int, cents: int | None) -> None:
            p = self.purchases[index % len(self.purchases)]
            left = p["total"] - p["refunded"]
            amount = left if cents is None else cents  # None: refund all that is left
            refusal = InvalidInput if amount == 0 else RefundExceedsPurchase if amount > left else None
            cmd = RefundPurchase() if cents is None else RefundPurchase(amount=euros(cents))
            result = self.attempt(
                "refund", lambda: refund_purchase(factory(), self.pid, p["id"], cmd, self.now), refusal
            )
            if result is None:
                return
            due = points_to_take_back(p["earned"], p["total"], p["refunded"], amount, self.rounding)
            taken, forgiven = result["points_taken_back"], result["points_forgiven"]
            assert taken + forgiven == (due if p["member"] else 0)
            assert taken >= 0 and forgiven >= 0
            if self.policy is ReturnPolicy.ALLOW_NEGATIVE:
                assert forgiven == 0
            p["refunded"] += amount
            if p["member"]:
                self.points[p["member"]] -= taken

        @precondition(lambda self: any(p["member"] for p in self.purchases))
        @rule(index=st.integers(0, 10**6))
        def redeem_then_refund(self, index: int) -> None:
            """What the return policy is for: a purchase's points are spent, then the purchase is returned."""
            bought = [p for p in self.purchases if p["member"] and p["refunded"] < p["total"]]
            bought = bought or [p for p in self.purchases if p["member"]]
            p = bought[index % len(bought)]
            which = next((i for i, r in enumerate(self.rewards) if r["stock"] and r["limit"] is None), 0)
            self.redeem(self.members.index(p["member"]), which)
            self.refund(self.purchases.index(p), None)

        @rule(who=st.integers(0, 4), which=st.integers(0, len(REWARDS) - 1))
        def redeem(self, who: int, which: int) -> None:
            member, reward = self.members[who % len(self.members)], self.rewards[which]
            held = sum(1 for r in self.redemptions if r["member"] == member and r["reward"] == reward["id"]
                       and r["status"] == "active")  # fmt: skip
            available = self.balance(member)["available"]
            refusal = (RewardOutOfStock if reward["stock"] == 0
                       else RedemptionLimitReached if reward["limit"] is not None and held >= reward["limit"]
                       else InsufficientPoints if available < reward["cost"] else None)  # fmt: skip
            result = self.attempt(
                "redeem", lambda: redeem_reward(factory(), self.pid, member, reward["id"], self.now), refusal
            )
            if result is None:
                return
            self.points[member] -= reward["cost"]
            reward["stock"] -= 1
            assert result["balance_after"] == self.points[member]
            assert sum(d["points"] for d in result["drawn_from"]) == reward["cost"]
            self.redemptions.append({"id": UUID(result["id"]), "member": member, "reward": reward["id"],
                                     "cost": reward["cost"], "code": result["coupon"]["code"], "status": "active",
                                     "coupon": "issued"})  # fmt: skip

        @precondition(lambda self: self.redemptions)
        @rule(index=st.integers(0, 10**6))
        def cancel(self, index: int) -> None:
            r = self.redemptions[index % len(self.redemptions)]
            refusal = (AlreadyCancelled if r["status"] == "cancelled"
                       else CouponInvalid if r["coupon"] == "consumed" else None)  # fmt: skip
            result = self.attempt("cancel", lambda: cancel_redemption(factory(), self.pid, r["id"], self.now), refusal)
            if result is None:
                return
            assert result["points_returned"] == r["cost"]
            self.points[r["member"]] += r["cost"]
            assert result["balance_after"] == self.points[r["member"]]
            r["status"], r["coupon"] = "cancelled", "cancelled"
            next(x for x in self.rewards if x["id"] == r["reward"])["stock"] += 1

        @precondition(lambda self: self.redemptions)
        @rule(index=st.integers(0, 10**6))
        def consume(self, index: int) -> None:
            r = self.redemptions[index % len(self.redemptions)]
            refusal = None if r["coupon"] == "issued" else CouponInvalid
            if (
                self.attempt("consume", lambda: consume_coupon(factory(), self.pid, r["code"], self.now), refusal)
                is not None
            ):
                r["coupon"] = "consumed"

        @rule(who=st.integers(0, 4), points=st.integers(-30, 60).filter(bool))
        def adjust(self, who: int, points: int) -> None:
            member = self.members[who % len(self.members)]
            b = self.balance(member)
            refusal = InsufficientPoints if points < 0 and b["available"] + b["pending"] < -points else None
            result = self.attempt(
                "adjust", lambda: adjust_points(factory(), self.pid, member, points, "property test", self.now), refusal
            )
            if result is not None:
                self.points[member] += points
                assert result["balance_after"] == self.points[member]

        @rule(source=st.integers(0, 4), offset=st.integers(1, 4), points=st.integers(1, 40))
        def transfer(self, source: int, offset: int, points: int) -> None:
            n = len(self.members)
            a, b = self.members[source % n], self.members[(source % n + offset % (n - 1) + 1) % n]
            assert a != b
            refusal = InsufficientPoints if self.balance(a)["available"] < points else None
            result = self.attempt(
                "transfer", lambda: transfer_points(factory(), self.pid, a, b, points, self.now), refusal
            )
            if result is not None:
                self.points[a] -= points
                self.points[b] += points
                assert (result["from_balance_after"], result["to_balance_after"]) == (self.points[a], self.points[b])

        @rule(days=st.integers(1, 20))
        def advance_clock(self, days: int) -> None:
            # Points past their expiry stay in the balance until the expiry job has run.
            self.now += timedelta(days=days)

        @rule()
        def expire(self) -> None:
            due = {m: sum(x["points"] for x in get_lots(factory(), self.pid, m, self.now) if x["state"] == "expired")
                   for m in self.members}  # fmt: skip
            result = expire_points(factory, self.now, self.pid)
            assert result["points_expired"] == sum(due.values())
            assert result["members"] == sum(1 for v in due.values() if v)
            for member, points in due.items():
                self.points[member] -= points
            assert expire_points(factory, self.now, self.pid)["points_expired"] == 0  # idempotent

        # -- invariants ------------------------------------------------------------------------
        @invariant()
        def ledger_is_consistent(self) -> None:
            assert [str(v) for v in verify(factory(), self.pid)] == []
            for member in self.members:
                b = self.balance(member)
                assert b["points"] == self.points[member], member
                assert b["available"] + b["pending"] <= max(b["points"], 0)
                if self.policy is not ReturnPolicy.ALLOW_NEGATIVE:
                    assert b["points"] >= 0
            stock = {UUID(r["id"]): r["stock"] for r in list_rewards(factory(), self.pid)}
            assert stock == {r["id"]: r["stock"] for r in self.rewards}

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(max_examples=25, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]),
    )  # fmt: skip


# -- verify catches corruption ------------------------------------------------------------------------------


def _member_with_points(uow_factory: SqlUnitOfWorkFactory, program_id: UUID, now: datetime) -> UUID:
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "50.00", now)
    buy(uow_factory, program_id, member, "30.00", now)
    reward = create_reward(uow_factory(), program_id, {"name": {"de": "Tasse"}, "type": "merchandise",
                                                       "cost_points": 60}, now)  # fmt: skip
    redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)  # allocations on both lots
    assert verify(uow_factory(), program_id) == []
    return member


def _invariants(uow_factory: SqlUnitOfWorkFactory, program_id: UUID) -> set[str]:
    found = verify(uow_factory(), program_id)
    assert all(v.program_id == str(program_id) for v in found)
    return {v.invariant for v in found}


def test_verify_names_a_cached_balance_that_disagrees_with_its_postings(uow_factory, program_id, now, engine):
    member = _member_with_points(uow_factory, program_id, now)
    with engine.begin() as conn:
        conn.execute(update(t.accounts).where(t.accounts.c.program_id == program_id,
                                              t.accounts.c.id == member_account_id(member))
                     .values(balance=t.accounts.c.balance + 1))  # fmt: skip
    found = verify(uow_factory(), program_id)
    assert {v.invariant for v in found} == {"balance_mismatch", "lots_balance_mismatch"}
    assert all(v.subject == f"member {member}" for v in found)
    assert verify(uow_factory()) != []  # a whole-database run sees it too


def test_verify_names_a_lot_whose_remainder_disagrees_with_its_allocations(uow_factory, program_id, now, engine):
    member = _member_with_points(uow_factory, program_id, now)
    with engine.begin() as conn:
        lot_id = conn.execute(
            select(t.lots.c.id).where(t.lots.c.program_id == program_id, t.lots.c.remaining > 0)
        ).scalar_one()
        conn.execute(update(t.lots).where(t.lots.c.program_id == program_id, t.lots.c.id == lot_id)
                     .values(remaining=t.lots.c.remaining - 1))  # fmt: skip
    found = verify(uow_factory(), program_id)
    assert {v.invariant for v in found} == {"lot_allocation_mismatch", "lots_balance_mismatch"}
    assert {v.subject for v in found} == {f"lot {lot_id}", f"member {member}"}


def test_the_database_refuses_a_negative_member_balance_where_the_policy_forbids_it(uow_factory, program_id, now,
                                                                                  engine):  # fmt: skip
    member = _member_with_points(uow_factory, program_id, now)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(update(t.accounts).where(t.accounts.c.program_id == program_id,
                                              t.accounts.c.id == member_account_id(member)).values(balance=-1))  # fmt: skip
    assert verify(uow_factory(), program_id) == []


def test_forbidding_negative_balances_while_a_member_owes_points_is_refused(uow_factory, program_id, now, engine):
    update_program(uow_factory(), program_id, {"return_policy": "allow_negative"}, now)
    member, friend = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    purchase = UUID(buy(uow_factory, program_id, member, "100.00", now)["id"])
    transfer_points(uow_factory(), program_id, member, friend, 80, now)
    refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(), now)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == -80
    with pytest.raises(Conflict) as refused:  # not an IntegrityError from the accounts' CHECK constraint
        update_program(uow_factory(), program_id, {"return_policy": "within_balance"}, now)
    assert refused.value.extra == {"members_below_zero": 1}
    assert get_program(uow_factory(), program_id)["return_policy"] == "allow_negative"
    assert verify(uow_factory(), program_id) == []
    buy(uow_factory, program_id, member, "80.00", now)  # pays off the deficit
    update_program(uow_factory(), program_id, {"return_policy": "within_balance"}, now)
    with engine.connect() as conn:
        allowed = conn.execute(select(t.accounts.c.negative_allowed).where(
            t.accounts.c.program_id == program_id, t.accounts.c.member_id.is_not(None))).scalars().all()  # fmt: skip
    assert allowed == [False, False]
    assert verify(uow_factory(), program_id) == []


# -- the database refuses what no code path may do ----------------------------------------------------------


def _postings_of(engine: Engine, program_id: UUID) -> tuple[int, int]:
    p = t.postings
    with engine.connect() as conn:
        row = conn.execute(
            select(func.count(), func.sum(func.abs(p.c.amount))).where(p.c.program_id == program_id)
        ).one()
    return int(row[0]), int(row[1] or 0)


@pytest.mark.parametrize(
    "change",
    [
        lambda pid: update(t.postings).where(t.postings.c.program_id == pid).values(amount=t.postings.c.amount * 2),
        lambda pid: delete(t.postings).where(t.postings.c.program_id == pid),
        lambda pid: update(t.transfers).where(t.transfers.c.program_id == pid).values(kind="adjust"),
        lambda pid: delete(t.allocations).where(t.allocations.c.program_id == pid),
    ],
    ids=["update-postings", "delete-postings", "update-transfers", "delete-allocations"],
)
def test_ledger_tables_are_append_only(uow_factory, program_id, now, engine, change):
    _member_with_points(uow_factory, program_id, now)
    before = _postings_of(engine, program_id)
    assert before[0] > 0
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(change(program_id))
    assert _postings_of(engine, program_id) == before
    assert verify(uow_factory(), program_id) == []


def test_an_unbalanced_transfer_cannot_be_committed_on_postgresql(uow_factory, program_id, now, engine, backend):
    if backend == "sqlite":
        pytest.skip("the deferred sum-to-zero constraint trigger exists on PostgreSQL only")
    member = enrol(uow_factory, program_id, now)
    transfer_id = new_id()
    conn = engine.connect()
    try:
        conn.begin()
        conn.execute(insert(t.transfers).values(program_id=program_id, id=transfer_id, kind="adjust", occurred_at=now,
                                                created_at=now, member_id=member, explanation={}))  # fmt: skip
        conn.execute(insert(t.postings).values(program_id=program_id, transfer_id=transfer_id,
                                               account_id=member_account_id(member), unit=POINTS, amount=5))  # fmt: skip
        # Nothing complains yet: the trigger is deferred to COMMIT, so a transfer is written posting by posting.
        with pytest.raises(DBAPIError, match=r"postings_sum_to_zero|sum to 5"):
            conn.commit()
    finally:
        conn.close()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.transfers)
                            .where(t.transfers.c.program_id == program_id, t.transfers.c.id == transfer_id)).scalar() == 0  # fmt: skip
    assert verify(uow_factory(), program_id) == []


def test_a_balanced_transfer_written_by_hand_commits_on_postgresql(uow_factory, program_id, now, engine, backend):
    """The control for the test above: the trigger refuses imbalance, not hand-written transfers as such."""
    if backend == "sqlite":
        pytest.skip("the deferred sum-to-zero constraint trigger exists on PostgreSQL only")
    transfer_id = new_id()
    adjustment = system_account_id(program_id, AccountKind.ADJUSTMENT)
    breakage = system_account_id(program_id, AccountKind.BREAKAGE)
    with engine.begin() as conn:
        conn.execute(insert(t.transfers).values(program_id=program_id, id=transfer_id, kind="adjust", occurred_at=now,
                                                created_at=now, explanation={}))  # fmt: skip
        conn.execute(insert(t.postings), [
            {"program_id": program_id, "transfer_id": transfer_id, "account_id": adjustment, "unit": POINTS, "amount": 5},
            {"program_id": program_id, "transfer_id": transfer_id, "account_id": breakage, "unit": POINTS, "amount": -5},
        ])  # fmt: skip
    assert verify(uow_factory(), program_id) == []
