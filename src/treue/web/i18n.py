"""Languages of the web UI: Babel message catalogues, the language of a request, locale-aware formatting.

The catalogues are `locale/<lang>/LC_MESSAGES/*.po`: `messages.po` and one file per area of the UI (e.g.
`portal.po`), read together as one catalogue (a message in two files: the later file, by name, wins). They are
compiled to the binary (.mo) form in memory when the UI starts, so no build step exists that one could forget. English is the source language:
its catalogue may leave strings untranslated. `tests/integration/test_web_i18n.py` fails when a string of a
template or of the web code has no German translation.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

from treue.api.i18n import negotiate
from treue.domain.money import currency_exponent

LANGUAGES = ("de", "en")
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


@functools.cache
def translations(language: str) -> Translations:
    """The compiled catalogue of a language (read once per process)."""
    catalog = Catalog(locale=language, domain=DOMAIN)
    for message in catalogue_messages(language):
        catalog[message.id] = message
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def catalogue_files(language: str) -> list[Path]:
    """messages.po first, then the areas' files in name order."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda path: (path.stem != DOMAIN, path.name))


def catalogue_messages(language: str) -> list[Message]:
    """Every translated message of a language, over all its catalogue files."""
    found = []
    for po in catalogue_files(language):
        with po.open("rb") as source:
            found += [message for message in read_po(source, locale=language, domain=DOMAIN) if message.id]
    return found


def choose_language(switcher: str | None, profile: str | None, accept_language: str | None) -> str:
    """The switcher's choice (a cookie) wins, then the user's own locale, then the browser's Accept-Language."""
    for candidate in (switcher, profile):
        if candidate in LANGUAGES:
            return candidate
    return negotiate(accept_language)


def translate(language: str, message: str) -> str:
    return str(translations(language).gettext(message))


# -- formatting per locale (money from integer minor units, never floats) -------------------------------
def money(minor: int, currency: str, language: str) -> str:
    amount = Decimal(minor).scaleb(-currency_exponent(currency))
    return str(format_currency(amount, currency, locale=language))


def number(value: int | Decimal, language: str) -> str:
    return str(format_decimal(value, locale=language))


def percent(rate: str | None, language: str) -> str:
    """A rate as a decimal string ("0.1250", as the KPIs give it) in the locale's form: "12.5%" / "12,5 %"."""
    if rate is None:
        return "\u2013"  # an en dash: no figure
    return str(format_percent(Decimal(rate), "#,##0.#%", locale=language))


def decimal_money(text: str, currency: str, language: str) -> str:
    """A view's decimal string ("12.50") in the locale's form, e.g. "12,50 €" in German."""
    return str(format_currency(Decimal(text), currency, locale=language))


def when(value: datetime | str | None, timezone: str, language: str) -> str:
    """A UTC instant shown in the programme's timezone, medium length ("2. März 2026, 11:00")."""
    if value is None:
        return ""
    instant = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return str(format_datetime(instant, "medium", tzinfo=ZoneInfo(timezone), locale=language))


def day(value: datetime | date | str | None, timezone: str, language: str) -> str:
    if value is None:
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return str(format_date(value, "medium", locale=language))  # a local day already
    instant = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return str(format_date(instant.astimezone(ZoneInfo(timezone)), "medium", locale=language))
