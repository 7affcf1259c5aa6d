"""Till use cases (issue 5): identify a member, draw their card's codes, and apply an offline till's batch.

Identification takes what the cashier has: a typed card number, a scanned QR code or barcode (whose payload is
the card number's digits, see `domain.tills`), a phone number or an email address.

An offline batch is a JSON Lines file of purchases, refunds and coupon redemptions recorded while the till had
no connection. Each line carries its own idempotency key and original time, and is applied in its own
transaction through the ordinary use cases (`record_purchase`, `refund_purchase`, `consume_coupon`), so a line
earns, refunds and consumes exactly as it would have online. A refused line is reported with its stable error
code and the rest are applied. Purchases go first, then refunds and coupons, each in file order (so a refund
written before its purchase in the same file finds it). The first result of a key (applied, or a final
refusal) is kept and replayed to every later line with that key: uploading a file again changes nothing. A
refund whose order is not recorded yet (`till_order_unknown`) is the exception: it is not final, and uploading
it again once its purchase has arrived applies it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import barcode
import qrcode
import qrcode.image.svg
from barcode.writer import ImageWriter, SVGWriter
from sqlalchemy.exc import IntegrityError

from treue.domain import events
from treue.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    TillBatchTooLarge,
    TillKeyReused,
    TillLineInvalid,
    TillOrderUnknown,
)
from treue.domain.events import Event
from treue.domain.members import normalise_email, normalise_phone
from treue.domain.tills import (
    BadLine,
    LineKind,
    Scan,
    Symbology,
    TillLine,
    application_order,
    card_numbers_to_try,
    card_payload,
    ean13_of,
    read_line,
    read_scan,
)
from treue.ids import new_id
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.purchases import LineInput, RecordPurchase, RefundPurchase, record_purchase, refund_purchase
from treue.services.rewards import consume_coupon
from treue.services.views import iso

MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_BATCH_LINES = 10_000
MAX_MATCHES = 10
REPORT_COLUMNS = ("line", "key", "type", "occurred_at", "store", "cashier", "outcome", "code", "detail", "reference",
                  "points", "replay_of_batch", "replay_of_line")  # fmt: skip


# -- identification --------------------------------------------------------------------------------------------
def identify(uow: UnitOfWork, program_id: UUID, now: datetime, *, scan: str | None = None,
             card_number: str | None = None, phone: str | None = None,
             email: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The members a till's input names, each with card, name, status, balance and tier. Give one of: `scan`
    (anything scanned or typed: card number, QR/barcode payload, EAN-13, phone, email), `card_number`, `phone`,
    `email`. A card number finds at most one member; a phone number or an email may be shared. Nothing given:
    nothing matches."""
    given = [x for x in (scan, card_number, phone, email) if x]
    if len(given) > 1:
        raise InvalidInput("give one of scan, card_number, phone, email")
    if not given:
        return []
    if scan:
        wanted = read_scan(scan)
    elif card_number:
        wanted = Scan(cards=card_numbers_to_try(card_number))
    elif phone:
        wanted = Scan(phone=normalise_phone(phone))
    else:
        wanted = Scan(email=normalise_email(email))
    with uow:
        program = uow.programs.get(program_id, cached=True)
        rows, matched_by = _matching(uow, program_id, wanted)
        ladder = uow.tiers.ladder(program_id, cached=True) if rows else None
        found = []
        for row in rows:
            balance = uow.ledger.load_account(program_id, row["id"]).balance_at(now)
            tier = None
            if ladder is not None:
                code = uow.tiers.effective_code(program_id, row["id"], now) or ladder.lowest.code
                held = ladder.tier(code)
                tier = {"code": held.code, "name": dict(held.name)}
            name = " ".join(x for x in (row["first_name"], row["last_name"]) if x) or None
            found.append({
                "id": str(row["id"]), "card_number": row["card_number"], "name": name,
                "first_name": row["first_name"], "last_name": row["last_name"], "status": row["status"],
                "locale": row["locale"], "matched_by": matched_by,
                "balance": {"points": balance.total, "available": balance.available, "pending": balance.pending,
                            "value": program.points_value(max(balance.available, 0)).format(),
                            "currency": program.currency},
                "tier": tier,
            })  # fmt: skip
    return found


