"""Programme use cases: create, change and read a loyalty programme."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.control import exact_percent, share_bp_of_percent
from treue.domain.errors import Conflict, InvalidInput
from treue.domain.events import Event
from treue.domain.money import Money, Rounding
from treue.domain.programs import EarnBasis, ExpiryPolicy, Program, ReturnPolicy
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import program_view

ENUMS: dict[str, Any] = {
    "rounding": Rounding, "earn_basis": EarnBasis, "expiry_policy": ExpiryPolicy, "return_policy": ReturnPolicy,
}  # fmt: skip


def program_settings(values: dict[str, Any], currency: str) -> dict[str, Any]:
    """Turn user-facing settings (enums as strings, money as decimal strings) into Program fields."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in ENUMS:
            try:
                out[key] = ENUMS[key](value)
            except ValueError:
                allowed = ", ".join(m.value for m in ENUMS[key])
                raise InvalidInput(f"{key} must be one of: {allowed}") from None
        elif key == "point_value":  # money per `point_value_points` points
            out["point_value_minor"] = Money.parse(value, currency).minor
        elif key == "earn_per_amount":
            out["earn_per_minor"] = Money.parse(value, currency).minor
        elif key == "control_percent":  # the programme's control group (ROI, issue 6)
            out["control_bp"] = share_bp_of_percent(exact_percent(value))
        else:
            out[key] = value
    return out


def create_program(uow: UnitOfWork, name: str, currency: str, timezone: str, settings: dict[str, Any],
                   now: datetime, actor: str = "system") -> dict[str, Any]:  # fmt: skip
    program = Program(id=new_id(), name=name, currency=currency, timezone=timezone,
                      **program_settings(settings, currency))  # fmt: skip
    with uow:
        uow.programs.add(program, now)
        uow.ledger.open_system_accounts(program.id, now)
        view = program_view(program, now)
        record_audit(uow, program.id, actor, "program.create", "program", program.id, None, view, None, now)
        uow.emit(program.id, Event(events.PROGRAM_CREATED, {"program_id": str(program.id), "name": name}))
        uow.commit()
    return view


def update_program(uow: UnitOfWork, program_id: UUID, changes: dict[str, Any], now: datetime,
                   actor: str = "system") -> dict[str, Any]:  # fmt: skip
    if "currency" in changes and changes["currency"] is not None:
        raise InvalidInput("a programme's currency cannot change once it exists")
    with uow:
        before = uow.programs.get(program_id)
        program = dataclasses.replace(before, **program_settings(changes, before.currency))
        uow.programs.update(program, now)
        if program.negative_balance_allowed != before.negative_balance_allowed:
            owing = 0 if program.negative_balance_allowed else uow.programs.members_below_zero(program.id)
            if owing:  # the accounts' CHECK constraint would refuse it; say why instead of failing with a 500
                raise Conflict(f"{owing} member(s) have a negative balance; the return policy can forbid negative "
                               "balances once they are settled", members_below_zero=owing)  # fmt: skip
            uow.programs.set_negative_allowed(program.id, program.negative_balance_allowed)
        view = program_view(program)
        record_audit(uow, program.id, actor, "program.update", "program", program.id, program_view(before), view,
                     None, now)  # fmt: skip
        uow.commit()
    return view


def get_program(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    with uow:
        return program_view(uow.programs.get(program_id))


def list_programs(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return [program_view(program, created) for program, created in uow.programs.list()]
