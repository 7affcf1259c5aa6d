"""Bulk import of purchases from CSV: validate every row first, then record each in its own transaction.

Header: member,order_id,occurred_at,total,currency[,items,channel,partner]
- member: a card number, a member id, or the shop's external reference
- total: major units as a decimal string ("49.90")
- items (optional): SKU:QTY:UNIT_PRICE[:CATEGORY] entries separated by "|"
Re-running a file changes nothing: orders already recorded are counted as `already_imported`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.errors import DomainError, DuplicateOrder, InvalidInput, NotFound
from treue.domain.members import luhn_valid
from treue.domain.money import Money
from treue.services.members import EnrolMember, enrol_member
from treue.services.ports import UnitOfWorkFactory
from treue.services.purchases import LineInput, RecordPurchase, record_purchase

REQUIRED = ("member", "order_id", "occurred_at", "total", "currency")
OPTIONAL = ("items", "channel", "partner")


@dataclass
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    already_imported: int = 0
    members_created: int = 0
    points: int = 0
    errors: list[RowError] = field(default_factory=list)
    aborted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": self.imported, "already_imported": self.already_imported,
                "members_created": self.members_created, "points": self.points, "aborted": self.aborted,
                "errors": [{"line": e.line, "message": e.message} for e in self.errors]}  # fmt: skip


@dataclass
class _Row:
    line: int
    member: str
    command: RecordPurchase


def _parse_items(text: str, currency: str) -> list[LineInput]:
    lines = []
    for entry in filter(None, (x.strip() for x in text.split("|"))):
        parts = entry.split(":")
        if len(parts) not in (3, 4):
            raise InvalidInput(f"item '{entry}' is not SKU:QTY:UNIT_PRICE[:CATEGORY]")
        try:
            quantity = int(parts[1])
        except ValueError:
            raise InvalidInput(f"item '{entry}': quantity is not a whole number") from None
        Money.parse(parts[2], currency)
        lines.append(LineInput(parts[0], quantity, parts[2], parts[3] if len(parts) == 4 else None))
    return lines


def parse_rows(reader: Iterable[dict[str, str]], report: ImportReport) -> list[_Row]:
    rows = []
    for index, raw in enumerate(reader, start=2):  # line 1 is the header
        report.rows += 1
        try:
            values = {k: (v or "").strip() for k, v in raw.items() if k}
            missing = [name for name in REQUIRED if not values.get(name)]
            if missing:
                raise InvalidInput(f"missing {', '.join(missing)}")
            try:
                occurred = datetime.fromisoformat(values["occurred_at"].replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput(f"occurred_at '{values['occurred_at']}' is not an ISO 8601 time") from None
            Money.parse(values["total"], values["currency"])
            command = RecordPurchase(
                external_order_id=values["order_id"], total=values["total"], currency=values["currency"],
                occurred_at=occurred, partner=values.get("partner") or "default",
                channel=values.get("channel") or "store", lines=_parse_items(values.get("items", ""), values["currency"]),
            )  # fmt: skip
            rows.append(_Row(index, values["member"], command))
        except DomainError as error:
            report.errors.append(RowError(index, error.detail))
    return rows


def _identify(member: str, command: RecordPurchase) -> None:
    digits = member.replace(" ", "")
    try:
        command.member_id = UUID(member)
        return
    except ValueError:
        pass
    if len(digits) == 19 and luhn_valid(digits):
        command.card_number = digits
    else:
        command.external_ref = member


def import_purchases(uow: UnitOfWorkFactory, program_id: UUID, lines: Iterable[str], clock: Callable[[], datetime],
                     *, create_members: bool = False, on_error: str = "skip",
                     progress: Callable[[int], None] | None = None) -> ImportReport:  # fmt: skip
    """Record each CSV row's purchase (and member, if asked), each in its own transaction. Each row is stamped
    with the clock when it is written, not when the import began: a long import must not write rows whose
    `created_at` is hours old when they commit (the KPI roll-up reads rows by when they were recorded)."""
    if on_error not in ("skip", "abort"):
        raise InvalidInput("on_error must be skip or abort")
    report = ImportReport()
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidInput(f"the CSV header lacks {', '.join(missing)} (expected {','.join(REQUIRED)})")
    rows = parse_rows(reader, report)
    for row in rows:
        _identify(row.member, row.command)
    known = _known_members(uow, program_id, rows, report, create_members)
    if report.errors and on_error == "abort":
        report.aborted = True
        return report
    failed_lines = {e.line for e in report.errors}
    for row in rows:
        if row.line in failed_lines:
            continue
        try:
            if row.command.external_ref and row.command.external_ref not in known:
                created = enrol_member(uow(), program_id, EnrolMember(external_ref=row.command.external_ref), clock())
                known.add(row.command.external_ref)
                report.members_created += 1
                assert created["external_ref"] == row.command.external_ref
            result = record_purchase(uow(), program_id, row.command, clock())
            report.imported += 1
            report.points += result["points_earned"]
        except DuplicateOrder:
            report.already_imported += 1
        except DomainError as error:
            report.errors.append(RowError(row.line, f"{error.code}: {error.detail}"))
        if progress:
            progress(1)
    report.errors.sort(key=lambda e: e.line)
    return report


def _known_members(uow: UnitOfWorkFactory, program_id: UUID, rows: list[_Row], report: ImportReport,
                   create_members: bool) -> set[str]:  # fmt: skip
    """Check every row's member before anything is written; return the external refs that exist."""
    known: set[str] = set()
    with uow(read_only=True) as u:
        for row in rows:
            c = row.command
            try:
                if c.member_id:
                    u.members.get(program_id, c.member_id)
                elif c.card_number:
                    u.members.id_by(program_id, card_number=c.card_number)
                elif c.external_ref and c.external_ref not in known:
                    u.members.id_by(program_id, external_ref=c.external_ref)
                    known.add(c.external_ref)
            except NotFound:
                if not (c.external_ref and create_members):
                    report.errors.append(RowError(row.line, f"no member '{row.member}'"
                                                  + ("" if c.external_ref is None else " (use --create-members)")))  # fmt: skip
    return known
