"""rules engine: campaigns, rules and their versions, usage counters for caps, custom events

Rule versions and custom events are facts: append-only like the ledger (triggers as in 0002). A campaign's
spent budget can never exceed its budget (CHECK), whatever code path writes it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("rule_versions", "events")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("budget_points", sa.BigInteger(), nullable=True),
        sa.Column("budget_spent", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "budget_points IS NULL OR budget_spent <= budget_points", name=op.f("ck_campaigns_budget_not_exceeded")
        ),
        sa.CheckConstraint("budget_spent >= 0", name=op.f("ck_campaigns_budget_spent_not_negative")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_campaigns_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "rules",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_rules_program_id_programs")),
        sa.ForeignKeyConstraint(
            ["program_id", "campaign_id"],
            ["campaigns.program_id", "campaigns.id"],
            name=op.f("fk_rules_program_id_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_rules")),
    )
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.create_index("ix_rules_campaign", ["program_id", "campaign_id"], unique=False)

    op.create_table(
        "rule_versions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("valid_from", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("version > 0", name=op.f("ck_rule_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["program_id", "rule_id"],
            ["rules.program_id", "rules.id"],
            name=op.f("fk_rule_versions_program_id_rule_id_rules"),
        ),
        sa.PrimaryKeyConstraint("program_id", "rule_id", "version", name=op.f("pk_rule_versions")),
    )
    op.create_table(
        "rule_usage",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_key", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("awards", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("points >= 0 AND awards >= 0", name=op.f("ck_rule_usage_usage_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_rule_usage_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint(
            "program_id", "member_id", "scope", "owner", "period", "period_key", name=op.f("pk_rule_usage")
        ),
    )
    op.create_table(
        "events",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("occurred_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_events_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_member", ["program_id", "member_id", "occurred_at"], unique=False)

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_member")
    op.drop_table("events")
    op.drop_table("rule_usage")
    op.drop_table("rule_versions")
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.drop_index("ix_rules_campaign")
    op.drop_table("rules")
    op.drop_table("campaigns")
