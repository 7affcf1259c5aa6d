"""Bulk export (issue 5): members, transactions and balances as CSV or JSON Lines, streamed.

`start_export` checks the request and counts what will be exported (for a progress bar) before anything is
written; its `chunks` then stream text from one read-only transaction, a chunk of rows at a time, so memory
stays flat. Kinds:

- `members`: one row per member (enrolled in [from, to) if given).
- `transactions`: the ledger. CSV has one row per posting (a leg: which account moved by how much), with its
  transfer's columns repeated, so that a spreadsheet can sum any account or kind; JSON Lines has one object
  per transfer with its `postings`. Amounts are signed: + raises the account's balance. Postings of a transfer
  sum to zero per unit. Transfers booked (recorded) in [from, to).
- `balances`: one row per account as of now: members' points and wallet accounts (their cached balances) and
  then the programme's own accounts (issuance, redemption, breakage..., summed from postings). Per unit the
  rows sum to zero; the members' rows are the programme's liability.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any
from uuid import UUID

from treue.domain.errors import ExportRangeInvalid, InvalidInput
from treue.domain.ledger import POINTS
from treue.domain.money import Money
from treue.services.ports import UnitOfWorkFactory
from treue.services.views import iso

KINDS = ("members", "transactions", "balances")
FORMATS = ("csv", "jsonl")
MEMBER_COLUMNS = ("id", "card_number", "external_ref", "first_name", "last_name", "email", "phone", "birthday",
                  "locale", "status", "enrolled_at", "updated_at", "attributes")  # fmt: skip
TRANSFER_COLUMNS = ("transfer_id", "recorded_at", "occurred_at", "kind", "member_id", "card_number", "purchase_id",
                    "external_order_id", "partner", "store", "redemption_id", "corrects_id", "actor", "reason")  # fmt: skip
POSTING_COLUMNS = ("account_id", "account_kind", "account_member_id", "unit", "amount")
BALANCE_COLUMNS = ("account_id", "kind", "unit", "member_id", "card_number", "external_ref", "balance", "amount")
COLUMNS = {"members": MEMBER_COLUMNS, "transactions": TRANSFER_COLUMNS + POSTING_COLUMNS, "balances": BALANCE_COLUMNS}
UNITS = {"members": "members", "transactions": "transfers", "balances": "accounts"}
_NUMBER = re.compile(r"^[+-]?\d[\d.]*$")


@dataclass
class Export:
    kind: str
    format: str
    total: int  # how many members, transfers or accounts `chunks` will go through
    unit: str
    chunks: Iterator[str]

    @property
    def media_type(self) -> str:
        return "text/csv; charset=utf-8" if self.format == "csv" else "application/jsonl"

    @property
    def filename(self) -> str:
        return f"{self.kind}.{self.format}"


def start_export(factory: UnitOfWorkFactory, program_id: UUID, kind: str, fmt: str, start: datetime | None = None,
                 end: datetime | None = None, progress: Callable[[int], None] | None = None) -> Export:  # fmt: skip
    if kind not in KINDS:
        raise InvalidInput(f"export kind must be one of: {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise InvalidInput(f"export format must be one of: {', '.join(FORMATS)}")
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise ExportRangeInvalid(f"{name} needs a UTC offset (e.g. 2026-03-01T00:00:00Z)")
    if start is not None and end is not None and start >= end:
        raise ExportRangeInvalid("from must lie before to")
    if kind == "balances" and (start is not None or end is not None):
        raise ExportRangeInvalid("balances are exported as of now; from/to apply to members and transactions")
    with factory(read_only=True) as uow:
        uow.programs.get(program_id)  # NotFound for an unknown programme
        reads = uow.exports
        if kind == "members":
            total = reads.count_members(program_id, start, end)
        elif kind == "transactions":
            total = reads.count_transfers(program_id, start, end)
        else:
            total = reads.count_accounts(program_id)
    chunks = _chunks(factory, program_id, kind, fmt, start, end, progress or (lambda n: None))
    return Export(kind, fmt, total, UNITS[kind], chunks)


def _chunks(factory: UnitOfWorkFactory, program_id: UUID, kind: str, fmt: str, start: datetime | None,
            end: datetime | None, progress: Callable[[int], None]) -> Iterator[str]:  # fmt: skip
    columns = COLUMNS[kind]
    with factory(read_only=True) as uow:
        reads = uow.exports
        if fmt == "csv":
            yield _csv(columns)
        if kind == "members":
            for row in reads.members(program_id, start, end):
                yield _out(fmt, columns, _member(row))
                progress(1)
        elif kind == "transactions":
            for _, legs in groupby(reads.postings(program_id, start, end), key=lambda r: r["transfer_id"]):
                rows = list(legs)  # one transfer's postings (a handful)
                head = _transfer(rows[0])
                if fmt == "csv":
                    yield "".join(_csv([(head | _posting(r))[c] for c in columns]) for r in rows)
                else:
                    yield _json(head | {"explanation": rows[0]["explanation"], "postings": [_posting(r) for r in rows]})
                progress(1)
        else:
            for row in reads.member_balances(program_id):
                yield _out(fmt, columns, _balance(row))
                progress(1)
            for row in reads.system_balances(program_id):
                yield _out(fmt, columns, _balance(row | {"member_id": None, "card_number": None, "external_ref": None}))
                progress(1)


def _member(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "card_number": row["card_number"], "external_ref": row["external_ref"],
            "first_name": row["first_name"], "last_name": row["last_name"], "email": row["email"],
            "phone": row["phone"], "birthday": row["birthday"].isoformat() if row["birthday"] else None,
            "locale": row["locale"], "status": row["status"], "enrolled_at": iso(row["enrolled_at"]),
            "updated_at": iso(row["updated_at"]), "attributes": row["attributes"] or {}}  # fmt: skip


def _transfer(row: dict[str, Any]) -> dict[str, Any]:
    explanation = row["explanation"] or {}
    return {"transfer_id": str(row["transfer_id"]), "recorded_at": iso(row["created_at"]),
            "occurred_at": iso(row["occurred_at"]), "kind": row["kind"], "member_id": _id(row["member_id"]),
            "card_number": row["card_number"], "purchase_id": _id(row["purchase_id"]),
            "external_order_id": row["external_order_id"] or explanation.get("order"), "partner": row["partner"],
            "store": row["store"], "redemption_id": _id(row["redemption_id"]), "corrects_id": _id(row["corrects_id"]),
            "actor": row["actor"], "reason": explanation.get("reason") or explanation.get("event")}  # fmt: skip


def _posting(row: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": str(row["account_id"]), "account_kind": row["account_kind"],
            "account_member_id": _id(row["account_member_id"]), "unit": row["unit"], "amount": int(row["amount"])}  # fmt: skip


def _balance(row: dict[str, Any]) -> dict[str, Any]:
    balance = int(row["balance"])
    unit = row["unit"]
    return {"account_id": str(row["account_id"]), "kind": row["kind"], "unit": unit,
            "member_id": _id(row["member_id"]), "card_number": row["card_number"], "external_ref": row["external_ref"],
            "balance": balance, "amount": str(balance) if unit == POINTS else Money(balance, unit).format()}  # fmt: skip


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _out(fmt: str, columns: tuple[str, ...], view: dict[str, Any]) -> str:
    return _json(view) if fmt == "jsonl" else _csv([view[c] for c in columns])


def _json(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def _csv(values: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell. Text that a spreadsheet would run as a formula (=, +, -, @ first) gets a leading apostrophe
    (OWASP's advice); numbers, and texts that read as numbers such as +4917..., stay as they are."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.match(value):
        return "'" + value
    return value