def _matching(uow: UnitOfWork, program_id: UUID, wanted: Scan) -> tuple[list[dict[str, Any]], str]:
    for number in wanted.cards:
        rows = uow.members.find(program_id, card_number=number)
        if rows:
            return rows[:1], "card_number"
    if wanted.phone:
        return uow.members.find(program_id, phone=wanted.phone)[:MAX_MATCHES], "phone"
    if wanted.email:
        return uow.members.find(program_id, email=wanted.email)[:MAX_MATCHES], "email"
    return [], "card_number"


def _member_of_scan(uow: UnitOfWork, program_id: UUID, text: str) -> UUID:
    """The one member a scanned value names (an offline purchase line's `scan`)."""
    rows, matched_by = _matching(uow, program_id, read_scan(text))
    if not rows:
        raise NotFound("no member with that card, phone number or email", resource="member")
    if len(rows) > 1:
        raise InvalidInput(f"{len(rows)} members share that {matched_by.replace('_', ' ')}: scan the card instead")
    return rows[0]["id"]  # type: ignore[no-any-return]


# -- card images -------------------------------------------------------------------------------------------------
def card_view(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, Any]:
    """What a printed card shows: the programme's name, the member's name and card number, and which codes the
    number allows."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        member = uow.members.get(program_id, member_id)
    number = member["card_number"]
    try:
        ean13: str | None = ean13_of(number)
    except InvalidInput:
        ean13 = None
    name = " ".join(x for x in (member["first_name"], member["last_name"]) if x) or None
    return {"program": program.name, "member_id": str(member_id), "card_number": number, "payload": card_payload(number),
            "grouped": " ".join(number[i:i + 4] for i in range(0, len(number), 4)), "name": name,
            "locale": member["locale"], "ean13": ean13}  # fmt: skip


def draw(payload: str, symbology: Symbology, image: str) -> bytes:
    """A code of the payload as an SVG document or a PNG image. EAN-13 needs `payload` to fit (`ean13_of`)."""
    if image not in ("svg", "png"):
        raise InvalidInput("image format must be svg or png")
    if symbology is Symbology.QR:
        out = io.BytesIO()
        if image == "svg":
            qrcode.make(payload, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2).save(out)
        else:
            qrcode.make(payload, box_size=10, border=2).save(out)  # Pillow
        return out.getvalue()
    if symbology is Symbology.EAN13:
        kind, data = "ean13", ean13_of(payload)[:12]  # the library appends the (verified) check digit
    else:
        kind, data = "code128", payload
    writer = SVGWriter() if image == "svg" else ImageWriter(format="PNG")
    code = barcode.get(kind, data, writer=writer)
    out = io.BytesIO()
    code.write(out, options={"module_height": 12.0, "font_size": 8, "text_distance": 4.0, "quiet_zone": 4.0})
    return out.getvalue()


def card_image(uow: UnitOfWork, program_id: UUID, member_id: UUID, symbology: str, image: str) -> bytes:
    try:
        kind = Symbology(symbology)
    except ValueError:
        raise InvalidInput("symbology must be one of: " + ", ".join(s.value for s in Symbology)) from None
    view = card_view(uow, program_id, member_id)
    return draw(view["payload"], kind, image)


def inline_svg(document: bytes) -> str:
    """An SVG document without its XML declaration and doctype, to sit inside HTML."""
    text = document.decode()
    return text[text.index("<svg") :]


# -- offline batches -------------------------------------------------------------------------------------------
def upload_batch(factory: UnitOfWorkFactory, program_id: UUID, content: bytes, now: datetime, *, actor: str = "api",
                 upload_key: str | None = None, partner: str | None = None,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Apply an offline till's batch (JSON Lines), line by line, and return its summary.

    `upload_key` (the request's Idempotency-Key) makes the upload itself retryable: the same key returns the
    first batch's summary. `partner` (a partner key's own partner) refuses lines of other partners."""
    if len(content) > MAX_BATCH_BYTES:
        raise TillBatchTooLarge(f"a batch may have {MAX_BATCH_BYTES // 1024 // 1024} MiB at most; split the file",
                                limit_bytes=MAX_BATCH_BYTES)  # fmt: skip
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TillLineInvalid("the batch is not UTF-8 text") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise TillLineInvalid("the batch has no lines")
    if len(numbered) > MAX_BATCH_LINES:
        raise TillBatchTooLarge(f"a batch may have {MAX_BATCH_LINES} lines at most; split the file",
                                limit_lines=MAX_BATCH_LINES)  # fmt: skip
    digest = hashlib.sha256(content).hexdigest()
    batch_id = new_id()
    try:
        with factory() as uow:
            uow.programs.get(program_id, cached=True)
            if upload_key is not None:
                earlier = uow.tills.batch_by_upload_key(program_id, upload_key)
                if earlier is not None:
                    return _replayed_upload(uow, program_id, earlier, digest)
            uow.tills.add_batch({"program_id": program_id, "id": batch_id, "upload_key": upload_key, "sha256": digest,
                                 "size_bytes": len(content), "lines": len(numbered), "actor": actor,
                                 "received_at": now})  # fmt: skip
            uow.commit()
    except IntegrityError:  # the same upload key, committed by a concurrent request
        with factory() as uow:
            earlier = uow.tills.batch_by_upload_key(program_id, upload_key or "")
            if earlier is None:
                raise
            return _replayed_upload(uow, program_id, earlier, digest)
    read = [read_line(n, line, now) for n, line in numbered]
    good = application_order([x for x in read if isinstance(x, TillLine)])
    purchases = [x for x in good if x.kind is LineKind.PURCHASE]
    rest = sorted([x for x in good if x.kind is not LineKind.PURCHASE] + [x for x in read if isinstance(x, BadLine)],
                  key=lambda x: x.number)  # fmt: skip
    for seq, line in enumerate([*purchases, *rest], 1):
        if isinstance(line, BadLine):
            _record_bad(factory, program_id, batch_id, seq, line, now)
        else:
            _apply(factory, program_id, batch_id, seq, line, now, partner, actor)
        if progress is not None:
            progress(1)
    with factory() as uow:
        uow.tills.finish_batch(program_id, batch_id, now)
        summary = _summary(uow, program_id, uow.tills.get_batch(program_id, batch_id))
        uow.emit(program_id, Event(events.TILL_BATCH_PROCESSED, {k: summary[k] for k in (
            "batch_id", "lines", "applied", "replayed", "conflicts")}))  # fmt: skip
        uow.commit()
    return summary


