"""Missions, streaks, badges, instant wins, leaderboards (issue 7)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["gamification"], responses=PROBLEMS)
