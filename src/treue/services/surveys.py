"""Surveys and NPS (issue 8): create a survey, a member answers it, NPS per period and per segment, tier or channel.

A response is stored linked to its member (with the member's tier at the time) and recorded as the custom event
`survey.answered` (attributes: survey, nps, channel, comment: whether there is one) in the same transaction, so
rules triggered by `survey.answered` reward it and the programme KPIs count it in their NPS.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.durations import end_of_local_day, require_aware, start_of_local_day, zone
from treue.domain.errors import InvalidInput, SurveyClosed
from treue.domain.events import Event
from treue.domain.surveys import category, check_answer, nps, parse_survey, period_of
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.events import RecordEvent, record_event
from treue.services.kpis import FIRST_DAY, LAST_DAY
from treue.services.ports import UnitOfWork
from treue.services.views import iso

SPLITS = ("segment", "tier", "channel")
EVENT = "survey.answered"


def survey_view(row: dict[str, Any], responses: int | None = None) -> dict[str, Any]:
    view = {"code": row["code"], "name": row["name"], "question": row["question"],
            "comment_question": row["comment_question"], "repeat": row["repeat"], "active": row["active"],
            "scale": {"min": 0, "max": 10}, "created_at": iso(row["created_at"])}  # fmt: skip
    if responses is not None:
        view["responses"] = responses
    return view


def create_survey(uow: UnitOfWork, program_id: UUID, data: dict[str, Any], now: datetime, *,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    spec = parse_survey(data)
    with uow:
        uow.programs.get(program_id, cached=True)
        row = {"program_id": program_id, "code": spec.code, "name": spec.name, "question": spec.question,
               "comment_question": spec.comment_question, "repeat": spec.repeat, "active": spec.active,
               "created_at": now}  # fmt: skip
        uow.segments.add_survey(row)
        view = survey_view(row, 0)
        record_audit(uow, program_id, actor, "survey.create", "survey", spec.code, None, view, None, now)
        uow.commit()
    return view


def list_surveys(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return [survey_view(row, uow.segments.response_counts(program_id, row["code"])[0])
                for row in uow.segments.surveys(program_id)]  # fmt: skip


def answer_survey(uow: UnitOfWork, program_id: UUID, code: str, member_id: UUID, score: Any, now: datetime, *,
                  comment: Any = None, channel: Any = None, occurred_at: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """A member's answer: stored, and recorded as the `survey.answered` event (rules may reward it). Once per
    member, or once per month/quarter/year by the survey's `repeat` (`survey_answered`, 409)."""
    value, text, channel = check_answer(score, comment, channel)
    at = require_aware(occurred_at, "occurred_at") if occurred_at is not None else now
    if at > now:
        raise InvalidInput("occurred_at lies in the future", field="occurred_at")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        survey = uow.segments.survey(program_id, code)
        if not survey["active"]:
            raise SurveyClosed(f"the survey {code!r} is closed", survey=code)
        uow.members.get(program_id, member_id)
        tier = uow.rules.member_snapshot(program_id, member_id, at, history=False, segments=False).tier
        event = record_event(uow, program_id, RecordEvent(EVENT, member_id=member_id, occurred_at=at, attributes={
            "survey": code, "nps": value, "channel": channel, "comment": text is not None}), now)  # fmt: skip
        row = {"program_id": program_id, "id": new_id(), "survey_code": code, "member_id": member_id,
               "period": period_of(survey["repeat"], at.astimezone(zone(program.timezone))), "score": value,
               "comment": text, "channel": channel, "tier": tier, "event_id": UUID(event["id"]), "occurred_at": at,
               "created_at": now}  # fmt: skip
        uow.segments.add_response(row)
        uow.emit(program_id, Event(events.SURVEY_ANSWERED, {"survey": code, "member_id": str(member_id),
                                                            "nps": value, "channel": channel}))  # fmt: skip
        uow.commit()
    return {"id": str(row["id"]), "survey": code, "member_id": str(member_id), "score": value,
            "category": category(value), "comment": text, "channel": channel, "tier": tier, "period": row["period"],
            "occurred_at": iso(at), "event_id": event["id"], "points": event["points"],
            "explanation": event["explanation"]}  # fmt: skip


def _counts(responses: int, promoters: int, detractors: int) -> dict[str, Any]:
    return {"responses": responses, "promoters": promoters, "passives": responses - promoters - detractors,
            "detractors": detractors, "nps": nps(responses, promoters, detractors)}  # fmt: skip


def survey_nps(uow: UnitOfWork, program_id: UUID, code: str, start: date | None, end: date | None, *,
               by: str | None = None) -> dict[str, Any]:  # fmt: skip
    """NPS of the survey's responses on the local days [start, end] (default: all), optionally per segment (the
    members' segments now; `null`: in no segment; a member in two segments counts in both), tier (when
    answering) or channel."""
    if by is not None and by not in SPLITS:
        raise InvalidInput(f"unknown split by={by!r}; use one of {', '.join(SPLITS)}", field="by")
    first, last = start or FIRST_DAY, end or LAST_DAY
    if last < first:
        raise InvalidInput(f"the period ends ({last}) before it starts ({first})")
    if first < FIRST_DAY or last > LAST_DAY:
        raise InvalidInput(f"the period must lie between {FIRST_DAY} and {LAST_DAY}")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.segments.survey(program_id, code)
        tz = zone(program.timezone)
        since, until = start_of_local_day(first, tz), end_of_local_day(last, tz)
        totals = uow.segments.nps_groups(program_id, code, since, until, None)
        groups = uow.segments.nps_groups(program_id, code, since, until, by) if by else []
    total = totals[0] if totals else (None, 0, 0, 0)
    report: dict[str, Any] = {"survey": code, "from": start.isoformat() if start else None,
                              "to": end.isoformat() if end else None, "timezone": program.timezone, "by": by,
                              **_counts(*total[1:])}  # fmt: skip
    if by is not None:
        report["groups"] = sorted(({"key": key, **_counts(n, p, d)} for key, n, p, d in groups),
                                  key=lambda g: (g["key"] is None, str(g["key"])))  # fmt: skip
    return report
