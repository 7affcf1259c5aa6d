"""Notifications: triggers, templates, consents, inbox, deliveries (issue 8).

A programme's notification settings (one JSON row), its template overrides per trigger, channel and locale, the
message log (every queued, sent, failed, bounced or suppressed message; the inbox is its `inbox` rows), with a
unique key per member, trigger and period so nothing is sent twice; double opt-in state per member and channel;
hashed confirmation and unsubscribe tokens; and the daily digest's running sums.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _member_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["program_id", "member_id"], ["members.program_id", "members.id"],
                                   name=op.f(f"fk_{table}_program_id_member_id_members"))  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_notification_settings_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_notification_settings")),
    )  # fmt: skip
    op.create_table(
        "notification_templates",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("locale", sa.String(length=2), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_notification_templates_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "trigger", "channel", "locale", name=op.f("pk_notification_templates")),
    )  # fmt: skip
    op.create_table(
        "notification_messages",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=2), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        _ts("not_before"),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        _ts("lease_until", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        _ts("read_at", nullable=True),
        sa.CheckConstraint("status IN ('queued', 'sent', 'failed', 'bounced', 'suppressed')",
                           name=op.f("ck_notification_messages_status_known")),
        sa.CheckConstraint("channel IN ('email', 'inbox', 'push')", name=op.f("ck_notification_messages_channel_known")),
        _member_fk("notification_messages"),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_notification_messages")),
    )  # fmt: skip
    with op.batch_alter_table("notification_messages", schema=None) as batch_op:
        batch_op.create_index("uq_notification_messages_key", ["program_id", "channel", "dedupe_key"], unique=True)
        batch_op.create_index("ix_notification_messages_member", ["program_id", "member_id", "channel", "created_at"],
                              unique=False)  # fmt: skip
        batch_op.create_index("ix_notification_messages_due", ["not_before"], unique=False,
                              postgresql_where=sa.text("status = 'queued'"),
                              sqlite_where=sa.text("status = 'queued'"))  # fmt: skip
    op.create_table(
        "notification_optins",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        _ts("requested_at"),
        _ts("confirmed_at", nullable=True),
        _member_fk("notification_optins"),
        sa.PrimaryKeyConstraint("program_id", "member_id", "channel", name=op.f("pk_notification_optins")),
    )
    op.create_table(
        "notification_tokens",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=True),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("used_at", nullable=True),
        _member_fk("notification_tokens"),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_notification_tokens")),
    )
    with op.batch_alter_table("notification_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_notification_tokens_member", ["program_id", "member_id", "purpose", "channel"],
                              unique=False)  # fmt: skip
    op.create_table(
        "notification_digests",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        _ts("updated_at"),
        _member_fk("notification_digests"),
        sa.PrimaryKeyConstraint("program_id", "member_id", "day", name=op.f("pk_notification_digests")),
    )


def downgrade() -> None:
    for table in ("notification_digests", "notification_tokens", "notification_optins", "notification_messages",
                  "notification_templates", "notification_settings"):  # fmt: skip
        op.drop_table(table)
