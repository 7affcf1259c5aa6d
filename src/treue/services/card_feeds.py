"""Import an acquirer's card-transaction feed (CSV or JSON Lines), idempotently (issue 11).

Each line is one card transaction: merchant_id, token, amount, currency, occurred_at, authorisation_code, type
(sale | refund | chargeback) and, for refunds and chargebacks, original_authorisation_code (the sale's; default:
its own). A line is keyed by partner + authorisation code + type; a key seen before is skipped, so importing a file
again changes nothing.

- The merchant id maps to a partner (`set_merchant`, or a merchant id that is itself a partner code); an unknown
  merchant is an error of that line only.
- A sale is recorded through `record_purchase` with the token as its payment: the member who had the token linked
  at its time earns as with every other purchase (card-linked offers included); nobody: an anonymous purchase that
  still counts in the analytics. Its order id is `card:<authorisation code>`.
- A refund takes back, through `refund_purchase` under the programme's return policy, what the original sale
  earned in proportion to its amount; a chargeback refunds whatever is left of the sale (external refund id
  `card-chargeback:<code>`).

Lines are checked before anything is written for them (parse, merchant, currency, the original sale, the amount
left to refund): those refusals are reported per line and change nothing. Sales are applied before refunds, so a
refund may come before its sale in the file. Each line is its own transaction - except through the API
(`atomic`), where the whole feed joins the request's transaction and an unexpected failure refuses all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.cards import FeedError, FeedFormat, FeedKind, FeedLine, read_feed, refund_id, sale_order_id
from treue.domain.cards import looks_like_card_number as _card_number_in
from treue.domain.errors import CardFeedInvalid, DomainError, MerchantUnknown
from treue.domain.events import Event
from treue.domain.money import Money
from treue.domain.partners import DEFAULT_PARTNER
from treue.ids import new_id
from treue.services.ports import UnitOfWork
from treue.services.purchases import PaymentInput, RecordPurchase, RefundPurchase, record_purchase, refund_purchase

MAX_API_LINES = 10_000


class _Refused(Exception):
    """A line refused by a check before anything was written for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class FeedReport:
    feed_id: str
    format: str
    lines: int = 0
    sales: int = 0
    matched: int = 0
    anonymous: int = 0
    refunds: int = 0
    chargebacks: int = 0
    already_imported: int = 0
    points_earned: int = 0
    points_taken_back: int = 0
    errors: list[FeedError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"feed_id": self.feed_id, "format": self.format, "lines": self.lines, "sales": self.sales,
                "matched": self.matched, "anonymous": self.anonymous, "refunds": self.refunds,
                "chargebacks": self.chargebacks, "already_imported": self.already_imported,
                "points_earned": self.points_earned, "points_taken_back": self.points_taken_back,
                "errors": [e.as_dict() for e in sorted(self.errors, key=lambda e: e.line)]}  # fmt: skip


def count_lines(text: str, fmt: FeedFormat | str) -> int:
    """Lines to expect (for a progress bar)."""
    lines = sum(1 for line in text.splitlines() if line.strip())
    return max(lines - 1, 0) if FeedFormat(fmt) is FeedFormat.CSV else lines


