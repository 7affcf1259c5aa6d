"""Purchase use cases: record a purchase and earn for it; refund it and take points back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.cards import Payment
from treue.domain.durations import require_aware
from treue.domain.errors import CurrencyMismatch, InvalidInput, RefundExceedsPurchase
from treue.domain.events import Event
from treue.domain.fraud import Action, Origin
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.domain.money import Money, Rounding, divide
from treue.domain.programs import Program
from treue.domain.purchases import (
    Channel,
    Purchase,
    PurchaseLine,
    check_refund,
    points_to_take_back,
    refund_amount_of_lines,
)
from treue.domain.rules.attribution import attribute
from treue.domain.rules.context import EventFacts
from treue.domain.rules.evaluator import Evaluation
from treue.domain.rules.limits import Period, Scope, UsageDelta, UsageKey
from treue.ids import new_id
from treue.services.cards import after_purchase as after_payment
from treue.services.cards import match_payment
from treue.services.earning import earn_lots, emit_grants_and_hooks, lots_view, post_earn, run_rules
from treue.services.engagement import after_event, after_refund
from treue.services.fraud import HELD_UNTIL, hold_earn, screen
from treue.services.members import resolve_member
from treue.services.ports import UnitOfWork
from treue.services.tiers import assess_member
from treue.services.views import purchase_view, refund_view
from treue.services.wallet import credit_cashback, payment_returned_by, return_checkout_payment, reverse_cashback


@dataclass
class LineInput:
    sku: str
    quantity: int
    unit_price: str | int  # major units as a decimal string
    category: str | None = None
    name: str | None = None


@dataclass
class RecordPurchase:
    external_order_id: str
    total: str | int  # major units as a decimal string
    currency: str
    occurred_at: datetime
    member_id: UUID | None = None
    card_number: str | None = None
    external_ref: str | None = None
    partner: str = "default"
    store: str | None = None
    cashier: str | None = None  # the till's cashier id (issue 5)
    channel: str = "store"
    lines: list[LineInput] = field(default_factory=list)
    payment: PaymentInput | None = None  # paid with a payment token: matched to the member who linked it (issue 11)
    origin: Origin | None = None  # the device id and client IP the request carried: velocity caps (issue 10)


@dataclass
class PaymentInput:
    """How a purchase was paid (issue 11): the payment provider's token (never a card number), brand, fingerprint."""

    token: str
    brand: str | None = None
    fingerprint: str | None = None


@dataclass
class RefundPurchase:
    amount: str | int | None = None  # major units; or give lines
    lines: list[tuple[str, int]] = field(default_factory=list)  # (sku, quantity)
    currency: str | None = None
    external_refund_id: str | None = None
    occurred_at: datetime | None = None


def _build_purchase(cmd: RecordPurchase, member_id: UUID | None, payment: Payment | None = None) -> Purchase:
    try:
        channel = Channel(cmd.channel)
    except ValueError:
        raise InvalidInput("channel must be one of: store, online, app") from None
    total = Money.parse(cmd.total, cmd.currency)
    lines = tuple(
        PurchaseLine(x.sku, x.quantity, Money.parse(x.unit_price, cmd.currency).minor, x.category, x.name)
        for x in cmd.lines
    )
    return Purchase(
        id=new_id(), member_id=member_id, partner=cmd.partner or "default", store=cmd.store, channel=channel,
        external_order_id=cmd.external_order_id, occurred_at=require_aware(cmd.occurred_at, "occurred_at"),
        total=total, lines=lines, cashier=cmd.cashier, payment=payment,
    )  # fmt: skip


