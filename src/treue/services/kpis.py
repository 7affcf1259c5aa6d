"""KPIs of a programme over a period, and the monthly points-liability report for finance.

Everything is aggregated in SQL (`treue.store.kpis`); this module turns the sums into rates and money. Conventions
(docs/analytics.md): the period is [from, to] in programme-local days; rates are decimal strings rounded to four
places (half-even), null when their denominator is zero; money is `{"amount": "12.34", "currency": "EUR"}`, rounded
to minor units with the programme's rounding policy; points are integers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast
from uuid import UUID

from treue.domain.durations import add_months, end_of_local_day, start_of_local_day, zone
from treue.domain.errors import InvalidInput
from treue.domain.ledger import AccountKind, TransferKind
from treue.domain.money import Money, divide
from treue.domain.programs import Program
from treue.domain.rules.stored import StoredCampaign, campaign_of
from treue.services.kpi_rollups import rolled
from treue.services.ports import UnitOfWork
from treue.store.kpis import MEMBER_SPLITS, SPLITS, Flow, Kpis, PurchaseStats

MAX_MONTHS = 600  # buckets in one CASE: 50 years of enrolment cohorts or report months
RATE_PLACES = Decimal("0.0001")


def _store(uow: UnitOfWork) -> Kpis:
    # Read-only aggregates are not part of the unit of work's protocol; they run on its connection.
    return Kpis(cast(Any, uow).conn)


# -- formatting ---------------------------------------------------------------------------------------------------
def rate(numerator: int, denominator: int) -> str | None:
    """A share or ratio as a decimal string with four places (half-even); None without a denominator."""
    if denominator == 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN))


def money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": Money(minor, currency).format(), "currency": currency}


def _mean(program: Program, total_minor: int, count: int) -> dict[str, str] | None:
    return None if count == 0 else money(divide(total_minor, count, program.rounding), program.currency)


def _value(program: Program, points: int, numerator: int = 1, denominator: int = 1) -> dict[str, str]:
    """The money value of `points` (times numerator/denominator), rounded once by the programme's policy."""
    minor = divide(points * program.point_value_minor * numerator, program.point_value_points * denominator,
                   program.rounding)  # fmt: skip
    return money(minor, program.currency)


def month_starts(first: date, last: date, tz: Any) -> list[datetime]:
    """UTC instants at which the local months first..last begin, and the one after `last` ends."""
    first, last = first.replace(day=1), last.replace(day=1)
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > MAX_MONTHS:
        raise InvalidInput(f"at most {MAX_MONTHS} months can be reported at once")
    return [start_of_local_day(add_months(first, k), tz) for k in range(count + 1)]


def _month_label(first: date, index: int) -> str:
    return add_months(first.replace(day=1), index).strftime("%Y-%m")


# -- points flows -------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Movements:
    """Member points moved in one bucket, by what moved them (magnitudes, except the signed ones)."""

    issued: int = 0  # earned
    reversed_earned: int = 0  # taken back by refunds (reversals of earns)
    redeemed: int = 0  # spent on rewards or paid at checkout
    reversed_redeemed: int = 0  # given back by cancelled redemptions or payments
    expired: int = 0
    adjusted: int = 0  # signed: manual corrections
    transferred: int = 0  # signed: member to member (zero over the programme)
    other: int = 0  # signed: any other kind (settlements, reversals of other kinds)

    def add(self, flow: Flow) -> None:
        kind, amount = flow.kind, flow.amount
        if kind == TransferKind.EARN:
            self.issued += amount
        elif kind in (TransferKind.REDEEM, TransferKind.PAY):
            self.redeemed -= amount
        elif kind == TransferKind.EXPIRE:
            self.expired -= amount
        elif kind == TransferKind.ADJUST:
            self.adjusted += amount
        elif kind == TransferKind.TRANSFER:
            self.transferred += amount
        elif kind == TransferKind.REVERSE and flow.corrected_kind == TransferKind.EARN:
            self.reversed_earned -= amount
        elif kind == TransferKind.REVERSE and flow.corrected_kind in (TransferKind.REDEEM, TransferKind.PAY):
            self.reversed_redeemed += amount
        else:
            self.other += amount

    @property
    def net(self) -> int:
        return (self.issued - self.reversed_earned - self.redeemed + self.reversed_redeemed - self.expired
                + self.adjusted + self.transferred + self.other)  # fmt: skip

    @property
    def issued_net(self) -> int:
        return self.issued - self.reversed_earned

    @property
    def redeemed_net(self) -> int:
        return self.redeemed - self.reversed_redeemed

    def __iadd__(self, other: Movements) -> Movements:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def movements(flows: Iterable[Flow], buckets: int) -> tuple[Movements, list[Movements]]:
    """(everything before the first boundary, one Movements per bucket)."""
    before, per_bucket = Movements(), [Movements() for _ in range(buckets)]
    for flow in flows:
        (before if flow.bucket < 0 else per_bucket[flow.bucket]).add(flow)
    return before, per_bucket


