"""Portal: offers, missions, streaks, badges, referral link, club, NPS survey, preferences, inbox (issue 9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/portal", include_in_schema=False)
