"""referrals and social rewards: settings, codes, referrals, rule grants, moderation of events

Referral settings per programme, one active referral code per member (replaced codes stay, inactive), the
referrals with the fraud screen's inputs as digests, the coupons rules grant (once per source: a unique key),
and the moderation of events whose points wait for approval.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_settings",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_referral_settings_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_referral_settings")),
    )
    op.create_table(
        "referral_codes",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=True),
        sa.Column("payment_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_referral_codes_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_referral_codes")),
    )
    with op.batch_alter_table("referral_codes", schema=None) as batch_op:
        batch_op.create_index("ix_referral_codes_member", ["program_id", "member_id"], unique=False)

    op.create_table(
        "referrals",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=True),
        sa.Column("referee_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("return_until", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rewards", sa.JSON(), nullable=True),
        sa.Column("reward_points", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ended_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("email_key", sa.String(length=254), nullable=True),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("device_hash", sa.String(length=64), nullable=True),
        sa.Column("payment_hash", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(status = 'rejected') = (reason IS NOT NULL)", name=op.f("ck_referrals_reason_iff_rejected")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'rejected', 'expired', 'reversed')",
            name=op.f("ck_referrals_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "referee_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_referrals_program_id_referee_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "referrer_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_referrals_program_id_referrer_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index("ix_referrals_device", ["program_id", "device_hash", "created_at"], unique=False)
        batch_op.create_index("ix_referrals_email", ["program_id", "email_key"], unique=False)
        batch_op.create_index("ix_referrals_ip", ["program_id", "ip_hash", "created_at"], unique=False)
        batch_op.create_index(
            "ix_referrals_pending",
            ["program_id", "expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("ix_referrals_purchase", ["program_id", "purchase_id"], unique=False)
        batch_op.create_index("ix_referrals_referrer", ["program_id", "referrer_id", "created_at"], unique=False)
        batch_op.create_index(
            "uq_referrals_referee",
            ["program_id", "referee_id"],
            unique=True,
            postgresql_where=sa.text("status <> 'rejected'"),
            sqlite_where=sa.text("status <> 'rejected'"),
        )

    op.create_table(
        "reward_grants",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=True),
        sa.Column("redemption_id", sa.Uuid(), nullable=True),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("coupon_code", sa.String(length=14), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('reward', 'coupon')", name=op.f("ck_reward_grants_kind_known")),
        sa.CheckConstraint("status IN ('granted', 'skipped', 'cancelled')", name=op.f("ck_reward_grants_status_known")),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_reward_grants_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_reward_grants")),
    )
    with op.batch_alter_table("reward_grants", schema=None) as batch_op:
        batch_op.create_index(
            "uq_reward_grants_once", ["program_id", "member_id", "source", "rule", "kind", "code", "seq"], unique=True
        )

    op.create_table(
        "event_moderations",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("held", sa.JSON(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reverse_transfer_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_event_moderations_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "event_id"],
            ["events.program_id", "events.id"],
            name=op.f("fk_event_moderations_program_id_event_id_events"),
        ),
        sa.PrimaryKeyConstraint("program_id", "event_id", name=op.f("pk_event_moderations")),
    )
    with op.batch_alter_table("event_moderations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_moderations_pending",
            ["program_id", "created_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    for table in ("event_moderations", "reward_grants", "referrals", "referral_codes", "referral_settings"):
        op.drop_table(table)
