"""Segments (issue 8): create, list, members, refresh (on demand and by the `segments` job), static import, and a
member's segments and facts.

A dynamic segment's membership is its condition over every member's facts as of the refresh; it is stored
(`segment_members`) so that rules, campaigns, missions and offers read `member.segments` with one indexed
look-up. A refresh is incremental in what it writes: it compares the new membership with the stored one and
inserts and deletes only the difference (a `segment.refreshed` event says how many joined and left).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.durations import zone
from treue.domain.errors import InvalidInput, SegmentNotStatic
from treue.domain.events import Event
from treue.domain.segments import (
    SegmentCondition,
    SegmentKind,
    days_between,
    member_facts,
    parse_segment,
    segment_condition,  # fmt: skip
)
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import iso

MAX_PAGE = 500
MAX_IMPORT = 100_000
IMPORT_MODES = ("add", "replace", "remove")
IDENTIFIER_COLUMNS = ("member_id", "card_number", "email", "id", "member")


def segment_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"code": row["code"], "kind": row["kind"], "name": row["name"], "description": row["description"],
            "condition": row["condition"], "members": row["members_count"], "refreshed_at": iso(row["refreshed_at"]),
            "created_at": iso(row["created_at"])}  # fmt: skip


def facts_of(row: dict[str, Any], now: datetime, tz: Any) -> dict[str, Any]:
    """The CEL facts of a member (see `treue.domain.segments`) from the store's row."""
    enrolled = row["enrolled_at"]
    alive = row["probability_alive"]
    values = dict(row)
    values.update(
        id=str(row["id"]), enrolled_at=enrolled.astimezone(tz).date().isoformat(),
        days_enrolled=max((now.astimezone(tz).date() - enrolled.astimezone(tz).date()).days, 0),
        birthday=row["birthday"].isoformat() if row["birthday"] else "", points=int(row["points"]),
        frequency=int(row["frequency"]), monetary=int(row["monetary"]), r=int(row["r"]), f=int(row["f"]),
        m=int(row["m"]),
        recency_days=days_between(row["last_at"], now) if row["last_at"] is not None else None,
        churn_risk=None if alive is None else round(1.0 - float(alive), 6),
        clv=None if row["expected_clv_minor"] is None else int(row["expected_clv_minor"]),
    )  # fmt: skip
    return member_facts(values)


def _members_matching(uow: UnitOfWork, program_id: UUID, condition: SegmentCondition, now: datetime, tz: Any,
                      member_ids: Sequence[UUID] | None = None) -> set[UUID]:  # fmt: skip
    return {row["id"] for row in uow.segments.facts(program_id, now, member_ids)
            if condition.holds(facts_of(row, now, tz))}  # fmt: skip


def _refresh(uow: UnitOfWork, program_id: UUID, row: dict[str, Any], now: datetime, tz: Any,
             member_ids: Sequence[UUID] | None = None) -> dict[str, Any]:  # fmt: skip
    """Bring a segment's stored members up to date (only `member_ids`, when given); write only the difference."""
    code = row["code"]
    stored = uow.segments.member_ids(program_id, code)
    added: set[UUID] = set()
    removed: set[UUID] = set()
    if row["kind"] == SegmentKind.DYNAMIC.value:
        condition = segment_condition(row["condition"])
        matching = _members_matching(uow, program_id, condition, now, tz, member_ids)
        scope = stored if member_ids is None else stored & set(member_ids)
        added, removed = matching - stored, scope - matching
        uow.segments.remove_members(program_id, code, removed)
        uow.segments.add_members(program_id, code, added, now)
    count = len(stored) + len(added) - len(removed)
    uow.segments.set_refreshed(program_id, code, count, now)
    if added or removed:
        uow.emit(program_id, Event(events.SEGMENT_REFRESHED, {"segment": code, "members": count,
                                                              "added": len(added), "removed": len(removed)}))  # fmt: skip
    return {"segment": code, "members": count, "added": len(added), "removed": len(removed), "refreshed_at": iso(now)}


