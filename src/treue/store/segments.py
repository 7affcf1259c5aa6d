"""Segments, members' segment facts, product co-occurrence and surveys (issue 8).

Member facts (recency, frequency, monetary, RFM quintiles, tier, points, churn risk and CLV) are computed for the
whole programme in one query with window functions (RANK over the programme), on SQLite and PostgreSQL alike.
Product co-occurrence is counted in SQL from purchase lines (members who bought both items); only the pair counts
leave the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Connection, and_, case, delete, distinct, func, insert, literal, or_, select, type_coerce
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from treue.domain.errors import SegmentExists, SegmentNotFound, SurveyAnswered, SurveyExists, SurveyNotFound
from treue.domain.ledger import POINTS
from treue.store import tables as t
from treue.store.batch import InsertBatch

CHUNK = 500


def tier_in_force(program_id: UUID, member_id: Any, at: datetime) -> Any:
    """The tier code in force for a member (an unexpired manual assignment, else the earned tier, else the ladder's
    lowest), as a scalar subquery correlated on `member_id`."""
    mt = t.member_tiers
    in_force = case((and_(mt.c.manual_code.is_not(None), or_(mt.c.manual_until.is_(None), mt.c.manual_until > at)),
                     mt.c.manual_code), else_=mt.c.tier_code)  # fmt: skip
    return func.coalesce(
        select(in_force).where(mt.c.program_id == program_id, mt.c.member_id == member_id).scalar_subquery(),
        select(t.tiers.c.code).where(t.tiers.c.program_id == program_id, t.tiers.c.position == 0).scalar_subquery(),
    )


class Segments:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    @property
    def _postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    # -- segments -------------------------------------------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.segments).values(**row))
        except IntegrityError:
            raise SegmentExists(f"a segment with the code {row['code']!r} exists already") from None

    def all(self, program_id: UUID) -> list[dict[str, Any]]:
        s = t.segments
        return [dict(r._mapping) for r in self.conn.execute(select(s).where(s.c.program_id == program_id)
                                                             .order_by(s.c.code))]  # fmt: skip

    def get(self, program_id: UUID, code: str, *, lock: bool = False) -> dict[str, Any]:
        s = t.segments
        query = select(s).where(s.c.program_id == program_id, s.c.code == code)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise SegmentNotFound(f"no segment {code!r}", resource="segment")
        return dict(row._mapping)

    def exists(self, program_id: UUID, code: str) -> bool:
        s = t.segments
        return self.conn.execute(select(s.c.code).where(s.c.program_id == program_id, s.c.code == code)).first() \
            is not None  # fmt: skip

    def set_refreshed(self, program_id: UUID, code: str, count: int, at: datetime) -> None:
        s = t.segments
        self.conn.execute(sql_update(s).where(s.c.program_id == program_id, s.c.code == code)
                          .values(members_count=count, refreshed_at=at, updated_at=at))  # fmt: skip

    # -- membership -----------------------------------------------------------------------------------------------
    def member_ids(self, program_id: UUID, code: str) -> set[UUID]:
        sm = t.segment_members
        rows = self.conn.execute(select(sm.c.member_id).where(sm.c.program_id == program_id,
                                                              sm.c.segment_code == code))  # fmt: skip
        return {row.member_id for row in rows}

    def add_members(self, program_id: UUID, code: str, member_ids: Iterable[UUID], at: datetime) -> None:
        rows = [{"program_id": program_id, "segment_code": code, "member_id": m, "added_at": at}
                for m in sorted(member_ids)]  # fmt: skip
        for start in range(0, len(rows), CHUNK):
            self.conn.execute(insert(t.segment_members), rows[start : start + CHUNK])

    def remove_members(self, program_id: UUID, code: str, member_ids: Iterable[UUID]) -> None:
        sm = t.segment_members
        ids = sorted(member_ids)
        for start in range(0, len(ids), CHUNK):
            self.conn.execute(delete(sm).where(sm.c.program_id == program_id, sm.c.segment_code == code,
                                               sm.c.member_id.in_(ids[start : start + CHUNK])))  # fmt: skip

    def count(self, program_id: UUID, code: str) -> int:
        sm = t.segment_members
        query = select(func.count()).where(sm.c.program_id == program_id, sm.c.segment_code == code)
        return int(self.conn.execute(query).scalar() or 0)

    def page(self, program_id: UUID, code: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """Members of a segment, in member id order, with card number and when they joined the segment."""
        sm, m = t.segment_members, t.members
        query = (
            select(sm.c.member_id, m.c.card_number, m.c.external_ref, sm.c.added_at)
            .select_from(sm.join(m, and_(m.c.program_id == sm.c.program_id, m.c.id == sm.c.member_id)))
            .where(sm.c.program_id == program_id, sm.c.segment_code == code)
            .order_by(sm.c.member_id).limit(limit).offset(offset)
        )  # fmt: skip
        return [dict(row._mapping) for row in self.conn.execute(query)]

    def codes_of(self, program_id: UUID, member_id: UUID) -> tuple[str, ...]:
        sm = t.segment_members
        rows = self.conn.execute(select(sm.c.segment_code).where(sm.c.program_id == program_id,
                                                                 sm.c.member_id == member_id)
                                 .order_by(sm.c.segment_code))  # fmt: skip
        return tuple(row.segment_code for row in rows)

    def resolve(self, program_id: UUID, values: Sequence[str]) -> dict[str, set[UUID]]:
        """Which members each identifier names: a member id, a card number or an email (case-insensitive)."""
        m = t.members
        found: dict[str, set[UUID]] = {}
        ids: dict[UUID, str] = {}
        for value in values:
            with contextlib.suppress(ValueError):
                ids[UUID(value)] = value
        lowered = {v.lower(): v for v in values if "@" in v}
        cards = [v for v in values if v.isdigit()]
        for start in range(0, max(len(values), 1), CHUNK):
            id_part, card_part = list(ids)[start : start + CHUNK], cards[start : start + CHUNK]
            mail_part = list(lowered)[start : start + CHUNK]
            if not (id_part or card_part or mail_part):
                continue
            query = select(m.c.id, m.c.card_number, func.lower(m.c.email).label("email")).where(
                m.c.program_id == program_id,
                or_(m.c.id.in_(id_part), m.c.card_number.in_(card_part), func.lower(m.c.email).in_(mail_part)),
            )
            for row in self.conn.execute(query):
                if row.id in ids:
                    found.setdefault(ids[row.id], set()).add(row.id)
                if row.card_number in cards:
                    found.setdefault(row.card_number, set()).add(row.id)
                if row.email is not None and row.email in lowered:
                    found.setdefault(lowered[row.email], set()).add(row.id)
        return found

    # -- member facts ---------------------------------------------------------------------------------------------
    def facts(self, program_id: UUID, now: datetime, member_ids: Sequence[UUID] | None = None) -> list[dict[str, Any]]:
        """Every member's facts as of `now` (or only those of `member_ids`, still ranked within the programme):
        attributes, locale, enrolment, birthday, tier, points, frequency, monetary, last purchase time, RFM scores
        1-5 and the CLV model's probability alive and expected CLV. One query."""
        m, p, a, c = t.members, t.purchases, t.accounts, t.member_clv
        bought = (
            select(p.c.member_id, func.count().label("frequency"),
                   func.sum(p.c.total_minor - p.c.refunded_minor).label("monetary"),
                   func.max(p.c.occurred_at).label("last_at"))
            .where(p.c.program_id == program_id, p.c.member_id.is_not(None), p.c.refunded_minor < p.c.total_minor,
                   p.c.occurred_at <= now)
            .group_by(p.c.member_id)
        ).subquery("bought")  # fmt: skip
        frequency = func.coalesce(bought.c.frequency, 0)
        monetary = func.coalesce(bought.c.monetary, 0)
        n = func.count().over()

        def score(*order: Any) -> Any:
            return literal(1) + (literal(5) * (func.rank().over(order_by=order) - 1)) // n

        ranked = (
            select(m.c.id, m.c.attributes, m.c.locale, m.c.enrolled_at, m.c.birthday,
                   tier_in_force(program_id, m.c.id, now).label("tier"),
                   func.coalesce(a.c.balance, 0).label("points"), frequency.label("frequency"),
                   monetary.label("monetary"), bought.c.last_at,
                   score(bought.c.last_at.is_not(None), bought.c.last_at).label("r"),
                   score(frequency).label("f"), score(monetary).label("m"),
                   c.c.probability_alive, c.c.expected_clv_minor)
            .select_from(
                m.outerjoin(bought, bought.c.member_id == m.c.id)
                .outerjoin(a, and_(a.c.program_id == m.c.program_id, a.c.member_id == m.c.id, a.c.unit == POINTS))
                .outerjoin(c, and_(c.c.program_id == m.c.program_id, c.c.member_id == m.c.id))
            )
            .where(m.c.program_id == program_id, m.c.enrolled_at <= now)
        ).subquery("ranked")  # fmt: skip
        query = select(ranked)
        if member_ids is not None:
            query = query.where(ranked.c.id.in_(list(member_ids)))
        return [dict(row._mapping) for row in self.conn.execute(query.order_by(ranked.c.id))]

    # -- product co-occurrence --------------------------------------------------------------------------------------
    def _lines(self) -> Any:
        if self._postgres:
            return func.json_array_elements(t.purchases.c.lines).table_valued("value").alias("line")
        return func.json_each(t.purchases.c.lines).table_valued("value").alias("line")

    def _member_items(self, program_id: UUID, *, member_id: UUID | None = None, purchase_id: Any = None) -> Any:
        """(member_id, sku) of purchase lines, distinct: what each member bought (not wholly refunded)."""
        p = t.purchases
        lines = self._lines()
        sku = type_coerce(lines.c.value, JSON)["sku"].as_string()
        query = (
            select(p.c.member_id, sku.label("sku")).distinct()
            .select_from(p.join(lines, literal(True)))
            .where(p.c.program_id == program_id, p.c.member_id.is_not(None), p.c.refunded_minor < p.c.total_minor)
        )  # fmt: skip
        if member_id is not None:
            query = query.where(p.c.member_id == member_id)
        if purchase_id is not None:
            query = query.where(p.c.id == purchase_id)
        return query

    def pair_counts(self, program_id: UUID) -> list[tuple[str, str, int]]:
        """(sku, other sku, members who bought both) for every pair bought by one member, the diagonal included
        (sku == other sku: members who bought it). Counted in the database."""
        items = self._member_items(program_id).subquery("items")
        x, y = items.alias("x"), items.alias("y")
        query = (
            select(x.c.sku, y.c.sku, func.count())
            .select_from(x.join(y, x.c.member_id == y.c.member_id))
            .where(x.c.sku.is_not(None), y.c.sku.is_not(None))
            .group_by(x.c.sku, y.c.sku)
        )  # fmt: skip
        return [(row[0], row[1], int(row[2])) for row in self.conn.execute(query)]

    def replace_pairs(self, program_id: UUID, rows: Sequence[dict[str, Any]]) -> None:
        self.conn.execute(delete(t.product_pairs).where(t.product_pairs.c.program_id == program_id))
        for start in range(0, len(rows), CHUNK):
            self.conn.execute(insert(t.product_pairs), list(rows[start : start + CHUNK]))

    def pairs_computed_at(self, program_id: UUID) -> datetime | None:
        pp = t.product_pairs
        value = self.conn.execute(select(func.max(pp.c.computed_at)).where(pp.c.program_id == program_id)).scalar()
        return value if isinstance(value, datetime) or value is None else datetime.fromisoformat(str(value))

    def last_purchase_id(self, program_id: UUID, member_id: UUID) -> Any:
        p = t.purchases
        return self.conn.execute(
            select(p.c.id).where(p.c.program_id == program_id, p.c.member_id == member_id)
            .order_by(p.c.occurred_at.desc(), p.c.created_at.desc()).limit(1)
        ).scalar()  # fmt: skip

    def product_candidates(self, program_id: UUID, member_id: UUID, exclude_purchase: Any,
                           limit: int) -> list[tuple[str, int, int]]:  # fmt: skip
        """(sku, score, members who bought it) of the items most often bought with what the member bought, by the
        sum of the cosine scores, without the items of `exclude_purchase` (the member's last purchase)."""
        pp = t.product_pairs
        mine = self._member_items(program_id, member_id=member_id).subquery("mine")
        query = (
            select(pp.c.other_sku, func.sum(pp.c.score).label("score"))
            .where(pp.c.program_id == program_id, pp.c.sku.in_(select(mine.c.sku)), pp.c.other_sku != pp.c.sku)
            .group_by(pp.c.other_sku)
        )  # fmt: skip
        popularity = self._popularity(program_id)
        if exclude_purchase is not None:
            just = self._member_items(program_id, purchase_id=exclude_purchase).subquery("just")
            query = query.where(pp.c.other_sku.not_in(select(just.c.sku)))
        scored = query.subquery("scored")
        rows = self.conn.execute(
            select(scored.c.other_sku, scored.c.score, func.coalesce(popularity.c.members, 0))
            .select_from(scored.outerjoin(popularity, popularity.c.sku == scored.c.other_sku))
            .order_by(scored.c.score.desc(), scored.c.other_sku).limit(limit)
        )  # fmt: skip
        return [(row[0], int(row[1]), int(row[2])) for row in rows]

    def _popularity(self, program_id: UUID) -> Any:
        pp = t.product_pairs
        return (select(pp.c.sku, pp.c.members).where(pp.c.program_id == program_id, pp.c.other_sku == pp.c.sku)
                .subquery("popularity"))  # fmt: skip

    def popular_products(self, program_id: UUID, exclude_purchase: Any, limit: int) -> list[tuple[str, int]]:
        """(sku, members who bought it), most bought first, without the items of `exclude_purchase`."""
        pp = t.product_pairs
        query = select(pp.c.sku, pp.c.members).where(pp.c.program_id == program_id, pp.c.other_sku == pp.c.sku)
        if exclude_purchase is not None:
            just = self._member_items(program_id, purchase_id=exclude_purchase).subquery("just")
            query = query.where(pp.c.sku.not_in(select(just.c.sku)))
        rows = self.conn.execute(query.order_by(pp.c.members.desc(), pp.c.sku).limit(limit))
        return [(row[0], int(row[1])) for row in rows]

    # -- rewards ----------------------------------------------------------------------------------------------------
    def reward_popularity(self, program_id: UUID, member_id: UUID, since: datetime) -> dict[UUID, tuple[int, int]]:
        """Per reward: (members of the member's segments who redeemed it since `since`, all members who did)."""
        r, sm = t.redemptions, t.segment_members
        mine = select(sm.c.segment_code).where(sm.c.program_id == program_id, sm.c.member_id == member_id)
        peers = select(sm.c.member_id).where(sm.c.program_id == program_id, sm.c.segment_code.in_(mine))
        in_segment = case((r.c.member_id.in_(peers), r.c.member_id), else_=None)
        rows = self.conn.execute(
            select(r.c.reward_id, func.count(distinct(in_segment)), func.count(distinct(r.c.member_id)))
            .where(r.c.program_id == program_id, r.c.created_at >= since, r.c.status != "cancelled")
            .group_by(r.c.reward_id)
        )  # fmt: skip
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    def redeemed_counts(self, program_id: UUID, member_id: UUID) -> dict[UUID, int]:
        r = t.redemptions
        rows = self.conn.execute(
            select(r.c.reward_id, func.count())
            .where(r.c.program_id == program_id, r.c.member_id == member_id, r.c.status != "cancelled")
            .group_by(r.c.reward_id)
        )  # fmt: skip
        return {row[0]: int(row[1]) for row in rows}

    # -- surveys ----------------------------------------------------------------------------------------------------
    def add_survey(self, row: dict[str, Any]) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.surveys).values(**row))
        except IntegrityError:
            raise SurveyExists(f"a survey with the code {row['code']!r} exists already") from None

    def surveys(self, program_id: UUID) -> list[dict[str, Any]]:
        s = t.surveys
        return [dict(r._mapping) for r in self.conn.execute(select(s).where(s.c.program_id == program_id)
                                                             .order_by(s.c.code))]  # fmt: skip

    def survey(self, program_id: UUID, code: str) -> dict[str, Any]:
        s = t.surveys
        row = self.conn.execute(select(s).where(s.c.program_id == program_id, s.c.code == code)).first()
        if row is None:
            raise SurveyNotFound(f"no survey {code!r}", resource="survey")
        return dict(row._mapping)

    def add_response(self, row: dict[str, Any]) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.survey_responses).values(**row))
        except IntegrityError:
            raise SurveyAnswered("the member has answered this survey already", survey=row["survey_code"]) from None

    def response_counts(self, program_id: UUID, code: str) -> tuple[int, datetime | None]:
        sr = t.survey_responses
        row = self.conn.execute(select(func.count(), func.max(sr.c.occurred_at))
                                .where(sr.c.program_id == program_id, sr.c.survey_code == code)).one()  # fmt: skip
        last = row[1]
        if isinstance(last, str):
            last = datetime.fromisoformat(last)
        return int(row[0]), last

    def nps_groups(self, program_id: UUID, code: str, start: datetime, end: datetime,
                   by: str | None) -> list[tuple[Any, int, int, int]]:  # fmt: skip
        """(group key, responses, promoters 9-10, detractors 0-6) of the survey's responses in [start, end), per
        segment (the members' segments now; a member in no segment: key None), tier (when answering) or channel."""
        sr, sm = t.survey_responses, t.segment_members
        promoter = func.sum(case((sr.c.score >= 9, 1), else_=0))
        detractor = func.sum(case((sr.c.score <= 6, 1), else_=0))
        source: Any = sr
        key: Any = literal(None)
        if by == "segment":
            source = sr.outerjoin(sm, and_(sm.c.program_id == sr.c.program_id, sm.c.member_id == sr.c.member_id))
            key = sm.c.segment_code
        elif by == "tier":
            key = sr.c.tier
        elif by == "channel":
            key = sr.c.channel
        query = (
            select(key.label("key"), func.count(), promoter, detractor).select_from(source)
            .where(sr.c.program_id == program_id, sr.c.survey_code == code, sr.c.occurred_at >= start,
                   sr.c.occurred_at < end)
        )  # fmt: skip
        if by is not None:
            query = query.group_by(key)
        return [(row[0], int(row[1]), int(row[2] or 0), int(row[3] or 0)) for row in self.conn.execute(query)
                if int(row[1])]  # fmt: skip
