"""The simulator page: pick a draft, run, compare with today's programme (issue 9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)
