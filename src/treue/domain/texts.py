"""Texts a merchant writes in German and English (names, descriptions, questions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treue.domain.errors import InvalidInput

LOCALES = ("de", "en")
MAX_CHARS = 500


def localized(value: Any, field: str, *, required: bool = False) -> dict[str, str]:
    """`{"de": ..., "en": ...}` (either or both), or one text meant for both; {} when absent and not required."""
    if value is None and not required:
        return {}
    if isinstance(value, str) and value.strip() and len(value) <= MAX_CHARS:
        return dict.fromkeys(LOCALES, value)
    if not isinstance(value, Mapping) or not value or any(k not in LOCALES for k in value):
        raise InvalidInput(f'{field} is text or {{"de": ..., "en": ...}}', field=field)
    if any(not isinstance(v, str) or not v.strip() or len(v) > MAX_CHARS for v in value.values()):
        raise InvalidInput(f"{field}: each text is 1 to {MAX_CHARS} characters", field=field)
    return dict(value)
