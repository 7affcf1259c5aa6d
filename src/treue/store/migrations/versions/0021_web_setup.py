"""API key rotation (issue 10, for the admin's operations pages of issue 9).

A rotated key keeps its id, prefix, scope and name; its new secret's hash replaces the old one, and the old
hash stays valid until `previous_valid_until` (the grace period), so integrations switch without downtime.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("previous_valid_until", treue.store.types.UTCDateTime(timezone=True),
                                      nullable=True))  # fmt: skip
        batch_op.add_column(sa.Column("rotated_at", treue.store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("rotated_at")
        batch_op.drop_column("previous_valid_until")
        batch_op.drop_column("previous_secret_hash")
