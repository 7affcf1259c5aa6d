"""tiers use cases (issue 4)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from treue.domain.benefits import Benefits
from treue.domain.programs import Program
from treue.services.ports import UnitOfWork


def tier_benefits(uow: UnitOfWork, program: Program, member_id: UUID, at: datetime) -> Benefits | None:
    """The benefits of the member's tier at `at`, or None."""
    return None
