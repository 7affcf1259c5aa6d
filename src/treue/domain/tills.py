"""The till: what a card's QR code and barcodes carry, how a scan is read back, and the lines of an offline batch.

One payload format for every symbology: the card number's digits, nothing else (what the member portal's QR
code has always carried). A scanner sends them back as typed digits, so a scan, a typed number and the portal
QR code are one and the same input. EAN-13 can carry only 13 digits: it serves card numbers of 12 digits (the
check digit is appended) or of 13 digits with a valid check digit - Treue's own 19-digit cards never fit.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from treue.domain.errors import CardNotEan13, InvalidInput, ScanUnrecognised, TillLineInvalid
from treue.domain.members import CARD_LENGTH, luhn_valid, normalise_email, normalise_phone

MAX_KEY = 255
FUTURE_TOLERANCE = timedelta(minutes=5)  # a till's clock may run a little ahead


class Symbology(enum.StrEnum):
    QR = "qr"
    CODE128 = "code128"
    EAN13 = "ean13"


def card_payload(card_number: str) -> str:
    """What every code of a card encodes: the card number's digits."""
    return re.sub(r"[\s-]", "", card_number)


def ean13_check_digit(body: str) -> int:
    """GS1 check digit of 12 digits: weights 1 and 3 from the left."""
    if len(body) != 12 or not body.isdigit():
        raise InvalidInput("an EAN-13 body is 12 digits")
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(body))
    return (10 - total % 10) % 10


def ean13_valid(number: str) -> bool:
    return len(number) == 13 and number.isdigit() and ean13_check_digit(number[:12]) == int(number[12])


def ean13_of(card_number: str) -> str:
    """The 13 digits an EAN-13 barcode of the card shows, or CardNotEan13."""
    digits = card_payload(card_number)
    if not digits.isdigit() or len(digits) not in (12, 13):
        raise CardNotEan13(f"EAN-13 holds card numbers of 12 or 13 digits; this one has {len(digits)} characters "
                           "(use code128 or qr)", reason="length")  # fmt: skip
    if len(digits) == 12:
        return digits + str(ean13_check_digit(digits))
    if not ean13_valid(digits):
        raise CardNotEan13("the 13th digit of the card number is not its EAN-13 check digit (use code128 or qr)",
                           reason="check_digit")  # fmt: skip
    return digits


@dataclass(frozen=True, slots=True)
class Scan:
    """What to look a scanned or typed value up by: card numbers to try, else a phone number or an email."""

    cards: tuple[str, ...] = ()
    phone: str | None = None
    email: str | None = None


def read_scan(text: str) -> Scan:
    """Classify what the till read or the cashier typed.

    Digits: 19 with a valid Luhn digit are a card; 12 digits are a short card number; 13 digits with a valid
    EAN-13 check digit are an EAN-13 read back (the card may be stored with or without its check digit). A
    number that could also be a phone number (6-15 digits) is tried as one when no card matches; written with a
    leading + it is only a phone number; with an @ it is an email."""
    raw = text.strip()
    if not raw:
        raise ScanUnrecognised("nothing was scanned")
    if "@" in raw:
        try:
            return Scan(email=normalise_email(raw))
        except InvalidInput:
            raise ScanUnrecognised(f"'{raw}' is not an email address") from None
    digits = card_payload(raw)
    cards: tuple[str, ...] = ()
    if digits.isdigit():
        if len(digits) == CARD_LENGTH and luhn_valid(digits):
            return Scan(cards=(digits,))
        if len(digits) == 12:
            cards = (digits,)
        elif len(digits) == 13 and ean13_valid(digits):
            cards = (digits, digits[:12])
    phone = None
    if re.fullmatch(r"\+?[\d\s()/.-]+", raw):
        try:
            phone = normalise_phone(raw)
        except InvalidInput:
            phone = None
    if raw.startswith("+"):
        cards = ()  # written as an international phone number
    if not cards and phone is None:
        raise ScanUnrecognised("not a card number (19 digits with a check digit, or a 12/13-digit card), "
                               "a phone number or an email address")  # fmt: skip
    return Scan(cards=cards, phone=phone)


def card_numbers_to_try(card_number: str) -> tuple[str, ...]:
    """A typed card number: Treue's 19 digits, or a 12/13-digit card (an EAN-13 may be stored without its check
    digit). Anything else is refused like a mistyped card."""
    digits = card_payload(card_number)
    if digits.isdigit():
        if len(digits) == CARD_LENGTH and luhn_valid(digits):
            return (digits,)
        if len(digits) == 12:
            return (digits,)
        if len(digits) == 13 and ean13_valid(digits):
            return (digits, digits[:12])
    raise InvalidInput("not a valid loyalty card number (19 digits with a check digit, or 12/13 digits of an EAN-13)")