def _replayed_upload(uow: UnitOfWork, program_id: UUID, earlier: dict[str, Any], digest: str) -> dict[str, Any]:
    if earlier["sha256"] != digest:
        raise TillKeyReused("this Idempotency-Key was used for another batch; use a new key",
                            batch_id=str(earlier["id"]))  # fmt: skip
    return _summary(uow, program_id, earlier) | {"replayed_upload": True}


def _base_row(program_id: UUID, batch_id: UUID, seq: int, line: TillLine, now: datetime) -> dict[str, Any]:
    return {"program_id": program_id, "batch_id": batch_id, "line_no": line.number, "seq": seq, "key": line.key,
            "kind": line.kind.value, "occurred_at": line.occurred_at, "store": line.store, "cashier": line.cashier,
            "fingerprint": line.fingerprint, "applied_at": now}  # fmt: skip


def _record_bad(factory: UnitOfWorkFactory, program_id: UUID, batch_id: UUID, seq: int, line: BadLine,
                now: datetime) -> None:  # fmt: skip
    with factory() as uow:
        uow.tills.add_line({"program_id": program_id, "batch_id": batch_id, "line_no": line.number, "seq": seq,
                            "key": line.key, "kind": line.kind if line.kind in set(LineKind) else None,
                            "outcome": "conflict", "code": line.error.code, "detail": line.error.detail,
                            "owns_key": False, "applied_at": now})  # fmt: skip
        uow.commit()


def _apply(factory: UnitOfWorkFactory, program_id: UUID, batch_id: UUID, seq: int, line: TillLine, now: datetime,
           partner: str | None, actor: str) -> None:  # fmt: skip
    """One line in one transaction: claim its key (a concurrent upload of the same key waits here, then
    replays), run the use case, keep its answer. A refusal is recorded in a transaction of its own."""
    row = _base_row(program_id, batch_id, seq, line, now)
    failure: DomainError | None = None
    try:
        with factory() as uow:
            owner = uow.tills.owner_of(program_id, line.key)
            if owner is not None:
                uow.tills.add_line(_replay(row, owner))
                uow.commit()
                return
            uow.tills.add_line(row | {"outcome": "applied", "owns_key": True})
            try:
                result = _run(uow, program_id, line, now, partner, actor)
            except DomainError as refused:
                failure = refused
            else:
                uow.tills.set_result(program_id, batch_id, line.number, result)
                uow.commit()
                return
    except IntegrityError:  # the key was claimed by a concurrent upload (or the use case broke a constraint)
        failure = Conflict("the line could not be applied; upload it again")
    with factory() as uow:
        owner = uow.tills.owner_of(program_id, line.key)
        if owner is not None:
            uow.tills.add_line(_replay(row, owner))
        else:
            assert failure is not None
            final = not isinstance(failure, TillOrderUnknown) and failure.code != "conflict"
            uow.tills.add_line(row | {"outcome": "conflict", "code": failure.code, "detail": failure.detail,
                                      "owns_key": final})  # fmt: skip
        uow.commit()


