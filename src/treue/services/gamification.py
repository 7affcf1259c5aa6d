"""Missions, streaks, badges, instant wins and leaderboards (issue 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rules.context import EventFacts
from treue.domain.rules.evaluator import Evaluation
from treue.services.ports import UnitOfWork


def on_event(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, evaluation: Evaluation,
             source: dict[str, Any], now: datetime) -> dict[str, Any]:  # fmt: skip
    return {}


def on_refund(uow: UnitOfWork, program: Program, purchase: Purchase, refund: dict[str, Any],
              now: datetime) -> dict[str, Any]:  # fmt: skip
    return {}


def fulfil_hooks(uow: UnitOfWork, program_id: UUID, member_id: UUID, hooks: list[dict[str, Any]],
                 source: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """Apply the rule hooks that gamification acts on (badge, mission_progress) in the rule's transaction."""
