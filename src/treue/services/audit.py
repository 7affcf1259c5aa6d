"""The audit trail: who changed what, before and after, and why. Written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.ids import new_id
from treue.services.ports import UnitOfWork


def record_audit(uow: UnitOfWork, program_id: UUID, actor: str, action: str, target_type: str,
                 target_id: UUID | str, before: Any, after: Any, reason: str | None, now: datetime) -> None:  # fmt: skip
    uow.audit.add({"program_id": program_id, "id": new_id(), "at": now, "actor": actor, "action": action,
                   "target_type": target_type, "target_id": str(target_id), "before": before, "after": after,
                   "reason": reason})  # fmt: skip


def list_audit(uow: UnitOfWork, program_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
    with uow:
        rows = uow.audit.list(program_id, limit)
    return [{**row, "id": str(row["id"]), "program_id": str(row["program_id"]), "at": row["at"].isoformat()}
            for row in rows]  # fmt: skip
