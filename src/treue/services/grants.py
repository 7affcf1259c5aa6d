"""Rule grants made real: a `grant_reward` or `grant_coupon` effect issues the member's coupon in the
transaction that earned it (issue 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.services.ports import UnitOfWork


def fulfil_grants(uow: UnitOfWork, program_id: UUID, member_id: UUID, grants: list[dict[str, Any]],
                  source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """Issue what the rules granted."""
