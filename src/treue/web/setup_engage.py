"""Set-up: missions, badges, segments, offers, notification templates with preview (issue 9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)
