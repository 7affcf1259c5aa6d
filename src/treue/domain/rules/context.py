"""The facts a rule sees, and the CEL context built from them once per event.

Conditions are CEL expressions over four variables (line filters also see `line`). All money is an
integer number of MINOR units of the programme's currency: `purchase.total >= 5000` means "at least
50.00 EUR". Nothing in the context is a floating-point number, so conditions compare exact integers and
points are always computed in integers. Unknown strings are empty strings ("") rather than null, so that
string functions never fail on a missing value. Calendar fields are in the programme's timezone.

    purchase   (an empty purchase - total 0, no lines, channel "" - for events that are not purchases)
      total         int     amount paid, minor units (50.00 EUR -> 5000)
      currency      string  "EUR"
      channel       string  "store" | "online" | "app"
      partner       string  the partner that recorded the purchase ("default")
      store         string  store code, or ""
      order         string  the shop's order id
      item_count    int     sum of line quantities
      payment       how it was paid (issue 11): a purchase paid with a payment token
        card_linked bool    the token was linked to this purchase's member at its time (false: no token, or unmatched)
        brand       string  "visa", "mastercard", ... or ""
      lines         list of line:
        sku         string
        category    string  or ""
        name        string  or ""
        quantity    int
        unit_price  int     minor units
        amount      int     quantity * unit_price, minor units
    event
      name          string  "purchase", "refund", "enrolment", "birthday", "review.created", ...
      attributes    map     the event's own data (e.g. {"stars": 5}); use has(event.attributes.x)
      occurred_at   string  ISO 8601, UTC
    member      (all values before this event; an anonymous event has id "")
      id            string
      tier          string  tier code, or ""
      attributes    map     custom attributes; use has(member.attributes.x)
      segments      list of string
      enrolled_at   string  local date "YYYY-MM-DD", or ""
      days_enrolled int     whole local days since enrolment (0 on the day of enrolment)
      birthday      string  "YYYY-MM-DD", or ""
      birthday_month_day string "MM-DD", or ""  (compare with now.month_day)
      purchase_count int    purchases to date
      spend         int     spend to date, minor units
      offers        list of string  codes of the offers the member had activated by the event's time (issue 11)
    now         (the event's time in the programme's timezone; no clock is read)
      date          string  "YYYY-MM-DD"
      year, month, day, hour, minute   int
      weekday       int     ISO: 1 = Monday ... 6 = Saturday, 7 = Sunday
      weekday_name  string  "monday" ... "sunday"
      month_day     string  "MM-DD"
      time          string  "HH:MM"
    line        (line filters only) one element of purchase.lines

Example: `purchase.total >= 5000 && member.tier == "gold" && now.weekday == 6`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import cel

from treue.domain.durations import require_aware
from treue.domain.purchases import Purchase, PurchaseLine

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# The documented fields of each variable; conditions naming another field are refused at definition.
LINE_FIELDS = frozenset({"sku", "category", "name", "quantity", "unit_price", "amount"})
FIELDS: Mapping[str, frozenset[str]] = {
    "purchase": frozenset(
        {"total", "currency", "channel", "partner", "store", "order", "item_count", "lines", "payment"}
    ),
    "event": frozenset({"name", "attributes", "occurred_at"}),
    "member": frozenset(
        {
            "id",
            "tier",
            "attributes",
            "segments",
            "enrolled_at",
            "days_enrolled",
            "birthday",
            "birthday_month_day",
            "purchase_count",
            "spend",
            "offers",
        }
    ),
    "now": frozenset(
        {"date", "year", "month", "day", "hour", "minute", "weekday", "weekday_name", "month_day", "time"}
    ),
    "line": LINE_FIELDS,
}
# Fields of the maps inside a variable (`purchase.payment.card_linked`), checked at definition like the others.
NESTED_FIELDS: Mapping[tuple[str, str], frozenset[str]] = {("purchase", "payment"): frozenset({"card_linked", "brand"})}


def flat_name(variable: str, member: str) -> str:
    """The top-level CEL variable that stands for `variable.member` in a flattened expression
    (see `conditions.flatten`)."""
    return f"{variable}__{member}"


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """What the rules may know about a member, as of just before the event."""

    id: str
    tier: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    enrolled_at: datetime | None = None
    birthday: date | None = None
    purchase_count: int = 0
    spend_minor: int = 0
    offers: tuple[str, ...] = ()  # activated offers (loaded only when a rule reads member.offers)


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One event to evaluate: its trigger name, when it happened, and what it is about."""

    name: str
    occurred_at: datetime
    member: MemberSnapshot | None = None
    purchase: Purchase | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_purchase(cls, purchase: Purchase, member: MemberSnapshot | None = None) -> EventFacts:
        return cls("purchase", purchase.occurred_at, member, purchase)


