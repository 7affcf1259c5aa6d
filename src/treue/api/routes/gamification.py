"""Missions, streaks, badges, instant wins, leaderboards (issue 7).

Definitions are the loyalty manager's (admin key); a member's progress, badges and streaks are read with any key
of the programme; opting in and leaderboard consent are the member's (through the till, shop or app keys).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, WRITE, Context
from treue.api.routes.common import canonical, given
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.gamification import (
    BadgeCreate,
    BadgeGrant,
    BadgeOut,
    BadgeUpdate,
    DrawOut,
    InstantWinCreate,
    InstantWinOut,
    InstantWinUpdate,
    LeaderboardConsentIn,
    LeaderboardConsentOut,
    LeaderboardOut,
    MemberBadgeOut,
    MemberMissionOut,
    MemberStreakOut,
    MissionCreate,
    MissionOut,
    MissionUpdate,
    StreakCreate,
    StreakOut,
    StreakUpdate,
)
from treue.services import gamification as cases

router = APIRouter(tags=["gamification"], responses=PROBLEMS)
Locale = Query(None, pattern="^(de|en)$", description="the label's language (default: the member's)")


def _values(body: Any) -> dict[str, Any]:
    """What the client sent, nested models included, without the fields it left out."""
    data: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    return data


# -- missions ----------------------------------------------------------------------------------------------------
@router.post("/missions", status_code=201, response_model=MissionOut)
def create_mission(body: MissionCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """A mission: a goal (count of matching events or sum of purchases, CEL filter) in a window (calendar week or
    month in the programme's timezone, N days from opt-in, or campaign dates), with audience and reward."""
    values = _values(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_mission(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/missions", response_model=list[MissionOut])
def list_missions(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_missions(ctx.uow(), ctx.program_id)


@router.get("/missions/{mission_code}", response_model=MissionOut)
def get_mission(mission_code: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_mission(ctx.uow(), ctx.program_id, mission_code)


@router.patch("/missions/{mission_code}", response_model=MissionOut)
def update_mission(mission_code: str, body: MissionUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change texts, dates, audience, reward or availability (goal and window are fixed)."""
    return cases.update_mission(ctx.uow(), ctx.program_id, mission_code, _values(body), ctx.now(),
                                actor=ctx.principal.actor)  # fmt: skip


@router.get("/members/{member_id}/missions", response_model=list[MemberMissionOut])
def member_missions(member_id: UUID, locale: str | None = Locale, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The missions open to the member with progress in the current window: current, target, the window in the
    programme's timezone and a label in German and English ("2 of 3 purchases in May 2026")."""
    return cases.member_missions(ctx.uow(), ctx.program_id, member_id, ctx.now(), locale)


@router.post("/members/{member_id}/missions/{mission_code}/opt-in", response_model=MemberMissionOut)
def opt_in(member_id: UUID, mission_code: str, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """The member joins a mission that needs an opt-in (idempotent: the first opt-in's time stands)."""
    return idempotency.run(ctx, b"", lambda uow: cases.opt_in(uow, ctx.program_id, member_id, mission_code,
                                                              ctx.now()), status=200)  # fmt: skip


# -- streaks -----------------------------------------------------------------------------------------------------
@router.post("/streaks", status_code=201, response_model=StreakOut)
def create_streak(body: StreakCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """A streak: consecutive days, weeks or months with a qualifying event; milestone rewards; optional freeze."""
    values = _values(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_streak(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/streaks", response_model=list[StreakOut])
def list_streaks(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_streaks(ctx.uow(), ctx.program_id)


@router.patch("/streaks/{streak_code}", response_model=StreakOut)
def update_streak(streak_code: str, body: StreakUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    return cases.set_streak_active(ctx.uow(), ctx.program_id, streak_code, body.active, ctx.now(),
                                   actor=ctx.principal.actor)  # fmt: skip


@router.get("/members/{member_id}/streaks", response_model=list[MemberStreakOut])
def member_streaks(member_id: UUID, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.member_streaks(ctx.uow(), ctx.program_id, member_id, ctx.now())


# -- badges ------------------------------------------------------------------------------------------------------
@router.post("/badges", status_code=201, response_model=BadgeOut)
def create_badge(body: BadgeCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    values = _values(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_badge(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/badges", response_model=list[BadgeOut])
def list_badges(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """Every badge with its holders and whether that makes it rare."""
    return cases.list_badges(ctx.uow(), ctx.program_id)


@router.patch("/badges/{badge_code}", response_model=BadgeOut)
def update_badge(badge_code: str, body: BadgeUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    return cases.update_badge(ctx.uow(), ctx.program_id, badge_code, given(body), ctx.now(),
                              actor=ctx.principal.actor)  # fmt: skip


@router.get("/members/{member_id}/badges", response_model=list[MemberBadgeOut])
def member_badges(member_id: UUID, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The badges on the member's profile."""
    return cases.member_badges(ctx.uow(), ctx.program_id, member_id)


@router.post("/members/{member_id}/badges", status_code=201, response_model=MemberBadgeOut)
def grant_badge(member_id: UUID, body: BadgeGrant, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Give a member a badge by hand (idempotent: a member holds a badge once; `awarded` says if this did)."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.grant_badge(
        uow, ctx.program_id, member_id, body.badge, ctx.now(), body.reason, actor=ctx.principal.actor))  # fmt: skip


# -- instant wins -------------------------------------------------------------------------------------------------
@router.post("/instant-wins", status_code=201, response_model=InstantWinOut)
def create_instant_win(body: InstantWinCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """An instant-win campaign: prizes with probabilities, totals and daily caps, a points budget, dates."""
    values = _values(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_instant_win(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/instant-wins", response_model=list[InstantWinOut])
def list_instant_wins(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_instant_wins(ctx.uow(), ctx.program_id)


@router.get("/instant-wins/{instant_win_code}", response_model=InstantWinOut)
def get_instant_win(instant_win_code: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """A campaign with its counters (prizes given in total and today, points given, draws by outcome)."""
    return cases.get_instant_win(ctx.uow(), ctx.program_id, instant_win_code, ctx.now())


@router.patch("/instant-wins/{instant_win_code}", response_model=InstantWinOut)
def update_instant_win(instant_win_code: str, body: InstantWinUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change dates, budget, prizes (a new odds version) or availability."""
    return cases.update_instant_win(ctx.uow(), ctx.program_id, instant_win_code, _values(body), ctx.now(),
                                    actor=ctx.principal.actor)  # fmt: skip


@router.get("/instant-wins/{instant_win_code}/draws", response_model=list[DrawOut])
def instant_win_draws(instant_win_code: str, limit: int = Query(100, ge=1, le=1000),
                      ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:  # fmt: skip
    """The audit trail: each draw's random number, odds version and outcome."""
    return cases.instant_win_draws(ctx.uow(), ctx.program_id, instant_win_code, limit)


# -- leaderboards -------------------------------------------------------------------------------------------------
@router.post("/members/{member_id}/leaderboard-consent", response_model=LeaderboardConsentOut)
def leaderboard_consent(member_id: UUID, body: LeaderboardConsentIn, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """The member agrees (or stops agreeing) to be shown on leaderboards, optionally under a nickname."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.set_leaderboard_consent(
        uow, ctx.program_id, member_id, body.consented, body.nickname, ctx.now()), status=200)  # fmt: skip


@router.get("/members/{member_id}/leaderboard-consent", response_model=LeaderboardConsentOut)
def get_leaderboard_consent(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_leaderboard_consent(ctx.uow(), ctx.program_id, member_id)


@router.get("/leaderboards/missions/{mission_code}", response_model=LeaderboardOut)
def mission_leaderboard(mission_code: str, window: str | None = Query(None, max_length=32),
                        limit: int = Query(10, ge=1, le=100), locale: str = Query("en", pattern="^(de|en)$"),
                        ctx: Context = Depends(READ)) -> dict[str, Any]:  # fmt: skip
    """Members who agreed, ranked by progress in the mission's window (current by default); display names only."""
    return cases.mission_leaderboard(ctx.uow(), ctx.program_id, mission_code, ctx.now(), window, limit, locale)


@router.get("/leaderboards/points", response_model=LeaderboardOut)
def points_leaderboard(period: str = Query("month", pattern="^(week|month)$"),
                       day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
                       limit: int = Query(10, ge=1, le=100), locale: str = Query("en", pattern="^(de|en)$"),
                       ctx: Context = Depends(READ)) -> dict[str, Any]:  # fmt: skip
    """Members who agreed, ranked by points earned in a calendar week or month of the programme."""
    return cases.points_leaderboard(ctx.uow(), ctx.program_id, ctx.now(), period, day, limit, locale)
