"""Segments, targeted offers, recommendations, surveys and NPS (issue 8)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["segments"], responses=PROBLEMS)
