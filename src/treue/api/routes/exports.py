"""Bulk export of members, transactions and balances (issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["exports"], responses=PROBLEMS)
