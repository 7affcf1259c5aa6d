"""The named jobs `treue jobs run NAME` knows, each a function of (uow factory, now, programme)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.services.analytics import refresh_member_clv
from treue.services.club import run_club_job
from treue.services.expiry import expire_points, expire_wallets
from treue.services.ports import UnitOfWorkFactory
from treue.services.scheduled import run_scheduled_rules
from treue.services.streams import relay
from treue.services.tiers import run_tiers_job

Job = Callable[[UnitOfWorkFactory, datetime, UUID | None], dict[str, Any]]


def _expire(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Expired points lots and expired cashback wallet lots, each written off to breakage (idempotent)."""
    return expire_points(uow, now, program_id) | expire_wallets(uow, now, program_id)


def _outbox(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Webhook deliveries and the event stream (TREUE_NATS_URL), from the outbox (services.streams)."""
    return relay(uow, now)


def _rules(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    return run_scheduled_rules(uow, now, program_id)


def _club(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Recurring perks of the paid club per paid period, past-due and expiry notices (once each)."""
    return run_club_job(uow, now, program_id)


def _clv(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Predictive CLV and churn: refit on the history up to today and store every member's scores."""
    return refresh_member_clv(uow, now, program_id)


def _tiers(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Tier reviews at the review date (plus grace), downgrade notices, expired manual assignments (once each)."""
    return run_tiers_job(uow, now, program_id)


# referrals (issue 7)
def _referrals(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Pending referrals whose qualifying window has passed are expired (once each)."""
    from treue.services.referrals import expire_referrals

    return expire_referrals(uow, now, program_id)


# gamification (issue 7)
# card-linked earning (issue 11)
# notifications (issue 8)
def _notifications(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Expiring-points notices (per lot and threshold), points now available, daily digests, monthly statements;
    then what is due is sent (as `treue worker run` does; leases keep the two from sending anything twice)."""
    import os

    from treue.services.mail import mailer_from_env
    from treue.services.notifications import run_notifications_job, send_due

    queued = run_notifications_job(uow, now, program_id)
    sent = send_due(uow, lambda: now, f"jobs:{os.getpid()}", mailer_from_env(), limit=500, program_id=program_id)
    return queued | {"send": sent}


# segments (issue 8)
def _segments(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Dynamic segments recomputed (only the difference written) and product co-occurrence recounted."""
    from treue.services.recommendations import recompute_all_products
    from treue.services.segments import refresh_segments

    return refresh_segments(uow, now, program_id) | recompute_all_products(uow, now, program_id)


# privacy (issue 10)
def _retention(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Members inactive for longer than their programme's retention setting are erased (GDPR), in batches."""
    from treue.services.privacy import run_retention

    return run_retention(uow, now, program_id)


# fraud (issue 10)
def _fraud_scan(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Anomaly alerts (refunds after redemptions, referrals per device, earning spikes, repeated cap hits) for
    programmes with fraud settings, at most once per programme and hour; old velocity counters pruned."""
    from treue.services.fraud import scan

    return scan(uow, now, program_id)


# KPI roll-ups (issue 6, P7)
def _kpi_rollup(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    """Daily sums of member postings and revenue up to a day ago, which KPIs read instead of the
    whole history (what they lack is read raw: run it as often as you like, e.g. hourly)."""
    from treue.services.kpi_rollups import roll_up_all

    return roll_up_all(uow, now, program_id)


JOBS: dict[str, Job] = {"expire": _expire, "rules": _rules, "outbox": _outbox, "tiers": _tiers, "club": _club,
                        "clv": _clv, "referrals": _referrals, "notifications": _notifications, "segments": _segments,
                        "fraud_scan": _fraud_scan, "retention": _retention,
                        "kpi_rollup": _kpi_rollup}  # fmt: skip
