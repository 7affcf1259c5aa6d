"""The schema. Every row carries its programme; every primary and unique key starts with program_id,
so tables can later be distributed by programme (e.g. Citus) without reshaping them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)

from treue.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _pid() -> Column[object]:
    return Column("program_id", Uuid, nullable=False, primary_key=True)


def _fk(cols: list[str], table: str, refcols: list[str]) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(cols, [f"{table}.{c}" for c in refcols])


programs = Table(
    "programs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("point_value_minor", Integer, nullable=False),
    Column("point_value_points", Integer, nullable=False),
    Column("rounding", String(16), nullable=False),
    Column("earn_basis", String(16), nullable=False),
    Column("earn_points", Integer, nullable=False),
    Column("earn_per_minor", Integer, nullable=False),
    Column("pending_days", Integer, nullable=False),
    Column("expiry_policy", String(16), nullable=False),
    Column("expiry_months", Integer, nullable=False),
    Column("expiry_day", String(5)),
    Column("expiry_years", Integer, nullable=False),
    Column("return_policy", String(16), nullable=False),
    Column("default_locale", String(2), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("program_id", Uuid),  # NULL: an operator key (creates programmes and their keys)
    Column("partner", String(64)),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    _fk(["program_id"], "programs", ["id"]),
)

accounts = Table(
    "accounts",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("member_id", Uuid),
    Column("unit", String(3), nullable=False),
    # Cached only for member accounts; system accounts are aggregated from postings (no hot rows).
    Column("balance", BigInteger),
    Column("negative_allowed", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("balance IS NULL OR balance >= 0 OR negative_allowed", name="balance_not_negative"),
    CheckConstraint("(member_id IS NULL) = (balance IS NULL)", name="member_accounts_cache_balance"),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_accounts_member_unit", "program_id", "member_id", "unit", unique=True,
          postgresql_where=text("member_id IS NOT NULL"), sqlite_where=text("member_id IS NOT NULL")),
    Index("uq_accounts_system_kind_unit", "program_id", "kind", "unit", unique=True,
          postgresql_where=text("member_id IS NULL"), sqlite_where=text("member_id IS NULL")),
)  # fmt: skip

members = Table(
    "members",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("card_number", String(19), nullable=False),
    Column("external_ref", String(200)),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("email", String(254)),
    Column("phone", String(20)),
    Column("birthday", Date),
    Column("locale", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("enrolled_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_members_card", "program_id", "card_number", unique=True),
    Index("uq_members_external_ref", "program_id", "external_ref", unique=True),
    Index("ix_members_email", "program_id", "email"),
    Index("ix_members_phone", "program_id", "phone"),
)

consents = Table(
    "consents",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("purpose", String(16), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("source", String(64)),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

purchases = Table(
    "purchases",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid),
    Column("partner", String(64), nullable=False),
    Column("store", String(64)),
    Column("channel", String(8), nullable=False),
    Column("external_order_id", String(200), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines", JSON, nullable=False),
    Column("points_earned", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("total_minor >= 0", name="total_not_negative"),
    CheckConstraint("refunded_minor >= 0 AND refunded_minor <= total_minor", name="refund_within_total"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("uq_purchases_order", "program_id", "partner", "external_order_id", unique=True),
    Index("ix_purchases_member", "program_id", "member_id", "occurred_at"),
)

refunds = Table(
    "refunds",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("purchase_id", Uuid, nullable=False),
    Column("external_refund_id", String(200)),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines", JSON),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("points_taken", BigInteger, nullable=False),
    Column("points_forgiven", BigInteger, nullable=False),
    Column("transfer_id", Uuid),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    _fk(["program_id", "purchase_id"], "purchases", ["program_id", "id"]),
    Index("uq_refunds_external", "program_id", "purchase_id", "external_refund_id", unique=True),
)

transfers = Table(
    "transfers",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("member_id", Uuid),
    Column("purchase_id", Uuid),
    Column("redemption_id", Uuid),
    Column("corrects_id", Uuid),
    Column("actor", String(200)),
    Column("explanation", JSON, nullable=False),
    _fk(["program_id", "corrects_id"], "transfers", ["program_id", "id"]),
    Index("ix_transfers_member", "program_id", "member_id", "occurred_at"),
    Index("ix_transfers_purchase", "program_id", "purchase_id"),
)

postings = Table(
    "postings",
    metadata,
    _pid(),
    Column("transfer_id", Uuid, primary_key=True),
    Column("account_id", Uuid, primary_key=True),
    Column("unit", String(3), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    _fk(["program_id", "transfer_id"], "transfers", ["program_id", "id"]),
    _fk(["program_id", "account_id"], "accounts", ["program_id", "id"]),
    Index("ix_postings_account", "program_id", "account_id"),
)

lots = Table(
    "lots",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("source_transfer_id", Uuid, nullable=False),
    Column("purchase_id", Uuid),
    Column("partner", String(64)),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
    _fk(["program_id", "account_id"], "accounts", ["program_id", "id"]),
    _fk(["program_id", "source_transfer_id"], "transfers", ["program_id", "id"]),
    Index("ix_lots_open", "program_id", "account_id",
          postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0")),
    Index("ix_lots_expiring", "program_id", "expires_at",
          postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0")),
    Index("ix_lots_purchase", "program_id", "purchase_id"),
)  # fmt: skip

allocations = Table(
    "allocations",
    metadata,
    _pid(),
    Column("transfer_id", Uuid, primary_key=True),
    Column("lot_id", Uuid, primary_key=True),
    Column("amount", BigInteger, nullable=False),  # > 0 drawn from the lot, < 0 given back to it
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    _fk(["program_id", "transfer_id"], "transfers", ["program_id", "id"]),
    _fk(["program_id", "lot_id"], "lots", ["program_id", "id"]),
    Index("ix_allocations_lot", "program_id", "lot_id"),
)

rewards = Table(
    "rewards",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("name", JSON, nullable=False),
    Column("description", JSON, nullable=False),
    Column("type", String(24), nullable=False),
    Column("cost_points", BigInteger, nullable=False),
    Column("stock", Integer),
    Column("per_member_limit", Integer),
    Column("valid_from", UTCDateTime),
    Column("valid_until", UTCDateTime),
    Column("active", Boolean, nullable=False),
    Column("value_minor", BigInteger),
    Column("percent", Integer),
    Column("sku", String(200)),
    Column("coupon_valid_days", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("cost_points > 0", name="cost_positive"),
    CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    _fk(["program_id"], "programs", ["id"]),
)

redemptions = Table(
    "redemptions",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("reward_id", Uuid, nullable=False),
    Column("transfer_id", Uuid, nullable=False),
    Column("cost_points", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("cancelled_at", UTCDateTime),
    Column("cancel_transfer_id", Uuid),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    _fk(["program_id", "reward_id"], "rewards", ["program_id", "id"]),
    Index("ix_redemptions_member_reward", "program_id", "member_id", "reward_id"),
)

coupons = Table(
    "coupons",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("code", String(14), nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("reward_id", Uuid, nullable=False),
    Column("redemption_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),
    Column("valid_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("consumed_at", UTCDateTime),
    Column("consumed_order_id", String(200)),
    _fk(["program_id", "redemption_id"], "redemptions", ["program_id", "id"]),
    Index("uq_coupons_code", "program_id", "code", unique=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", Uuid, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("program_id", Uuid),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("dispatched_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Index("ix_outbox_pending", "created_at",
          postgresql_where=text("dispatched_at IS NULL"), sqlite_where=text("dispatched_at IS NULL")),
)  # fmt: skip

audit_log = Table(
    "audit_log",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("reason", Text),
)

# -- rules engine ----------------------------------------------------------------------------------
# Rules and campaigns have text ids (a slug such as "saturday-double") that are unique per programme.

campaigns = Table(
    "campaigns",
    metadata,
    _pid(),
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # window, audience, caps and status as written (without its rules, which are rows of `rules`)
    Column("definition", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("budget_points", BigInteger),  # NULL: no budget
    Column("budget_spent", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("budget_points IS NULL OR budget_spent <= budget_points", name="budget_not_exceeded"),
    CheckConstraint("budget_spent >= 0", name="budget_spent_not_negative"),
    _fk(["program_id"], "programs", ["id"]),
)

rules = Table(
    "rules",
    metadata,
    _pid(),
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),  # the latest version's name
    Column("campaign_id", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("archived_at", UTCDateTime),
    _fk(["program_id"], "programs", ["id"]),
    _fk(["program_id", "campaign_id"], "campaigns", ["program_id", "id"]),
    Index("ix_rules_campaign", "program_id", "campaign_id"),
)

rule_versions = Table(
    "rule_versions",
    metadata,
    _pid(),
    Column("rule_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    CheckConstraint("version > 0", name="version_positive"),
    _fk(["program_id", "rule_id"], "rules", ["program_id", "id"]),
)

# What each member was awarded per rule or campaign and period (the domain's UsageKey), for caps.
rule_usage = Table(
    "rule_usage",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("scope", String(16), primary_key=True),  # rule | campaign
    Column("owner", String(64), primary_key=True),  # rule id or campaign id
    Column("period", String(16), primary_key=True),  # day | week | month | year | lifetime
    Column("period_key", String(16), primary_key=True),  # 2026-03-07, 2026-W10, 2026-03, 2026, lifetime
    Column("points", BigInteger, nullable=False),
    Column("awards", BigInteger, nullable=False),
    CheckConstraint("points >= 0 AND awards >= 0", name="usage_not_negative"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

# Custom events (review.created, social.shared...): stored whether or not a rule exists for them yet.
events = Table(
    "events",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("name", String(100), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("transfer_id", Uuid),  # the earn transfer, when the event earned points
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_events_member", "program_id", "member_id", "occurred_at"),
)

# Rows of these tables are facts: never updated, never deleted (enforced by triggers, see migrations).
APPEND_ONLY = ("transfers", "postings", "allocations", "audit_log", "rule_versions", "events")
