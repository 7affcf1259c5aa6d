"""Card-linked earning: payment cards linked by their provider token, the payment of a purchase, and the lines of
an acquirer's card-transaction feed.

Treue never takes a card number. A member links a card by the token that the merchant's payment provider (or a
card-linking service) issued for it, with display data only: brand, last four digits, expiry month and year.
Anything that looks like a full card number - 13 to 19 digits, single spaces or dashes between them allowed,
passing the Luhn check - is refused wherever it appears in such a request (`contains_card_number`), and the
refusal never repeats it.

A purchase paid with a token is matched to the member who had that token linked at the purchase's time: a link
is an interval [linked_at, unlinked_at) and the intervals of one token in one programme never overlap (one
active link per token), so at most one member matches.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from treue.domain.errors import CardFeedInvalid, CardNumberRefused, InvalidInput
from treue.domain.money import Money

MIN_PAN, MAX_PAN = 13, 19
# A run of digits with at most one space or dash between two digits ("4111 1111-1111 1111").
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*")
_TOKEN = re.compile(r"^[\x21-\x7e]{6,200}$")  # printable ASCII without spaces
BRANDS = ("visa", "mastercard", "amex", "maestro", "girocard", "discover", "jcb", "diners", "unionpay", "other")
REFUSAL = ("a full card number is not accepted here; link the card by the token your payment provider issued "
           "for it, with brand, last 4 digits and expiry only")  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    """Does `text` contain a full card number: 13-19 digits (spaces or dashes between them allowed) passing Luhn?

    Every run of digits is tested, so a number inside other text ("tok_4111111111111111", "card 4111 1111 1111
    1111 exp") is found as well. A longer run of digits (a 24-digit numeric token) is not a card number."""
    for match in _DIGIT_RUN.finditer(text):
        digits = match.group(0).replace(" ", "").replace("-", "")
        if MIN_PAN <= len(digits) <= MAX_PAN and luhn_valid(digits):
            return True
    return False


def contains_card_number(value: Any) -> bool:
    """Does any string or integer anywhere in `value` (dicts, lists, nested) look like a card number?
    Keys are searched too."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return looks_like_card_number(value)
    if isinstance(value, int):
        return looks_like_card_number(str(abs(value)))
    if isinstance(value, Mapping):
        return any(contains_card_number(k) or contains_card_number(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_card_number(v) for v in value)
    return False


def refuse_card_numbers(value: Any) -> None:
    """Raise `CardNumberRefused` (which never repeats the number) if `value` holds a card number."""
    if contains_card_number(value):
        raise CardNumberRefused(REFUSAL)


def check_token(token: str, where: str = "token") -> str:
    """A provider token: 6-200 printable characters without spaces, and not a card number."""
    if not isinstance(token, str):
        raise InvalidInput(f"{where} must be a string")
    if looks_like_card_number(token):
        raise CardNumberRefused(REFUSAL, field=where)
    token = token.strip()
    if not _TOKEN.match(token):
        raise InvalidInput(f"{where} must be 6 to 200 printable characters without spaces", field=where)
    return token


def check_brand(brand: str | None) -> str:
    value = (brand or "other").strip().lower()
    if value not in BRANDS:
        raise InvalidInput(f"brand must be one of {', '.join(BRANDS)}", field="brand")
    return value


@dataclass(frozen=True, slots=True)
class CardDisplay:
    """What may be shown of a linked card: never more than brand, last four digits and expiry."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @classmethod
    def of(cls, brand: str | None, last4: str, exp_month: int, exp_year: int) -> CardDisplay:
        if not (isinstance(last4, str) and len(last4) == 4 and last4.isdigit()):
            raise InvalidInput("last4 must be the card's last 4 digits", field="last4")
        if not 1 <= exp_month <= 12:
            raise InvalidInput("exp_month must be 1 to 12", field="exp_month")
        if not 2000 <= exp_year <= 2100:
            raise InvalidInput("exp_year must be a four-digit year", field="exp_year")
        return cls(check_brand(brand), last4, exp_month, exp_year)

    def expired_at(self, at: datetime) -> bool:
        """True once the expiry month is over (the card's own time zone is unknown: UTC)."""
        moment = at.astimezone(UTC)
        return (moment.year, moment.month) > (self.exp_year, self.exp_month)


@dataclass(frozen=True, slots=True)
class Payment:
    """How a purchase was paid: the provider token (and brand, optional fingerprint), and the card link it matched.

    `card_id` and `member_id` are set when the token was linked at the purchase's time (to `member_id`); the
    purchase is then `card_linked` if its member is that member."""

    token: str
    brand: str = ""
    fingerprint: str | None = None
    card_id: UUID | None = None
    member_id: UUID | None = None

    @property
    def card_linked(self) -> bool:
        return self.card_id is not None


def payment_of(token: str, brand: str | None = None, fingerprint: str | None = None) -> Payment:
    """A purchase's payment as given (not matched yet), checked: a token, never a card number."""
    token = check_token(token, "payment.token")
    if fingerprint is not None:
        if looks_like_card_number(fingerprint):
            raise CardNumberRefused(REFUSAL, field="payment.fingerprint")
        if not 1 <= len(fingerprint) <= 200:
            raise InvalidInput("payment.fingerprint must be 1 to 200 characters", field="payment.fingerprint")
    return Payment(token, check_brand(brand) if brand else "", fingerprint)


# -- the acquirer's feed ------------------------------------------------------------------------------------------
class FeedFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class FeedKind(enum.StrEnum):
    SALE = "sale"
    REFUND = "refund"
    CHARGEBACK = "chargeback"


FEED_FIELDS = ("merchant_id", "token", "amount", "currency", "occurred_at", "authorisation_code", "type")
FEED_OPTIONAL = ("original_authorisation_code", "brand")
MAX_FEED_LINES = 200_000


@dataclass(frozen=True, slots=True)
class FeedLine:
    """One card transaction of a feed. `line` is its line number in the file (1-based, the CSV header is line 1)."""

    line: int
    merchant_id: str
    token: str
    amount: Money
    occurred_at: datetime
    authorisation_code: str
    kind: FeedKind
    original_authorisation_code: str | None = None
    brand: str = ""

    @property
    def original(self) -> str:
        """The authorisation code of the sale a refund or chargeback reverses (its own, if not given)."""
        return self.original_authorisation_code or self.authorisation_code


@dataclass(frozen=True, slots=True)
class FeedError:
    line: int
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


def sale_order_id(authorisation_code: str) -> str:
    """The external order id a feed sale is recorded under (unique per partner, as every purchase)."""
    return f"card:{authorisation_code}"


def refund_id(kind: FeedKind, authorisation_code: str) -> str:
    """The external refund id of a feed refund or chargeback (a repeated line is answered with the first result)."""
    return f"card-{kind.value}:{authorisation_code}"


def _field(values: Mapping[str, Any], name: str, line: int, required: bool = True) -> str | None:
    raw = values.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise CardFeedInvalid(f"line {line}: {name} is missing", line=line, field=name)
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise CardFeedInvalid(f"line {line}: {name} must be a string", line=line, field=name)
    return str(raw).strip()


def parse_feed_line(values: Mapping[str, Any], line: int) -> FeedLine:
    """One feed line from its fields. A card number in any field refuses the line without repeating it."""
    if contains_card_number({k: v for k, v in values.items() if k != "merchant_id"}):
        raise CardNumberRefused(f"line {line}: {REFUSAL}", line=line)
    text = {name: _field(values, name, line) for name in FEED_FIELDS}
    try:
        kind = FeedKind(str(text["type"]).lower())
    except ValueError:
        raise CardFeedInvalid(f"line {line}: type must be sale, refund or chargeback", line=line,
                              field="type") from None  # fmt: skip
    moment = str(text["occurred_at"])
    try:
        occurred_at = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        raise CardFeedInvalid(f"line {line}: occurred_at is not an ISO 8601 time", line=line,
                              field="occurred_at") from None  # fmt: skip
    if occurred_at.tzinfo is None:
        raise CardFeedInvalid(f"line {line}: occurred_at needs a UTC offset", line=line, field="occurred_at")
    try:
        amount = Money.parse(str(text["amount"]), str(text["currency"]).upper())
        token = check_token(str(text["token"]))
        brand = _field(values, "brand", line, required=False)
        brand = check_brand(brand) if brand else ""
    except CardNumberRefused:
        raise CardNumberRefused(f"line {line}: {REFUSAL}", line=line) from None
    except InvalidInput as error:
        raise CardFeedInvalid(f"line {line}: {error.detail}", line=line) from None
    if amount.minor <= 0:
        raise CardFeedInvalid(f"line {line}: amount must be positive", line=line, field="amount")
    code = str(text["authorisation_code"])
    if len(code) > 64 or len(str(text["merchant_id"])) > 64:
        raise CardFeedInvalid(f"line {line}: merchant_id and authorisation_code are at most 64 characters",
                              line=line)  # fmt: skip
    original = _field(values, "original_authorisation_code", line, required=False)
    if original is not None and len(original) > 64:
        raise CardFeedInvalid(f"line {line}: original_authorisation_code is at most 64 characters", line=line)
    if kind is FeedKind.SALE and original is not None:
        raise CardFeedInvalid(f"line {line}: a sale has no original_authorisation_code", line=line)
    return FeedLine(line, str(text["merchant_id"]), token, amount, occurred_at.astimezone(UTC), code, kind,
                    original, brand)  # fmt: skip


def read_feed(text: str, fmt: FeedFormat | str) -> Iterator[FeedLine | FeedError]:
    """The lines of a feed, each parsed or the error that refuses it (other lines are not affected)."""
    fmt = FeedFormat(fmt)
    count = 0
    for number, values in _records(text, fmt):
        count += 1
        if count > MAX_FEED_LINES:
            raise CardFeedInvalid(f"a feed has at most {MAX_FEED_LINES} lines; split the file")
        if isinstance(values, FeedError):
            yield values
            continue
        try:
            yield parse_feed_line(values, number)
        except (CardFeedInvalid, CardNumberRefused) as error:
            yield FeedError(number, error.code, error.detail)


def _records(text: str, fmt: FeedFormat) -> Iterator[tuple[int, Mapping[str, Any] | FeedError]]:
    if fmt is FeedFormat.JSONL:
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                # The decoder's message quotes the line: never repeat what might hold a card number.
                yield number, FeedError(number, CardFeedInvalid.code, f"line {number}: not a JSON object")
                continue
            if not isinstance(value, dict):
                yield number, FeedError(number, CardFeedInvalid.code, f"line {number}: not a JSON object")
                continue
            yield number, value
        return
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [name for name in FEED_FIELDS if name not in header]
    if missing:
        raise CardFeedInvalid(f"the CSV header lacks {', '.join(missing)} (columns: {','.join(FEED_FIELDS)}"
                              f"[,{','.join(FEED_OPTIONAL)}])")  # fmt: skip
    for row in reader:
        values = {(k or "").strip(): v for k, v in row.items() if k}
        if not any((v or "").strip() for v in values.values() if isinstance(v, str)):
            continue
        yield reader.line_num, values
