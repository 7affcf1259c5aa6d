"""Partner settlement for one calendar month in the programme's timezone (pure: figures in, lines out).

The store aggregates the month's ledger facts per partner in SQL; this module turns those sums into what each
partner owes and is owed at its own terms. Facts count in the month they were booked (`created_at`), so a month
that has ended can gain no new facts and its stored settlement stays true.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from treue.domain.durations import add_months, start_of_local_day
from treue.domain.errors import PeriodInvalid
from treue.domain.money import Money, Rounding
from treue.domain.partners import DEFAULT_PARTNER, Partner

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) of the month in the programme's timezone, as UTC instants."""
        first = date(self.year, self.month, 1)
        return start_of_local_day(first, tz), start_of_local_day(add_months(first, 1), tz)


def parse_period(text: str) -> Period:
    found = _PERIOD.match(text.strip()) if isinstance(text, str) else None
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise PeriodInvalid(f"'{text}' is not a period; use a month as YYYY-MM, e.g. 2026-11", field="period")
    return Period(int(found.group(1)), int(found.group(2)))


@dataclass(frozen=True, slots=True)
class Flows:
    """The month's ledger sums (points), as the store aggregated them."""

    issued: Mapping[str, int] = field(default_factory=dict)  # funder -> points of earn lots created
    taken_back: Mapping[str, int] = field(default_factory=dict)  # funder -> points refunds took back from its lots
    expired: Mapping[str, int] = field(default_factory=dict)  # funder -> points of its lots that expired
    # (spent at, funded by) -> points; cancellations count negative in the month they were booked
    spent: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Line:
    partner: str
    registered: bool
    billing: str | None
    issue_price_minor: int | None
    issue_price_points: int | None
    redeem_price_minor: int | None
    redeem_price_points: int | None
    points_issued: int
    points_taken_back: int
    points_redeemed_at: int  # spent at this partner, whoever funded the points
    points_funded_redeemed: int  # this partner's points spent anywhere
    points_expired: int  # this partner's share of the breakage
    owed_by_partner_minor: int  # (issued - taken back) at its issue price
    owed_to_partner_minor: int  # redeemed at it, at its redeem price
    redeemed_by_funder: dict[str, int]  # spent here, by who funded them
    funded_redeemed_at: dict[str, int]  # its points, by where they were spent

    @property
    def net_minor(self) -> int:
        """Positive: the programme pays the partner; negative: the partner pays the programme."""
        return self.owed_to_partner_minor - self.owed_by_partner_minor


def settle(partners: Iterable[Partner], flows: Flows, rounding: Rounding) -> list[Line]:
    """One line per registered partner and per other code that had flows (the programme itself as "default");
    money only at registered partners' terms, since nobody else agreed to any."""
    known = {p.code: p for p in partners}
    codes = set(known) | set(flows.issued) | set(flows.taken_back) | set(flows.expired)
    codes |= {at for at, _ in flows.spent} | {funder for _, funder in flows.spent}
    lines = []
    for code in sorted(codes, key=lambda c: (c != DEFAULT_PARTNER, c)):
        by_funder = {funder: pts for (at, funder), pts in sorted(flows.spent.items()) if at == code and pts}
        by_place = {at: pts for (at, funder), pts in sorted(flows.spent.items()) if funder == code and pts}
        issued, taken = flows.issued.get(code, 0), flows.taken_back.get(code, 0)
        redeemed = sum(by_funder.values())
        partner = known.get(code)
        lines.append(Line(
            partner=code, registered=partner is not None,
            billing=partner.billing.value if partner else None,
            issue_price_minor=partner.issue_price.minor if partner else None,
            issue_price_points=partner.issue_price.points if partner else None,
            redeem_price_minor=partner.redeem_price.minor if partner else None,
            redeem_price_points=partner.redeem_price.points if partner else None,
            points_issued=issued, points_taken_back=taken, points_redeemed_at=redeemed,
            points_funded_redeemed=sum(by_place.values()), points_expired=flows.expired.get(code, 0),
            owed_by_partner_minor=partner.issue_price.of(issued - taken, rounding) if partner else 0,
            owed_to_partner_minor=partner.redeem_price.of(redeemed, rounding) if partner else 0,
            redeemed_by_funder=by_funder, funded_redeemed_at=by_place,
        ))  # fmt: skip
    return lines


CSV_COLUMNS = ("period", "partner", "registered", "billing", "points_issued", "points_taken_back",
               "points_redeemed_at", "points_funded_redeemed", "points_expired", "owed_by_partner",
               "owed_to_partner", "net", "currency", "redeemed_by_funder", "funded_redeemed_at")  # fmt: skip


def to_csv(period: str, currency: str, lines: Iterable[Mapping[str, object]]) -> str:
    """The settlement as CSV, amounts as decimal strings in major units; the flows as `code:points;...`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:

        def money(key: str, line: Mapping[str, object] = line) -> str:
            value = line[key]
            assert isinstance(value, int)
            return Money(value, currency).format()

        def flows(key: str, line: Mapping[str, object] = line) -> str:
            value = line[key]
            assert isinstance(value, Mapping)
            return ";".join(f"{code}:{points}" for code, points in sorted(value.items()))

        writer.writerow([period, line["partner"], str(line["registered"]).lower(), line["billing"] or "",
                         line["points_issued"], line["points_taken_back"], line["points_redeemed_at"],
                         line["points_funded_redeemed"], line["points_expired"], money("owed_by_partner_minor"),
                         money("owed_to_partner_minor"), money("net_minor"), currency,
                         flows("redeemed_by_funder"), flows("funded_redeemed_at")])  # fmt: skip
    return out.getvalue()
