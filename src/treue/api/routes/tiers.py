"""API routes of the tiers part of issue 4."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