def line_value(line: PurchaseLine) -> dict[str, Any]:
    return {
        "sku": line.sku, "category": line.category or "", "name": line.name or "", "quantity": line.quantity,
        "unit_price": line.unit_price_minor, "amount": line.amount_minor,
    }  # fmt: skip


_LINE_FIELDS: Mapping[str, Callable[[PurchaseLine], Any]] = {
    "sku": lambda line: line.sku, "category": lambda line: line.category or "", "name": lambda line: line.name or "",
    "quantity": lambda line: line.quantity, "unit_price": lambda line: line.unit_price_minor,
    "amount": lambda line: line.amount_minor,
}  # fmt: skip


def lines_value(purchase: Purchase, fields: frozenset[str] | None) -> list[dict[str, Any]]:
    """The purchase's lines with the `fields` the rules read (None or "*": every field)."""
    if not fields or "*" in fields:
        return [line_value(line) for line in purchase.lines]
    getters = [(name, _LINE_FIELDS[name]) for name in sorted(fields) if name in _LINE_FIELDS]
    return [{name: getter(line) for name, getter in getters} for line in purchase.lines]


def payment_value(purchase: Purchase | None) -> dict[str, Any]:
    payment = purchase.payment if purchase is not None else None
    if payment is None:
        return {"card_linked": False, "brand": ""}
    linked = payment.card_linked and purchase is not None and payment.member_id == purchase.member_id
    return {"card_linked": linked, "brand": payment.brand}


def purchase_value(purchase: Purchase | None, currency: str = "") -> dict[str, Any]:
    if purchase is None:
        return {"total": 0, "currency": currency, "channel": "", "partner": "", "store": "", "order": "",
                "item_count": 0, "lines": [], "payment": payment_value(None)}  # fmt: skip
    return {
        "total": purchase.total.minor, "currency": purchase.total.currency, "channel": purchase.channel.value,
        "partner": purchase.partner, "store": purchase.store or "", "order": purchase.external_order_id,
        "item_count": purchase.item_count, "lines": [line_value(line) for line in purchase.lines],
        "payment": payment_value(purchase),
    }  # fmt: skip


def member_value(member: MemberSnapshot | None, local: datetime, tz: ZoneInfo) -> dict[str, Any]:
    if member is None:
        return {"id": "", "tier": "", "attributes": {}, "segments": [], "enrolled_at": "", "days_enrolled": 0,
                "birthday": "", "birthday_month_day": "", "purchase_count": 0, "spend": 0, "offers": []}  # fmt: skip
    enrolled = member.enrolled_at.astimezone(tz).date() if member.enrolled_at else None
    return {
        "id": member.id, "tier": member.tier or "", "attributes": dict(member.attributes),
        "segments": list(member.segments), "enrolled_at": enrolled.isoformat() if enrolled else "",
        "days_enrolled": max((local.date() - enrolled).days, 0) if enrolled else 0,
        "birthday": member.birthday.isoformat() if member.birthday else "",
        "birthday_month_day": member.birthday.strftime("%m-%d") if member.birthday else "",
        "purchase_count": member.purchase_count, "spend": member.spend_minor, "offers": list(member.offers),
    }  # fmt: skip


