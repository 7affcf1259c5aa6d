"""Notifications, consents and the member inbox (issue 8)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["notifications"], responses=PROBLEMS)
