"""Members and their loyalty cards."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

from treue.domain.errors import InvalidInput

CARD_PREFIX = "9276"  # all Treue cards start with this; 14 random digits + 1 Luhn check digit follow
CARD_LENGTH = 19
STATUS_ERASED = "erased"  # a member whose personal data was erased (GDPR): a pseudonym kept for the ledger


class ConsentChannel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    POST = "post"


def luhn_check_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:  # these get doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == int(number[-1])


def new_card_number(random_digits: Callable[[int], str]) -> str:
    """A loyalty card number: prefix + 14 random digits (~46 bits, unguessable) + a Luhn check digit."""
    body = CARD_PREFIX + random_digits(CARD_LENGTH - len(CARD_PREFIX) - 1)
    return body + str(luhn_check_digit(body))


def normalise_card_number(text: str) -> str:
    """Accept what a person types or a scanner sends: spaces and dashes are ignored."""
    number = re.sub(r"[\s-]", "", text)
    if len(number) != CARD_LENGTH or not luhn_valid(number):
        raise InvalidInput("not a valid loyalty card number (19 digits with a check digit)")
    return number


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    email = text.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidInput(f"'{text}' is not an email address")
    return email


def normalise_phone(text: str | None) -> str | None:
    """Keep a leading + and the digits; numbers are compared in this form."""
    if text is None or not text.strip():
        return None
    digits = re.sub(r"[^\d]", "", text)
    plus = "+" if text.strip().startswith(("+", "00")) else ""
    if text.strip().startswith("00"):
        digits = digits[2:]
    if not 6 <= len(digits) <= 15:
        raise InvalidInput(f"'{text}' is not a phone number")
    return plus + digits


def validate_locale(locale: str) -> str:
    if locale not in ("de", "en"):
        raise InvalidInput("locale must be 'de' or 'en'")
    return locale
