"""control groups: the share of members a programme holds out (issue 6: ROI with a control group)

Campaigns keep their control share in their stored definition; a programme's is a column.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.add_column(sa.Column("control_bp", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.create_check_constraint("control_bp_range", "control_bp BETWEEN 0 AND 5000")


def downgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_constraint("control_bp_range", type_="check")
        batch_op.drop_column("control_bp")