def expected_breakage(history: Movements) -> tuple[int, int]:
    """(expired, expired + redeemed) over the programme's history: the share of points that leave balances by
    expiring rather than being spent. (0, 0) without history: no breakage is expected then."""
    return history.expired, history.expired + history.redeemed_net


# -- KPIs ---------------------------------------------------------------------------------------------------------
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)  # room for the month boundaries around a period


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise InvalidInput(f"the period ends ({end}) before it starts ({start})")
    if start < FIRST_DAY or end > LAST_DAY:
        raise InvalidInput(f"the period must lie between {FIRST_DAY} and {LAST_DAY}")


def _check_split(by: str | None) -> None:
    if by is not None and by not in SPLITS:
        raise InvalidInput(f"unknown split by={by!r}; use one of {', '.join(SPLITS)}")


def _purchase_kpis(program: Program, s: PurchaseStats) -> dict[str, Any]:
    c = program.currency
    return {
        "members_active": s.members_active,
        "purchases": s.member_purchases,
        "purchases_anonymous": s.anonymous_purchases,
        "revenue": money(s.member_revenue, c),
        "revenue_anonymous": money(s.anonymous_revenue, c),
        "repeat_purchase_rate": rate(s.repeaters, s.members_active),
        "purchase_frequency": rate(s.member_purchases, s.members_active),
        "average_order_value": _mean(program, s.member_revenue, s.member_purchases),
        "average_order_value_anonymous": _mean(program, s.anonymous_revenue, s.anonymous_purchases),
        "revenue_per_member": _mean(program, s.member_revenue, s.members_active),
        # members vs non-members (issue 11): anonymous purchases (unmatched card payments too) count here
        "members_revenue_share": rate(s.member_revenue, s.member_revenue + s.anonymous_revenue),
    }


