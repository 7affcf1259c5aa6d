"""Portal: download my data, delete my account (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/portal", include_in_schema=False)
