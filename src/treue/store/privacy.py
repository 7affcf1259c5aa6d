"""GDPR export and erasure, retention settings (issue 10).

Reads for the export (one member's rows in every area), the erasure's writes (the member row kept as a pseudonym,
personal data elsewhere deleted or blanked), the retention settings and the query that finds inactive members.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)

from treue.domain.privacy import ERASED, Needles, redact, redact_text
from treue.store import tables as t
from treue.store.batch import InsertBatch
from treue.store.types import UTCDateTime

# The stored documents that may quote a member (snapshots, replayed answers, payloads) and their columns. Rows
# about the member are found by the member's identifiers in them (id, card number, email, phone, reference);
# within those rows every personal value is blanked (treue.domain.privacy.redact).
DOCUMENTS: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (t.audit_log, ("before", "after", "reason")),
    (t.outbox, ("payload",)),
    (t.webhook_deliveries, ("payload",)),
    (t.idempotency_keys, ("response",)),
    (t.shop_deliveries, ("result",)),
    (t.till_batch_lines, ("result", "detail")),
    (t.events, ("attributes",)),
)
# Tables whose rows are blanked but never deleted (audit_log, events, shop_deliveries are append-only: migration
# 0020 lets them be UPDATEd while the erasing transaction holds a privacy_redactions row).
_JSON_TYPES = ("JSON",)


def plain(value: Any) -> Any:
    """A stored value as JSON: ids and instants as strings, decimals as strings."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _rows(conn: Connection, query: Any, drop: Iterable[str] = ()) -> list[dict[str, Any]]:
    skip = set(drop) | {"program_id"}
    return [{k: plain(v) for k, v in r._mapping.items() if k not in skip} for r in conn.execute(query)]


