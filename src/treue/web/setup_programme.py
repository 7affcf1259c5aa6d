"""Set-up: programme settings, club plans, partners (issue 9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)