def import_feed(open_uow: Callable[[], UnitOfWork], program_id: UUID, text: str, fmt: FeedFormat | str,
                now: datetime, *, filename: str | None = None, atomic: bool = False,
                progress: Callable[[int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Import a feed. `open_uow` gives the unit of work of each step: a fresh one per line (the CLI), or the
    request's (the API, `atomic`). Returns the summary (also stored with the feed)."""
    try:
        fmt = FeedFormat(fmt)
    except ValueError:
        raise CardFeedInvalid("format must be csv or jsonl") from None
    parsed = list(read_feed(text, fmt))  # a bad header refuses the whole file here, before anything is written
    if atomic and len(parsed) > MAX_API_LINES:
        raise CardFeedInvalid(f"at most {MAX_API_LINES} lines per request; import larger feeds with the CLI "
                              "(treue cards import-feed) or in parts")  # fmt: skip
    if filename is not None and (_card_number_in(filename) or len(filename) > 255):
        filename = None  # never keep what may be a card number
    report = FeedReport(str(new_id()), fmt.value)
    feed_id = UUID(report.feed_id)
    with open_uow() as uow:
        program = uow.programs.get(program_id, cached=True)
        merchants = uow.cards.merchants(program_id)
        partners = {p.code for p in uow.partners.all(program_id)} | {DEFAULT_PARTNER}
        uow.cards.add_feed({"program_id": program_id, "id": feed_id, "filename": filename, "format": fmt.value,
                            "summary": {}, "imported_at": now})  # fmt: skip
        uow.commit()
    lines: list[FeedLine] = []
    for item in parsed:
        report.lines += 1
        if isinstance(item, FeedError):
            report.errors.append(item)
            _tick(progress)
        else:
            lines.append(item)
    # Sales first: a refund may precede its sale in the file.
    for line in sorted(lines, key=lambda x: (x.kind is not FeedKind.SALE, x.line)):
        try:
            partner = merchants.get(line.merchant_id) or (line.merchant_id if line.merchant_id in partners else None)
            if partner is None:
                raise _Refused(MerchantUnknown.code, f"line {line.line}: merchant {line.merchant_id!r} is not "
                               "assigned to a partner (treue cards merchant add, or POST /cards/merchants)")  # fmt: skip
            if line.amount.currency != program.currency:
                raise _Refused("currency_mismatch", f"line {line.line}: the programme runs in {program.currency}, "
                               f"the line is in {line.amount.currency}")  # fmt: skip
            _apply(open_uow(), program_id, feed_id, partner, line, report, now)
        except _Refused as refused:
            report.errors.append(FeedError(line.line, refused.code, refused.message))
        except DomainError as error:
            if atomic:
                raise
            report.errors.append(FeedError(line.line, error.code, f"line {line.line}: {error.detail}"))
        _tick(progress)
    summary = report.as_dict()
    with open_uow() as uow:
        uow.cards.set_feed_summary(program_id, feed_id, summary)
        if report.sales or report.refunds or report.chargebacks:  # a re-import that changed nothing says nothing
            uow.emit(program_id, Event(events.CARD_FEED_IMPORTED, {k: v for k, v in summary.items() if k != "errors"}
                                       | {"errors": len(report.errors)}))  # fmt: skip
        uow.commit()
    return summary


def _tick(progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        progress(1)


def _apply(uow: UnitOfWork, program_id: UUID, feed_id: UUID, partner: str, line: FeedLine, report: FeedReport,
           now: datetime) -> None:  # fmt: skip
    with uow:
        if uow.cards.feed_line(program_id, partner, line.authorisation_code, line.kind.value) is not None:
            report.already_imported += 1
            return
        row: dict[str, Any] = {"program_id": program_id, "partner": partner,
                               "authorisation_code": line.authorisation_code, "kind": line.kind.value,
                               "feed_id": feed_id, "amount_minor": line.amount.minor, "occurred_at": line.occurred_at,
                               "imported_at": now, "refund_id": None}  # fmt: skip
        if line.kind is FeedKind.SALE:
            order = sale_order_id(line.authorisation_code)
            if uow.purchases.find_id(program_id, partner, order) is not None:
                raise _Refused("duplicate_order", f"line {line.line}: order {order!r} of partner {partner!r} was "
                               "recorded otherwise")  # fmt: skip
            command = RecordPurchase(external_order_id=order, total=line.amount.format(),
                                     currency=line.amount.currency, occurred_at=line.occurred_at, partner=partner,
                                     payment=PaymentInput(line.token, line.brand or None))  # fmt: skip
            result = record_purchase(uow, program_id, command, now)
            row |= {"purchase_id": UUID(result["id"]), "member_id": UUID(result["member_id"]) if result["member_id"]
                    else None}  # fmt: skip
            uow.cards.add_feed_line(row)
            uow.commit()
            report.sales += 1
            report.points_earned += int(result["points_earned"])
            if result["member_id"]:
                report.matched += 1
            else:
                report.anonymous += 1
            return
        sale = uow.cards.feed_line(program_id, partner, line.original, FeedKind.SALE.value)
        if sale is None:
            raise _Refused(CardFeedInvalid.code, f"line {line.line}: no imported sale of partner {partner!r} with "
                           f"authorisation code {line.original!r} to {line.kind.value}")  # fmt: skip
        _, bought = uow.purchases.get(program_id, sale["purchase_id"])
        left = bought["total_minor"] - bought["refunded_minor"]
        amount = line.amount.minor if line.kind is FeedKind.REFUND else left
        if left <= 0:
            raise _Refused("refund_exceeds_purchase", f"line {line.line}: the sale {line.original!r} is refunded "
                           "in full already")  # fmt: skip
        if amount > left:
            raise _Refused("refund_exceeds_purchase", f"line {line.line}: {line.kind.value} of {line.amount} exceeds "
                           f"what is left of the sale ({left} minor units)")  # fmt: skip
        command_back = RefundPurchase(amount=Money(amount, line.amount.currency).format(),
                                      currency=line.amount.currency,
                                      external_refund_id=refund_id(line.kind, line.authorisation_code),
                                      occurred_at=line.occurred_at)  # fmt: skip
        refund = refund_purchase(uow, program_id, sale["purchase_id"], command_back, now)
        row |= {"purchase_id": sale["purchase_id"], "member_id": sale["member_id"], "refund_id": UUID(refund["id"]),
                "amount_minor": amount}  # fmt: skip
        uow.cards.add_feed_line(row)
        uow.commit()
        report.points_taken_back += int(refund["points_taken_back"])
        if line.kind is FeedKind.REFUND:
            report.refunds += 1
        else:
            report.chargebacks += 1


def recent_feeds(open_uow: Callable[[], UnitOfWork], program_id: UUID, limit: int = 20) -> list[dict[str, Any]]:
    with open_uow() as uow:
        uow.programs.get(program_id, cached=True)
        return [{"id": str(row["id"]), "filename": row["filename"], "format": row["format"],
                 "imported_at": row["imported_at"].isoformat(), "summary": row["summary"]}
                for row in uow.cards.feeds(program_id, limit)]  # fmt: skip
