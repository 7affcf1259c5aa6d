"""Storage of missions, progress, streaks, badges, instant wins and leaderboard consents (issue 7).

The configuration a purchase needs (active missions, streaks and instant-win campaigns, parsed) is cached per
process for a few seconds, like the rule set, and forgotten in this process on every edit: a purchase in a
programme without any of it asks nothing. Prize budgets are spent with conditional UPDATEs (and CHECKs guard
them), so concurrent draws never give more than a budget allows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from fractions import Fraction
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from treue.domain.durations import zone
from treue.domain.errors import (
    BadgeExists,
    BadgeNotFound,
    DomainError,
    InstantWinExists,
    InstantWinNotFound,
    MissionExists,
    MissionNotFound,
    StreakExists,
    StreakNotFound,
)
from treue.domain.gamification.badges import Badge
from treue.domain.gamification.config import Config, build_config
from treue.domain.gamification.instant_wins import InstantWin, parse_instant_win
from treue.domain.gamification.missions import Mission, parse_mission
from treue.domain.gamification.streaks import Streak, parse_streak
from treue.domain.ledger import TransferKind
from treue.domain.programs import Program
from treue.domain.rules.spec import decimal_text, exact_decimal
from treue.store import tables as t
from treue.store.batch import InsertBatch

log = logging.getLogger("treue.gamification")
MP, MO, CO = t.mission_progress, t.mission_optins, t.gamification_completions
IW, PZ, PD = t.instant_wins, t.instant_win_prizes, t.instant_win_prize_days


class Gamification:
    _cache: dict[UUID, tuple[float, str, str, Config]] = {}
    _cache_lock = threading.Lock()
    CACHE_SECONDS = 5.0  # definitions change rarely; other processes see an edit within this time

    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    def _insert(self, table: Any) -> Any:
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        return make(table)

    # -- the configuration a purchase needs ---------------------------------------------------------------
    def config(self, program: Program, *, cached: bool = False) -> Config:
        """The programme's active missions, streaks and instant-win campaigns. With `cached`, what this process
        read in the last few seconds is reused without a query."""
        if cached:
            hit = self._cache.get(program.id)
            if hit and hit[0] > time.monotonic() and hit[1:3] == (program.timezone, program.currency):
                return hit[3]
        expires = time.monotonic() + self.CACHE_SECONDS
        config = build_config(
            [m for m in (self._mission(program, row, strict=False) for row in self._rows(t.missions, program.id, True))
             if m is not None],
            [s for s in (self._streak(row, strict=False) for row in self._rows(t.streaks, program.id, True))
             if s is not None],
            [w for w in (self._instant_win(program, row, strict=False) for row in self._rows(IW, program.id, True))
             if w is not None],
        )  # fmt: skip
        with self._cache_lock:
            self._cache[program.id] = (expires, program.timezone, program.currency, config)
        return config

    @classmethod
    def forget(cls, program_id: UUID) -> None:
        """Drop this process's cached configuration of a programme (after an edit)."""
        with cls._cache_lock:
            cls._cache.pop(program_id, None)

    def _rows(self, table: Any, program_id: UUID, active_only: bool) -> list[Any]:
        query = select(table).where(table.c.program_id == program_id)
        if active_only:
            query = query.where(table.c.active.is_(True))
        return list(self.conn.execute(query.order_by(table.c.code)))

    @staticmethod
    def _mission(program: Program, row: Any, *, strict: bool = True) -> Mission | None:
        try:
            return parse_mission(row.definition, mission_id=row.id, currency=program.currency,
                                 tz=zone(program.timezone), active=row.active)  # fmt: skip
        except DomainError as error:
            if strict:
                raise
            log.warning("programme %s: mission %s no longer reads and is left out: %s", program.id, row.code,
                        error.detail)  # fmt: skip
            return None

    @staticmethod
    def _streak(row: Any, *, strict: bool = True) -> Streak | None:
        try:
            return parse_streak(row.definition, streak_id=row.id, active=row.active)
        except DomainError as error:
            if strict:
                raise
            log.warning("streak %s no longer reads and is left out: %s", row.code, error.detail)
            return None

    @staticmethod
    def _instant_win(program: Program, row: Any, *, strict: bool = True) -> InstantWin | None:
        try:
            return parse_instant_win(row.definition, campaign_id=row.id, tz=zone(program.timezone), active=row.active,
                                     odds_version=row.odds_version)  # fmt: skip
        except DomainError as error:
            if strict:
                raise
            log.warning("instant-win campaign %s no longer reads and is left out: %s", row.code, error.detail)
            return None

    # -- missions --------------------------------------------------------------------------------------------
    def add_mission(self, program: Program, mission: Mission, now: datetime) -> None:
        if self.conn.execute(select(t.missions.c.id).where(t.missions.c.program_id == program.id,
                                                           t.missions.c.code == mission.code)).first():  # fmt: skip
            raise MissionExists(f"a mission with code '{mission.code}' exists already", mission=mission.code)
        try:
            self.conn.execute(insert(t.missions).values(
                program_id=program.id, id=mission.id, code=mission.code, definition=mission.document(program.currency),
                active=mission.active, created_at=now, updated_at=now))  # fmt: skip
        except IntegrityError:
            raise MissionExists(f"a mission with code '{mission.code}' exists already", mission=mission.code) from None
        self.forget(program.id)

    def update_mission(self, program: Program, mission: Mission, now: datetime) -> None:
        self.conn.execute(update(t.missions).where(t.missions.c.program_id == program.id, t.missions.c.id == mission.id)
                          .values(definition=mission.document(program.currency), active=mission.active,
                                  updated_at=now))  # fmt: skip
        self.forget(program.id)

    def mission(self, program: Program, code: str) -> Mission:
        row = self.conn.execute(select(t.missions).where(t.missions.c.program_id == program.id,
                                                         t.missions.c.code == code)).first()  # fmt: skip
        if row is None:
            raise MissionNotFound(f"mission '{code}' not found", mission=code)
        found = self._mission(program, row)
        assert found is not None
        return found

    def missions(self, program: Program) -> list[Mission]:
        return [m for m in (self._mission(program, row, strict=False) for row in self._rows(t.missions, program.id,
                                                                                             False)) if m is not None]  # fmt: skip

    def optins(self, program_id: UUID, member_id: UUID, mission_ids: Sequence[UUID]) -> dict[UUID, datetime]:
        if not mission_ids:
            return {}
        rows = self.conn.execute(select(MO.c.mission_id, MO.c.opted_in_at).where(
            MO.c.program_id == program_id, MO.c.member_id == member_id, MO.c.mission_id.in_(list(mission_ids))))  # fmt: skip
        return {row.mission_id: row.opted_in_at for row in rows}

    def add_optin(self, program_id: UUID, mission_id: UUID, member_id: UUID, at: datetime) -> bool:
        """False: the member had opted in already (the first opt-in stands)."""
        statement = self._insert(MO).values(program_id=program_id, mission_id=mission_id, member_id=member_id,
                                            opted_in_at=at)  # fmt: skip
        statement = statement.on_conflict_do_nothing(index_elements=["program_id", "mission_id", "member_id"])
        return self.conn.execute(statement.returning(MO.c.opted_in_at)).first() is not None

    def add_progress(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(MP), rows)

    def progress(self, program_id: UUID, mission_id: UUID, member_id: UUID, window_key: str) -> int:
        return int(self.conn.execute(
            select(func.coalesce(func.sum(MP.c.amount), 0)).where(
                MP.c.program_id == program_id, MP.c.mission_id == mission_id, MP.c.member_id == member_id,
                MP.c.window_key == window_key)
        ).scalar_one())  # fmt: skip

    def progress_of_member(self, program_id: UUID, member_id: UUID,
                           windows: Sequence[tuple[UUID, str]]) -> dict[tuple[UUID, str], int]:  # fmt: skip
        """The progress of several (mission, window) pairs of one member, in one query."""
        if not windows:
            return {}
        wanted = or_(*(and_(MP.c.mission_id == m, MP.c.window_key == k) for m, k in windows))
        rows = self.conn.execute(
            select(MP.c.mission_id, MP.c.window_key, func.sum(MP.c.amount))
            .where(MP.c.program_id == program_id, MP.c.member_id == member_id, wanted)
            .group_by(MP.c.mission_id, MP.c.window_key)
        )  # fmt: skip
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def progress_of_purchase(self, program_id: UUID, purchase_id: UUID) -> list[dict[str, Any]]:
        """What a purchase contributed to missions, net of what refunds took back: one entry per mission,
        member, window and source ("event" or "rule"; the refund rows are netted into them)."""
        rows = self.conn.execute(
            select(MP.c.mission_id, MP.c.member_id, MP.c.window_key, MP.c.source, MP.c.amount, MP.c.occurred_at)
            .where(MP.c.program_id == program_id, MP.c.purchase_id == purchase_id)
            .order_by(MP.c.created_at)
        ).all()  # fmt: skip
        found: dict[tuple[UUID, UUID, str, str], dict[str, Any]] = {}
        for row in rows:
            if row.source != "refund":
                key = (row.mission_id, row.member_id, row.window_key, row.source)
                entry = found.setdefault(key, {"mission_id": row.mission_id, "member_id": row.member_id,
                                               "window_key": row.window_key, "source": row.source, "amount": 0,
                                               "occurred_at": row.occurred_at})  # fmt: skip
                entry["amount"] += row.amount
        for row in rows:  # refund rows take from the event's contribution first, then from the rule steps
            if row.source == "refund":
                left = -row.amount
                for source in ("event", "rule"):
                    netted = found.get((row.mission_id, row.member_id, row.window_key, source))
                    if netted and left > 0:
                        taken = min(left, netted["amount"])
                        netted["amount"] -= taken
                        left -= taken
        return [e for e in found.values() if e["amount"] > 0]

    # -- completions (missions and streak milestones) ------------------------------------------------------
    def add_completion(self, row: dict[str, Any]) -> bool:
        """Insert a completion unless one with its key is active (False: someone else completed it)."""
        statement = self._insert(CO).values(**row).on_conflict_do_nothing(
            index_elements=["program_id", "kind", "subject_id", "member_id", "completion_key"],
            index_where=CO.c.reversed_at.is_(None))  # fmt: skip
        # RETURNING, not rowcount: psycopg does not count the rows of INSERT ... ON CONFLICT DO NOTHING reliably
        return self.conn.execute(statement.returning(CO.c.id)).first() is not None

    def completions(self, program_id: UUID, member_id: UUID, kind: str, subject_ids: Sequence[UUID],
                    *, window_key: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Active completions of a member (not reversed)."""
        if not subject_ids:
            return []
        query = select(CO).where(CO.c.program_id == program_id, CO.c.member_id == member_id, CO.c.kind == kind,
                                 CO.c.subject_id.in_(list(subject_ids)), CO.c.reversed_at.is_(None))  # fmt: skip
        if window_key is not None:
            query = query.where(CO.c.window_key == window_key)
        return [dict(r._mapping) for r in self.conn.execute(query.order_by(CO.c.completed_at))]

    def completion_count(self, program_id: UUID, member_id: UUID, kind: str, subject_id: UUID) -> int:
        return int(self.conn.execute(select(func.count()).select_from(CO).where(
            CO.c.program_id == program_id, CO.c.member_id == member_id, CO.c.kind == kind,
            CO.c.subject_id == subject_id, CO.c.reversed_at.is_(None))).scalar_one())  # fmt: skip

    def reverse_completion(self, program_id: UUID, completion_id: UUID, at: datetime, transfer_id: UUID | None,
                           taken: int, forgiven: int) -> None:  # fmt: skip
        self.conn.execute(update(CO).where(CO.c.program_id == program_id, CO.c.id == completion_id).values(
            reversed_at=at, reversal_transfer_id=transfer_id, points_taken_back=taken, points_forgiven=forgiven))  # fmt: skip

    # -- streaks ---------------------------------------------------------------------------------------------
    def add_streak(self, program_id: UUID, streak: Streak, now: datetime) -> None:
        if self.conn.execute(select(t.streaks.c.id).where(t.streaks.c.program_id == program_id,
                                                          t.streaks.c.code == streak.code)).first():  # fmt: skip
            raise StreakExists(f"a streak with code '{streak.code}' exists already", streak=streak.code)
        try:
            self.conn.execute(insert(t.streaks).values(program_id=program_id, id=streak.id, code=streak.code,
                                                       definition=streak.document(), active=streak.active,
                                                       created_at=now, updated_at=now))  # fmt: skip
        except IntegrityError:
            raise StreakExists(f"a streak with code '{streak.code}' exists already", streak=streak.code) from None
        self.forget(program_id)

    def update_streak(self, program_id: UUID, streak: Streak, now: datetime) -> None:
        self.conn.execute(update(t.streaks).where(t.streaks.c.program_id == program_id, t.streaks.c.id == streak.id)
                          .values(definition=streak.document(), active=streak.active, updated_at=now))  # fmt: skip
        self.forget(program_id)

    def streak(self, program_id: UUID, code: str) -> Streak:
        row = self.conn.execute(select(t.streaks).where(t.streaks.c.program_id == program_id,
                                                        t.streaks.c.code == code)).first()  # fmt: skip
        if row is None:
            raise StreakNotFound(f"streak '{code}' not found", streak=code)
        found = self._streak(row)
        assert found is not None
        return found

    def streaks(self, program_id: UUID) -> list[Streak]:
        return [s for s in (self._streak(r, strict=False) for r in self._rows(t.streaks, program_id, False))
                if s is not None]  # fmt: skip

    def add_hits(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(t.streak_hits), rows)

    def periods(self, program_id: UUID, streak_ids: Sequence[UUID], member_id: UUID) -> dict[UUID, list[int]]:
        """The periods in which the member's qualifying events still count (net of refunds), per streak."""
        h = t.streak_hits
        if not streak_ids:
            return {}
        rows = self.conn.execute(
            select(h.c.streak_id, h.c.period_index).where(h.c.program_id == program_id, h.c.member_id == member_id,
                                                          h.c.streak_id.in_(list(streak_ids)))
            .group_by(h.c.streak_id, h.c.period_index).having(func.sum(h.c.amount) > 0)
        )  # fmt: skip
        found: dict[UUID, list[int]] = {s: [] for s in streak_ids}
        for row in rows:
            found[row.streak_id].append(int(row.period_index))
        return found

    def hits_of_purchase(self, program_id: UUID, purchase_id: UUID) -> list[dict[str, Any]]:
        """The streak hits of a purchase still counting: (streak, member, period) with a positive sum."""
        h = t.streak_hits
        rows = self.conn.execute(
            select(h.c.streak_id, h.c.member_id, h.c.period_index, func.sum(h.c.amount).label("amount"),
                   func.min(h.c.occurred_at).label("occurred_at"))
            .where(h.c.program_id == program_id, h.c.purchase_id == purchase_id)
            .group_by(h.c.streak_id, h.c.member_id, h.c.period_index).having(func.sum(h.c.amount) > 0)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]

    # -- badges ----------------------------------------------------------------------------------------------
    def add_badge(self, program_id: UUID, badge: Badge, now: datetime) -> None:
        b = t.badges
        if self.conn.execute(select(b.c.id).where(b.c.program_id == program_id, b.c.code == badge.code)).first():
            raise BadgeExists(f"a badge with code '{badge.code}' exists already", badge=badge.code)
        try:
            self.conn.execute(insert(b).values(program_id=program_id, created_at=now, **_badge_row(badge)))
        except IntegrityError:
            raise BadgeExists(f"a badge with code '{badge.code}' exists already", badge=badge.code) from None

    def update_badge(self, program_id: UUID, badge: Badge) -> None:
        b = t.badges
        self.conn.execute(update(b).where(b.c.program_id == program_id, b.c.id == badge.id).values(**_badge_row(badge)))

    def badge(self, program_id: UUID, code: str) -> Badge | None:
        b = t.badges
        row = self.conn.execute(select(b).where(b.c.program_id == program_id, b.c.code == code)).first()
        return _badge(row) if row is not None else None

    def require_badge(self, program_id: UUID, code: str) -> Badge:
        found = self.badge(program_id, code)
        if found is None:
            raise BadgeNotFound(f"badge '{code}' not found", badge=code)
        return found

    def badges(self, program_id: UUID) -> list[tuple[Badge, int]]:
        """Every badge with the number of members holding it."""
        b, mb = t.badges, t.member_badges
        held = (select(func.count()).select_from(mb).where(mb.c.program_id == b.c.program_id, mb.c.badge_id == b.c.id)
                .scalar_subquery())  # fmt: skip
        rows = self.conn.execute(
            select(b, held.label("holders")).where(b.c.program_id == program_id).order_by(b.c.code)
        )
        return [(_badge(row), int(row.holders)) for row in rows]

    def member_count(self, program_id: UUID) -> int:
        m = t.members
        return int(self.conn.execute(select(func.count()).select_from(m).where(
            m.c.program_id == program_id, m.c.status == "active")).scalar_one())  # fmt: skip

    def award_badge(self, program_id: UUID, badge_id: UUID, member_id: UUID, at: datetime,
                    source: dict[str, Any]) -> bool:  # fmt: skip
        """Give a member a badge; False (and nothing changes) when the member holds it already."""
        mb = t.member_badges
        statement = self._insert(mb).values(program_id=program_id, badge_id=badge_id, member_id=member_id,
                                            awarded_at=at, source=source)  # fmt: skip
        statement = statement.on_conflict_do_nothing(index_elements=["program_id", "badge_id", "member_id"])
        return self.conn.execute(statement.returning(mb.c.awarded_at)).first() is not None

    def badges_of(self, program_id: UUID, member_id: UUID) -> list[tuple[Badge, datetime, dict[str, Any], int]]:
        b, mb = t.badges, t.member_badges
        other = mb.alias("other")
        holders = (select(func.count()).select_from(other)
                   .where(other.c.program_id == b.c.program_id, other.c.badge_id == b.c.id).scalar_subquery())  # fmt: skip
        rows = self.conn.execute(
            select(b, mb.c.awarded_at, mb.c.source, holders.label("holders"))
            .join(mb, and_(mb.c.program_id == b.c.program_id, mb.c.badge_id == b.c.id))
            .where(mb.c.program_id == program_id, mb.c.member_id == member_id)
            .order_by(mb.c.awarded_at, b.c.code)
        )  # fmt: skip
        return [(_badge(r), r.awarded_at, r.source, int(r.holders)) for r in rows]

    # -- instant wins -----------------------------------------------------------------------------------------
    def add_instant_win(self, program_id: UUID, campaign: InstantWin, now: datetime) -> None:
        if self.conn.execute(select(IW.c.id).where(IW.c.program_id == program_id, IW.c.code == campaign.code)).first():
            raise InstantWinExists(f"an instant-win campaign with code '{campaign.code}' exists already",
                                   instant_win=campaign.code)  # fmt: skip
        try:
            self.conn.execute(insert(IW).values(
                program_id=program_id, id=campaign.id, code=campaign.code, definition=campaign.document(),
                active=campaign.active, odds_version=campaign.odds_version, points_budget=campaign.points_budget,
                points_awarded=0, created_at=now, updated_at=now))  # fmt: skip
        except IntegrityError:
            raise InstantWinExists(f"an instant-win campaign with code '{campaign.code}' exists already",
                                   instant_win=campaign.code) from None  # fmt: skip
        self.conn.execute(insert(PZ), [{"program_id": program_id, "campaign_id": campaign.id, "code": p.code,
                                        "total": p.total, "awarded": 0} for p in campaign.prizes])  # fmt: skip
        self.add_odds(program_id, campaign, now)
        self.forget(program_id)

    def add_odds(self, program_id: UUID, campaign: InstantWin, now: datetime) -> None:
        self.conn.execute(insert(t.instant_win_odds).values(program_id=program_id, campaign_id=campaign.id,
                                                            version=campaign.odds_version, odds=campaign.odds(),
                                                            created_at=now))  # fmt: skip

    def update_instant_win(self, program_id: UUID, campaign: InstantWin, now: datetime) -> None:
        """Store a changed campaign (a new odds version when the prizes changed: see the service)."""
        self.conn.execute(update(IW).where(IW.c.program_id == program_id, IW.c.id == campaign.id).values(
            definition=campaign.document(), active=campaign.active, odds_version=campaign.odds_version,
            points_budget=campaign.points_budget, updated_at=now))  # fmt: skip
        self.forget(program_id)

    def instant_win(self, program: Program, code: str, *, lock: bool = False) -> tuple[InstantWin, dict[str, Any]]:
        query = select(IW).where(IW.c.program_id == program.id, IW.c.code == code)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise InstantWinNotFound(f"instant-win campaign '{code}' not found", instant_win=code)
        found = self._instant_win(program, row)
        assert found is not None
        return found, dict(row._mapping)

    def instant_wins(self, program: Program) -> list[tuple[InstantWin, dict[str, Any]]]:
        found = []
        for row in self._rows(IW, program.id, False):
            campaign = self._instant_win(program, row, strict=False)
            if campaign is not None:
                found.append((campaign, dict(row._mapping)))
        return found

    def prize_counters(self, program_id: UUID, campaign_id: UUID, day: date) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            select(PZ.c.code, PZ.c.total, PZ.c.awarded, PD.c.awarded.label("today"))
            .select_from(PZ.outerjoin(PD, and_(PD.c.program_id == PZ.c.program_id, PD.c.campaign_id == PZ.c.campaign_id,
                                               PD.c.code == PZ.c.code, PD.c.day == day)))
            .where(PZ.c.program_id == program_id, PZ.c.campaign_id == campaign_id)
        )  # fmt: skip
        return {r.code: {"total": r.total, "awarded": r.awarded, "today": r.today or 0} for r in rows}

    def ensure_prize(self, program_id: UUID, campaign_id: UUID, code: str, total: int | None) -> None:
        """A prize added by an edit gets its counter; a changed total applies (never below what was given)."""
        statement = self._insert(PZ).values(program_id=program_id, campaign_id=campaign_id, code=code, total=total,
                                            awarded=0)  # fmt: skip
        self.conn.execute(statement.on_conflict_do_nothing(index_elements=["program_id", "campaign_id", "code"]))
        self.conn.execute(update(PZ).where(PZ.c.program_id == program_id, PZ.c.campaign_id == campaign_id,
                                           PZ.c.code == code)
                          .values(total=None if total is None else func.max(total, PZ.c.awarded)
                                  if self.conn.dialect.name == "sqlite" else func.greatest(total, PZ.c.awarded)))  # fmt: skip

    def take_prize(self, program_id: UUID, campaign_id: UUID, code: str, points: int, day: date,
                   daily_cap: int | None) -> str | None:  # fmt: skip
        """Spend one of a prize (and its points from the campaign's budget, and one of today's cap), or say why
        not: "points_budget", "prize_exhausted", "daily_cap". Each counter is a conditional UPDATE: a concurrent
        draw waits on the row and sees the other's result, so no budget is ever exceeded. The caller's
        transaction rolls the counters back with the draw if anything after fails. Counters are taken in a
        fixed order (campaign, prize, day) so draws cannot deadlock."""
        if points > 0:
            spent = self.conn.execute(
                update(IW).where(IW.c.program_id == program_id, IW.c.id == campaign_id,
                                 or_(IW.c.points_budget.is_(None), IW.c.points_awarded + points <= IW.c.points_budget))
                .values(points_awarded=IW.c.points_awarded + points).returning(IW.c.points_awarded)
            ).first()  # fmt: skip
            if spent is None:
                return "points_budget"
        taken = self.conn.execute(
            update(PZ).where(PZ.c.program_id == program_id, PZ.c.campaign_id == campaign_id, PZ.c.code == code,
                             or_(PZ.c.total.is_(None), PZ.c.awarded < PZ.c.total))
            .values(awarded=PZ.c.awarded + 1).returning(PZ.c.awarded)
        ).first()  # fmt: skip
        if taken is None:
            self._give_back_points(program_id, campaign_id, points)
            return "prize_exhausted"
        if daily_cap is not None:
            insert_day = self._insert(PD).values(program_id=program_id, campaign_id=campaign_id, code=code, day=day,
                                                 awarded=0)  # fmt: skip
            self.conn.execute(insert_day.on_conflict_do_nothing(
                index_elements=["program_id", "campaign_id", "code", "day"]))  # fmt: skip
            today = self.conn.execute(
                update(PD).where(PD.c.program_id == program_id, PD.c.campaign_id == campaign_id, PD.c.code == code,
                                 PD.c.day == day, PD.c.awarded < daily_cap)
                .values(awarded=PD.c.awarded + 1).returning(PD.c.awarded)
            ).first()  # fmt: skip
            if today is None:
                self.conn.execute(update(PZ).where(PZ.c.program_id == program_id, PZ.c.campaign_id == campaign_id,
                                                   PZ.c.code == code).values(awarded=PZ.c.awarded - 1))  # fmt: skip
                self._give_back_points(program_id, campaign_id, points)
                return "daily_cap"
        return None

    def _give_back_points(self, program_id: UUID, campaign_id: UUID, points: int) -> None:
        if points > 0:
            self.conn.execute(update(IW).where(IW.c.program_id == program_id, IW.c.id == campaign_id)
                              .values(points_awarded=IW.c.points_awarded - points))  # fmt: skip

    def add_draw(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.instant_win_draws).values(**row))

    def draws(self, program_id: UUID, campaign_id: UUID, limit: int) -> list[dict[str, Any]]:
        d = t.instant_win_draws
        rows = self.conn.execute(select(d).where(d.c.program_id == program_id, d.c.campaign_id == campaign_id)
                                 .order_by(d.c.drawn_at.desc(), d.c.id).limit(limit))  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def draw_counts(self, program_id: UUID, campaign_id: UUID) -> dict[str, int]:
        d = t.instant_win_draws
        rows = self.conn.execute(select(d.c.outcome, func.count()).where(d.c.program_id == program_id,
                                                                         d.c.campaign_id == campaign_id)
                                 .group_by(d.c.outcome))  # fmt: skip
        return {outcome: int(count) for outcome, count in rows}

    def odds_versions(self, program_id: UUID, campaign_id: UUID) -> list[dict[str, Any]]:
        o = t.instant_win_odds
        rows = self.conn.execute(select(o.c.version, o.c.odds, o.c.created_at).where(
            o.c.program_id == program_id, o.c.campaign_id == campaign_id).order_by(o.c.version))  # fmt: skip
        return [dict(r._mapping) for r in rows]

    # -- leaderboards --------------------------------------------------------------------------------------
    def set_consent(self, program_id: UUID, member_id: UUID, consented: bool, nickname: str | None,
                    at: datetime) -> None:  # fmt: skip
        c = t.leaderboard_consents
        statement = self._insert(c).values(program_id=program_id, member_id=member_id, consented=consented,
                                           nickname=nickname, updated_at=at)  # fmt: skip
        statement = statement.on_conflict_do_update(index_elements=["program_id", "member_id"], set_={
            "consented": statement.excluded.consented, "nickname": statement.excluded.nickname,
            "updated_at": statement.excluded.updated_at})  # fmt: skip
        self.conn.execute(statement)

    def consent(self, program_id: UUID, member_id: UUID) -> dict[str, Any] | None:
        c = t.leaderboard_consents
        row = self.conn.execute(select(c).where(c.c.program_id == program_id, c.c.member_id == member_id)).first()
        return dict(row._mapping) if row else None

    def _ranked(self, program_id: UUID, value: Any, source: Any, member_column: Any, where: Iterable[Any],
                limit: int) -> list[dict[str, Any]]:  # fmt: skip
        c, m = t.leaderboard_consents, t.members
        score = func.sum(value).label("score")
        rows = self.conn.execute(
            select(member_column.label("member_id"), score, c.c.nickname, m.c.first_name, m.c.last_name)
            .select_from(source)
            .join(c, and_(c.c.program_id == program_id, c.c.member_id == member_column, c.c.consented.is_(True)))
            .join(m, and_(m.c.program_id == program_id, m.c.id == member_column, m.c.status == "active"))
            .where(*where)
            .group_by(member_column, c.c.nickname, m.c.first_name, m.c.last_name)
            .having(func.sum(value) > 0)
            .order_by(score.desc(), member_column)
            .limit(limit)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def mission_board(self, program_id: UUID, mission_id: UUID, window_key: str, limit: int) -> list[dict[str, Any]]:
        """Consenting members by their progress in a mission's window (most first)."""
        return self._ranked(program_id, MP.c.amount, MP, MP.c.member_id,
                            [MP.c.program_id == program_id, MP.c.mission_id == mission_id,
                             MP.c.window_key == window_key], limit)  # fmt: skip

    def points_board(self, program_id: UUID, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
        """Consenting members by points earned in [start, end): what earn transfers credited, less what refunds
        and reversed rewards took back (a cancelled redemption's points are not "earned")."""
        tr, p = t.transfers, t.postings
        joined = tr.join(
            p, and_(p.c.program_id == tr.c.program_id, p.c.transfer_id == tr.c.id, p.c.account_id == tr.c.member_id)
        )  # a member's points account id is the member id
        counted = or_(tr.c.kind == TransferKind.EARN.value,
                      and_(tr.c.kind == TransferKind.REVERSE.value, p.c.amount < 0))  # fmt: skip
        return self._ranked(program_id, p.c.amount, joined, tr.c.member_id,
                            [tr.c.program_id == program_id, counted, p.c.unit == "PTS",
                             tr.c.occurred_at >= start, tr.c.occurred_at < end], limit)  # fmt: skip


def _badge_row(badge: Badge) -> dict[str, Any]:
    rare = badge.rare_below_percent
    text = None if rare is None else decimal_text(rare)
    return {"id": badge.id, "code": badge.code, "name": dict(badge.name), "description": dict(badge.description),
            "image_url": badge.image_url, "rare_below_percent": text, "active": badge.active}  # fmt: skip


def _badge(row: Any) -> Badge:
    rare: Fraction | None = None
    if row.rare_below_percent is not None:
        rare = exact_decimal(row.rare_below_percent, "rare_below_percent")
    return Badge(row.id, row.code, row.name or {}, row.description or {}, row.image_url, rare, row.active)
