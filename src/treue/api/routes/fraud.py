"""Fraud controls: velocity caps, anomaly alerts, held transactions (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["fraud"], responses=PROBLEMS)