class Privacy:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    # -- retention settings ---------------------------------------------------------------------------------------
    def settings(self, program_id: UUID) -> dict[str, Any] | None:
        s = t.privacy_settings
        row = self.conn.execute(select(s).where(s.c.program_id == program_id)).first()
        return dict(row._mapping) if row else None

    def save_settings(self, program_id: UUID, months: int | None, actor: str, now: datetime) -> None:
        s = t.privacy_settings
        values = {"retention_months": months, "updated_at": now, "updated_by": actor}
        done = self.conn.execute(update(s).where(s.c.program_id == program_id).values(**values))
        if done.rowcount == 0:
            self.conn.execute(insert(s).values(program_id=program_id, **values))

    def programs_with_retention(self, program_id: UUID | None) -> list[tuple[UUID, int]]:
        s = t.privacy_settings
        query = select(s.c.program_id, s.c.retention_months).where(s.c.retention_months.is_not(None))
        if program_id is not None:
            query = query.where(s.c.program_id == program_id)
        return [(r.program_id, r.retention_months) for r in self.conn.execute(query.order_by(s.c.program_id))]

    # -- activity -------------------------------------------------------------------------------------------------
    def inactive_members(self, program_id: UUID, before: datetime, limit: int, after: UUID | None = None,
                         only: Sequence[UUID] | None = None) -> list[tuple[UUID, datetime]]:  # fmt: skip
        """Members not erased whose last activity is before `before`, by id (after `after`): (id, last activity).
        Activity: enrolment and profile changes, consents, purchases, redemptions, custom events (reviews,
        surveys...), portal sign-ins, checkout holds and club payments."""
        m = t.members
        sources: list[tuple[Any, Any]] = [
            (m.c.id, m.c.enrolled_at), (m.c.id, m.c.updated_at),
            (t.consents.c.member_id, t.consents.c.updated_at),
            (t.purchases.c.member_id, t.purchases.c.occurred_at),
            (t.redemptions.c.member_id, t.redemptions.c.created_at),
            (t.events.c.member_id, t.events.c.occurred_at),
            (t.member_sign_in_codes.c.member_id, t.member_sign_in_codes.c.used_at),
            (t.member_sessions.c.member_id, t.member_sessions.c.created_at),
            (t.checkout_holds.c.member_id, t.checkout_holds.c.created_at),
            (t.club_payments.c.member_id, t.club_payments.c.recorded_at),
        ]  # fmt: skip
        parts = []
        for member_col, at_col in sources:
            table = member_col.table
            query = select(member_col.label("member_id"), type_coerce(at_col, UTCDateTime).label("at")).where(
                table.c.program_id == program_id, member_col.is_not(None), at_col.is_not(None))  # fmt: skip
            if only is not None:
                query = query.where(member_col.in_(list(only)))
            parts.append(query)
        activity = union_all(*parts).subquery("activity")
        last = func.max(activity.c.at)
        query = (
            select(activity.c.member_id, type_coerce(last, UTCDateTime).label("last"))
            .join(m, and_(m.c.program_id == program_id, m.c.id == activity.c.member_id))
            .where(m.c.erased_at.is_(None))
            .group_by(activity.c.member_id)
            .having(last < bindparam("before", before, type_=UTCDateTime))
            .order_by(activity.c.member_id)
            .limit(limit)
        )  # fmt: skip
        if after is not None:
            query = query.where(activity.c.member_id > after)
        return [(r.member_id, r.last) for r in self.conn.execute(query)]

    # -- erasure records ------------------------------------------------------------------------------------------
    def erasure(self, program_id: UUID, member_id: UUID) -> dict[str, Any] | None:
        e = t.member_erasures
        row = self.conn.execute(select(e).where(e.c.program_id == program_id, e.c.member_id == member_id)).first()
        return dict(row._mapping) if row else None

    def add_erasure(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.member_erasures).values(**row))

    def lock_member(self, program_id: UUID, member_id: UUID) -> dict[str, Any] | None:
        m = t.members
        row = self.conn.execute(
            select(m).where(m.c.program_id == program_id, m.c.id == member_id).with_for_update()
        ).first()
        return dict(row._mapping) if row else None

    # -- erasure: what identifies the member ----------------------------------------------------------------------
    def personal_values(self, program_id: UUID, member: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """(values to find inside text, values that count only as a whole string) of one member."""
        member_id = member["id"]
        contained: list[Any] = [member["email"], member["phone"], member["external_ref"], member["card_number"]]
        names = [member["first_name"], member["last_name"]]
        if member["first_name"] and member["last_name"]:
            names.append(f"{member['first_name']} {member['last_name']}")
        contained += names
        whole: list[Any] = list(_leaves(member["attributes"]))
        if member["birthday"]:
            whole.append(member["birthday"].isoformat())
        lc = t.leaderboard_consents
        contained += self.conn.execute(select(lc.c.nickname).where(
            lc.c.program_id == program_id, lc.c.member_id == member_id, lc.c.nickname.is_not(None))).scalars().all()  # fmt: skip
        sr = t.survey_responses
        contained += self.conn.execute(select(sr.c.comment).where(
            sr.c.program_id == program_id, sr.c.member_id == member_id, sr.c.comment.is_not(None))).scalars().all()  # fmt: skip
        for table in (t.notification_optins, t.notification_tokens):
            contained += self.conn.execute(select(table.c.address).where(
                table.c.program_id == program_id, table.c.member_id == member_id,
                table.c.address.is_not(None))).scalars().all()  # fmt: skip
        nm = t.notification_messages
        contained += self.conn.execute(select(nm.c.recipient).where(
            nm.c.program_id == program_id, nm.c.member_id == member_id, nm.c.recipient.is_not(None))).scalars().all()  # fmt: skip
        pc = t.payment_cards
        for row in self.conn.execute(select(pc.c.token, pc.c.fingerprint).where(
                pc.c.program_id == program_id, pc.c.member_id == member_id)):  # fmt: skip
            contained += [row.token, row.fingerprint]
        return contained, whole

    # -- erasure: the writes --------------------------------------------------------------------------------------
    def begin_redaction(self, program_id: UUID, member_id: UUID, now: datetime) -> None:
        self.conn.execute(insert(t.privacy_redactions).values(program_id=program_id, member_id=member_id,
                                                               started_at=now))  # fmt: skip

    def end_redaction(self, program_id: UUID, member_id: UUID) -> None:
        r = t.privacy_redactions
        self.conn.execute(delete(r).where(r.c.program_id == program_id, r.c.member_id == member_id))

    def pseudonymise_member(self, program_id: UUID, member_id: UUID, card_number: str, now: datetime) -> None:
        m = t.members
        self.conn.execute(update(m).where(m.c.program_id == program_id, m.c.id == member_id).values(
            card_number=card_number, external_ref=None, first_name=None, last_name=None, email=None, phone=None,
            birthday=None, attributes={}, status="erased", erased_at=now, updated_at=now))  # fmt: skip

    def clear_member_rows(self, program_id: UUID, member_id: UUID, now: datetime) -> dict[str, int]:
        """Delete or blank the member's personal data outside the member row; rows changed per table."""
        done: dict[str, int] = {}

        def run(name: str, statement: Any) -> None:
            count = self.conn.execute(statement).rowcount
            if count:
                done[name] = done.get(name, 0) + count

        def mine(table: Table, column: str = "member_id") -> Any:
            return and_(table.c.program_id == program_id, table.c[column] == member_id)

        # Gone entirely: what only serves to reach, recognise or profile the person.
        for table in (t.consents, t.leaderboard_consents, t.member_sessions, t.member_sign_in_codes,
                      t.notification_optins, t.notification_tokens, t.notification_digests, t.segment_members,
                      t.member_clv):  # fmt: skip
            run(table.name, delete(table).where(mine(table)))
        # Messages stay as counted facts (nothing is sent twice), without address or content.
        nm = t.notification_messages
        run(nm.name, update(nm).where(mine(nm)).values(recipient=None, subject="", body_text="", body_html=None,
                                                       data={}, last_error=None))  # fmt: skip
        run(nm.name + ".suppressed", update(nm).where(mine(nm), nm.c.status == "queued").values(
            status="suppressed", reason="member_erased"))  # fmt: skip
        # Linked cards: ended, display data and the provider's token and fingerprint replaced.
        pc = t.payment_cards
        cards = self.conn.execute(select(pc.c.id, pc.c.token).where(mine(pc))).all()
        for card in cards:
            run(pc.name, update(pc).where(pc.c.program_id == program_id, pc.c.id == card.id).values(
                token=f"erased:{card.id}", fingerprint=None, last4="****", exp_month=1, exp_year=0,
                unlinked_at=func.coalesce(pc.c.unlinked_at, now), unlink_reason="member_erased"))  # fmt: skip
        pp = t.purchase_payments
        if cards:
            run(pp.name, update(pp).where(pp.c.program_id == program_id, pp.c.card_id.in_([c.id for c in cards]))
                .values(token=ERASED, fingerprint=None))  # fmt: skip
        run(pp.name, update(pp).where(mine(pp, "matched_member_id")).values(token=ERASED, fingerprint=None))
        # Referrals: the fraud screen's digests of the person's device, IP, payment and email go; the facts stay.
        rc = t.referral_codes
        run(rc.name, update(rc).where(mine(rc)).values(active=False, device_hash=None, payment_hash=None))
        rf = t.referrals
        run(rf.name, update(rf).where(mine(rf, "referee_id")).values(email_key=None, ip_hash=None, device_hash=None,
                                                                    payment_hash=None))  # fmt: skip
        # Free text the member wrote or that was written about them.
        sr = t.survey_responses
        run(sr.name, update(sr).where(mine(sr), sr.c.comment.is_not(None)).values(comment=None))
        cs = t.club_subscriptions
        run(cs.name, update(cs).where(mine(cs), cs.c.cancel_reason.is_not(None)).values(cancel_reason=None))
        run(cs.name + ".ended", update(cs).where(mine(cs), cs.c.ended_at.is_(None)).values(
            ended_at=now, cancel_requested_at=func.coalesce(cs.c.cancel_requested_at, now),
            cancel_at=func.coalesce(cs.c.cancel_at, now)))  # fmt: skip
        return done

    def release_holds(self, program_id: UUID, member_id: UUID, now: datetime) -> int:
        h = t.checkout_holds
        return int(self.conn.execute(update(h).where(h.c.program_id == program_id, h.c.member_id == member_id,
                                                     h.c.status == "held").values(
            status="released", released_at=now)).rowcount)  # fmt: skip

    def wallet_currencies(self, program_id: UUID, member_id: UUID) -> list[str]:
        a = t.accounts
        return list(self.conn.execute(select(a.c.unit).where(
            a.c.program_id == program_id, a.c.member_id == member_id, a.c.kind == "wallet",
            a.c.balance > 0).order_by(a.c.unit)).scalars())  # fmt: skip

    def redact_documents(self, program_id: UUID, member_id: UUID, identifiers: Sequence[str],
                         needles: Needles) -> dict[str, int]:  # fmt: skip
        """Blank the member's personal data in the stored documents that quote them (DOCUMENTS)."""
        done: dict[str, int] = {}
        marks = [str(member_id), *[i for i in identifiers if i and len(i) >= 5]]
        for table, columns in DOCUMENTS:
            cols = [table.c[name] for name in columns]
            found = [cast(c, Text).contains(mark, autoescape=True) for c in cols for mark in marks]
            if "member_id" in table.c:
                found.append(table.c.member_id == member_id)
            if table is t.audit_log:
                found.append(and_(table.c.target_type == "member", table.c.target_id == str(member_id)))
            keys = list(table.primary_key.columns)
            rows = self.conn.execute(select(*keys, *cols).where(table.c.program_id == program_id, or_(*found)))
            for row in rows.all():
                values: dict[str, Any] = {}
                for column in cols:
                    old = row._mapping[column.name]
                    new = redact_text(old, needles) if isinstance(old, str) and _is_text(column) else \
                        redact(old, needles)  # fmt: skip
                    if new != old:
                        values[column.name] = new
                if values:
                    self.conn.execute(update(table).where(*[k == row._mapping[k.name] for k in keys]).values(**values))
                    done[table.name] = done.get(table.name, 0) + 1
        return done

    # -- export ---------------------------------------------------------------------------------------------------
    def export_rows(self, program_id: UUID, member_id: UUID) -> dict[str, Any]:
        """The member's rows in every area, as plain JSON values (secrets such as token hashes left out)."""
        conn = self.conn

        def of(table: Table, column: str = "member_id", drop: Iterable[str] = (),
               order: Column[Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
            query = select(table).where(table.c.program_id == program_id, table.c[column] == member_id)
            if order is not None:
                query = query.order_by(order)
            return _rows(conn, query, drop)

        accounts = select(t.accounts.c.id).where(t.accounts.c.program_id == program_id,
                                                 t.accounts.c.member_id == member_id)  # fmt: skip
        account_ids = list(conn.execute(accounts).scalars())
        tr, po = t.transfers, t.postings
        touched = select(po.c.transfer_id).where(po.c.program_id == program_id, po.c.account_id.in_(account_ids))
        transfers = _rows(conn, select(tr).where(tr.c.program_id == program_id, tr.c.id.in_(touched))
                          .order_by(tr.c.created_at, tr.c.id))  # fmt: skip
        postings: dict[str, list[dict[str, Any]]] = {}
        for row in _rows(conn, select(po).where(po.c.program_id == program_id, po.c.transfer_id.in_(touched))):
            postings.setdefault(row.pop("transfer_id"), []).append(
                {**row, "member_account": UUID(row["account_id"]) in account_ids}
            )
        for transfer in transfers:
            transfer["postings"] = postings.get(transfer["id"], [])
        purchases = of(t.purchases, order=t.purchases.c.occurred_at)
        purchase_ids = [UUID(p["id"]) for p in purchases]
        rf = t.refunds
        refunds = _rows(conn, select(rf).where(rf.c.program_id == program_id, rf.c.purchase_id.in_(purchase_ids))
                        .order_by(rf.c.occurred_at)) if purchase_ids else []  # fmt: skip
        badges = t.badges
        mb = t.member_badges
        badge_rows = _rows(conn, select(badges.c.code, badges.c.name, mb.c.awarded_at, mb.c.source).join(
            badges, and_(badges.c.program_id == mb.c.program_id, badges.c.id == mb.c.badge_id)).where(
            mb.c.program_id == program_id, mb.c.member_id == member_id).order_by(mb.c.awarded_at))  # fmt: skip
        sg, sm = t.segments, t.segment_members
        segments = _rows(conn, select(sg.c.code, sg.c.name, sg.c.kind, sm.c.added_at).join(
            sg, and_(sg.c.program_id == sm.c.program_id, sg.c.code == sm.c.segment_code)).where(
            sm.c.program_id == program_id, sm.c.member_id == member_id).order_by(sg.c.code))  # fmt: skip
        al = t.audit_log
        audit = _rows(conn, select(al).where(al.c.program_id == program_id, or_(
            and_(al.c.target_type == "member", al.c.target_id == str(member_id)),
            cast(al.c.after, Text).contains(str(member_id), autoescape=True))).order_by(al.c.at))  # fmt: skip
        pc = t.payment_cards
        cards = _rows(conn, select(pc.c.id, pc.c.brand, pc.c.last4, pc.c.exp_month, pc.c.exp_year, pc.c.linked_at,
                                   pc.c.unlinked_at, pc.c.unlink_reason)
                      .where(pc.c.program_id == program_id, pc.c.member_id == member_id).order_by(pc.c.linked_at))  # fmt: skip
        rf_ = t.referrals
        hashes = ("email_key", "ip_hash", "device_hash", "payment_hash")
        referrals = {
            "codes": of(t.referral_codes, drop=("device_hash", "payment_hash")),
            "as_referee": of(rf_, "referee_id", drop=hashes),
            # the friends a member invited are other people: only what the invitation earned is this member's
            "as_referrer": _rows(conn, select(rf_.c.id, rf_.c.status, rf_.c.created_at, rf_.c.completed_at,
                                              rf_.c.reward_points).where(
                rf_.c.program_id == program_id, rf_.c.referrer_id == member_id).order_by(rf_.c.created_at)),
        }  # fmt: skip
        nm = t.notification_messages
        return {
            "consents": of(t.consents), "accounts": [str(a) for a in account_ids],
            "transfers": transfers,
            "lots": of(t.lots, order=t.lots.c.available_at), "wallet_lots": of(t.wallet_lots),
            "purchases": purchases, "refunds": refunds,
            "redemptions": of(t.redemptions, order=t.redemptions.c.created_at),
            "coupons": of(t.coupons, order=t.coupons.c.created_at),
            "reward_grants": of(t.reward_grants, order=t.reward_grants.c.created_at),
            "checkout_holds": of(t.checkout_holds, order=t.checkout_holds.c.created_at),
            "club": {"subscriptions": of(t.club_subscriptions), "payments": of(t.club_payments),
                     "perk_grants": of(t.club_perk_grants)},
            "cards": cards, "offer_activations": of(t.offer_activations),
            "referrals": referrals,
            "gamification": {
                "missions_opted_in": of(t.mission_optins), "mission_progress": of(t.mission_progress),
                "completions": of(t.gamification_completions), "streak_hits": of(t.streak_hits),
                "badges": badge_rows, "instant_win_draws": of(t.instant_win_draws),
                "leaderboard": of(t.leaderboard_consents),
            },
            "tier_changes": of(t.tier_changes, order=t.tier_changes.c.at),
            "events": of(t.events, order=t.events.c.occurred_at),
            "notifications": {
                "messages": of(nm, drop=("lease_owner", "lease_until", "dedupe_key"), order=nm.c.created_at),
                "optins": of(t.notification_optins),
            },
            "segments": segments,
            "surveys": of(t.survey_responses, order=t.survey_responses.c.occurred_at),
            "predictions": of(t.member_clv),
            "rule_usage": of(t.rule_usage),
            "portal_sign_ins": of(t.member_sign_in_codes, drop=("code_hash", "attempts")),
            "audit": audit,
        }  # fmt: skip


def _is_text(column: Column[Any]) -> bool:
    return type(column.type).__name__ not in _JSON_TYPES


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value
