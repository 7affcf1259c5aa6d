"""API routes of the shops part of issue 5."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
