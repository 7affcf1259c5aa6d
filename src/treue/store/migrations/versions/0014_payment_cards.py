"""Card-linked earning: linked payment cards, card feeds, offers (issue 11)

Payment cards linked by their provider token (one active link per token and programme: a partial unique index),
the payment of a purchase and the link it matched, merchant ids of the acquirer's feed, imported feeds and their
lines (keyed by partner, authorisation code and type, so a re-import changes nothing), and card-linked offers with
their members' activations.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _pid() -> sa.Column[object]:
    return sa.Column("program_id", sa.Uuid(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "payment_cards",
        _pid(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        _ts("linked_at"),
        _ts("unlinked_at", nullable=True),
        sa.Column("unlink_reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint("exp_month >= 1 AND exp_month <= 12", name=op.f("ck_payment_cards_exp_month_valid")),
        sa.CheckConstraint("length(last4) = 4", name=op.f("ck_payment_cards_last4_four_digits")),
        sa.CheckConstraint(
            "unlinked_at IS NULL OR unlinked_at >= linked_at", name=op.f("ck_payment_cards_unlinked_after_linked")
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_payment_cards_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_payment_cards")),
    )
    with op.batch_alter_table("payment_cards", schema=None) as batch_op:
        batch_op.create_index("uq_payment_cards_active_token", ["program_id", "token"], unique=True,
                              postgresql_where=sa.text("unlinked_at IS NULL"),
                              sqlite_where=sa.text("unlinked_at IS NULL"))  # fmt: skip
        batch_op.create_index("ix_payment_cards_token", ["program_id", "token", "linked_at"], unique=False)
        batch_op.create_index("ix_payment_cards_member", ["program_id", "member_id", "linked_at"], unique=False)

    op.create_table(
        "purchase_payments",
        _pid(),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.Column("card_id", sa.Uuid(), nullable=True),
        sa.Column("matched_member_id", sa.Uuid(), nullable=True),
        sa.Column("offers", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["program_id", "purchase_id"],
            ["purchases.program_id", "purchases.id"],
            name=op.f("fk_purchase_payments_program_id_purchase_id_purchases"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "card_id"],
            ["payment_cards.program_id", "payment_cards.id"],
            name=op.f("fk_purchase_payments_program_id_card_id_payment_cards"),
        ),
        sa.PrimaryKeyConstraint("program_id", "purchase_id", name=op.f("pk_purchase_payments")),
    )
    with op.batch_alter_table("purchase_payments", schema=None) as batch_op:
        batch_op.create_index("ix_purchase_payments_card", ["program_id", "card_id"], unique=False)

    op.create_table(
        "card_merchants",
        _pid(),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_card_merchants_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "merchant_id", name=op.f("pk_card_merchants")),
    )

    op.create_table(
        "card_feeds",
        _pid(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        _ts("imported_at"),
        sa.CheckConstraint("format IN ('csv', 'jsonl')", name=op.f("ck_card_feeds_format_known")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_card_feeds_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_card_feeds")),
    )
    with op.batch_alter_table("card_feeds", schema=None) as batch_op:
        batch_op.create_index("ix_card_feeds_imported", ["program_id", "imported_at"], unique=False)

    op.create_table(
        "card_feed_lines",
        _pid(),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("authorisation_code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("feed_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        _ts("occurred_at"),
        _ts("imported_at"),
        sa.CheckConstraint("kind IN ('sale', 'refund', 'chargeback')", name=op.f("ck_card_feed_lines_kind_known")),
        sa.ForeignKeyConstraint(
            ["program_id", "feed_id"],
            ["card_feeds.program_id", "card_feeds.id"],
            name=op.f("fk_card_feed_lines_program_id_feed_id_card_feeds"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "purchase_id"],
            ["purchases.program_id", "purchases.id"],
            name=op.f("fk_card_feed_lines_program_id_purchase_id_purchases"),
        ),
        sa.PrimaryKeyConstraint("program_id", "partner", "authorisation_code", "kind", name=op.f("pk_card_feed_lines")),
    )

    op.create_table(
        "offers",
        _pid(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("partners", sa.JSON(), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        sa.Column("activation_required", sa.Boolean(), nullable=False),
        sa.Column("limit_per_member", sa.Integer(), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("kind IN ('card_linked', 'targeted')", name=op.f("ck_offers_kind_known")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_offers_window_valid")),
        sa.CheckConstraint("limit_per_member IS NULL OR limit_per_member > 0", name=op.f("ck_offers_limit_positive")),
        sa.ForeignKeyConstraint(
            ["program_id", "campaign_id"],
            ["campaigns.program_id", "campaigns.id"],
            name=op.f("fk_offers_program_id_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_offers")),
    )

    op.create_table(
        "offer_activations",
        _pid(),
        sa.Column("offer_code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        _ts("shown_at", nullable=True),
        _ts("activated_at", nullable=True),
        sa.Column("uses", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("first_used_at", nullable=True),
        _ts("last_used_at", nullable=True),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_offer_activations_uses_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id", "offer_code"],
            ["offers.program_id", "offers.code"],
            name=op.f("fk_offer_activations_program_id_offer_code_offers"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_offer_activations_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "offer_code", "member_id", name=op.f("pk_offer_activations")),
    )
    with op.batch_alter_table("offer_activations", schema=None) as batch_op:
        batch_op.create_index("ix_offer_activations_member", ["program_id", "member_id"], unique=False)


def downgrade() -> None:
    for name in ("offer_activations", "offers", "card_feed_lines", "card_feeds", "card_merchants",
                 "purchase_payments", "payment_cards"):  # fmt: skip
        op.drop_table(name)
