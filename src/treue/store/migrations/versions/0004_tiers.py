"""tiers: ladders, member tier state, manual assignments, reviews

One ladder per programme with its tiers in order; a member's tier state (absent: the lowest tier) with its
review date and manual assignment; the history of tier changes, a fact table: append-only like the ledger
(triggers as in 0002). Qualifying amounts are counted from purchases and the ledger, not stored.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("tier_changes",)


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tier_ladders",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("review", sa.String(length=16), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("notice_days", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.CheckConstraint(
            "basis IN ('spend', 'purchases', 'status_points')", name=op.f("ck_tier_ladders_basis_known")
        ),
        sa.CheckConstraint("review IN ('window_end', 'anniversary')", name=op.f("ck_tier_ladders_review_known")),
        sa.CheckConstraint("grace_days >= 0 AND notice_days >= 0", name=op.f("ck_tier_ladders_days_not_negative")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_tier_ladders_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_tier_ladders")),
    )
    op.create_table(
        "tiers",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("qualifying_window", sa.String(length=16), nullable=False),
        sa.Column("benefits", sa.JSON(), nullable=False),
        sa.CheckConstraint("threshold >= 0", name=op.f("ck_tiers_threshold_not_negative")),
        sa.CheckConstraint("position >= 0 AND (position > 0 OR threshold = 0)", name=op.f("ck_tiers_lowest_tier_open")),
        sa.ForeignKeyConstraint(
            ["program_id"], ["tier_ladders.program_id"], name=op.f("fk_tiers_program_id_tier_ladders")
        ),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_tiers")),
    )
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.create_index("uq_tiers_position", ["program_id", "position"], unique=True)

    op.create_table(
        "member_tiers",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("tier_code", sa.String(length=32), nullable=False),
        _ts("since"),
        _ts("review_at", nullable=True),
        sa.Column("manual_code", sa.String(length=32), nullable=True),
        _ts("manual_until", nullable=True),
        sa.Column("manual_reason", sa.Text(), nullable=True),
        _ts("notice_for", nullable=True),
        _ts("updated_at"),
        sa.CheckConstraint(
            "manual_until IS NULL OR manual_code IS NOT NULL", name=op.f("ck_member_tiers_manual_expiry_needs_tier")
        ),
        sa.CheckConstraint("review_at IS NULL OR review_at > since", name=op.f("ck_member_tiers_review_after_since")),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_member_tiers_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "member_id", name=op.f("pk_member_tiers")),
    )
    with op.batch_alter_table("member_tiers", schema=None) as batch_op:
        batch_op.create_index("ix_member_tiers_review", ["program_id", "review_at"], unique=False)
        batch_op.create_index("ix_member_tiers_manual", ["program_id", "manual_until"], unique=False)

    op.create_table(
        "tier_changes",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("from_tier", sa.String(length=32), nullable=False),
        sa.Column("to_tier", sa.String(length=32), nullable=False),
        _ts("at"),
        _ts("review_at", nullable=True),
        _ts("manual_until", nullable=True),
        sa.Column("amounts", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint(
            "kind IN ('upgraded', 'downgraded', 'renewed', 'assigned', 'unassigned', 'assignment_expired')",
            name=op.f("ck_tier_changes_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_tier_changes_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_tier_changes")),
    )
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.create_index("ix_tier_changes_member", ["program_id", "member_id", "at"], unique=False)

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_changes_member")
    op.drop_table("tier_changes")
    with op.batch_alter_table("member_tiers", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tiers_manual")
        batch_op.drop_index("ix_member_tiers_review")
    op.drop_table("member_tiers")
    with op.batch_alter_table("tiers", schema=None) as batch_op:
        batch_op.drop_index("uq_tiers_position")
    op.drop_table("tiers")
    op.drop_table("tier_ladders")
