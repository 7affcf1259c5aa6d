"""What referrals, social rewards and gamification make of a member's purchase, event or refund.

The purchase and event use cases call these inside their own transaction, after the earn is posted, so that
whatever they award (a completed referral's rewards, mission progress, a badge, an instant win) commits or rolls
back with the purchase. Each returns additions to the use case's response (empty when nothing applies) and must
cost no query for a programme that uses none of it (see the cached configuration each part keeps).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rules.context import EventFacts
from treue.domain.rules.evaluator import Evaluation
from treue.services import gamification, referrals
from treue.services.ports import UnitOfWork


def after_event(uow: UnitOfWork, program: Program, member_id: UUID, facts: EventFacts, evaluation: Evaluation,
                source: dict[str, Any], now: datetime) -> dict[str, Any]:  # fmt: skip
    """After a member's purchase or custom event earned: `source` names it ({"purchase_id": ...} or
    {"event_id": ..., "event": name})."""
    view: dict[str, Any] = {}
    view |= referrals.on_event(uow, program, member_id, facts, evaluation, source, now)
    view |= gamification.on_event(uow, program, member_id, facts, evaluation, source, now)
    return view


def after_refund(uow: UnitOfWork, program: Program, purchase: Purchase, refund: dict[str, Any],
                 now: datetime) -> dict[str, Any]:  # fmt: skip
    """After a refund of a member's purchase was recorded (`refund` is its stored row)."""
    if purchase.member_id is None:
        return {}
    view: dict[str, Any] = {}
    view |= referrals.on_refund(uow, program, purchase, refund, now)
    view |= gamification.on_refund(uow, program, purchase, refund, now)
    return view
