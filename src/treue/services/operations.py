"""Use cases of the admin's operations pages that no other area has: the audit log filtered and paged, and the
audit entry of a bulk import started from the web UI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.services.audit import list_audit, record_audit
from treue.services.ports import UnitOfWork

# The audit repository reads the newest entries first; filters look through this many of them. A programme with
# more entries than this sees the older ones through the API (GET /audit) or a database export.
AUDIT_SCAN = 5000
PER_PAGE = 50


@dataclass(frozen=True)
class AuditPage:
    entries: list[dict[str, Any]]
    page: int
    has_next: bool
    matched: int
    scanned: int
    truncated: bool  # the scan stopped at AUDIT_SCAN entries: older ones were not searched


def audit_page(uow: UnitOfWork, program_id: UUID, *, actor: str = "", action: str = "", target: str = "",
               page: int = 1, per_page: int = PER_PAGE) -> AuditPage:  # fmt: skip
    """Newest first; each filter is a case-insensitive part of the actor, the action, or the target's type or id."""
    rows = list_audit(uow, program_id, AUDIT_SCAN)
    wanted = [(actor.strip().lower(), ("actor",)), (action.strip().lower(), ("action",)),
              (target.strip().lower(), ("target_type", "target_id"))]  # fmt: skip
    found = [row for row in rows
             if all(not text or any(text in str(row.get(field) or "").lower() for field in fields)
                    for text, fields in wanted)]  # fmt: skip
    page = max(page, 1)
    start = (page - 1) * per_page
    return AuditPage(found[start:start + per_page], page, len(found) > start + per_page, len(found), len(rows),
                     len(rows) >= AUDIT_SCAN)  # fmt: skip


def record_import(uow: UnitOfWork, program_id: UUID, actor: str, filename: str, report: dict[str, Any],
                  now: datetime) -> None:  # fmt: skip
    """A bulk import is an administrative act: who imported which file, with what outcome (not the rows)."""
    summary = {k: report[k] for k in ("rows", "imported", "already_imported", "members_created", "points", "aborted")}
    with uow:
        record_audit(uow, program_id, actor, "purchases.import", "import", filename[:64] or "upload", None,
                     summary | {"refused": len(report["errors"])}, None, now)  # fmt: skip
        uow.commit()
