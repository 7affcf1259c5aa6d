"""API routes of the checkout part of issue 4."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
