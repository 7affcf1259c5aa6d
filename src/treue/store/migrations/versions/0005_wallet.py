"""cashback wallet and checkout holds

Programme settings for checkout (earn on money only, minimum redemption, hold minutes, cashback expiry); wallet
lots and their allocations (allocations are facts: append-only like the points allocations); checkout holds.
Wallet accounts and the programme's money accounts are rows of `accounts`, opened when first needed.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = ("wallet_allocations",)
_TS = treue.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("earn_on_money_only", sa.Boolean(), server_default=sa.text("false"),
                                      nullable=False))  # fmt: skip
        batch_op.add_column(sa.Column("min_redemption_points", sa.BigInteger(), server_default=sa.text("0"),
                                      nullable=False))  # fmt: skip
        batch_op.add_column(sa.Column("hold_minutes", sa.Integer(), server_default=sa.text("15"), nullable=False))
        batch_op.add_column(sa.Column("cashback_expiry_months", sa.Integer(), server_default=sa.text("0"),
                                      nullable=False))  # fmt: skip

    op.create_table(
        "wallet_lots",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("source_transfer_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("available_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_wallet_lots_amount_positive")),
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name=op.f("ck_wallet_lots_remaining_within_amount")),
        sa.ForeignKeyConstraint(["program_id", "account_id"], ["accounts.program_id", "accounts.id"],
                                name=op.f("fk_wallet_lots_program_id_account_id_accounts")),
        sa.ForeignKeyConstraint(["program_id", "source_transfer_id"], ["transfers.program_id", "transfers.id"],
                                name=op.f("fk_wallet_lots_program_id_source_transfer_id_transfers")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_wallet_lots")),
    )  # fmt: skip
    with op.batch_alter_table("wallet_lots", schema=None) as batch_op:
        batch_op.create_index("ix_wallet_lots_open", ["program_id", "account_id"], unique=False,
                              postgresql_where=sa.text("remaining > 0"), sqlite_where=sa.text("remaining > 0"))  # fmt: skip
        batch_op.create_index("ix_wallet_lots_purchase", ["program_id", "purchase_id"], unique=False)

    op.create_table(
        "wallet_allocations",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_wallet_allocations_amount_not_zero")),
        sa.ForeignKeyConstraint(["program_id", "transfer_id"], ["transfers.program_id", "transfers.id"],
                                name=op.f("fk_wallet_allocations_program_id_transfer_id_transfers")),
        sa.ForeignKeyConstraint(["program_id", "lot_id"], ["wallet_lots.program_id", "wallet_lots.id"],
                                name=op.f("fk_wallet_allocations_program_id_lot_id_wallet_lots")),
        sa.PrimaryKeyConstraint("program_id", "transfer_id", "lot_id", name=op.f("pk_wallet_allocations")),
    )  # fmt: skip
    with op.batch_alter_table("wallet_allocations", schema=None) as batch_op:
        batch_op.create_index("ix_wallet_allocations_lot", ["program_id", "lot_id"], unique=False)

    op.create_table(
        "checkout_holds",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("wallet_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("captured_at", _TS, nullable=True),
        sa.Column("released_at", _TS, nullable=True),
        sa.Column("captured_points", sa.BigInteger(), nullable=True),
        sa.Column("captured_wallet_minor", sa.BigInteger(), nullable=True),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("points_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("wallet_transfer_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("points >= 0 AND wallet_minor >= 0 AND points + wallet_minor > 0",
                           name=op.f("ck_checkout_holds_amounts_valid")),
        sa.CheckConstraint("status IN ('held', 'captured', 'released')", name=op.f("ck_checkout_holds_status_known")),
        sa.CheckConstraint("(status = 'captured') = (captured_at IS NOT NULL)",
                           name=op.f("ck_checkout_holds_captured_complete")),
        sa.CheckConstraint("(status = 'released') = (released_at IS NOT NULL)",
                           name=op.f("ck_checkout_holds_released_complete")),
        sa.CheckConstraint("captured_points IS NULL OR (captured_points >= 0 AND captured_points <= points)",
                           name=op.f("ck_checkout_holds_captured_points_within_hold")),
        sa.CheckConstraint("captured_wallet_minor IS NULL OR (captured_wallet_minor >= 0 "
                           "AND captured_wallet_minor <= wallet_minor)",
                           name=op.f("ck_checkout_holds_captured_wallet_within_hold")),
        sa.ForeignKeyConstraint(["program_id", "member_id"], ["members.program_id", "members.id"],
                                name=op.f("fk_checkout_holds_program_id_member_id_members")),
        sa.ForeignKeyConstraint(["program_id", "purchase_id"], ["purchases.program_id", "purchases.id"],
                                name=op.f("fk_checkout_holds_program_id_purchase_id_purchases")),
        sa.ForeignKeyConstraint(["program_id", "points_transfer_id"], ["transfers.program_id", "transfers.id"],
                                name=op.f("fk_checkout_holds_program_id_points_transfer_id_transfers")),
        sa.ForeignKeyConstraint(["program_id", "wallet_transfer_id"], ["transfers.program_id", "transfers.id"],
                                name=op.f("fk_checkout_holds_program_id_wallet_transfer_id_transfers")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_checkout_holds")),
    )  # fmt: skip
    with op.batch_alter_table("checkout_holds", schema=None) as batch_op:
        batch_op.create_index("ix_checkout_holds_member", ["program_id", "member_id", "status"], unique=False)

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("checkout_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_checkout_holds_member")
    op.drop_table("checkout_holds")
    with op.batch_alter_table("wallet_allocations", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_allocations_lot")
    op.drop_table("wallet_allocations")
    with op.batch_alter_table("wallet_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_lots_purchase")
        batch_op.drop_index("ix_wallet_lots_open")
    op.drop_table("wallet_lots")
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("cashback_expiry_months")
        batch_op.drop_column("hold_minutes")
        batch_op.drop_column("min_redemption_points")
        batch_op.drop_column("earn_on_money_only")
