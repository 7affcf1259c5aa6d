"""KPI roll-ups (issue 6, P7): daily sums of member postings and member revenue, kept by the `kpi_rollup` job,
and the indexes a period's KPIs and the rows after the roll-up are read by.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


# Summarise each block range as soon as it is full (autovacuum's work item), not only at the next VACUUM: the
# rows after the roll-up's watermark are then found without reading the unsummarised tail of the table.
BRIN_OPTIONS = {"autosummarize": "on"}


def _at(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "kpi_rollups",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("through_day", sa.Date(), nullable=False),
        _at("watermark"),
        _at("rolled_at"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_kpi_rollups_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_kpi_rollups")),
    )
    op.create_table(
        "kpi_flow_days",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("corrected_kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "day", "account_kind", "unit", "kind", "corrected_kind",
                                name=op.f("pk_kpi_flow_days")),
    )  # fmt: skip
    op.create_table(
        "kpi_revenue_days",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "day", "currency", name=op.f("pk_kpi_revenue_days")),
    )
    op.create_index("ix_members_enrolled", "members", ["program_id", "enrolled_at"])
    op.create_index("ix_purchases_occurred", "purchases", ["program_id", "occurred_at"])
    op.create_index(
        "ix_purchases_created",
        "purchases",
        ["program_id", "created_at"],
        postgresql_using="brin",
        postgresql_with=BRIN_OPTIONS,
    )
    op.create_index("ix_refunds_created", "refunds", ["program_id", "created_at"])
    op.create_index("ix_transfers_occurred", "transfers", ["program_id", "occurred_at"])
    op.create_index(
        "ix_transfers_created",
        "transfers",
        ["program_id", "created_at"],
        postgresql_using="brin",
        postgresql_with=BRIN_OPTIONS,
    )
    op.create_index("ix_events_name", "events", ["program_id", "name", "occurred_at"])


def downgrade() -> None:
    for index, table in (("ix_events_name", "events"), ("ix_transfers_created", "transfers"), ("ix_transfers_occurred", "transfers"),
                         ("ix_refunds_created", "refunds"), ("ix_purchases_created", "purchases"),
                         ("ix_purchases_occurred", "purchases"), ("ix_members_enrolled", "members")):  # fmt: skip
        op.drop_index(index, table_name=table)
    for table in ("kpi_revenue_days", "kpi_flow_days", "kpi_rollups"):
        op.drop_table(table)
