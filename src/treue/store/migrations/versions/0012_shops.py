"""shop connections: inbound adapters (Shopify, WooCommerce, Shopware, generic) and their secrets

A connection holds the platform's shared secret (kept in clear: HMAC verification needs it) and the options
that decide how an order becomes a purchase. Deliveries are the log of accepted webhooks, keyed by the
platform's delivery id so that a repeated delivery gets the first answer; they are append-only facts
(triggers as in 0002).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

APPEND_ONLY = ("shop_deliveries",)


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "shop_connections",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("match_by", sa.String(length=16), nullable=False),
        sa.Column("create_members", sa.Boolean(), nullable=False),
        sa.Column("shipping_earns", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "platform IN ('shopify', 'woocommerce', 'shopware', 'generic')",
            name=op.f("ck_shop_connections_platform_known"),
        ),
        sa.CheckConstraint("match_by IN ('email', 'customer_id')", name=op.f("ck_shop_connections_match_by_known")),
        sa.CheckConstraint("length(secret) >= 8", name=op.f("ck_shop_connections_secret_long_enough")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_shop_connections_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_shop_connections")),
    )
    with op.batch_alter_table("shop_connections", schema=None) as batch_op:
        batch_op.create_index("uq_shop_connections_code", ["program_id", "code"], unique=True)
        batch_op.create_index("ix_shop_connections_id", ["id"], unique=False)

    op.create_table(
        "shop_deliveries",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("external_order_id", sa.String(length=200), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        _ts("received_at"),
        sa.CheckConstraint(
            "outcome IN ('processed', 'skipped', 'ignored')", name=op.f("ck_shop_deliveries_outcome_known")
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "connection_id"],
            ["shop_connections.program_id", "shop_connections.id"],
            name=op.f("fk_shop_deliveries_program_id_connection_id_shop_connections"),
        ),
        sa.PrimaryKeyConstraint("program_id", "connection_id", "delivery_id", name=op.f("pk_shop_deliveries")),
    )
    with op.batch_alter_table("shop_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_shop_deliveries_received", ["program_id", "connection_id", "received_at"])
        batch_op.create_index("ix_shop_deliveries_order", ["program_id", "connection_id", "external_order_id"])

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("shop_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_deliveries_order")
        batch_op.drop_index("ix_shop_deliveries_received")
    op.drop_table("shop_deliveries")
    with op.batch_alter_table("shop_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_connections_id")
        batch_op.drop_index("uq_shop_connections_code")
    op.drop_table("shop_connections")