def kpis(uow: UnitOfWork, program_id: UUID, start: date, end: date, now: datetime, *,
         by: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The programme's KPIs over the local days [start, end], optionally split `by` tier, segment, channel,
    partner or cohort (enrolment month). Tiers and segments are the members' now; segments overlap (a member in
    two counts in both), so their groups need not add up to the total; the group without a key holds members in
    no segment and the anonymous purchases."""
    _check_period(start, end)
    _check_split(by)
    with uow:
        program = uow.programs.get(program_id)
        tz = zone(program.timezone)
        store = _store(uow)
        since, until = start_of_local_day(start, tz), end_of_local_day(end, tz)
        first = store.first_enrolment(program_id)
        first_month = min(first.astimezone(tz).date(), start) if first is not None else start
        months = month_starts(first_month, end, tz)
        currency = program.currency

        totals = next(iter(store.purchase_stats(program_id, currency, since, until, None, now, months)),
                      PurchaseStats("all"))  # fmt: skip
        members_total, members_new = store.member_counts(program_id, since, until, None, now, months).get("all", (0, 0))
        rollup, days = rolled(uow, program), [start, end + timedelta(days=1)]
        before, (period,) = movements(store.flows(program_id, [since, until], rolled=rollup, days=days), 1)
        history = Movements()
        history += before
        history += period
        outstanding = history.net
        expired_all, leaving_all = expected_breakage(history)
        members_redeemed = store.members_redeemed(program_id, since, until)
        wallet_before, (wallet_period,) = movements(
            store.flows(
                program_id, [since, until], account_kind=AccountKind.WALLET, unit=currency, rolled=rollup, days=days
            ),
            1,
        )
        answers, promoters, detractors = store.nps_counts(program_id, since, until)

        report: dict[str, Any] = {
            "program_id": str(program_id), "from": start.isoformat(), "to": end.isoformat(),
            "timezone": program.timezone, "currency": currency, "computed_at": now.isoformat(), "by": by,
            "rates": "decimal strings rounded to 4 places (half-even); null when the denominator is 0",
            "members_total": members_total, "members_new": members_new,
            **_purchase_kpis(program, totals),
            "historical_clv": _mean(program, store.revenue_to_date(program_id, currency, until, rolled=rollup,
                                                                   end_day=days[-1]), members_total),
            "points_issued": period.issued_net, "points_redeemed": period.redeemed_net,
            "points_expired": period.expired,
            "points_moved": {"earned": period.issued, "taken_back_by_refunds": period.reversed_earned,
                             "spent": period.redeemed, "given_back": period.reversed_redeemed,
                             "expired": period.expired, "adjusted": period.adjusted, "other": period.other},
            "redemption_rate": rate(period.redeemed_net, period.issued_net),
            "members_redeemed": members_redeemed,
            "members_redeemed_share": rate(members_redeemed, members_total),
            "breakage_rate": rate(period.expired, period.issued_net),
            "expected_breakage": rate(expired_all, leaving_all) or "0.0000",
            "points_outstanding": outstanding,
            "points_liability": _value(program, outstanding),
            "points_liability_adjusted": (_value(program, outstanding, leaving_all - expired_all, leaving_all)
                                          if leaving_all else _value(program, outstanding)),
            "cashback_liability": money(wallet_before.net + wallet_period.net, currency),
            "club_revenue": money(store.club_revenue(program_id, currency, since, until), currency),
            "nps": None if answers == 0 else round(100 * (promoters - detractors) / answers, 4),
            "nps_answers": answers,
            "campaigns": _campaigns(store, program, since, until),
            "cohort_retention": _retention(store, program, months, first_month, since, until),
            "card_payments": _card_payments(store, program, since, until),
        }  # fmt: skip
        if by is not None:
            report["groups"] = _groups(store, program, by, since, until, now, months, first_month)
    return report


def _card_payments(store: Kpis, program: Program, since: datetime, until: datetime) -> dict[str, Any]:
    """Purchases paid with a payment token (issue 11): matched to a member's linked card, or not (anonymous)."""
    matched, unmatched, revenue_matched, revenue_unmatched = store.card_payments(program.id, program.currency, since,
                                                                                 until)  # fmt: skip
    return {"purchases": matched + unmatched, "matched": matched, "unmatched": unmatched,
            "revenue_matched": money(revenue_matched, program.currency),
            "revenue_unmatched": money(revenue_unmatched, program.currency)}  # fmt: skip


def _key_label(by: str, key: Any, first_month: date) -> str | None:
    if key is None:
        return None
    if by == "cohort":
        return _month_label(first_month, int(key))
    return str(key)


def _groups(store: Kpis, program: Program, by: str, since: datetime, until: datetime, now: datetime,
            months: Sequence[datetime], first_month: date) -> list[dict[str, Any]]:  # fmt: skip
    stats = {s.key: s for s in store.purchase_stats(program.id, program.currency, since, until, by, now, months)}
    counts = store.member_counts(program.id, since, until, by, now, months) if by in MEMBER_SPLITS else {}
    groups = []
    for key in sorted(set(stats) | set(counts), key=lambda k: (k is None, str(k).zfill(6))):
        total, new = counts.get(key, (0, 0))
        entry: dict[str, Any] = {"key": _key_label(by, key, first_month)}
        if by in MEMBER_SPLITS:
            entry |= {"members_total": total, "members_new": new}
        groups.append(entry | _purchase_kpis(program, stats.get(key, PurchaseStats(key))))
    return groups


def _campaigns(store: Kpis, program: Program, since: datetime, until: datetime) -> list[dict[str, Any]]:
    campaigns = store.campaigns(program.id)
    points = store.campaign_points(program.id, since, until) if campaigns else {}
    found = []
    for row in campaigns:
        campaign = campaign_of(StoredCampaign(row["id"], row["definition"]), [], timezone=program.timezone,
                               currency=program.currency)  # fmt: skip
        lo, hi = max(since, campaign.starts_at), min(until, campaign.ends_at)
        if hi <= lo and row["id"] not in points:
            continue  # the campaign ran outside the period
        cost, participants = points.get(row["id"], (0, 0))
        revenue = (store.campaign_revenue(program.id, program.currency, row["id"], since, until, lo, hi)
                   if participants and lo < hi else 0)  # fmt: skip
        found.append({
            "id": row["id"], "name": row["name"], "starts_at": campaign.starts_at.isoformat(),
            "ends_at": campaign.ends_at.isoformat(), "points_cost": cost, "cost": _value(program, cost),
            "budget_points": row["budget_points"], "budget_spent": int(row["budget_spent"]),
            "participants": participants, "participants_revenue": money(revenue, program.currency),
        })  # fmt: skip
    return found