def record_purchase(uow: UnitOfWork, program_id: UUID, cmd: RecordPurchase, now: datetime) -> dict[str, Any]:
    """Record a purchase and post what it earns (the base rule and the programme's rules): one transaction.

    Without rules for purchases this is a handful of statements: the member's balance is updated with a single
    UPDATE ... RETURNING that also takes its row lock, and no lots are read (a new credit only needs the
    balance before it, to settle a deficit). With rules, see `earning.run_rules` for what is read and locked.
    Contributions that become available at different times are separate lots of the one earn transfer.
    """
    with uow:
        program = uow.programs.get(program_id, cached=True)
        if cmd.currency != program.currency:
            raise CurrencyMismatch(f"the programme runs in {program.currency}, the purchase is in {cmd.currency}")
        rules = uow.rules.ruleset(program, cached=True)
        member_id, payment = _member_of(uow, program_id, cmd)
        purchase = _build_purchase(cmd, member_id, payment)
        # The balance update (inside) proves the member belongs to this programme (no row: NotFound) and takes
        # the account's row lock for the rest of the transaction.
        facts = EventFacts.of_purchase(purchase)
        earning = run_rules(uow, program, rules, facts, member_id)
        evaluation = earning.evaluation
        points = evaluation.points if member_id else 0
        looked_up = bool(cmd.card_number or cmd.external_ref)  # _member_of found the member by a query
        # (A member known from reading its facts for the rules is not yet known not to be erased.)
        if member_id is not None and not looked_up and (not earning.member_known or points == 0):
            resolve_member(uow, program_id, member_id=member_id)  # nothing earned: check the member exists, not erased
        uow.purchases.add(program_id, purchase, points, now)
        lots: list[NewLot] = []
        held = None
        if points > 0 and member_id is not None:
            # Velocity caps (issue 10): earns are counted after the account lock (run_rules took it); no query
            # without caps. Over a cap the points are posted held (pending, not spendable) until staff decide.
            broken = screen(uow, program, Action.EARN, member_id, points, purchase.occurred_at, cmd.origin,
                            cmd.payment.token if cmd.payment else None)  # fmt: skip
            transfer_id, lots = post_earn(uow, program, member_id, earning, purchase.occurred_at, now,
                                          {"order": purchase.external_order_id, "partner": purchase.partner},
                                          purchase_id=purchase.id, partner=purchase.partner,
                                          held_until=HELD_UNTIL if broken else None)  # fmt: skip
            if broken:
                held = hold_earn(uow, program, member_id, transfer_id, lots, evaluation, broken, now,
                                 purchase_id=purchase.id)  # fmt: skip
        cashback = None
        engaged: dict[str, Any] = {}
        if member_id is not None:
            emit_grants_and_hooks(uow, program_id, member_id, evaluation, {"purchase_id": str(purchase.id)}, now)
            cashback = credit_cashback(uow, program, member_id, evaluation.hooks, purchase, now)  # the wallet
        uow.flush()  # a duplicate order surfaces here, inside the use case
        paid = None
        if payment is not None or evaluation.awards:  # card-linked earning (issue 11): the match, offers used
            paid = after_payment(uow, program, purchase, evaluation if member_id else None, now)
        if member_id is not None:  # a higher tier the purchase qualifies for applies at once
            assess_member(uow, program, member_id, purchase.occurred_at, now)
            # referrals completed, mission progress, badges, instant wins (issue 7)
            engaged = after_event(uow, program, member_id, facts, evaluation, {"purchase_id": str(purchase.id)}, now)
        uow.emit(program_id, Event(events.PURCHASE_RECORDED, {
            "purchase_id": str(purchase.id), "member_id": str(member_id) if member_id else None,
            "external_order_id": purchase.external_order_id, "partner": purchase.partner,
            "total": purchase.total.format(), "currency": purchase.total.currency, "points": points}))  # fmt: skip
        uow.commit()
    view = purchase_view(purchase, {"points_earned": points, "refunded_minor": 0})
    view["explanation"] = evaluation.explanation() if member_id else {"points": 0, "rules": [], "note": "no member"}
    if len(lots) > 1:
        view["lots"] = lots_view(lots)
    if cashback is not None:
        view["cashback"] = cashback
    if paid is not None:
        view["payment"] = paid
    if held is not None:
        view["fraud_hold"] = held
    return view | engaged