def _replay(row: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    if owner["fingerprint"] != row["fingerprint"]:
        error = TillKeyReused(f"key {row['key']!r} was first used for line {owner['line_no']} of batch "
                              f"{owner['batch_id']} with other content")  # fmt: skip
        return row | {"outcome": "conflict", "code": error.code, "detail": error.detail, "owns_key": False,
                      "replay_of_batch": owner["batch_id"], "replay_of_line": owner["line_no"]}  # fmt: skip
    return row | {"outcome": "replayed", "code": owner["code"], "detail": owner["detail"], "result": owner["result"],
                  "owns_key": False, "replay_of_batch": owner["batch_id"], "replay_of_line": owner["line_no"]}  # fmt: skip


def _run(uow: UnitOfWork, program_id: UUID, line: TillLine, now: datetime, partner: str | None,
         actor: str) -> dict[str, Any]:  # fmt: skip
    """The use case of a line, joining the line's transaction."""
    data = line.data
    if partner is not None and line.partner not in ("default", partner):
        raise InvalidInput(f"a key of partner {partner!r} uploads lines of its own partner only")
    own = partner or line.partner
    if line.kind is LineKind.PURCHASE:
        member_id = _uuid(data.get("member_id"), line)
        scanned = data.get("scan")
        if scanned is not None:
            if member_id or data.get("card_number") or data.get("external_ref"):
                raise TillLineInvalid(f"line {line.number}: name the member by one of member_id, card_number, "
                                      "external_ref, scan")  # fmt: skip
            member_id = _member_of_scan(uow, program_id, _text(scanned, "scan", line))
        command = RecordPurchase(
            external_order_id=_text(data["external_order_id"], "external_order_id", line),
            total=_amount(data["total"], "total", line), currency=_text(data["currency"], "currency", line),
            occurred_at=line.occurred_at, member_id=member_id, card_number=_optional(data, "card_number", line),
            external_ref=_optional(data, "external_ref", line), partner=own, store=line.store, cashier=line.cashier,
            channel=_optional(data, "channel", line) or "store", lines=_purchase_lines(data.get("lines"), line),
        )  # fmt: skip
        return record_purchase(uow, program_id, command, now)
    if line.kind is LineKind.REFUND:
        order = _text(data["external_order_id"], "external_order_id", line)
        purchase_id = uow.purchases.find_id(program_id, own, order)
        if purchase_id is None:
            raise TillOrderUnknown(f"no purchase with order id {order!r} of partner {own!r} (yet)",
                                   external_order_id=order, partner=own)  # fmt: skip
        amount = data.get("amount")
        refund = RefundPurchase(
            amount=None if amount is None else _amount(amount, "amount", line),
            lines=_refund_lines(data.get("lines"), line), currency=_optional(data, "currency", line),
            external_refund_id=_optional(data, "external_refund_id", line) or line.key, occurred_at=line.occurred_at,
        )  # fmt: skip
        return refund_purchase(uow, program_id, purchase_id, refund, now)
    # A coupon is checked and consumed as of the moment the till accepted it.
    return consume_coupon(uow, program_id, _text(data["code"], "code", line), line.occurred_at,
                          order_id=_optional(data, "external_order_id", line), actor=actor)  # fmt: skip


def _text(value: Any, name: str, line: TillLine, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise TillLineInvalid(f"line {line.number}: `{name}` must be a text of 1 to {limit} characters")
    return value


def _optional(data: dict[str, Any], name: str, line: TillLine) -> str | None:
    value = data.get(name)
    return None if value is None else _text(value, name, line)


def _amount(value: Any, name: str, line: TillLine) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TillLineInvalid(f'line {line.number}: `{name}` is a decimal string such as "12.50"')
    return value


def _uuid(value: Any, line: TillLine) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise TillLineInvalid(f"line {line.number}: member_id is not a member id") from None


def _purchase_lines(value: Any, line: TillLine) -> list[LineInput]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000:
        raise TillLineInvalid(f"line {line.number}: `lines` is a list of at most 1000 items")
    items = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("quantity"), int) or isinstance(
                item.get("quantity"), bool):  # fmt: skip
            raise TillLineInvalid(f"line {line.number}: each item has sku, quantity (an integer) and unit_price")
        items.append(LineInput(_text(item.get("sku"), "sku", line), item["quantity"],
                               _amount(item.get("unit_price"), "unit_price", line),
                               _optional(item, "category", line), _optional(item, "name", line)))  # fmt: skip
    return items


def _refund_lines(value: Any, line: TillLine) -> list[tuple[str, int]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TillLineInvalid(f"line {line.number}: `lines` is a list of {{sku, quantity}}")
    found = []
    for item in value:
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            raise TillLineInvalid(f"line {line.number}: each refunded item has sku and a positive quantity")
        found.append((_text(item.get("sku"), "sku", line), quantity))
    return found


# -- summary and report ------------------------------------------------------------------------------------------
def get_batch(uow: UnitOfWork, program_id: UUID, batch_id: UUID) -> dict[str, Any]:
    with uow:
        return _summary(uow, program_id, uow.tills.get_batch(program_id, batch_id))


def list_batches(uow: UnitOfWork, program_id: UUID, limit: int = 50) -> list[dict[str, Any]]:
    with uow:
        return [_summary(uow, program_id, b) for b in uow.tills.batches(program_id, min(max(limit, 1), 200))]


def _summary(uow: UnitOfWork, program_id: UUID, batch: dict[str, Any]) -> dict[str, Any]:
    counts = uow.tills.counts(program_id, batch["id"])
    return {"batch_id": str(batch["id"]), "received_at": iso(batch["received_at"]),
            "finished_at": iso(batch["finished_at"]), "actor": batch["actor"], "sha256": batch["sha256"],
            "size_bytes": batch["size_bytes"], "lines": batch["lines"], "applied": counts.get("applied", 0),
            "replayed": counts.get("replayed", 0), "conflicts": counts.get("conflict", 0),
            "conflict_codes": uow.tills.conflict_codes(program_id, batch["id"])}  # fmt: skip


def report(factory: UnitOfWorkFactory, program_id: UUID, batch_id: UUID, fmt: str) -> Iterator[str]:
    """The batch's per-line report as JSON Lines or CSV text chunks, in file order, streamed from the database.
    An unknown batch or format is refused before the first chunk."""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("report format must be jsonl or csv")
    with factory(read_only=True) as uow:
        uow.tills.get_batch(program_id, batch_id)
    return _report_chunks(factory, program_id, batch_id, fmt)


def _report_chunks(factory: UnitOfWorkFactory, program_id: UUID, batch_id: UUID, fmt: str) -> Iterator[str]:
    with factory(read_only=True) as uow:
        if fmt == "csv":
            yield _csv_row(REPORT_COLUMNS)
        for row in uow.tills.lines(program_id, batch_id):
            view = report_row(row)
            if fmt == "csv":
                yield _csv_row([view[c] for c in REPORT_COLUMNS])
            else:
                yield json.dumps(view | {"result": row["result"]}, ensure_ascii=False, default=str) + "\n"


def report_row(row: dict[str, Any]) -> dict[str, Any]:
    result = row["result"] or {}
    reference: str | None = None
    points: int | None = None
    if result and row["kind"] == LineKind.PURCHASE.value:
        reference, points = result.get("id"), result.get("points_earned")
    elif result and row["kind"] == LineKind.REFUND.value:
        reference, points = result.get("id"), -int(result.get("points_taken_back") or 0)
    elif result and row["kind"] == LineKind.COUPON.value:
        reference = result.get("code")
    return {"line": row["line_no"], "key": row["key"], "type": row["kind"], "occurred_at": iso(row["occurred_at"]),
            "store": row["store"], "cashier": row["cashier"], "outcome": row["outcome"], "code": row["code"],
            "detail": row["detail"], "reference": reference, "points": points,
            "replay_of_batch": str(row["replay_of_batch"]) if row["replay_of_batch"] else None,
            "replay_of_line": row["replay_of_line"]}  # fmt: skip


def _csv_row(values: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return out.getvalue()