def _retention(store: Kpis, program: Program, months: Sequence[datetime], first_month: date, since: datetime,
               until: datetime) -> list[dict[str, Any]]:  # fmt: skip
    sizes, active = store.cohort_activity(program.id, program.currency, months, since, until)
    first_period = next(i for i in range(len(months) - 1) if months[i + 1] > since)
    last_period = max(i for i in range(len(months) - 1) if months[i] < until)
    table = []
    for cohort in sorted(k for k in sizes if k >= 0):
        shown = range(max(cohort, first_period), last_period + 1)
        table.append({
            "cohort": _month_label(first_month, cohort), "members": sizes[cohort],
            "months": [{"month": _month_label(first_month, i), "active": active.get((cohort, i), 0),
                        "rate": rate(active.get((cohort, i), 0), sizes[cohort])} for i in shown],
        })  # fmt: skip
    return table


# -- liability ----------------------------------------------------------------------------------------------------
def parse_month(text: str, what: str) -> date:
    try:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(text)
        found = date(int(year), int(month), 1)
        if not FIRST_DAY <= found <= LAST_DAY:
            raise ValueError(text)
        return found
    except ValueError:
        raise InvalidInput(f"{what} '{text}' is not a month (YYYY-MM)") from None


LIABILITY_COLUMNS = ("month", "opening", "issued", "reversed_earned", "redeemed", "reversed_redeemed", "expired",
                     "adjusted", "transferred", "other", "closing", "opening_value", "closing_value",
                     "expected_breakage", "deferred_revenue", "currency")  # fmt: skip


def liability_report(uow: UnitOfWork, program_id: UUID, first: date, last: date, now: datetime) -> dict[str, Any]:
    """Per local month first..last: the member points balances at the start (opening), what moved them by transfer
    kind, and at the end (closing); closing = opening + issued - reversed_earned - redeemed + reversed_redeemed
    - expired + adjusted + transferred + other, from the same postings the balances are cached from. The value
    columns price the points at the programme's point value; deferred revenue is the closing value times
    (1 - expected breakage) as estimated from the history up to the month's end."""
    if last < first:
        raise InvalidInput(f"the report ends ({last:%Y-%m}) before it starts ({first:%Y-%m})")
    with uow:
        program = uow.programs.get(program_id)
        tz = zone(program.timezone)
        bounds = month_starts(first, last, tz)
        days = [add_months(first.replace(day=1), k) for k in range(len(bounds))]
        flows = _store(uow).flows(program_id, bounds, rolled=rolled(uow, program), days=days)
        before, per_month = movements(flows, len(bounds) - 1)
    history, rows = Movements(), []
    history += before
    for index, moved in enumerate(per_month):
        opening = history.net
        history += moved
        closing = history.net
        expired, leaving = expected_breakage(history)
        deferred = _value(program, closing, leaving - expired, leaving) if leaving else _value(program, closing)
        rows.append({
            "month": _month_label(first, index), "opening": opening, "issued": moved.issued,
            "reversed_earned": moved.reversed_earned, "redeemed": moved.redeemed,
            "reversed_redeemed": moved.reversed_redeemed, "expired": moved.expired, "adjusted": moved.adjusted,
            "transferred": moved.transferred, "other": moved.other, "closing": closing,
            "opening_value": _value(program, opening)["amount"], "closing_value": _value(program, closing)["amount"],
            "expected_breakage": rate(expired, leaving) or "0.0000", "deferred_revenue": deferred["amount"],
            "currency": program.currency,
        })  # fmt: skip
    return {"program_id": str(program_id), "from": f"{first:%Y-%m}", "to": f"{last:%Y-%m}",
            "timezone": program.timezone, "currency": program.currency, "computed_at": now.isoformat(),
            "point_value": _value(program, 1)["amount"] if program.point_value_points == 1 else
            f"{program.point_value_minor}/{program.point_value_points} minor units per point",
            "months": rows}  # fmt: skip


def liability_csv(report: dict[str, Any]) -> str:
    """The report's months as CSV (a header line, then one line per month; values as decimal strings)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LIABILITY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in report["months"]:
        writer.writerow(row)
    return out.getvalue()
