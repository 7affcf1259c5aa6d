"""coalition partners, their terms and settlement runs

Partners carry their terms; redemptions record where the points were spent. A settlement (a month) and its lines
are facts: append-only like the ledger (triggers as in 0002/0003), so a closed period cannot change.

Revision ID: 0010
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY = ("settlements", "settlement_lines")


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("stores", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("issue_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("issue_price_points", sa.BigInteger(), nullable=False),
        sa.Column("redeem_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("redeem_price_points", sa.BigInteger(), nullable=False),
        sa.Column("billing", sa.String(length=16), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("code <> 'default'", name=op.f("ck_partners_code_not_default")),
        sa.CheckConstraint(
            "issue_price_minor >= 0 AND issue_price_points > 0", name=op.f("ck_partners_issue_price_valid")
        ),
        sa.CheckConstraint(
            "redeem_price_minor >= 0 AND redeem_price_points > 0", name=op.f("ck_partners_redeem_price_valid")
        ),
        sa.CheckConstraint("billing IN ('prepaid', 'postpaid')", name=op.f("ck_partners_billing_known")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_partners_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_partners")),
    )
    op.create_table(
        "settlements",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_start", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.CheckConstraint("period_end > period_start", name=op.f("ck_settlements_period_ordered")),
        sa.CheckConstraint("settled_at >= period_end", name=op.f("ck_settlements_settled_after_period")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_settlements_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "period", name=op.f("pk_settlements")),
    )
    op.create_table(
        "settlement_lines",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("billing", sa.String(length=16), nullable=True),
        sa.Column("issue_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("issue_price_points", sa.BigInteger(), nullable=True),
        sa.Column("redeem_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("redeem_price_points", sa.BigInteger(), nullable=True),
        sa.Column("points_issued", sa.BigInteger(), nullable=False),
        sa.Column("points_taken_back", sa.BigInteger(), nullable=False),
        sa.Column("points_redeemed_at", sa.BigInteger(), nullable=False),
        sa.Column("points_funded_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("points_expired", sa.BigInteger(), nullable=False),
        sa.Column("owed_by_partner_minor", sa.BigInteger(), nullable=False),
        sa.Column("owed_to_partner_minor", sa.BigInteger(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_by_funder", sa.JSON(), nullable=False),
        sa.Column("funded_redeemed_at", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "net_minor = owed_to_partner_minor - owed_by_partner_minor",
            name=op.f("ck_settlement_lines_net_consistent"),
        ),
        sa.CheckConstraint("registered = (billing IS NOT NULL)", name=op.f("ck_settlement_lines_terms_iff_registered")),
        sa.ForeignKeyConstraint(
            ["program_id", "period"],
            ["settlements.program_id", "settlements.period"],
            name=op.f("fk_settlement_lines_program_id_period_settlements"),
        ),
        sa.PrimaryKeyConstraint("program_id", "period", "partner", name=op.f("pk_settlement_lines")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("partner", sa.String(length=64), server_default=sa.text("'default'"), nullable=False)
        )

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_column("partner")
    op.drop_table("settlement_lines")
    op.drop_table("settlements")
    op.drop_table("partners")
