"""Partner settlement: settle a month once, read it back (also as CSV)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from treue.domain.durations import zone
from treue.domain.errors import PeriodOpen, SettlementNotFound
from treue.domain.money import Money
from treue.domain.settlement import parse_period, settle, to_csv
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import iso

_MONEY = ("owed_by_partner_minor", "owed_to_partner_minor", "net_minor")


def settle_period(uow: UnitOfWork, program_id: UUID, period: str, now: datetime,
                  actor: str = "api") -> tuple[dict[str, Any], bool]:  # fmt: skip
    """Settle a month that has ended: per partner, points issued, redeemed at it, expired, and the money owed
    each way at its terms. Stored once; a second run returns the stored result (and `False`: not created)."""
    try:
        return _settle(uow, program_id, period, now, actor)
    except IntegrityError:  # a concurrent run stored the month first (primary key): return what it stored
        with uow:
            stored = uow.partners.settlement(program_id, str(parse_period(period)))
        if stored is None:
            raise
        return settlement_view(stored), False


def _settle(uow: UnitOfWork, program_id: UUID, period: str, now: datetime, actor: str) -> tuple[dict[str, Any], bool]:
    month = parse_period(period)
    with uow:
        program = uow.programs.get(program_id, cached=True)
        key = str(month)
        stored = uow.partners.settlement(program_id, key)
        if stored is not None:
            return settlement_view(stored), False
        start, end = month.bounds(zone(program.timezone))
        if now < end:
            raise PeriodOpen(f"{key} ends at {iso(end)} in the programme's timezone; settle it after that",
                             period=key)  # fmt: skip
        lines = settle(uow.partners.all(program_id), uow.partners.flows(program_id, start, end), program.rounding)
        head = {"program_id": program_id, "period": key, "timezone": program.timezone,
                "currency": program.currency, "period_start": start, "period_end": end, "settled_at": now,
                "actor": actor}  # fmt: skip
        rows = [{"program_id": program_id, "period": key, "partner": line.partner, "registered": line.registered,
                 "billing": line.billing, "issue_price_minor": line.issue_price_minor,
                 "issue_price_points": line.issue_price_points, "redeem_price_minor": line.redeem_price_minor,
                 "redeem_price_points": line.redeem_price_points, "points_issued": line.points_issued,
                 "points_taken_back": line.points_taken_back, "points_redeemed_at": line.points_redeemed_at,
                 "points_funded_redeemed": line.points_funded_redeemed, "points_expired": line.points_expired,
                 "owed_by_partner_minor": line.owed_by_partner_minor,
                 "owed_to_partner_minor": line.owed_to_partner_minor, "net_minor": line.net_minor,
                 "redeemed_by_funder": line.redeemed_by_funder, "funded_redeemed_at": line.funded_redeemed_at}
                for line in lines]  # fmt: skip
        uow.partners.add_settlement(head, rows)
        record_audit(uow, program_id, actor, "settlement.run", "settlement", key, None,
                     {"period": key, "partners": len(rows)}, None, now)  # fmt: skip
        uow.commit()
    return settlement_view(head | {"lines": rows}), True


def get_settlement(uow: UnitOfWork, program_id: UUID, period: str) -> dict[str, Any]:
    key = str(parse_period(period))
    with uow:
        stored = uow.partners.settlement(program_id, key)
    if stored is None:
        raise SettlementNotFound(f"{key} has not been settled", period=key)
    return settlement_view(stored)


def settlement_csv(view: dict[str, Any]) -> str:
    lines = [line | {key: Money.parse(line[key.removesuffix("_minor")], view["currency"]).minor for key in _MONEY}
             for line in view["lines"]]  # fmt: skip
    return to_csv(view["period"], view["currency"], lines)


def settlement_view(stored: dict[str, Any]) -> dict[str, Any]:
    currency = stored["currency"]

    def price(minor: int | None, points: int | None) -> dict[str, Any] | None:
        return None if minor is None else {"amount": Money(minor, currency).format(), "points": points}

    lines = []
    for row in stored["lines"]:
        line = {k: row[k] for k in ("partner", "registered", "billing", "points_issued", "points_taken_back",
                                    "points_redeemed_at", "points_funded_redeemed", "points_expired")}  # fmt: skip
        line["issue_price"] = price(row["issue_price_minor"], row["issue_price_points"])
        line["redeem_price"] = price(row["redeem_price_minor"], row["redeem_price_points"])
        for key in _MONEY:
            line[key.removesuffix("_minor")] = Money(row[key], currency).format()
        line["redeemed_by_funder"] = dict(sorted(row["redeemed_by_funder"].items()))
        line["funded_redeemed_at"] = dict(sorted(row["funded_redeemed_at"].items()))
        lines.append(line)
    return {"period": stored["period"], "currency": currency, "timezone": stored["timezone"],
            "period_start": iso(stored["period_start"]), "period_end": iso(stored["period_end"]),
            "settled_at": iso(stored["settled_at"]), "settled_by": stored["actor"], "lines": lines}  # fmt: skip
