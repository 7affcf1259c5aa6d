"""Surveys with a Net Promoter Score question (0-10) and an optional comment.

NPS = % promoters (9-10) - % detractors (0-6) of the answers, from -100 to 100; passives (7-8) count in the
answers only. It is rounded to four decimals as in the KPIs (`treue.services.kpis`), which count the same answers:
each response is also recorded as the custom event `survey.answered` with the integer attribute `nps`.

A survey is answered once per member, or once per month, quarter or year (`repeat`): the period a response
belongs to (in the programme's timezone) is part of a unique key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treue.domain.errors import InvalidInput
from treue.domain.texts import localized

REPEATS = ("never", "month", "quarter", "year")
FIELDS = ("code", "name", "question", "comment_question", "repeat", "active")
CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
QUESTION = {"de": "Wie wahrscheinlich ist es, dass Sie uns einem Freund oder Kollegen weiterempfehlen?",
            "en": "How likely is it that you would recommend us to a friend or colleague?"}  # fmt: skip
MAX_COMMENT = 2000


def category(score: int) -> str:
    """promoter (9-10), passive (7-8) or detractor (0-6)."""
    if not 0 <= score <= 10:
        raise ValueError("an NPS answer is 0 to 10")
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def nps(answers: int, promoters: int, detractors: int) -> float | None:
    """% promoters - % detractors, rounded to 4 places; None without answers."""
    if answers == 0:
        return None
    return round(100 * (promoters - detractors) / answers, 4)


def period_of(repeat: str, local: datetime) -> str:
    """The period a response at local time `local` belongs to: "" (never repeated), "2026-03", "2026-Q1", "2026"."""
    if repeat == "month":
        return f"{local.year:04d}-{local.month:02d}"
    if repeat == "quarter":
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    if repeat == "year":
        return f"{local.year:04d}"
    return ""


def _texts(value: Any, field: str, default: Mapping[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return dict(default) if default is not None else None
    return localized(value, field, required=True)


@dataclass(frozen=True, slots=True)
class SurveySpec:
    code: str
    name: dict[str, str]
    question: dict[str, str]
    comment_question: dict[str, str] | None
    repeat: str
    active: bool


def parse_survey(data: Mapping[str, Any]) -> SurveySpec:
    """`{"code": "nps-2026", "name": "NPS 2026", "repeat": "quarter"}`; the question defaults to the standard NPS
    question in German and English; `comment_question` (optional) invites a comment."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown survey fields: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    code = data.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidInput("code must be 1-64 lower-case letters, digits, '_' or '-'", field="code")
    repeat = data.get("repeat") or "never"
    if repeat not in REPEATS:
        raise InvalidInput(f"repeat must be one of {', '.join(REPEATS)}", field="repeat")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise InvalidInput("active must be true or false", field="active")
    name = _texts(data.get("name"), "name", None)
    if name is None:
        raise InvalidInput("a survey needs a name", field="name")
    question = _texts(data.get("question"), "question", QUESTION)
    assert question is not None
    return SurveySpec(code, name, question, _texts(data.get("comment_question"), "comment_question", None), repeat,
                      active)  # fmt: skip


def check_answer(score: Any, comment: Any, channel: Any) -> tuple[int, str | None, str]:
    """A response's score (an integer 0-10), comment (optional, up to 2000 characters) and channel."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise InvalidInput("score is a whole number from 0 to 10", field="score")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise InvalidInput(f"comment is text of up to {MAX_COMMENT} characters", field="comment")
    channel = channel or "other"
    if not isinstance(channel, str) or not CHANNEL.match(channel):
        raise InvalidInput("channel is a lower-case word such as app, email, store or online", field="channel")
    return score, (comment.strip() or None) if comment else None, channel
