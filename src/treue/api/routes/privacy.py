"""GDPR export and erasure, retention (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

from treue.api.schemas.common import PROBLEMS

router = APIRouter(tags=["privacy"], responses=PROBLEMS)
