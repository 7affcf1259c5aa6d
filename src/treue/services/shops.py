"""Shop connections and their inbound webhooks: a delivery of Shopify, WooCommerce, Shopware or the generic
webhook becomes purchases and refunds through `purchases.record_purchase` / `refund_purchase`.

A delivery is verified before anything is read from its body: the connection named in the URL gives the
programme and the secret, never the request. It is applied in one transaction together with its log row, so a
repeated delivery (same platform delivery id, or the same body when the platform sends no id) is answered
with the first result; a repeated order is a duplicate and a repeated refund (same platform refund id) a replay.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from treue.domain.errors import (
    CurrencyMismatch,
    DuplicateOrder,
    InboundSignatureInvalid,
    InvalidInput,
    ShopConnectionPaused,
    ShopOrderUnknown,
)
from treue.domain.members import normalise_email
from treue.domain.money import Money
from treue.domain.shops import (
    Customer,
    Inbound,
    MatchBy,
    Platform,
    RecordOrder,
    RefundKind,
    ShopOrder,
    ShopRefund,
    parse,
)
from treue.domain.shops.signatures import verify
from treue.services.audit import record_audit
from treue.services.members import EnrolMember, enrol_member
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.purchases import LineInput, RecordPurchase, RefundPurchase, record_purchase, refund_purchase
from treue.services.views import iso

OPTIONS = ("match_by", "create_members", "shipping_earns", "active", "secret")
WOO_PING = re.compile(rb"webhook_id=\d+")
CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


# -- managing connections -------------------------------------------------------------------------------------
@dataclass
class ConnectShop:
    code: str
    platform: str
    partner: str = "default"
    secret: str | None = None  # the platform's secret (Shopify, Shopware); generated when not given
    match_by: str = "email"
    create_members: bool = False
    shipping_earns: bool = False
    active: bool = True


def connection_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "code": row["code"], "platform": row["platform"], "partner": row["partner"],
        "match_by": row["match_by"], "create_members": row["create_members"],
        "shipping_earns": row["shipping_earns"], "active": row["active"],
        "inbound_url": f"/api/v1/inbound/{row['platform']}/{row['id']}",
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }  # fmt: skip


def _check_options(values: Mapping[str, Any]) -> None:
    if "match_by" in values and values["match_by"] not in {m.value for m in MatchBy}:
        raise InvalidInput("match_by must be 'email' or 'customer_id'")
    secret = values.get("secret")
    if secret is not None and not 8 <= len(secret) <= 256:
        raise InvalidInput("a shop secret has 8 to 256 characters")


def connect_shop(uow: UnitOfWork, program_id: UUID, cmd: ConnectShop, now: datetime,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Connect a shop. The answer shows the secret once (a generated one when none was given); it is never
    shown again - the platform signs with it, Treue verifies with it."""
    if not cmd.code or len(cmd.code) > 64 or not set(cmd.code) <= CODE_CHARS:
        raise InvalidInput("a shop code has 1 to 64 characters: a-z, 0-9, '-' and '_'")
    try:
        platform = Platform(cmd.platform)
    except ValueError:
        raise InvalidInput("platform must be one of: " + ", ".join(p.value for p in Platform)) from None
    _check_options({"match_by": cmd.match_by, "secret": cmd.secret})
    secret = cmd.secret or secrets.token_hex(32)
    row = {"program_id": program_id, "id": uuid.uuid4(),  # random (not time-ordered): it is in a public URL
           "code": cmd.code, "platform": platform.value, "partner": cmd.partner or "default", "secret": secret,
           "match_by": cmd.match_by, "create_members": cmd.create_members, "shipping_earns": cmd.shipping_earns,
           "active": cmd.active, "created_at": now, "updated_at": now}  # fmt: skip
    with uow:
        uow.programs.get(program_id, cached=True)
        uow.shops.add(row)
        record_audit(uow, program_id, actor, "shop.connect", "shop", cmd.code, None, connection_view(row), None, now)
        uow.commit()
    return connection_view(row) | {"secret": secret}


