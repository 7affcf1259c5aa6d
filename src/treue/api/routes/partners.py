"""API routes of the partners part of issue 5."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
