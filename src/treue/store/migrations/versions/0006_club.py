"""paid premium club: plans, subscriptions, payments

Plans, subscriptions (facts from which the state is computed), the payments the merchant's payment provider
reported (one succeeded payment per billing period: a partial unique index) and the recurring perks granted
per paid period. Payments and perk grants are facts: append-only like the ledger (triggers as in 0002).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_ONLY = ("club_payments", "club_perk_grants")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "club_plans",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("billing_interval", sa.String(length=8), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("benefits", sa.JSON(), nullable=False),
        sa.Column("bonus_points", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("voucher_reward_id", sa.Uuid(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("price_minor > 0", name=op.f("ck_club_plans_price_positive")),
        sa.CheckConstraint("billing_interval IN ('month', 'year')", name=op.f("ck_club_plans_interval_known")),
        sa.CheckConstraint("trial_days >= 0 AND grace_days >= 0", name=op.f("ck_club_plans_days_not_negative")),
        sa.CheckConstraint("bonus_points >= 0", name=op.f("ck_club_plans_bonus_points_not_negative")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_club_plans_program_id_programs")),
        sa.ForeignKeyConstraint(
            ["program_id", "voucher_reward_id"],
            ["rewards.program_id", "rewards.id"],
            name=op.f("fk_club_plans_program_id_voucher_reward_id_rewards"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_club_plans")),
    )
    with op.batch_alter_table("club_plans", schema=None) as batch_op:
        batch_op.create_index("uq_club_plans_code", ["program_id", "code"], unique=True)

    op.create_table(
        "club_subscriptions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("billing_interval", sa.String(length=8), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        _ts("started_at"),
        _ts("trial_ends_at"),
        _ts("cancel_requested_at", nullable=True),
        _ts("cancel_at", nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        _ts("ended_at", nullable=True),
        _ts("past_due_notice_at", nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("price_minor > 0", name=op.f("ck_club_subscriptions_price_positive")),
        sa.CheckConstraint("billing_interval IN ('month', 'year')", name=op.f("ck_club_subscriptions_interval_known")),
        sa.CheckConstraint("trial_ends_at >= started_at", name=op.f("ck_club_subscriptions_trial_after_start")),
        sa.CheckConstraint(
            "(cancel_at IS NULL) = (cancel_requested_at IS NULL)", name=op.f("ck_club_subscriptions_cancel_complete")
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_club_subscriptions_program_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "plan_id"],
            ["club_plans.program_id", "club_plans.id"],
            name=op.f("fk_club_subscriptions_program_id_plan_id_club_plans"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_club_subscriptions")),
    )
    with op.batch_alter_table("club_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_club_subscriptions_member", ["program_id", "member_id", "started_at"], unique=False)
        batch_op.create_index("ix_club_subscriptions_open", ["program_id", "ended_at"], unique=False)

    op.create_table(
        "club_payments",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("provider_reference", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        _ts("period_start"),
        _ts("period_end"),
        _ts("paid_at", nullable=True),
        _ts("recorded_at"),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_club_payments_amount_positive")),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name=op.f("ck_club_payments_status_known")),
        sa.CheckConstraint("period_index >= 0", name=op.f("ck_club_payments_period_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id", "subscription_id"],
            ["club_subscriptions.program_id", "club_subscriptions.id"],
            name=op.f("fk_club_payments_program_id_subscription_id_club_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_club_payments")),
    )
    with op.batch_alter_table("club_payments", schema=None) as batch_op:
        batch_op.create_index("uq_club_payments_reference", ["program_id", "provider_reference"], unique=True)
        batch_op.create_index(
            "uq_club_payments_period",
            ["program_id", "subscription_id", "period_index"],
            unique=True,
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        )
        batch_op.create_index("ix_club_payments_recorded", ["program_id", "recorded_at"], unique=False)

    op.create_table(
        "club_perk_grants",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column("perk", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        _ts("period_start"),
        _ts("period_end"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("reward_id", sa.Uuid(), nullable=True),
        sa.Column("redemption_id", sa.Uuid(), nullable=True),
        sa.Column("coupon_code", sa.String(length=14), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _ts("granted_at"),
        sa.CheckConstraint("points >= 0", name=op.f("ck_club_perk_grants_points_not_negative")),
        sa.CheckConstraint("status IN ('granted', 'skipped')", name=op.f("ck_club_perk_grants_status_known")),
        sa.ForeignKeyConstraint(
            ["program_id", "subscription_id"],
            ["club_subscriptions.program_id", "club_subscriptions.id"],
            name=op.f("fk_club_perk_grants_program_id_subscription_id_club_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "transfer_id"],
            ["transfers.program_id", "transfers.id"],
            name=op.f("fk_club_perk_grants_program_id_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint(
            "program_id", "subscription_id", "period_index", "perk", name=op.f("pk_club_perk_grants")
        ),
    )
    with op.batch_alter_table("club_perk_grants", schema=None) as batch_op:
        batch_op.create_index("ix_club_perk_grants_granted", ["program_id", "granted_at"], unique=False)

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("club_perk_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_club_perk_grants_granted")
    op.drop_table("club_perk_grants")
    with op.batch_alter_table("club_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_club_payments_recorded")
        batch_op.drop_index("uq_club_payments_period", postgresql_where=sa.text("status = 'succeeded'"),
                            sqlite_where=sa.text("status = 'succeeded'"))  # fmt: skip
        batch_op.drop_index("uq_club_payments_reference")
    op.drop_table("club_payments")
    with op.batch_alter_table("club_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_club_subscriptions_open")
        batch_op.drop_index("ix_club_subscriptions_member")
    op.drop_table("club_subscriptions")
    with op.batch_alter_table("club_plans", schema=None) as batch_op:
        batch_op.drop_index("uq_club_plans_code")
    op.drop_table("club_plans")
