"""predictive CLV and churn: the latest model results per member

One row per member, replaced by each stored `treue analytics clv` run: probability alive, expected purchases
and expected CLV with the calibration end and the time they were computed, for segments and offers to read.
Not append-only: these are derived figures, recomputed from the purchase facts at any time.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_clv",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("calibration_end", sa.Date(), nullable=False),
        sa.Column("computed_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("repeat_purchases", sa.Integer(), nullable=False),
        sa.Column("recency_weeks", sa.Double(), nullable=False),
        sa.Column("age_weeks", sa.Double(), nullable=False),
        sa.Column("probability_alive", sa.Double(), nullable=False),
        sa.Column("expected_purchases", sa.Double(), nullable=False),
        sa.Column("horizon_weeks", sa.Integer(), nullable=False),
        sa.Column("discount_rate", sa.Double(), nullable=False),
        sa.Column("expected_clv_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("probability_alive >= 0 AND probability_alive <= 1",
                           name=op.f("ck_member_clv_probability_alive_range")),
        sa.CheckConstraint("expected_purchases >= 0", name=op.f("ck_member_clv_expected_purchases_not_negative")),
        sa.CheckConstraint("repeat_purchases >= 0 AND recency_weeks >= 0 AND recency_weeks <= age_weeks",
                           name=op.f("ck_member_clv_history_consistent")),
        sa.CheckConstraint("horizon_weeks >= 1", name=op.f("ck_member_clv_horizon_positive")),
        sa.CheckConstraint("expected_clv_minor IS NULL OR expected_clv_minor >= 0",
                           name=op.f("ck_member_clv_clv_not_negative")),
        sa.ForeignKeyConstraint(["program_id", "member_id"], ["members.program_id", "members.id"],
                                name=op.f("fk_member_clv_program_id_member_id_members")),
        sa.PrimaryKeyConstraint("program_id", "member_id", name=op.f("pk_member_clv")),
    )  # fmt: skip
    with op.batch_alter_table("member_clv", schema=None) as batch_op:
        batch_op.create_index("ix_member_clv_probability_alive", ["program_id", "probability_alive"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_clv", schema=None) as batch_op:
        batch_op.drop_index("ix_member_clv_probability_alive")
    op.drop_table("member_clv")
