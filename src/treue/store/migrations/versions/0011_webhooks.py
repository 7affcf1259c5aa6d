"""outbound webhooks: endpoints, deliveries, attempts

A delivery is unique per (endpoint, outbox message), so fanning a message out twice adds nothing. Attempts are
the delivery log: append-only facts (triggers as in 0002).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

APPEND_ONLY = ("webhook_attempts",)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failing_since", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("consecutive_failures >= 0", name=op.f("ck_webhook_endpoints_failures_not_negative")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_webhook_endpoints_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_webhook_deliveries_status_known")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_not_negative")),
        sa.CheckConstraint(
            "status <> 'pending' OR next_attempt_at IS NOT NULL",
            name=op.f("ck_webhook_deliveries_pending_has_next_attempt"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "endpoint_id"],
            ["webhook_endpoints.program_id", "webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_program_id_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            "ix_webhook_deliveries_endpoint", ["program_id", "endpoint_id", "created_at"], unique=False
        )
        batch_op.create_index("uq_webhook_deliveries_message", ["program_id", "endpoint_id", "message_id"], unique=True)
    op.create_table(
        "webhook_attempts",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.CheckConstraint("number > 0", name=op.f("ck_webhook_attempts_number_positive")),
        sa.CheckConstraint("duration_ms >= 0", name=op.f("ck_webhook_attempts_duration_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id", "delivery_id"],
            ["webhook_deliveries.program_id", "webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_program_id_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("program_id", "delivery_id", "number", name=op.f("pk_webhook_attempts")),
    )
    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("uq_webhook_deliveries_message")
        batch_op.drop_index("ix_webhook_deliveries_endpoint")
        batch_op.drop_index("ix_webhook_deliveries_due", postgresql_where=sa.text("status = 'pending'"),
                            sqlite_where=sa.text("status = 'pending'"))  # fmt: skip
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
