"""Fraud review: held transactions to approve or reject, anomaly alerts (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)
