"""Tills: cashier ids, offline batches and their reports (issue 5).

Purchases record the cashier beside the store; checkout holds record the store and cashier that reserved them
and those that captured or released them. An offline till uploads a batch (JSON Lines) whose lines are applied
one by one; `till_batch_lines` keeps each line's outcome, and the line that owns an idempotency key keeps the
key's first result for every later upload to replay.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

HOLD_COLUMNS = ("store", "cashier", "finished_store", "finished_cashier")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cashier", sa.String(length=64), nullable=True))
    with op.batch_alter_table("checkout_holds", schema=None) as batch_op:
        for name in HOLD_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=64), nullable=True))

    op.create_table(
        "till_batches",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("upload_key", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        _ts("received_at"),
        _ts("finished_at", nullable=True),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_till_batches_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_till_batches")),
    )
    with op.batch_alter_table("till_batches", schema=None) as batch_op:
        batch_op.create_index("uq_till_batches_upload_key", ["program_id", "upload_key"], unique=True,
                              postgresql_where=sa.text("upload_key IS NOT NULL"),
                              sqlite_where=sa.text("upload_key IS NOT NULL"))  # fmt: skip
        batch_op.create_index("ix_till_batches_received", ["program_id", "received_at"], unique=False)

    op.create_table(
        "till_batch_lines",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        _ts("occurred_at", nullable=True),
        sa.Column("store", sa.String(length=64), nullable=True),
        sa.Column("cashier", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("owns_key", sa.Boolean(), nullable=False),
        sa.Column("replay_of_batch", sa.Uuid(), nullable=True),
        sa.Column("replay_of_line", sa.Integer(), nullable=True),
        _ts("applied_at"),
        sa.CheckConstraint(
            "outcome IN ('applied', 'replayed', 'conflict')", name=op.f("ck_till_batch_lines_outcome_known")
        ),
        sa.CheckConstraint("key IS NOT NULL OR NOT owns_key", name=op.f("ck_till_batch_lines_owner_has_key")),
        sa.ForeignKeyConstraint(
            ["program_id", "batch_id"],
            ["till_batches.program_id", "till_batches.id"],
            name=op.f("fk_till_batch_lines_program_id_batch_id_till_batches"),
        ),
        sa.PrimaryKeyConstraint("program_id", "batch_id", "line_no", name=op.f("pk_till_batch_lines")),
    )
    with op.batch_alter_table("till_batch_lines", schema=None) as batch_op:
        batch_op.create_index("uq_till_batch_lines_key", ["program_id", "key"], unique=True,
                              postgresql_where=sa.text("owns_key"), sqlite_where=sa.text("owns_key"))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("till_batch_lines", schema=None) as batch_op:
        batch_op.drop_index("uq_till_batch_lines_key")
    op.drop_table("till_batch_lines")
    with op.batch_alter_table("till_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_till_batches_received")
        batch_op.drop_index("uq_till_batches_upload_key")
    op.drop_table("till_batches")
    with op.batch_alter_table("checkout_holds", schema=None) as batch_op:
        for name in reversed(HOLD_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_column("cashier")
