"""Referrals and moderation of social rewards (issue 7)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["referrals"], responses=PROBLEMS)
