"""Tills: card images, offline batch upload and its report (issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["tills"], responses=PROBLEMS)
