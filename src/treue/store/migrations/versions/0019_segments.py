"""Segments, targeted offers, recommendations, surveys (issue 8).

Segments (dynamic: a CEL condition over member facts; static: an imported list) and their stored members, the
item-to-item co-occurrence table of product recommendations, and NPS surveys with their responses (one per member
and period: a unique key).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _pid() -> sa.Column[object]:
    return sa.Column("program_id", sa.Uuid(), nullable=False)


def _program_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f(f"fk_{table}_program_id_programs"))


def _member_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["program_id", "member_id"], ["members.program_id", "members.id"],
                                   name=op.f(f"fk_{table}_program_id_member_id_members"))  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "segments",
        _pid(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("condition", sa.Text(), nullable=True),
        sa.Column("members_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("refreshed_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("kind IN ('dynamic', 'static')", name=op.f("ck_segments_kind_known")),
        sa.CheckConstraint(
            "(kind = 'dynamic') = (condition IS NOT NULL)", name=op.f("ck_segments_condition_iff_dynamic")
        ),
        _program_fk("segments"),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_segments")),
    )
    op.create_table(
        "segment_members",
        _pid(),
        sa.Column("segment_code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        _ts("added_at"),
        sa.ForeignKeyConstraint(
            ["program_id", "segment_code"],
            ["segments.program_id", "segments.code"],
            name=op.f("fk_segment_members_program_id_segment_code_segments"),
        ),
        _member_fk("segment_members"),
        sa.PrimaryKeyConstraint("program_id", "segment_code", "member_id", name=op.f("pk_segment_members")),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index("ix_segment_members_member", ["program_id", "member_id"], unique=False)

    op.create_table(
        "product_pairs",
        _pid(),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("other_sku", sa.String(length=200), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        _ts("computed_at"),
        sa.CheckConstraint("members > 0", name=op.f("ck_product_pairs_members_positive")),
        _program_fk("product_pairs"),
        sa.PrimaryKeyConstraint("program_id", "sku", "other_sku", name=op.f("pk_product_pairs")),
    )

    op.create_table(
        "surveys",
        _pid(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("question", sa.JSON(), nullable=False),
        sa.Column("comment_question", sa.JSON(), nullable=True),
        sa.Column("repeat", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("repeat IN ('never', 'month', 'quarter', 'year')", name=op.f("ck_surveys_repeat_known")),
        _program_fk("surveys"),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_surveys")),
    )
    op.create_table(
        "survey_responses",
        _pid(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("survey_code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        _ts("occurred_at"),
        _ts("created_at"),
        sa.CheckConstraint("score >= 0 AND score <= 10", name=op.f("ck_survey_responses_score_range")),
        sa.ForeignKeyConstraint(
            ["program_id", "survey_code"],
            ["surveys.program_id", "surveys.code"],
            name=op.f("fk_survey_responses_program_id_survey_code_surveys"),
        ),
        _member_fk("survey_responses"),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_survey_responses")),
    )
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.create_index("uq_survey_responses_member_period",
                              ["program_id", "survey_code", "member_id", "period"], unique=True)  # fmt: skip
        batch_op.create_index("ix_survey_responses_time", ["program_id", "survey_code", "occurred_at"], unique=False)


def downgrade() -> None:
    for table in ("survey_responses", "surveys", "product_pairs", "segment_members", "segments"):
        op.drop_table(table)
