"""API keys, webhooks with delivery log and redelivery, imports with progress, the audit log (issue 9/10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)
