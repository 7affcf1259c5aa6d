"""The benefits in force for a member at an instant: from the member's tier and from a club subscription."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from treue.domain.benefits import Benefits
from treue.domain.programs import Program
from treue.services.ports import UnitOfWork


def member_benefits(uow: UnitOfWork, program: Program, member_id: UUID, at: datetime) -> list[Benefits]:
    """Every source of benefits in force for the member at `at` (tier first, then club)."""
    from treue.services import club, tiers  # each part provides its own source

    found = [tiers.tier_benefits(uow, program, member_id, at), club.club_benefits(uow, program, member_id, at)]
    return [b for b in found if b is not None]