def preview_purchase(uow: UnitOfWork, program_id: UUID, cmd: RecordPurchase, now: datetime) -> dict[str, Any]:
    """What a cart would earn, rule by rule and with the rules that did not apply and why - without writing
    anything. The same evaluator and the same inputs (member snapshot, usage, budgets) as `record_purchase`,
    so the preview equals the award as long as nothing changes in between. The order id is optional."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        if cmd.currency != program.currency:
            raise CurrencyMismatch(f"the programme runs in {program.currency}, the cart is in {cmd.currency}")
        rules = uow.rules.ruleset(program, cached=True)
        payment = None
        if cmd.payment is not None:  # issue 11: the member who had the token linked at the cart's time
            payment = match_payment(uow, program_id, cmd.payment.token, cmd.payment.brand, cmd.payment.fingerprint,
                                    cmd.occurred_at)  # fmt: skip
        member_id = payment.member_id if payment else None
        if cmd.member_id or cmd.card_number or cmd.external_ref:
            member_id = resolve_member(uow, program_id, member_id=cmd.member_id, card_number=cmd.card_number,
                                       external_ref=cmd.external_ref)  # fmt: skip
        order = cmd.external_order_id or "preview"
        purchase = _build_purchase(replace(cmd, external_order_id=order), member_id, payment)
        earning = run_rules(uow, program, rules, EventFacts.of_purchase(purchase), member_id, write=False)
    evaluation = earning.evaluation
    points = evaluation.points if member_id else 0
    lots = earn_lots(program, evaluation.outcome, purchase.occurred_at) if points > 0 else []
    return preview_view(purchase, evaluation, points, lots, member_id)


def preview_view(purchase: Purchase, evaluation: Evaluation, points: int, lots: list[NewLot],
                 member_id: UUID | None) -> dict[str, Any]:  # fmt: skip
    currency = purchase.total.currency
    explained = evaluation.explanation()
    # Which line earned what (an anonymous cart earns nothing, so its lines show what a member would earn).
    spread = attribute(purchase.lines, evaluation.outcome.contributions)
    view: dict[str, Any] = {
        "member_id": str(member_id) if member_id else None, "total": purchase.total.format(), "currency": currency,
        "occurred_at": purchase.occurred_at.isoformat(), "points": points,
        "lines": [{"sku": x.sku, "category": x.category, "name": x.name, "quantity": x.quantity,
                   "unit_price": Money(x.unit_price_minor, currency).format(),
                   "amount": Money(x.amount_minor, currency).format(), "points": got.points,
                   "rules": [{"rule": rule, "points": share} for rule, share in got.rules]}
                  for x, got in zip(purchase.lines, spread.lines, strict=True)],
        "cart_points": [{"rule": rule, "points": share} for rule, share in spread.cart],
        "rules": explained["rules"], "grants": explained.get("grants", []), "hooks": explained.get("hooks", []),
        "skipped": [s.as_dict() for s in evaluation.skipped],
        "lots": [{"points": lot.amount, "available_at": lot.available_at.isoformat()} for lot in lots],
    }  # fmt: skip
    if member_id is None:
        view["note"] = "no member: an anonymous purchase earns nothing"
    return view


def _member_of(uow: UnitOfWork, program_id: UUID, cmd: RecordPurchase) -> tuple[UUID | None, Payment | None]:
    """The purchase's member (None: anonymous) and its payment. A bare member_id is taken as given: the balance
    update (or the check for a purchase that earns nothing) proves it exists and is not erased. A purchase paid with a payment token and
    no member identifier is the member's who had the token linked at the purchase's time (issue 11)."""
    payment = None
    if cmd.payment is not None:
        payment = match_payment(uow, program_id, cmd.payment.token, cmd.payment.brand, cmd.payment.fingerprint,
                                cmd.occurred_at)  # fmt: skip
    if cmd.member_id is not None and not cmd.card_number and not cmd.external_ref:
        return cmd.member_id, payment
    if not (cmd.member_id or cmd.card_number or cmd.external_ref):
        return (payment.member_id if payment else None), payment
    return resolve_member(uow, program_id, member_id=cmd.member_id, card_number=cmd.card_number,
                          external_ref=cmd.external_ref), payment  # fmt: skip


def refund_purchase(uow: UnitOfWork, program_id: UUID, purchase_id: UUID, cmd: RefundPurchase,
                    now: datetime) -> dict[str, Any]:  # fmt: skip
    """Take back points in proportion to the amount refunded, from the purchase's own lots first.

    What the programme's return policy does not allow to take back is reported as forgiven. If the purchase was
    paid (partly) with points or wallet money at checkout, the refund first gives back its share of them (see
    `wallet.return_checkout_payment`): `points_returned`, `wallet_returned`.
    A refund with an external id that was already recorded returns the first result.
    """
    occurred_at = require_aware(cmd.occurred_at, "occurred_at") if cmd.occurred_at else now
    with uow:
        program = uow.programs.get(program_id, cached=True)
        # The purchase row is locked first: two refunds of one purchase queue here, so the
        # refunded amount they check against is the committed one.
        purchase, row = uow.purchases.get(program_id, purchase_id, lock=True)
        if cmd.external_refund_id:
            earlier = uow.purchases.refund_by_external_id(program_id, purchase_id, cmd.external_refund_id)
            if earlier is not None:
                hold = uow.wallet.captured_hold_of(program_id, purchase.member_id, purchase_id) if (
                    purchase.member_id) else None  # fmt: skip
                return refund_view(earlier) | payment_returned_by(uow, program, hold, earlier["id"]) | {
                    "replayed": True}  # fmt: skip
        if cmd.lines and cmd.amount is not None:
            raise InvalidInput("give either an amount or lines to refund, not both")
        if cmd.lines:
            amount = Money(refund_amount_of_lines(purchase, cmd.lines), purchase.total.currency)
            _check_items_left(purchase, cmd.lines, uow.purchases.refunds_of(program_id, purchase_id))
        elif cmd.amount is not None:
            amount = Money.parse(cmd.amount, cmd.currency or purchase.total.currency)
        else:
            amount = Money(purchase.total.minor - row["refunded_minor"], purchase.total.currency)
        check_refund(purchase, row["refunded_minor"], amount)
        points = points_to_take_back(row["points_earned"], purchase.total.minor, row["refunded_minor"],
                                     amount.minor, program.rounding)  # fmt: skip
        refund_id, transfer_id = new_id(), None
        taken = forgiven = 0
        returned: list[dict[str, Any]] = []
        hold = uow.wallet.captured_hold_of(program_id, purchase.member_id, purchase_id) if purchase.member_id else None
        payment, account, wallet = None, None, None
        if hold is not None:  # paid at checkout: give back the refund's share of points and wallet money first
            payment, account, wallet = return_checkout_payment(uow, program, purchase, hold, row["refunded_minor"],
                                                               amount, refund_id, occurred_at, now)  # fmt: skip
        if points > 0 and purchase.member_id is not None:
            if account is None:
                account = uow.ledger.lock_accounts(program_id, [purchase.member_id], purchase_id=purchase.id)[
                    purchase.member_id]  # fmt: skip
            own_lots = {lot.id for lot in account.lots if lot.purchase_id == purchase.id}
            result = account.take_back(points, now, own_lots, program.return_policy)
            taken, forgiven = result.taken, result.forgiven
            if taken:
                transfer_id = new_id()
                earn = uow.ledger.earn_of_purchase(program_id, purchase.id)
                earn_id = earn["id"] if earn else None
                # Campaign budgets get back their share of what is taken back (after the member's account
                # lock, in campaign id order).
                returned = _budget_shares(earn["explanation"] if earn else {}, purchase.total.minor,
                                          row["refunded_minor"], amount.minor, points, taken, program.rounding)  # fmt: skip
                for share in returned:
                    uow.rules.return_budget(program_id, share["campaign"], share["points"])
                usage_back = _usage_shares(earn["explanation"] if earn else {}, purchase.total.minor,
                                           row["refunded_minor"], amount.minor, points, taken, program.rounding)  # fmt: skip
                uow.rules.return_usage(program_id, purchase.member_id, [d for d, _ in usage_back])
                transfer = Transfer(
                    transfer_id, TransferKind.REVERSE, occurred_at,
                    move(account.account_id, system_account_id(program_id, AccountKind.ISSUANCE), taken),
                    member_id=purchase.member_id, purchase_id=purchase.id, corrects_id=earn_id,
                    explanation={"reason": "refund", "order": purchase.external_order_id,
                                 "refund": amount.format(), "currency": amount.currency, "points_due": points,
                                 "points_taken_back": taken, "points_forgiven": forgiven,
                                 "return_policy": program.return_policy.value,
                                 **({"budgets_returned": returned} if returned else {}),
                                 **({"usage_returned": [view for _, view in usage_back]} if usage_back else {})},
                )  # fmt: skip
                uow.ledger.record(program_id, transfer, [(account, result.draw)], now)
        refund = {
            "program_id": program_id, "id": refund_id, "purchase_id": purchase_id,
            "external_refund_id": cmd.external_refund_id, "amount_minor": amount.minor, "currency": amount.currency,
            "lines": [{"sku": s, "quantity": q} for s, q in cmd.lines] or None, "occurred_at": occurred_at,
            "points_taken": taken, "points_forgiven": forgiven, "transfer_id": transfer_id, "created_at": now,
        }  # fmt: skip
        # The refund's share of the purchase's wallet cashback (before add_refund: row holds the refunded amount before).
        cashback = reverse_cashback(uow, program, purchase, row["refunded_minor"], amount, occurred_at, now, wallet)
        uow.purchases.add_refund(refund)
        refund_bonus = _refund_rules(uow, program, purchase, refund, amount, occurred_at, now)
        engaged = after_refund(uow, program, purchase, refund, now)  # referral and mission rewards it undoes
        if purchase.member_id is not None:  # lower amounts count at the next review; a tier never drops here
            assess_member(uow, program, purchase.member_id, occurred_at, now)
        uow.emit(program_id, Event(events.PURCHASE_REFUNDED, {
            "purchase_id": str(purchase_id), "refund_id": str(refund_id), "amount": amount.format(),
            "currency": amount.currency, "points_taken_back": taken, "points_forgiven": forgiven,
            "member_id": str(purchase.member_id) if purchase.member_id else None}))  # fmt: skip
        uow.commit()
    view = refund_view(refund)
    view["points_returned"] = payment["points"] if payment else 0
    view["wallet_returned"] = payment["wallet"] if payment else Money(0, purchase.total.currency).format()
    if payment is not None:
        view["payment_returned"] = payment
    if returned:
        view["budgets_returned"] = returned
    if refund_bonus is not None:
        view["rules"] = refund_bonus
    if cashback is not None:
        view["cashback"] = cashback
    return view | engaged


def _refund_rules(uow: UnitOfWork, program: Program, purchase: Purchase, refund: dict[str, Any], amount: Money,
                  occurred_at: datetime, now: datetime) -> dict[str, Any] | None:  # fmt: skip
    """Rules with the trigger `refund` (e.g. a goodwill bonus): evaluated with the refunded purchase as
    `purchase` and the refund in `event.attributes` (refund_id, amount in minor units, points_taken_back).
    What they award is a separate earn transfer (not tied to the purchase, so a later refund does not take it
    back). Effects cannot be negative, so a refund rule only ever credits. None when no rule is triggered."""
    member_id = purchase.member_id
    rules = uow.rules.ruleset(program, cached=True)
    if member_id is None or not rules.entries("refund"):
        return None
    uow.flush()  # the reversal's rows (and balance) first
    attributes = {"refund_id": str(refund["id"]), "purchase_id": str(purchase.id), "amount": amount.minor,
                  "points_taken_back": refund["points_taken"]}  # fmt: skip
    facts = EventFacts("refund", occurred_at, purchase=purchase, attributes=attributes)
    earning = run_rules(uow, program, rules, facts, member_id)
    evaluation = earning.evaluation
    source = {"event": "refund", "refund_id": str(refund["id"]), "order": purchase.external_order_id}
    transfer_id = None
    if evaluation.points > 0:
        transfer_id, _ = post_earn(uow, program, member_id, earning, occurred_at, now, source)
    emit_grants_and_hooks(uow, program.id, member_id, evaluation, {"refund_id": str(refund["id"])}, now)
    return {"points": evaluation.points, "transfer_id": str(transfer_id) if transfer_id else None,
            **evaluation.explanation()}  # fmt: skip


def _budget_shares(earn_explanation: dict[str, Any], total_minor: int, refunded_before: int, refund_minor: int,
                   points_due: int, points_taken: int, rounding: Rounding) -> list[dict[str, Any]]:  # fmt: skip
    """Each campaign's share of a refund, from what the earn took from its budget (its stored explanation).

    In proportion to the amount refunded, on cumulative amounts like the points (partial refunds that add up
    to the whole purchase give back the whole budget); when the return policy forgave some of the points, only
    the share of the points actually taken back returns to the budget - the rest stays spent.
    """
    shares = []
    for spent in sorted(earn_explanation.get("budgets", ()), key=lambda b: b["campaign"]):
        share = points_to_take_back(spent["points"], total_minor, refunded_before, refund_minor, rounding)
        if points_taken < points_due:
            share = divide(share * points_taken, points_due, Rounding.FLOOR)
        if share > 0:
            shares.append({"campaign": spent["campaign"], "points": share})
    return shares


def _usage_shares(earn_explanation: dict[str, Any], total_minor: int, refunded_before: int, refund_minor: int,
                  points_due: int, points_taken: int, rounding: Rounding) -> list[tuple[UsageDelta, dict[str, Any]]]:  # fmt: skip
    """What a refund gives back to the member's usage counters (caps such as "500 bonus points a month"), with
    its view: points like the campaign budgets (`_budget_shares`); the award itself only when this refund
    completes the refund of the whole purchase, so a "once per member" first-purchase bonus can be earned
    again after the first purchase went back, but not after a partial return."""
    whole = refunded_before + refund_minor >= total_minor
    found = []
    for used in earn_explanation.get("usage", ()):
        share = points_to_take_back(used["points"], total_minor, refunded_before, refund_minor, rounding)
        if points_taken < points_due:
            share = divide(share * points_taken, points_due, Rounding.FLOOR)
        awards = used["awards"] if whole else 0
        if share > 0 or awards > 0:
            key = UsageKey(Scope(used["scope"]), used["owner"], Period(used["period"]), used["key"])
            found.append((UsageDelta(key, share, awards), {**{k: used[k] for k in ("scope", "owner", "key")},
                                                             "points": share, "awards": awards}))  # fmt: skip
    return found


def _check_items_left(purchase: Purchase, lines: list[tuple[str, int]], earlier: list[dict[str, Any]]) -> None:
    """Items refunded by line, over all refunds of a purchase, never exceed the items bought."""
    bought: Counter[str] = Counter()
    for line in purchase.lines:
        bought[line.sku] += line.quantity
    returned: Counter[str] = Counter()
    for refund in earlier:
        for item in refund["lines"] or ():
            returned[item["sku"]] += item["quantity"]
    asked: Counter[str] = Counter()
    for sku, quantity in lines:
        asked[sku] += quantity
    for sku, quantity in asked.items():
        if returned[sku] + quantity > bought[sku]:
            left = bought[sku] - returned[sku]
            raise RefundExceedsPurchase(f"cannot refund {quantity} x {sku!r}: {left} of {bought[sku]} left to refund")


def get_purchase(uow: UnitOfWork, program_id: UUID, purchase_id: UUID) -> dict[str, Any]:
    with uow:
        purchase, row = uow.purchases.get(program_id, purchase_id)
        return purchase_view(purchase, row, uow.purchases.refunds_of(program_id, purchase_id))


def find_purchase(uow: UnitOfWork, program_id: UUID, partner: str, external_order_id: str) -> dict[str, Any] | None:
    with uow:
        purchase_id = uow.purchases.find_id(program_id, partner, external_order_id)
        if purchase_id is None:
            return None
        purchase, row = uow.purchases.get(program_id, purchase_id)
        return purchase_view(purchase, row, uow.purchases.refunds_of(program_id, purchase_id))
