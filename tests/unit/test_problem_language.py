"""Problem titles exist in German and English for every stable error code, chosen by Accept-Language."""

from __future__ import annotations

import pytest

from treue.api.i18n import TITLES, negotiate, title
from treue.domain import errors


def _codes(cls: type[errors.DomainError]) -> set[str]:
    found = {cls.code}
    for sub in cls.__subclasses__():
        found |= _codes(sub)
    return found


def test_every_domain_error_code_has_a_german_and_an_english_title():
    missing = sorted(
        code
        for code in _codes(errors.DomainError) - {"domain_error", "invariant_violated"}
        if set(TITLES.get(code, {})) != {"de", "en"}
    )
    assert missing == []


@pytest.mark.parametrize(
    ("header", "language"),
    [("de-DE,de;q=0.9,en;q=0.8", "de"), ("en-GB", "en"), ("fr-FR, de;q=0.5", "de"), (None, "en"), ("fr", "en")],
)
def test_accept_language_picks_german_or_english(header, language):
    assert negotiate(header) == language


def test_unknown_code_falls_back_to_the_http_phrase():
    assert title("no_such_code", "de", "Bad Request") == "Bad Request"
    assert title("insufficient_points", "de", "x") == "Nicht genügend Punkte"
