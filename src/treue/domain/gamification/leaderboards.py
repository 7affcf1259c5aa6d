"""Leaderboards show only members who opted in, under a privacy-preserving display name: a nickname the member
chose, or the first name and the initial of the last name ("Anna M."), never an email address or an id."""

from __future__ import annotations

import re

from treue.domain.errors import InvalidInput

NICKNAME = re.compile(r"^[\w][\w .'-]{0,29}$")
ANONYMOUS = {"de": "Anonym", "en": "Anonymous"}


def check_nickname(nickname: str | None) -> str | None:
    if nickname is None:
        return None
    text = nickname.strip()
    if not text:
        return None
    if "@" in text or not NICKNAME.match(text):
        raise InvalidInput("a nickname is 1 to 30 letters, digits, spaces, . ' - or _ (no email address)",
                           field="nickname")  # fmt: skip
    return text


def display_name(nickname: str | None, first_name: str | None, last_name: str | None, locale: str = "en") -> str:
    if nickname:
        return nickname
    first = (first_name or "").strip()
    last = (last_name or "").strip()
    if first and "@" not in first:
        first = first.split()[0]
        return f"{first} {last[0].upper()}." if last and last[0].isalpha() else first
    return ANONYMOUS.get(locale, ANONYMOUS["en"])