def create_segment(uow: UnitOfWork, program_id: UUID, data: dict[str, Any], now: datetime, *,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """A segment; a dynamic one gets its members at once."""
    spec = parse_segment(data)
    with uow:
        program = uow.programs.get(program_id, cached=True)
        row = {"program_id": program_id, "code": spec.code, "kind": spec.kind.value, "name": spec.name,
               "description": spec.description, "condition": spec.condition.source if spec.condition else None,
               "members_count": 0, "refreshed_at": None, "created_at": now, "updated_at": now}  # fmt: skip
        uow.segments.add(row)
        if spec.kind is SegmentKind.DYNAMIC:
            _refresh(uow, program_id, row, now, zone(program.timezone))
        row = uow.segments.get(program_id, spec.code)
        view = segment_view(row)
        uow.emit(program_id, Event(events.SEGMENT_CREATED, {"segment": spec.code, "kind": spec.kind.value}))
        record_audit(uow, program_id, actor, "segment.create", "segment", spec.code, None, view, None, now)
        uow.commit()
    return view


def list_segments(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return [segment_view(row) for row in uow.segments.all(program_id)]


def get_segment(uow: UnitOfWork, program_id: UUID, code: str) -> dict[str, Any]:
    with uow:
        return segment_view(uow.segments.get(program_id, code))


def segment_members(uow: UnitOfWork, program_id: UUID, code: str, *, limit: int = 100,
                    offset: int = 0) -> dict[str, Any]:  # fmt: skip
    """A page of the segment's members (in member id order) and how many there are."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}, offset 0 or more")
    with uow:
        uow.segments.get(program_id, code)
        total = uow.segments.count(program_id, code)
        page = uow.segments.page(program_id, code, limit, offset)
    members = [{"member_id": str(r["member_id"]), "card_number": r["card_number"], "external_ref": r["external_ref"],
                "added_at": iso(r["added_at"])} for r in page]  # fmt: skip
    return {"segment": code, "total": total, "limit": limit, "offset": offset, "members": members}


def refresh_segment(uow: UnitOfWork, program_id: UUID, code: str, now: datetime, *,
                    member_ids: Sequence[UUID] | None = None) -> dict[str, Any]:  # fmt: skip
    """Recompute a segment now (only `member_ids`, when given: e.g. after their purchases); a static segment is
    recounted. Concurrent refreshes of one segment queue on its row."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        row = uow.segments.get(program_id, code, lock=True)
        result = _refresh(uow, program_id, row, now, zone(program.timezone), member_ids)
        uow.commit()
    return result


def refresh_segments(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None) -> dict[str, Any]:
    """The `segments` job: every dynamic segment of each programme (or one), one transaction per segment."""
    with uow_factory(read_only=True) as uow:
        programs = [uow.programs.get(program_id)] if program_id else [p for p, _ in uow.programs.list()]
        codes = {p.id: [r["code"] for r in uow.segments.all(p.id) if r["kind"] == SegmentKind.DYNAMIC.value]
                 for p in programs}  # fmt: skip
    refreshed = added = removed = 0
    for program in programs:
        for code in codes[program.id]:
            result = refresh_segment(uow_factory(), program.id, code, now)
            refreshed, added, removed = refreshed + 1, added + result["added"], removed + result["removed"]
    return {"programs": len(programs), "segments": refreshed, "added": added, "removed": removed}


def identifiers_from_csv(content: str) -> list[str]:
    """Member identifiers from CSV: a header naming member_id, card_number or email (the first such column is
    read), or one identifier per line without a header."""
    rows = [row for row in csv.reader(io.StringIO(content)) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in IDENTIFIER_COLUMNS if name in header), None)
    if column is None:
        return [row[0].strip() for row in rows if row[0].strip()]
    return [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]


def import_members(uow: UnitOfWork, program_id: UUID, code: str, identifiers: Sequence[str], now: datetime, *,
                   mode: str = "add", actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Add, replace or remove a static segment's members by member id, card number or email. Identifiers that
    name no member are listed in `unknown` (the first 100) and change nothing."""
    if mode not in IMPORT_MODES:
        raise InvalidInput(f"mode is one of {', '.join(IMPORT_MODES)}", field="mode")
    values = list(dict.fromkeys(v.strip() for v in identifiers if isinstance(v, str) and v.strip()))
    if len(values) > MAX_IMPORT:
        raise InvalidInput(f"at most {MAX_IMPORT} identifiers per import", field="members")
    with uow:
        uow.programs.get(program_id, cached=True)
        row = uow.segments.get(program_id, code, lock=True)
        if row["kind"] != SegmentKind.STATIC.value:
            raise SegmentNotStatic(f"{code!r} is a dynamic segment: its members follow its condition")
        found = uow.segments.resolve(program_id, values)
        named = set().union(*found.values()) if found else set()
        unknown = [v for v in values if v not in found]
        stored = uow.segments.member_ids(program_id, code)
        if mode == "remove":
            added, removed = set(), stored & named
        elif mode == "replace":
            added, removed = named - stored, stored - named
        else:
            added, removed = named - stored, set()
        uow.segments.remove_members(program_id, code, removed)
        uow.segments.add_members(program_id, code, added, now)
        count = len(stored) + len(added) - len(removed)
        uow.segments.set_refreshed(program_id, code, count, now)
        if added or removed:
            uow.emit(program_id, Event(events.SEGMENT_REFRESHED, {"segment": code, "members": count,
                                                                  "added": len(added), "removed": len(removed)}))  # fmt: skip
        record_audit(uow, program_id, actor, f"segment.import.{mode}", "segment", code, None,
                     {"added": len(added), "removed": len(removed), "unknown": len(unknown)}, None, now)  # fmt: skip
        uow.commit()
    return {"segment": code, "mode": mode, "members": count, "added": len(added), "removed": len(removed),
            "matched": len(values) - len(unknown), "unknown": unknown[:100], "unknown_count": len(unknown)}  # fmt: skip


def member_segments(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> dict[str, Any]:
    """The member's segments (as stored by the last refresh) and their facts now, as segment conditions see them."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        codes = uow.segments.codes_of(program_id, member_id)
        rows = uow.segments.facts(program_id, now, [member_id])
    facts = facts_of(rows[0], now, zone(program.timezone)) if rows else {}
    return {"member_id": str(member_id), "segments": list(codes), "facts": facts}
