"""KPI and liability reads, aggregated in the database (GROUP BY on SQLite and PostgreSQL): only a few rows per
group, kind or month leave it, never the purchases or postings themselves.

Calendar buckets (a period, enrolment months, the months of a liability report) are given as UTC instants worked
out in Python from the programme's timezone; SQL sorts rows into them with a CASE over the instants, which is
exact across daylight-saving changes and needs no timezone database on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Connection, Text, and_, case, cast, distinct, func, literal, null, or_, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from treue.domain.ledger import POINTS, AccountKind, TransferKind
from treue.store import tables as t
from treue.store.kpi_rollups import Rolled, corrected_kind, postings_with_transfers

# How purchases and members can be split: the name of the split and what it needs joined.
SPLITS = ("tier", "segment", "channel", "partner", "cohort")
# Splits by something a member has: members' counts come per group too, anonymous purchases have no group.
MEMBER_SPLITS = ("tier", "segment", "cohort")


@dataclass(frozen=True, slots=True)
class PurchaseStats:
    """Purchases of one group in a period (net of refunds, in minor units)."""

    key: Any
    members_active: int = 0
    member_purchases: int = 0
    member_revenue: int = 0
    repeaters: int = 0  # members with >= 2 purchases
    anonymous_purchases: int = 0
    anonymous_revenue: int = 0


@dataclass(frozen=True, slots=True)
class Flow:
    """The sum of member-account postings of one transfer kind in one bucket (-1: before the first boundary)."""

    bucket: int
    kind: str
    corrected_kind: str | None  # for reversals: the kind of the transfer corrected
    amount: int


def bucket_of(column: Any, boundaries: Sequence[datetime] | Sequence[date]) -> Any:
    """-1 before boundaries[0], i in [boundaries[i], boundaries[i+1]), len-1 from the last boundary on."""
    whens = [(column < boundaries[0], -1)]
    whens += [(column < boundaries[i + 1], i) for i in range(len(boundaries) - 1)]
    return case(*whens, else_=len(boundaries) - 1)


def _int(value: Any) -> int:
    return int(value or 0)


class Kpis:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        if self._postgres:
            # These scans are large enough for PostgreSQL to JIT-compile them, which costs more than it saves
            # (measured: ~0.3 s per query at 1M purchases). Only this read-only transaction is affected.
            conn.exec_driver_sql("SET LOCAL jit = off")

    @property
    def _postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    # -- splits ---------------------------------------------------------------------------------------------------
    def _tier(self, program_id: UUID, now: datetime) -> Any:
        """A member's tier now: a running manual assignment, else the earned tier, else the ladder's lowest."""
        mt = t.member_tiers
        lowest = (
            select(t.tiers.c.code).where(t.tiers.c.program_id == program_id, t.tiers.c.position == 0).scalar_subquery()
        )
        manual = and_(mt.c.manual_code.is_not(None), or_(mt.c.manual_until.is_(None), mt.c.manual_until > now))
        return case((manual, mt.c.manual_code), else_=func.coalesce(mt.c.tier_code, lowest))

    def _member_join(self, base: Any, member_id: Any, program_id: UUID) -> Any:
        m, mt = t.members, t.member_tiers
        joined = base.outerjoin(m, and_(m.c.program_id == program_id, m.c.id == member_id))
        return joined.outerjoin(mt, and_(mt.c.program_id == program_id, mt.c.member_id == member_id))

    def _key(self, split: str | None, program_id: UUID, now: datetime, months: Sequence[datetime]) -> Any:
        p = t.purchases
        if split is None:
            return literal("all")
        if split == "channel":
            return p.c.channel
        if split == "partner":
            return p.c.partner
        if split == "tier":
            return case((p.c.member_id.is_(None), null()), else_=self._tier(program_id, now))
        if split == "cohort":
            return case((p.c.member_id.is_(None), null()), else_=bucket_of(t.members.c.enrolled_at, months))
        if split == "segment":
            return t.segment_members.c.segment_code
        raise ValueError(split)

    def _segment_join(self, base: Any, member_id: Any, program_id: UUID) -> Any:
        """A row per segment the member is in now (segments overlap), one row with no segment otherwise."""
        sm = t.segment_members
        return base.outerjoin(sm, and_(sm.c.program_id == program_id, sm.c.member_id == member_id))

    # -- purchases ------------------------------------------------------------------------------------------------
    def purchase_stats(self, program_id: UUID, currency: str, start: datetime, end: datetime, split: str | None,
                       now: datetime, months: Sequence[datetime]) -> list[PurchaseStats]:  # fmt: skip
        """Per group: active members, their purchases, revenue and repeaters; anonymous purchases apart.
        A purchase refunded in full is no purchase; a partial refund lowers its revenue."""
        p = t.purchases
        net = p.c.total_minor - p.c.refunded_minor
        key = self._key(split, program_id, now, months).label("key")
        if split == "segment":
            source: Any = self._segment_join(p, p.c.member_id, program_id)
        elif split in ("tier", "cohort"):
            source = self._member_join(p, p.c.member_id, program_id)
        else:
            source = p
        per_member = (
            select(key, p.c.member_id, func.count().label("n"), func.sum(net).label("revenue"))
            .select_from(source)
            .where(p.c.program_id == program_id, p.c.currency == currency, p.c.refunded_minor < p.c.total_minor,
                   p.c.occurred_at >= start, p.c.occurred_at < end)
            .group_by(key, p.c.member_id)
            .subquery()
        )  # fmt: skip
        s = per_member.c
        member = s.member_id.is_not(None)
        query = select(
            s.key,
            func.count(s.member_id),
            func.sum(case((member, s.n), else_=0)),
            func.sum(case((member, s.revenue), else_=0)),
            func.sum(case((and_(member, s.n >= 2), 1), else_=0)),
            func.sum(case((member, 0), else_=s.n)),
            func.sum(case((member, 0), else_=s.revenue)),
        ).group_by(s.key)
        return [PurchaseStats(row[0], *(_int(v) for v in row[1:])) for row in self.conn.execute(query)]

    def card_payments(
        self, program_id: UUID, currency: str, start: datetime, end: datetime
    ) -> tuple[int, int, int, int]:
        """(matched purchases, unmatched purchases, their net revenues) of purchases paid with a payment token in
        [start, end); fully refunded purchases do not count (as in `purchase_stats`)."""
        p, pp = t.purchases, t.purchase_payments
        net = p.c.total_minor - p.c.refunded_minor
        matched = pp.c.card_id.is_not(None)
        query = (
            select(func.sum(case((matched, 1), else_=0)), func.sum(case((matched, 0), else_=1)),
                   func.sum(case((matched, net), else_=0)), func.sum(case((matched, 0), else_=net)))
            .select_from(pp.join(p, and_(p.c.program_id == pp.c.program_id, p.c.id == pp.c.purchase_id)))
            .where(pp.c.program_id == program_id, p.c.currency == currency, p.c.refunded_minor < p.c.total_minor,
                   p.c.occurred_at >= start, p.c.occurred_at < end)
        )  # fmt: skip
        row = self.conn.execute(query).one()
        return _int(row[0]), _int(row[1]), _int(row[2]), _int(row[3])

    def member_counts(self, program_id: UUID, start: datetime, end: datetime, split: str | None, now: datetime,
                      months: Sequence[datetime]) -> dict[Any, tuple[int, int]]:  # fmt: skip
        """(members enrolled before `end`, of them enrolled from `start`) per tier, segment or cohort, or for
        all."""
        m = t.members
        if split == "tier":
            key: Any = self._tier(program_id, now)
            source: Any = m.outerjoin(t.member_tiers, and_(t.member_tiers.c.program_id == program_id,
                                                           t.member_tiers.c.member_id == m.c.id))  # fmt: skip
        elif split == "cohort":
            key, source = bucket_of(m.c.enrolled_at, months), m
        elif split == "segment":
            key, source = t.segment_members.c.segment_code, self._segment_join(m, m.c.id, program_id)
        else:
            key, source = literal("all"), m
        key = key.label("key")
        query = (
            select(key, func.count(), func.sum(case((m.c.enrolled_at >= start, 1), else_=0)))
            .select_from(source)
            .where(m.c.program_id == program_id, m.c.enrolled_at < end)
            .group_by(key)
        )  # fmt: skip
        return {row[0]: (_int(row[1]), _int(row[2])) for row in self.conn.execute(query)}

    def revenue_to_date(self, program_id: UUID, currency: str, end: datetime, *, rolled: Rolled | None = None,
                        end_day: date | None = None) -> int:  # fmt: skip
        """Members' purchases before `end`, net of refunds (for the historical CLV). With a roll-up (and `end`'s
        local day), the rolled-up days from it; then the purchases and refunds outside it raw."""
        p, r = t.purchases, t.refunds
        query = select(func.sum(p.c.total_minor - p.c.refunded_minor)).where(
            p.c.program_id == program_id, p.c.currency == currency, p.c.member_id.is_not(None), p.c.occurred_at < end
        )
        if rolled is None or end_day is None:
            return _int(self.conn.execute(query).scalar())
        # Rolled up: purchases' totals and refunds each by their own recording time (refunds change a purchase).
        bought = select(func.sum(p.c.total_minor)).where(
            p.c.program_id == program_id, p.c.currency == currency, p.c.member_id.is_not(None), p.c.occurred_at < end,
            rolled.outside(p.c.occurred_at, p.c.created_at),
        )  # fmt: skip
        refunds = (
            select(func.sum(r.c.amount_minor))
            .select_from(r.join(p, and_(p.c.program_id == r.c.program_id, p.c.id == r.c.purchase_id)))
            .where(r.c.program_id == program_id, p.c.currency == currency, p.c.member_id.is_not(None),
                   p.c.occurred_at < end)
        )  # fmt: skip
        # Refunds outside the roll-up in two disjoint parts, each read by its own index (an OR across the two
        # tables would read every refund): recorded after the watermark; before it, of purchases after the end.
        late = refunds.where(r.c.created_at >= rolled.watermark)
        of_later = refunds.where(r.c.created_at < rolled.watermark, p.c.occurred_at >= rolled.through_at)
        v = t.kpi_revenue_days
        days = select(func.sum(v.c.amount)).where(v.c.program_id == program_id, v.c.currency == currency,
                                                  v.c.day < min(rolled.through_day, end_day))  # fmt: skip
        return (_int(self.conn.execute(days).scalar()) + _int(self.conn.execute(bought).scalar()) - _int(self.conn.execute(late).scalar())
                - _int(self.conn.execute(of_later).scalar()))  # fmt: skip

    def first_enrolment(self, program_id: UUID) -> datetime | None:
        m = t.members
        found = self.conn.execute(
            select(func.min(m.c.enrolled_at)).where(m.c.program_id == program_id)
        ).scalar()  # fmt: skip
        return _instant(found)

    # -- ledger ---------------------------------------------------------------------------------------------------
    def flows(self, program_id: UUID, boundaries: Sequence[datetime], *, account_kind: str = AccountKind.MEMBER,
              unit: str = POINTS, rolled: Rolled | None = None, days: Sequence[date] = ()) -> list[Flow]:  # fmt: skip
        """Member-account postings (points by default; `wallet` accounts in a currency for cashback) before the
        last boundary, summed per bucket and transfer kind; reversals also per the kind they correct.
        With a roll-up, `days` are the boundaries' local days: the rolled-up days are read from it, the rest
        raw."""
        po, ac, tr = t.postings, t.accounts, t.transfers
        corrected = corrected_kind().label("corrected_kind")
        bucket = bucket_of(tr.c.occurred_at, boundaries).label("bucket")
        query = (
            select(bucket, tr.c.kind, corrected, func.sum(po.c.amount))
            .select_from(postings_with_transfers())
            .where(po.c.program_id == program_id, ac.c.kind == str(account_kind), po.c.unit == unit,
                   tr.c.occurred_at < boundaries[-1])
            .group_by(bucket, tr.c.kind, corrected)
        )  # fmt: skip
        found = []
        if rolled is not None:
            query = query.where(rolled.outside(tr.c.occurred_at, tr.c.created_at))
            found = self._rolled_flows(program_id, str(account_kind), unit, rolled, days)
        return found + [Flow(int(row[0]), row[1], row[2], _int(row[3])) for row in self.conn.execute(query)]

    def _rolled_flows(self, program_id: UUID, account_kind: str, unit: str, rolled: Rolled,
                      days: Sequence[date]) -> list[Flow]:  # fmt: skip
        """The rolled-up days before both the roll-up's end and days[-1], summed per bucket of `days` and kind."""
        f = t.kpi_flow_days
        bucket = bucket_of(f.c.day, days).label("bucket")
        query = (
            select(bucket, f.c.kind, f.c.corrected_kind, func.sum(f.c.amount))
            .where(f.c.program_id == program_id, f.c.account_kind == account_kind, f.c.unit == unit,
                   f.c.day < min(rolled.through_day, days[-1]))
            .group_by(bucket, f.c.kind, f.c.corrected_kind)
        )  # fmt: skip
        return [Flow(int(r[0]), r[1], r[2] or None, _int(r[3])) for r in self.conn.execute(query)]

    def members_redeemed(self, program_id: UUID, start: datetime, end: datetime) -> int:
        """Members who spent points (a reward or points paid at checkout) in [start, end)."""
        tr, po, ac = t.transfers, t.postings, t.accounts
        query = (
            select(func.count(distinct(ac.c.member_id)))
            .select_from(po.join(ac, and_(ac.c.program_id == po.c.program_id, ac.c.id == po.c.account_id))
                         .join(tr, and_(tr.c.program_id == po.c.program_id, tr.c.id == po.c.transfer_id)))
            .where(po.c.program_id == program_id, ac.c.kind == str(AccountKind.MEMBER), po.c.unit == POINTS,
                   po.c.amount < 0, tr.c.kind.in_([str(TransferKind.REDEEM), str(TransferKind.PAY)]),
                   tr.c.occurred_at >= start, tr.c.occurred_at < end)
        )  # fmt: skip
        return _int(self.conn.execute(query).scalar())

    # -- club, surveys, campaigns ---------------------------------------------------------------------------------
    def club_revenue(self, program_id: UUID, currency: str, start: datetime, end: datetime) -> int:
        """Succeeded club payments at the provider's time (else when recorded) in [start, end)."""
        c = t.club_payments
        at = func.coalesce(c.c.paid_at, c.c.recorded_at)
        query = select(func.sum(c.c.amount_minor)).where(
            c.c.program_id == program_id, c.c.status == "succeeded", c.c.currency == currency,
            at >= start, at < end,
        )  # fmt: skip
        return _int(self.conn.execute(query).scalar())

    def nps_counts(self, program_id: UUID, start: datetime, end: datetime) -> tuple[int, int, int]:
        """(answers, promoters 9-10, detractors 0-6) of `survey.answered` events whose `nps` is an integer 0-10;
        other values are not answers."""
        e = t.events
        score = e.c.attributes["nps"]
        if self._postgres:
            text_value = score.as_string()  # a JSON string "9" is no answer: the value must be a JSON number
            valid: ColumnElement[bool] = and_(func.json_typeof(score) == "number",
                                              text_value.in_([str(n) for n in range(11)]))  # fmt: skip
            promoter: ColumnElement[bool] = text_value.in_(["9", "10"])
            detractor: ColumnElement[bool] = text_value.in_([str(n) for n in range(7)])
        else:
            value = score.as_integer()
            valid = and_(func.json_type(e.c.attributes, "$.nps") == "integer", value >= 0, value <= 10)
            promoter, detractor = value >= 9, value <= 6
        query = select(
            func.count(), func.sum(case((promoter, 1), else_=0)), func.sum(case((detractor, 1), else_=0))
        ).where(e.c.program_id == program_id, e.c.name == "survey.answered", e.c.occurred_at >= start,
                e.c.occurred_at < end, valid)  # fmt: skip
        row = self.conn.execute(query).one()
        return _int(row[0]), _int(row[1]), _int(row[2])

    def campaigns(self, program_id: UUID) -> list[dict[str, Any]]:
        c = t.campaigns
        query = select(c.c.id, c.c.name, c.c.definition, c.c.budget_points, c.c.budget_spent).where(
            c.c.program_id == program_id
        )
        return [dict(row._mapping) for row in self.conn.execute(query.order_by(c.c.id))]

    def _rule_lines(self) -> Any:
        """The per-rule lines of a transfer's explanation as a table joined laterally (an explanation without a
        list of rules, e.g. a club bonus, has none)."""
        rules = t.transfers.c.explanation["rules"]
        if self._postgres:
            as_array = case((func.json_typeof(rules) == "array", rules), else_=cast(literal("[]"), JSON))
            return func.json_array_elements(as_array).table_valued("value").alias("line")
        return func.json_each(t.transfers.c.explanation, "$.rules").table_valued("value").alias("line")

    def campaign_points(self, program_id: UUID, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
        """Per campaign: (points its rules gave in earn transfers in [start, end), distinct members who got them),
        read from the explanations' per-rule lines."""
        tr = t.transfers
        lines = self._rule_lines()
        line = type_coerce(lines.c.value, JSON)
        campaign = line["campaign"].as_string().label("campaign")
        query = (
            select(campaign, func.sum(line["points"].as_integer()), func.count(distinct(tr.c.member_id)))
            .select_from(tr.join(lines, literal(True)))
            .where(tr.c.program_id == program_id, tr.c.kind == str(TransferKind.EARN), tr.c.occurred_at >= start,
                   tr.c.occurred_at < end, _names_a_campaign(), line["campaign"].as_string().is_not(None))
            .group_by(campaign)
        )  # fmt: skip
        return {row[0]: (_int(row[1]), _int(row[2])) for row in self.conn.execute(query)}

    def campaign_revenue(self, program_id: UUID, currency: str, campaign_id: str, earned_from: datetime,
                         earned_to: datetime, start: datetime, end: datetime) -> int:  # fmt: skip
        """Net revenue in [start, end) of the members who got points from the campaign in [earned_from, earned_to)."""
        tr, p = t.transfers, t.purchases
        lines = self._rule_lines()
        line = type_coerce(lines.c.value, JSON)
        participants = (
            select(tr.c.member_id)
            .select_from(tr.join(lines, literal(True)))
            .where(tr.c.program_id == program_id, tr.c.kind == str(TransferKind.EARN),
                   tr.c.occurred_at >= earned_from, tr.c.occurred_at < earned_to, _names_a_campaign(),
                   line["campaign"].as_string() == campaign_id)
        )  # fmt: skip
        query = select(func.sum(p.c.total_minor - p.c.refunded_minor)).where(
            p.c.program_id == program_id, p.c.currency == currency, p.c.member_id.in_(participants),
            p.c.occurred_at >= start, p.c.occurred_at < end,
        )  # fmt: skip
        return _int(self.conn.execute(query).scalar())

    # -- retention ------------------------------------------------------------------------------------------------
    def cohort_activity(self, program_id: UUID, currency: str, months: Sequence[datetime], start: datetime,
                        end: datetime) -> tuple[dict[int, int], dict[tuple[int, int], int]]:  # fmt: skip
        """Members per enrolment month (bucket of `months`) enrolled before `end`, and per (enrolment month,
        purchase month) the members of that cohort with a purchase in [start, end) in that month."""
        m, p = t.members, t.purchases
        cohort = bucket_of(m.c.enrolled_at, months).label("cohort")
        sizes = select(cohort, func.count()).where(m.c.program_id == program_id, m.c.enrolled_at < end).group_by(cohort)
        month = bucket_of(p.c.occurred_at, months).label("month")
        active = (
            select(cohort, month, func.count(distinct(p.c.member_id)))
            .select_from(p.join(m, and_(m.c.program_id == p.c.program_id, m.c.id == p.c.member_id)))
            .where(p.c.program_id == program_id, p.c.currency == currency, p.c.refunded_minor < p.c.total_minor,
                   p.c.occurred_at >= start, p.c.occurred_at < end, m.c.enrolled_at < end)
            .group_by(cohort, month)
        )  # fmt: skip
        return ({int(r[0]): _int(r[1]) for r in self.conn.execute(sizes)},
                {(int(r[0]), int(r[1])): _int(r[2]) for r in self.conn.execute(active)})  # fmt: skip


def _names_a_campaign() -> ColumnElement[bool]:
    """A cheap test on the explanation's text before its lines are parsed: most earns owe nothing to a campaign,
    and an explanation without the word has no line naming one."""
    return cast(t.transfers.c.explanation, Text).like('%"campaign"%')


def _instant(value: Any) -> datetime | None:
    """An aggregate over a UTC column as PostgreSQL returns it, or SQLite's stored text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    found: datetime = value
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