# -- offline batches -----------------------------------------------------------------------------------------------
class LineKind(enum.StrEnum):
    PURCHASE = "purchase"
    REFUND = "refund"
    COUPON = "coupon"


@dataclass(frozen=True, slots=True)
class TillLine:
    """One line of an offline batch, read and checked; `data` keeps its fields for the use case."""

    number: int  # 1-based line of the file
    key: str
    kind: LineKind
    occurred_at: datetime
    fingerprint: str
    store: str | None = None
    cashier: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def partner(self) -> str:
        return str(self.data.get("partner") or "default")

    @property
    def order_id(self) -> str | None:
        value = self.data.get("external_order_id")
        return str(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be read: reported with its error, never applied."""

    number: int
    error: TillLineInvalid
    key: str | None = None
    kind: str | None = None


REQUIRED = {
    LineKind.PURCHASE: ("external_order_id", "total", "currency"),
    LineKind.REFUND: ("external_order_id",),
    LineKind.COUPON: ("code",),
}
ALLOWED = {
    LineKind.PURCHASE: {"external_order_id", "total", "currency", "lines", "member_id", "card_number", "scan",
                        "external_ref", "partner", "channel"},
    LineKind.REFUND: {"external_order_id", "partner", "amount", "currency", "lines", "external_refund_id"},
    LineKind.COUPON: {"code", "external_order_id"},
}  # fmt: skip
COMMON = {"key", "type", "occurred_at", "store", "cashier"}


def fingerprint(data: dict[str, Any]) -> str:
    """sha256 of a line's content, independent of key order and whitespace."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_line(number: int, text: str, now: datetime) -> TillLine | BadLine:
    """Read one JSON Lines line of an offline batch (`now`: the upload's time, to refuse lines from the future)."""
    try:
        data = json.loads(text)
    except ValueError as error:
        return BadLine(number, TillLineInvalid(f"line {number} is not JSON: {error}"))
    if not isinstance(data, dict):
        return BadLine(number, TillLineInvalid(f"line {number} is not a JSON object"))
    key = data.get("key")
    kind = data.get("type")
    named_key = key if isinstance(key, str) and 0 < len(key) <= MAX_KEY else None
    named_kind = kind if isinstance(kind, str) else None

    def bad(detail: str) -> BadLine:
        return BadLine(number, TillLineInvalid(f"line {number}: {detail}"), named_key, named_kind)

    if named_key is None:
        return bad(f"`key` (the line's idempotency key, 1 to {MAX_KEY} characters) is missing")
    try:
        line_kind = LineKind(str(kind))
    except ValueError:
        return bad("`type` must be one of: " + ", ".join(k.value for k in LineKind))
    missing = [name for name in REQUIRED[line_kind] if data.get(name) in (None, "")]
    if missing:
        return bad(f"a {line_kind.value} line needs {', '.join(missing)}")
    unknown = sorted(set(data) - ALLOWED[line_kind] - COMMON)
    if unknown:
        return bad(f"unknown fields for a {line_kind.value} line: {', '.join(unknown)}")
    occurred = data.get("occurred_at")
    if not isinstance(occurred, str):
        return bad("`occurred_at` (the time it happened at the till, ISO 8601 with offset) is missing")
    try:
        at = datetime.fromisoformat(occurred.replace("Z", "+00:00"))
    except ValueError:
        return bad(f"occurred_at '{occurred}' is not an ISO 8601 time")
    if at.tzinfo is None:
        return bad(f"occurred_at '{occurred}' needs a UTC offset")
    if at > now + FUTURE_TOLERANCE:
        return bad(f"occurred_at '{occurred}' lies in the future")
    for name in ("store", "cashier"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            return bad(f"`{name}` must be a text of at most 64 characters")
    fields = {k: v for k, v in data.items() if k not in COMMON}
    return TillLine(number, named_key, line_kind, at, fingerprint(data), data.get("store"), data.get("cashier"),
                    fields)  # fmt: skip


def application_order(lines: list[TillLine]) -> list[TillLine]:
    """Purchases first, then refunds and coupon redemptions, each in file order: a refund (or a coupon used on
    an order) recorded before its purchase line in the same file finds the purchase."""
    return [x for x in lines if x.kind is LineKind.PURCHASE] + [x for x in lines if x.kind is not LineKind.PURCHASE]
