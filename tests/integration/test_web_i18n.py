"""The web UI's catalogues: every string of the templates and the web code has a German translation, and numbers,
money and dates are formatted per locale from exact values (integer minor units, never floats)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from treue.web import i18n

WEB = Path(i18n.__file__).parent
KEYWORDS = {**DEFAULT_KEYWORDS, "translate": (2,)}  # translate(language, message) in the web code
_PLACEHOLDER = re.compile(r"%\(\w+\)s")


def extracted(root: Path) -> set[str]:
    """Every message the templates and Python files under `root` ask to translate (as pybabel extract finds it)."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(root, method_map, options, KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue(language: str) -> dict[str, tuple[str, bool]]:
    return {m.id: (m.string, m.fuzzy) for m in i18n.catalogue_messages(language)}


def untranslated(messages: set[str], translations: dict[str, tuple[str, bool]]) -> list[str]:
    """Messages without a usable translation: missing, empty, fuzzy, or with other placeholders."""
    bad = []
    for message in sorted(messages):
        text, fuzzy = translations.get(message, ("", False))
        if not text or fuzzy or sorted(_PLACEHOLDER.findall(text)) != sorted(_PLACEHOLDER.findall(message)):
            bad.append(message)
    return bad


def test_every_string_of_the_ui_has_a_german_translation():
    messages = extracted(WEB)
    assert len(messages) > 100  # the extraction really read the templates
    assert {"Members", "Sign in", "Test with a sample cart", "No member has this card number."} <= messages
    missing = untranslated(messages, catalogue("de"))
    assert missing == [], "add German translations to src/treue/web/locale/de/LC_MESSAGES/<area>.po (docs/ui.md)"


def test_the_english_catalogue_lists_every_string_too():
    assert extracted(WEB) - set(catalogue("en")) == set()


def test_the_check_catches_a_template_string_without_translation(tmp_path: Path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "new.html").write_text('<p>{{ _("Members") }} {{ _("A brand-new sentence") }}</p>')
    (tmp_path / "code.py").write_text('translate("de", "Members")\n')
    messages = extracted(tmp_path)
    assert messages == {"Members", "A brand-new sentence"}
    assert untranslated(messages, catalogue("de")) == ["A brand-new sentence"]
    assert untranslated({"%(points)s points"}, {"%(points)s points": ("%(punkte)s Punkte", False)}) != []


def test_the_compiled_catalogues_translate():
    assert i18n.translate("de", "Members") == "Mitglieder"
    assert i18n.translate("en", "Members") == "Members"


def test_money_from_minor_units_per_locale_exactly():
    assert i18n.money(123456, "EUR", "de") == "1.234,56\xa0€"
    assert i18n.money(123456, "EUR", "en") == "€1,234.56"
    assert i18n.money(500, "JPY", "de") == "500\xa0¥"  # no minor unit
    # Far beyond a float's 53 bits, still exact to the cent.
    assert i18n.money(10**20 + 1, "EUR", "de") == "1.000.000.000.000.000.000,01\xa0€"
    assert i18n.decimal_money("12.50", "EUR", "de") == "12,50\xa0€"


def test_numbers_and_dates_per_locale_in_the_programmes_timezone():
    assert i18n.number(1234567, "de") == "1.234.567" and i18n.number(1234567, "en") == "1,234,567"
    instant = datetime(2026, 3, 7, 23, 30, tzinfo=UTC)  # already Sunday in Berlin
    assert i18n.day(instant, "Europe/Berlin", "de") == "08.03.2026"
    assert i18n.day("2026-03-07T23:30:00Z", "Europe/Berlin", "en") == "Mar 8, 2026"
    assert i18n.when(instant, "Europe/Berlin", "de") == "08.03.2026, 00:30:00"


def test_language_choice():
    assert i18n.choose_language("en", "de", "de-DE") == "en"  # the switcher wins
    assert i18n.choose_language(None, "de", "en-US") == "de"  # then the person's own locale
    assert i18n.choose_language(None, None, "fr-CH, de;q=0.8, en;q=0.5") == "de"  # then the browser
    assert i18n.choose_language("xx", None, None) == "en"