def now_value(local: datetime) -> dict[str, Any]:
    day = local.date()
    return {
        "date": day.isoformat(), "year": local.year, "month": local.month, "day": local.day,
        "hour": local.hour, "minute": local.minute, "weekday": local.isoweekday(),
        "weekday_name": WEEKDAYS[local.weekday()], "month_day": f"{local.month:02d}-{local.day:02d}",
        "time": f"{local.hour:02d}:{local.minute:02d}",
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class EvalContext:
    """The CEL context of one event, built once and shared by every rule's condition and line filter."""

    cel: Any  # cel.Context
    local: datetime  # the event's time in the programme's timezone
    tz: ZoneInfo


_PURCHASE_FIELDS: Mapping[str, Callable[[Purchase], Any]] = {
    "total": lambda p: p.total.minor, "currency": lambda p: p.total.currency, "channel": lambda p: p.channel.value,
    "partner": lambda p: p.partner, "store": lambda p: p.store or "", "order": lambda p: p.external_order_id,
    "item_count": lambda p: p.item_count,  # "lines": with only the fields read (`lines_value`)
    "payment": payment_value,
}  # fmt: skip
_NOW_FIELDS: Mapping[str, Callable[[datetime], Any]] = {
    "date": lambda t: t.date().isoformat(), "year": lambda t: t.year, "month": lambda t: t.month,
    "day": lambda t: t.day, "hour": lambda t: t.hour, "minute": lambda t: t.minute,
    "weekday": lambda t: t.isoweekday(), "weekday_name": lambda t: WEEKDAYS[t.weekday()],
    "month_day": lambda t: f"{t.month:02d}-{t.day:02d}", "time": lambda t: f"{t.hour:02d}:{t.minute:02d}",
}  # fmt: skip


def build_context(facts: EventFacts, tz: ZoneInfo, currency: str = "",
                  needs: Mapping[str, frozenset[str]] | None = None, local: datetime | None = None) -> EvalContext:  # fmt: skip
    """The CEL context of an event, for flattened expressions (see `conditions.flatten`): each field a rule
    reads as its own variable (`purchase__total`), and a whole variable where one is read whole. Only what
    `needs` names (see `conditions.needs_of`; None: everything) is converted into CEL: conversion costs
    about a microsecond per value and map, which makes it much of the cost of an evaluation. `local`: the
    event's time in `tz`, when the caller has it already."""
    if local is None:
        local = require_aware(facts.occurred_at, "occurred_at").astimezone(tz)
    if needs is None:  # everything, whole and flattened
        needs = {variable: FIELDS[variable] | {"*"} for variable in ("purchase", "event", "member", "now")}
    values: dict[str, Any] = {}
    for variable, fields in needs.items():
        if not fields or variable not in _WHOLE:
            continue
        if "*" in fields:
            values[variable] = _WHOLE[variable](facts, local, tz, currency)
        if variable == "now":
            getters: Mapping[str, Callable[[Any], Any]] = _NOW_FIELDS
            subject: Any = local
        elif variable == "purchase" and facts.purchase is not None:
            getters, subject = _PURCHASE_FIELDS, facts.purchase
        else:
            whole = values[variable] if variable in values else _WHOLE[variable](facts, local, tz, currency)
            values.update((flat_name(variable, f), whole[f]) for f in fields if f in whole)
            continue
        for name in fields:
            getter = getters.get(name)
            if getter is not None:
                values[flat_name(variable, name)] = getter(subject)
        if variable == "purchase" and "lines" in fields and facts.purchase is not None:
            values[flat_name(variable, "lines")] = lines_value(facts.purchase, needs.get("line"))
    context = cel.Context()
    context.update(values)
    return EvalContext(context, local, tz)


# Each variable whole, from the event, its local time, the programme's timezone and currency.
_WHOLE: Mapping[str, Callable[[EventFacts, datetime, ZoneInfo, str], dict[str, Any]]] = {
    "purchase": lambda facts, local, tz, currency: purchase_value(facts.purchase, currency),
    "event": lambda facts, local, tz, currency: {"name": facts.name, "attributes": dict(facts.attributes),
                                                 "occurred_at": facts.occurred_at.astimezone(UTC).isoformat()},
    "member": lambda facts, local, tz, currency: member_value(facts.member, local, tz),
    "now": lambda facts, local, tz, currency: now_value(local),
}  # fmt: skip


def sample_context() -> Any:
    """A fully populated context (every documented field, one line) for trial evaluation at definition."""
    line = {"sku": "SKU-1", "category": "category", "name": "name", "quantity": 1, "unit_price": 100, "amount": 100}
    local = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    context = cel.Context()
    context.update({
        "purchase": {"total": 100, "currency": "EUR", "channel": "store", "partner": "default", "store": "store",
                     "order": "order", "item_count": 1, "lines": [line],
                     "payment": {"card_linked": True, "brand": "visa"}},
        "event": {"name": "purchase", "attributes": {}, "occurred_at": "2026-01-05T11:00:00+00:00"},
        "member": {"id": "member", "tier": "tier", "attributes": {}, "segments": ["segment"],
                   "enrolled_at": "2025-01-05", "days_enrolled": 365, "birthday": "1990-01-05",
                   "birthday_month_day": "01-05", "purchase_count": 1, "spend": 100, "offers": ["offer"]},
        "now": now_value(local),
        "line": line,
    })  # fmt: skip
    return context