def update_shop(uow: UnitOfWork, program_id: UUID, code: str, changes: dict[str, Any], now: datetime,
                actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Change a connection's options or secret (a new secret is not shown back). Platform and partner stay:
    the orders recorded so far are found by them."""
    unknown = set(changes) - set(OPTIONS)
    if unknown:
        raise InvalidInput(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
    _check_options(changes)
    values = {k: v for k, v in changes.items() if v is not None}
    with uow:
        before = connection_view(uow.shops.get(program_id, code))
        if values:
            uow.shops.update(program_id, code, {**values, "updated_at": now})
        view = connection_view(uow.shops.get(program_id, code))
        if values:  # the secret itself is never written to the audit log, only that it changed
            record_audit(uow, program_id, actor, "shop.update", "shop", code, before,
                         view | ({"secret_changed": True} if "secret" in values else {}), None, now)  # fmt: skip
        uow.commit()
    return view


def get_shop(uow: UnitOfWork, program_id: UUID, code: str) -> dict[str, Any]:
    with uow:
        return connection_view(uow.shops.get(program_id, code))


def list_shops(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        return [connection_view(row) for row in uow.shops.all(program_id)]


def shop_deliveries(uow: UnitOfWork, program_id: UUID, code: str, limit: int = 50) -> list[dict[str, Any]]:
    """The connection's accepted deliveries, newest first (refused ones - bad signature, malformed, out of
    order - are not stored: the platform's own delivery log shows them)."""
    with uow:
        connection = uow.shops.get(program_id, code)
        rows = uow.shops.deliveries(program_id, connection["id"], min(max(limit, 1), 200))
    return [{"delivery_id": r["delivery_id"], "topic": r["topic"], "outcome": r["outcome"],
             "received_at": iso(r["received_at"]), "result": r["result"]} for r in rows]  # fmt: skip


# -- inbound webhooks -----------------------------------------------------------------------------------------
@dataclass
class _Delivery:
    """What one delivery did, step by step; orders it skipped (no member) are remembered for its refunds."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    skipped_orders: set[str] = field(default_factory=set)


def receive_webhook(uows: UnitOfWorkFactory, platform: str, connection_id: str, headers: Mapping[str, str],
                    body: bytes, now: datetime) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """Verify, parse and apply one inbound delivery. Returns the HTTP status (200 applied, 202 accepted but
    nothing recorded, with a reason) and the answer. `headers` have lower-case names."""
    connection = _connection(uows, platform, connection_id)
    if platform == Platform.WOOCOMMERCE.value and WOO_PING.fullmatch(body):
        # WooCommerce pings a webhook's URL, unsigned, when it is saved: answered so that it saves, nothing stored.
        return 200, {"connection": connection["code"], "topic": "ping", "outcome": "ping", "steps": []}
    if not verify(Platform(platform), connection["secret"], headers, body):
        raise _refused()
    if not connection["active"]:
        raise ShopConnectionPaused(f"shop connection '{connection['code']}' is paused; deliveries are refused "
                                   "so that the platform retries them")  # fmt: skip
    inbound = parse(Platform(connection["platform"]), headers, body)
    delivery_id = inbound.delivery_id or "sha256:" + hashlib.sha256(body).hexdigest()
    for attempt in range(3):
        try:
            return _apply(uows(), connection, inbound, delivery_id, now)
        except (DuplicateOrder, IntegrityError):
            # A concurrent delivery of the same order, or of the same delivery, committed first: the next pass
            # sees it and answers as a duplicate or with the stored result (the order and the delivery id can
            # each lose a race once, so the third pass sees both committed).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _refused() -> InboundSignatureInvalid:
    return InboundSignatureInvalid("the request is not signed with the secret of this shop connection")


def _connection(uows: UnitOfWorkFactory, platform: str, connection_id: str) -> dict[str, Any]:
    """The connection the URL names. An unknown connection, the wrong platform and (later) a wrong signature
    get the same answer: nothing tells a prober which connections exist."""
    try:
        cid = UUID(connection_id)
    except ValueError:
        raise _refused() from None
    with uows(read_only=True) as uow:
        connection: dict[str, Any] | None = uow.shops.by_id(cid)
    if connection is None or connection["platform"] != platform:
        raise _refused()
    return connection


def _apply(uow: UnitOfWork, connection: dict[str, Any], inbound: Inbound, delivery_id: str,
           now: datetime) -> tuple[int, dict[str, Any]]:  # fmt: skip
    program_id, cid = connection["program_id"], connection["id"]
    with uow:
        stored = uow.shops.delivery(program_id, cid, delivery_id)
        if stored is not None:
            first: dict[str, Any] = dict(stored["result"]) | {"replayed": True}
            return (202 if stored["outcome"] != "processed" else 200), first
        done = _Delivery()
        if inbound.ignored is None:
            for action in inbound.actions:
                if isinstance(action, RecordOrder):
                    done.steps.append(_record(uow, connection, action.order, done, now))
                else:
                    done.steps.append(_refund(uow, connection, action.refund, action.if_unknown, done, now))
        applied = [s for s in done.steps if s["outcome"] != "skipped"]
        outcome = "ignored" if inbound.ignored else ("processed" if applied else "skipped")
        result: dict[str, Any] = {"connection": connection["code"], "topic": inbound.topic,
                                  "delivery_id": delivery_id, "outcome": outcome, "steps": done.steps}  # fmt: skip
        reasons = [s["reason"] for s in done.steps if s.get("reason")]
        if inbound.ignored or (outcome == "skipped" and reasons):
            result["reason"] = inbound.ignored or "; ".join(reasons)
        skipped = sorted(done.skipped_orders)
        uow.shops.add_delivery({"program_id": program_id, "connection_id": cid, "delivery_id": delivery_id,
                                "topic": inbound.topic[:200], "outcome": outcome,
                                "external_order_id": skipped[0] if skipped else None, "result": result,
                                "received_at": now})  # fmt: skip
        uow.commit()
    return (200 if outcome == "processed" else 202), result


def _order_ref(connection: dict[str, Any], order_id: str) -> str:
    """Orders are recorded as '<shop code>:<platform order id>': two shops of one partner never collide."""
    return f"{connection['code']}:{order_id}"


def _record(uow: UnitOfWork, connection: dict[str, Any], order: ShopOrder, done: _Delivery,
            now: datetime) -> dict[str, Any]:  # fmt: skip
    program_id, partner = connection["program_id"], connection["partner"]
    reference = _order_ref(connection, order.order_id)
    step: dict[str, Any] = {"action": "purchase", "order": reference}
    earlier = uow.purchases.find_id(program_id, partner, reference)
    if earlier is not None:
        return step | {"outcome": "duplicate", "purchase_id": str(earlier)}
    member_id, created, reason = _member_of(uow, connection, order.customer, now)
    if member_id is None:
        done.skipped_orders.add(reference)
        return step | {"outcome": "skipped", "reason": reason}
    shipping_earns = connection["shipping_earns"]
    total = order.earning_total(shipping_earns)
    lines = [LineInput(x.sku, x.quantity, Money(x.unit_price_minor, order.currency).format(), None, x.name)
             for x in order.purchase_lines(shipping_earns)]  # fmt: skip
    command = RecordPurchase(external_order_id=reference, total=total.format(), currency=order.currency,
                             occurred_at=order.occurred_at, member_id=member_id, partner=partner,
                             store=connection["code"], channel="online", lines=lines)  # fmt: skip
    recorded = record_purchase(uow, program_id, command, now)
    return step | {"outcome": "recorded", "purchase_id": recorded["id"], "member_id": str(member_id),
                   "member_created": created, "total": total.format(), "currency": order.currency,
                   "shipping": Money(order.shipping_minor, order.currency).format(),
                   "shipping_earns": shipping_earns, "points": recorded["points_earned"]}  # fmt: skip


def _member_of(uow: UnitOfWork, connection: dict[str, Any], customer: Customer, now: datetime
               ) -> tuple[UUID | None, bool, str | None]:  # fmt: skip
    """The order's member by the connection's matching rule; a new member when the connection creates them."""
    program_id = connection["program_id"]
    try:
        email = normalise_email(customer.email)
    except InvalidInput:
        email = None  # a malformed address in a shop is not a reason to refuse the order
    by_id = connection["match_by"] == MatchBy.CUSTOMER_ID.value
    if by_id:
        found = uow.members.find(program_id, external_ref=customer.id) if customer.id else []
    else:
        found = uow.members.find(program_id, email=email) if email else []
    if found:  # several members with one email: the first enrolled (documented)
        return found[0]["id"], False, None
    if not connection["create_members"]:
        what = ("customer id " + customer.id if customer.id else "a guest order") if by_id else (
            "email " + email if email else "an order without email")  # fmt: skip
        return None, False, f"unknown member ({what}); the connection does not create members"
    if not email and not (by_id and customer.id):
        return None, False, "the order names no customer (no email, no customer id) to create a member for"
    enrolled = enrol_member(uow, program_id, EnrolMember(
        external_ref=customer.id if by_id else None, email=email, first_name=customer.first_name,
        last_name=customer.last_name), now)  # fmt: skip
    return UUID(enrolled["id"]), True, None


def _refund(uow: UnitOfWork, connection: dict[str, Any], refund: ShopRefund, if_unknown: str, done: _Delivery,
            now: datetime) -> dict[str, Any]:  # fmt: skip
    program_id = connection["program_id"]
    reference = _order_ref(connection, refund.order_id)
    step: dict[str, Any] = {"action": "refund", "order": reference, "refund": refund.refund_id}
    purchase_id = uow.purchases.find_id(program_id, connection["partner"], reference)
    if purchase_id is None:
        if reference in done.skipped_orders or uow.shops.order_skipped(program_id, connection["id"], reference):
            return step | {"outcome": "skipped", "reason": "the order was skipped (no member): nothing to take back"}
        if if_unknown == "skip":
            return step | {"outcome": "skipped", "reason": "the order was never recorded: nothing to take back"}
        raise ShopOrderUnknown(f"order {refund.order_id!r} has not been recorded yet (the refund arrived before its "
                               "order); nothing was stored - deliver the refund again once the order is recorded",
                               order=reference)  # fmt: skip
    earlier = uow.purchases.refund_by_external_id(program_id, purchase_id, refund.refund_id)
    if earlier is not None:
        return step | {"outcome": "replayed", "purchase_id": str(purchase_id), "refund_id": str(earlier["id"])}
    purchase, row = uow.purchases.get(program_id, purchase_id)
    left = purchase.total.minor - row["refunded_minor"]
    shipping_earns = connection["shipping_earns"]
    if refund.kind is RefundKind.ALL:
        wanted = left
    elif refund.kind is RefundKind.KEEP:
        wanted = purchase.total.minor - refund.amount_minor(shipping_earns) - row["refunded_minor"]
    else:
        # A platform's refund may include tax, shipping or fees Treue did not count: never more than is left.
        wanted = min(refund.amount_minor(shipping_earns), left)
    if wanted <= 0:
        reason = "nothing left to refund" if left <= 0 else "the refund leaves the earning amount unchanged"
        return step | {"outcome": "nothing_to_refund", "purchase_id": str(purchase_id), "reason": reason}
    currency = purchase.total.currency
    if refund.currency not in (None, currency):
        raise CurrencyMismatch(f"refund in {refund.currency}, the order was recorded in {currency}")
    done_refund = refund_purchase(uow, program_id, purchase_id, RefundPurchase(
        amount=Money(wanted, currency).format(), currency=currency, external_refund_id=refund.refund_id,
        occurred_at=refund.occurred_at), now)  # fmt: skip
    return step | {"outcome": "refunded", "purchase_id": str(purchase_id), "refund_id": done_refund["id"],
                   "amount": done_refund["amount"], "points_taken_back": done_refund["points_taken_back"],
                   "points_forgiven": done_refund["points_forgiven"]}  # fmt: skip
