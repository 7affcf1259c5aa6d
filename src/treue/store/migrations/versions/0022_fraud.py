"""Fraud controls: velocity caps, anomaly alerts, held transactions (issue 10).

Settings per programme, velocity counters per action, subject and fixed window, earns held over a cap until
staff decide, anomaly alerts (once per kind, subject and day) and the hourly scan's claims.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "fraud_settings",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        _at("updated_at"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_fraud_settings_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_fraud_settings")),
    )
    op.create_table(
        "fraud_counters",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("span", sa.String(length=8), nullable=False),
        _at("window_start"),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "action", "subject", "span", "window_start", name=op.f("pk_fraud_counters")
        ),
    )
    with op.batch_alter_table("fraud_counters", schema=None) as batch_op:
        batch_op.create_index("ix_fraud_counters_start", ["program_id", "window_start"], unique=False)

    op.create_table(
        "fraud_holds",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("held", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("decided_at", nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reverse_transfer_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f("ck_fraud_holds_status_known")),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_fraud_holds_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_fraud_holds")),
    )
    with op.batch_alter_table("fraud_holds", schema=None) as batch_op:
        batch_op.create_index("ix_fraud_holds_status", ["program_id", "status", "created_at"], unique=False)
        batch_op.create_index("ix_fraud_holds_member", ["program_id", "member_id", "created_at"], unique=False)

    op.create_table(
        "fraud_alerts",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("raised_at"),
        _at("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'acknowledged')", name=op.f("ck_fraud_alerts_status_known")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_fraud_alerts")),
    )
    with op.batch_alter_table("fraud_alerts", schema=None) as batch_op:
        batch_op.create_index("uq_fraud_alerts_once", ["program_id", "kind", "subject", "period"], unique=True)
        batch_op.create_index("ix_fraud_alerts_status", ["program_id", "status", "raised_at"], unique=False)

    op.create_table(
        "fraud_scans",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        _at("scanned_at"),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "period", name=op.f("pk_fraud_scans")),
    )


def downgrade() -> None:
    for table in ("fraud_scans", "fraud_alerts", "fraud_holds", "fraud_counters", "fraud_settings"):
        op.drop_table(table)
