"""Card-linked earning: linked cards, card feeds, offers (issue 11)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["cards"], responses=PROBLEMS)
