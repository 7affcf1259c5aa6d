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
    # checkout and cashback wallet (issue 4, migration 0005)
    Column("earn_on_money_only", Boolean, nullable=False, server_default=text("false")),
    Column("min_redemption_points", BigInteger, nullable=False, server_default=text("0")),
    Column("hold_minutes", Integer, nullable=False, server_default=text("15")),
    Column("cashback_expiry_months", Integer, nullable=False, server_default=text("0")),
    # control group share in basis points (issue 6, migration 0017)
    Column("control_bp", Integer, nullable=False, server_default=text("0")),
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
    # Rotation: the replaced secret's hash is accepted until previous_valid_until (the grace period).
    Column("previous_secret_hash", String(64)),
    Column("previous_valid_until", UTCDateTime),
    Column("rotated_at", UTCDateTime),
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
    Index("ix_members_enrolled", "program_id", "enrolled_at"),  # KPIs: members enrolled by a date
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
    Column("cashier", String(64)),  # the till's cashier (issue 5, migration 0013)
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
    # KPIs: a period's purchases; rows recorded after the KPI roll-up's watermark (BRIN on PostgreSQL: rows
    # arrive in created_at order, so a block range index is tiny and costs the earn path next to nothing).
    Index("ix_purchases_occurred", "program_id", "occurred_at"),
    Index(
        "ix_purchases_created",
        "program_id",
        "created_at",
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
    ),
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
    Index("ix_refunds_created", "program_id", "created_at"),
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
    Index("ix_transfers_occurred", "program_id", "occurred_at"),  # KPIs, as for purchases
    Index(
        "ix_transfers_created",
        "program_id",
        "created_at",
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
    ),
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
    # where the points were spent (issue 5, migration 0010): a coalition partner's code, "default": the programme
    Column("partner", String(64), nullable=False, server_default=text("'default'")),
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
    Index("ix_events_name", "program_id", "name", "occurred_at"),  # KPIs: a period's survey answers
)

# KPI roll-ups (docs/analytics.md): per programme-local day, the sums of rows recorded before `watermark` that
# occurred before `through_day`; KPIs add the raw rows outside that set. Rebuilt when the timezone changes.
kpi_rollups = Table(
    "kpi_rollups",
    metadata,
    _pid(),
    Column("timezone", String(64), nullable=False),
    Column("through_day", Date, nullable=False),
    Column("watermark", UTCDateTime, nullable=False),
    Column("rolled_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
)

# Member and wallet account postings per day, account kind, unit and transfer kind ('' when not a correction).
kpi_flow_days = Table(
    "kpi_flow_days",
    metadata,
    _pid(),
    Column("day", Date, primary_key=True),
    Column("account_kind", String(16), primary_key=True),
    Column("unit", String(3), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("corrected_kind", String(16), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

# Members' purchases per day of the purchase and currency: totals less the refunds of them.
kpi_revenue_days = Table(
    "kpi_revenue_days",
    metadata,
    _pid(),
    Column("day", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

# Rows of these tables are facts: never updated, never deleted (enforced by triggers, see migrations).
APPEND_ONLY = ("transfers", "postings", "allocations", "audit_log", "rule_versions", "events")

# -- paid premium club (issue 4) -----------------------------------------------------------------------
# A subscription stores facts (start, trial end, cancellation, its payments); its state is computed from them
# and the instant asked about (treue.domain.club). Payments and perk grants are facts: append-only (0006).

club_plans = Table(
    "club_plans",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("name", JSON, nullable=False),
    Column("description", JSON, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("billing_interval", String(8), nullable=False),
    Column("trial_days", Integer, nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("benefits", JSON, nullable=False),  # earn multiplier, cashback percent, perks, birthday bonus
    Column("bonus_points", BigInteger, nullable=False, server_default=text("0")),  # per paid period
    Column("voucher_reward_id", Uuid),  # a catalogue reward issued as a coupon per paid period
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("price_minor > 0", name="price_positive"),
    CheckConstraint("billing_interval IN ('month', 'year')", name="interval_known"),
    CheckConstraint("trial_days >= 0 AND grace_days >= 0", name="days_not_negative"),
    CheckConstraint("bonus_points >= 0", name="bonus_points_not_negative"),
    _fk(["program_id"], "programs", ["id"]),
    _fk(["program_id", "voucher_reward_id"], "rewards", ["program_id", "id"]),
    Index("uq_club_plans_code", "program_id", "code", unique=True),
)

club_subscriptions = Table(
    "club_subscriptions",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("plan_id", Uuid, nullable=False),
    # The plan's terms as agreed when joining: a later edit of the plan does not change them.
    Column("billing_interval", String(8), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("trial_ends_at", UTCDateTime, nullable=False),
    Column("cancel_requested_at", UTCDateTime),
    Column("cancel_at", UTCDateTime),  # when the cancellation takes effect
    Column("cancel_reason", Text),
    Column("ended_at", UTCDateTime),  # known end (cancellation, or expiry noted by the club job)
    Column("past_due_notice_at", UTCDateTime),  # the due date whose club.past_due event was emitted
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("price_minor > 0", name="price_positive"),
    CheckConstraint("billing_interval IN ('month', 'year')", name="interval_known"),
    CheckConstraint("trial_ends_at >= started_at", name="trial_after_start"),
    CheckConstraint("(cancel_at IS NULL) = (cancel_requested_at IS NULL)", name="cancel_complete"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    _fk(["program_id", "plan_id"], "club_plans", ["program_id", "id"]),
    Index("ix_club_subscriptions_member", "program_id", "member_id", "started_at"),
    Index("ix_club_subscriptions_open", "program_id", "ended_at"),
)

club_payments = Table(
    "club_payments",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("subscription_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("plan_id", Uuid, nullable=False),
    Column("provider_reference", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_index", Integer, nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime),  # the provider's time, when it gave one
    Column("recorded_at", UTCDateTime, nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("status IN ('succeeded', 'failed')", name="status_known"),
    CheckConstraint("period_index >= 0", name="period_not_negative"),
    _fk(["program_id", "subscription_id"], "club_subscriptions", ["program_id", "id"]),
    Index("uq_club_payments_reference", "program_id", "provider_reference", unique=True),
    # One succeeded payment per billing period, whatever code path writes it.
    Index("uq_club_payments_period", "program_id", "subscription_id", "period_index", unique=True,
          postgresql_where=text("status = 'succeeded'"), sqlite_where=text("status = 'succeeded'")),
    Index("ix_club_payments_recorded", "program_id", "recorded_at"),
)  # fmt: skip

# The cost of the club's recurring perks, per subscription and paid period: bonus points (an earn transfer)
# and vouchers (a coupon of a catalogue reward, its cost in points posted issuance -> redemption).
club_perk_grants = Table(
    "club_perk_grants",
    metadata,
    _pid(),
    Column("subscription_id", Uuid, primary_key=True),
    Column("period_index", Integer, primary_key=True),
    Column("perk", String(16), primary_key=True),  # bonus_points | voucher
    Column("member_id", Uuid, nullable=False),
    Column("plan_id", Uuid, nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # granted | skipped (e.g. the reward is out of stock)
    Column("points", BigInteger, nullable=False),  # bonus points credited, or the voucher reward's cost
    Column("transfer_id", Uuid),
    Column("reward_id", Uuid),
    Column("redemption_id", Uuid),
    Column("coupon_code", String(14)),
    Column("note", Text),
    Column("granted_at", UTCDateTime, nullable=False),
    CheckConstraint("points >= 0", name="points_not_negative"),
    CheckConstraint("status IN ('granted', 'skipped')", name="status_known"),
    _fk(["program_id", "subscription_id"], "club_subscriptions", ["program_id", "id"]),
    _fk(["program_id", "transfer_id"], "transfers", ["program_id", "id"]),
    Index("ix_club_perk_grants_granted", "program_id", "granted_at"),
)

# -- cashback wallet and checkout holds (issue 4) --------------------------------------------------------
# A wallet is an account of kind `wallet` (unit: the programme currency) in `accounts`; its credits are lots of
# money with their own allocations, apart from the points lots so that points jobs never see them.

wallet_lots = Table(
    "wallet_lots",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("source_transfer_id", Uuid, nullable=False),
    Column("purchase_id", Uuid),
    Column("amount", BigInteger, nullable=False),  # minor units of the account's currency
    Column("remaining", BigInteger, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
    _fk(["program_id", "account_id"], "accounts", ["program_id", "id"]),
    _fk(["program_id", "source_transfer_id"], "transfers", ["program_id", "id"]),
    Index("ix_wallet_lots_open", "program_id", "account_id",
          postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0")),
    Index("ix_wallet_lots_purchase", "program_id", "purchase_id"),
)  # fmt: skip

wallet_allocations = Table(
    "wallet_allocations",
    metadata,
    _pid(),
    Column("transfer_id", Uuid, primary_key=True),
    Column("lot_id", Uuid, primary_key=True),
    Column("amount", BigInteger, nullable=False),  # > 0 drawn from the lot, < 0 given back to it
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    _fk(["program_id", "transfer_id"], "transfers", ["program_id", "id"]),
    _fk(["program_id", "lot_id"], "wallet_lots", ["program_id", "id"]),
    Index("ix_wallet_allocations_lot", "program_id", "lot_id"),
)

# A hold keeps points and/or wallet money for a cart. It is active while `held` and before `expires_at`
# (computed from time: an abandoned cart needs no job). A capture writes the payment transfers it names.
checkout_holds = Table(
    "checkout_holds",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("partner", String(64), nullable=False),
    Column("reference", String(200)),  # the till's cart or order reference
    Column("currency", String(3), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("wallet_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("captured_at", UTCDateTime),
    Column("released_at", UTCDateTime),
    Column("captured_points", BigInteger),
    Column("captured_wallet_minor", BigInteger),
    Column("purchase_id", Uuid),
    Column("points_transfer_id", Uuid),
    Column("wallet_transfer_id", Uuid),
    # the till that reserved (store, cashier) and the one that captured or released (issue 5, migration 0013)
    Column("store", String(64)),
    Column("cashier", String(64)),
    Column("finished_store", String(64)),
    Column("finished_cashier", String(64)),
    CheckConstraint("points >= 0 AND wallet_minor >= 0 AND points + wallet_minor > 0", name="amounts_valid"),
    CheckConstraint("status IN ('held', 'captured', 'released')", name="status_known"),
    CheckConstraint("(status = 'captured') = (captured_at IS NOT NULL)", name="captured_complete"),
    CheckConstraint("(status = 'released') = (released_at IS NOT NULL)", name="released_complete"),
    CheckConstraint("captured_points IS NULL OR (captured_points >= 0 AND captured_points <= points)",
                    name="captured_points_within_hold"),
    CheckConstraint("captured_wallet_minor IS NULL OR (captured_wallet_minor >= 0 "
                    "AND captured_wallet_minor <= wallet_minor)", name="captured_wallet_within_hold"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    _fk(["program_id", "purchase_id"], "purchases", ["program_id", "id"]),
    _fk(["program_id", "points_transfer_id"], "transfers", ["program_id", "id"]),
    _fk(["program_id", "wallet_transfer_id"], "transfers", ["program_id", "id"]),
    Index("ix_checkout_holds_member", "program_id", "member_id", "status"),
)  # fmt: skip

# -- web UI (issue 9, migration 0008) ------------------------------------------------------------------------
# Staff who sign in to /admin: one row per person and programme, password hashed with argon2. The failure
# counters live on the row, so a lockout needs no table of attempts (and an unknown email locks nothing).
staff_users = Table(
    "staff_users",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("partner", String(64)),  # partner users only: the partner whose data they see
    Column("locale", String(2), nullable=False),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("failure_window_start", UTCDateTime),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    CheckConstraint("role IN ('owner', 'manager', 'support', 'analyst', 'partner')", name="role_known"),
    CheckConstraint("(role = 'partner') = (partner IS NOT NULL)", name="partner_iff_partner_role"),
    CheckConstraint("failures >= 0", name="failures_not_negative"),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_staff_users_email", "program_id", "email", unique=True),
    Index("ix_staff_users_sign_in", "email"),  # sign-in knows the email, not yet the programme
)

# Server-side sessions: the cookie holds "<programme>.<token>", the table only the token's SHA-256.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    _pid(),
    Column("token_hash", String(64), primary_key=True),
    Column("staff_id", Uuid, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    _fk(["program_id", "staff_id"], "staff_users", ["program_id", "id"]),
    Index("ix_staff_sessions_staff", "program_id", "staff_id"),
)

# One-time sign-in codes for the member portal, stored hashed, valid for minutes, a few tries each.
member_sign_in_codes = Table(
    "member_sign_in_codes",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint("expires_at > created_at", name="expires_after_created"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_member_sign_in_codes_member", "program_id", "member_id", "created_at"),
)

member_sessions = Table(
    "member_sessions",
    metadata,
    _pid(),
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_member_sessions_member", "program_id", "member_id"),
)

# -- predictive CLV and churn (issue 6, migration 0007) ---------------------------------------------------------
from sqlalchemy import Double  # noqa: E402  (kept with the table that needs it; the file is appended to)

# The latest model results per member (one row each, replaced by every `treue analytics clv` run that stores):
# member facts that segments and offers read. Statistics are floats; the expected CLV is money in minor units.
member_clv = Table(
    "member_clv",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("calibration_end", Date, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("repeat_purchases", Integer, nullable=False),
    Column("recency_weeks", Double, nullable=False),
    Column("age_weeks", Double, nullable=False),
    Column("probability_alive", Double, nullable=False),
    Column("expected_purchases", Double, nullable=False),
    Column("horizon_weeks", Integer, nullable=False),
    Column("discount_rate", Double, nullable=False),
    Column("expected_clv_minor", BigInteger),  # NULL when the spend model could not be fitted
    Column("currency", String(3), nullable=False),
    CheckConstraint("probability_alive >= 0 AND probability_alive <= 1", name="probability_alive_range"),
    CheckConstraint("expected_purchases >= 0", name="expected_purchases_not_negative"),
    CheckConstraint("repeat_purchases >= 0 AND recency_weeks >= 0 AND recency_weeks <= age_weeks",
                    name="history_consistent"),
    CheckConstraint("horizon_weeks >= 1", name="horizon_positive"),
    CheckConstraint("expected_clv_minor IS NULL OR expected_clv_minor >= 0", name="clv_not_negative"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_member_clv_probability_alive", "program_id", "probability_alive"),
)  # fmt: skip

# -- tiers (issue 4, migration 0004) ----------------------------------------------------------------------------
# One ladder per programme; its tiers in order. A member's tier state is one row (absent: the lowest tier);
# every change of it is a fact in tier_changes (append-only). Qualifying amounts are not stored: they are
# counted from purchases and the ledger, so refunds lower them and redemptions cannot (treue.domain.tiers).
tier_ladders = Table(
    "tier_ladders",
    metadata,
    _pid(),
    Column("basis", String(16), nullable=False),
    Column("review", String(16), nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("notice_days", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("basis IN ('spend', 'purchases', 'status_points')", name="basis_known"),
    CheckConstraint("review IN ('window_end', 'anniversary')", name="review_known"),
    CheckConstraint("grace_days >= 0 AND notice_days >= 0", name="days_not_negative"),
    _fk(["program_id"], "programs", ["id"]),
)

tiers = Table(
    "tiers",
    metadata,
    _pid(),
    Column("code", String(32), primary_key=True),
    Column("position", Integer, nullable=False),  # 0: the lowest tier
    Column("name", JSON, nullable=False),
    Column("threshold", BigInteger, nullable=False),  # of the ladder's basis; minor units for spend
    Column("qualifying_window", String(16), nullable=False),  # 12M, calendar_year, lifetime
    Column("benefits", JSON, nullable=False),
    CheckConstraint("threshold >= 0", name="threshold_not_negative"),
    CheckConstraint("position >= 0 AND (position > 0 OR threshold = 0)", name="lowest_tier_open"),
    _fk(["program_id"], "tier_ladders", ["program_id"]),
    Index("uq_tiers_position", "program_id", "position", unique=True),
)

member_tiers = Table(
    "member_tiers",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("tier_code", String(32), nullable=False),  # the earned tier
    Column("since", UTCDateTime, nullable=False),
    Column("review_at", UTCDateTime),  # secured until; NULL: the lowest tier or a lifetime window
    Column("manual_code", String(32)),  # a manual assignment (VIP) overrides the earned tier
    Column("manual_until", UTCDateTime),  # NULL with manual_code: until removed
    Column("manual_reason", Text),
    Column("notice_for", UTCDateTime),  # the review date whose tier.will_downgrade was sent
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("manual_until IS NULL OR manual_code IS NOT NULL", name="manual_expiry_needs_tier"),
    CheckConstraint("review_at IS NULL OR review_at > since", name="review_after_since"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_member_tiers_review", "program_id", "review_at"),
    Index("ix_member_tiers_manual", "program_id", "manual_until"),
)

tier_changes = Table(
    "tier_changes",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("from_tier", String(32), nullable=False),
    Column("to_tier", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("review_at", UTCDateTime),  # what the change secured the tier until
    Column("manual_until", UTCDateTime),
    Column("amounts", JSON, nullable=False),  # the qualifying amounts per window that decided it
    Column("actor", String(200), nullable=False),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "kind IN ('upgraded', 'downgraded', 'renewed', 'assigned', 'unassigned', 'assignment_expired')",
        name="kind_known",
    ),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_tier_changes_member", "program_id", "member_id", "at"),
)

# -- outbound webhooks (issue 5) -------------------------------------------------------------------
# An endpoint's deliveries: one row per (endpoint, outbox message), so a re-run fan-out adds nothing; each HTTP
# try is an append-only attempt row (the delivery log). A claim is a lease: a killed worker's delivery is
# claimable again once lease_until has passed.

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("filters", JSON, nullable=False),
    Column("secret", String(100), nullable=False),
    Column("description", String(500)),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(200)),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("failing_since", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("consecutive_failures >= 0", name="failures_not_negative"),
    _fk(["program_id"], "programs", ["id"]),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("endpoint_id", Uuid, nullable=False),
    Column("message_id", Uuid, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("lease_owner", String(100)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint("status <> 'pending' OR next_attempt_at IS NOT NULL", name="pending_has_next_attempt"),
    _fk(["program_id", "endpoint_id"], "webhook_endpoints", ["program_id", "id"]),
    Index("uq_webhook_deliveries_message", "program_id", "endpoint_id", "message_id", unique=True),
    Index("ix_webhook_deliveries_due", "next_attempt_at",
          postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    Index("ix_webhook_deliveries_endpoint", "program_id", "endpoint_id", "created_at"),
)  # fmt: skip

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _pid(),
    Column("delivery_id", Uuid, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("worker", String(100), nullable=False),
    CheckConstraint("number > 0", name="number_positive"),
    CheckConstraint("duration_ms >= 0", name="duration_not_negative"),
    _fk(["program_id", "delivery_id"], "webhook_deliveries", ["program_id", "id"]),
)

# -- coalition partners and settlement (issue 5, migration 0010) --------------------------------------------------
# A partner's code is the `partner` string purchases, keys, lots and redemptions carry ("default": the programme).
# Partner figures are never a balance kept per purchase (a hot row): settlement aggregates lots and allocations.
partners = Table(
    "partners",
    metadata,
    _pid(),
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("stores", JSON, nullable=False),
    Column("channels", JSON, nullable=False),
    Column("issue_price_minor", BigInteger, nullable=False),  # what it pays per issue_price_points it issues
    Column("issue_price_points", BigInteger, nullable=False),
    Column("redeem_price_minor", BigInteger, nullable=False),  # what it is paid per redeem_price_points redeemed at it
    Column("redeem_price_points", BigInteger, nullable=False),
    Column("billing", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("code <> 'default'", name="code_not_default"),
    CheckConstraint("issue_price_minor >= 0 AND issue_price_points > 0", name="issue_price_valid"),
    CheckConstraint("redeem_price_minor >= 0 AND redeem_price_points > 0", name="redeem_price_valid"),
    CheckConstraint("billing IN ('prepaid', 'postpaid')", name="billing_known"),
    _fk(["program_id"], "programs", ["id"]),
)

# A settled month: stored once, never changed (append-only triggers), so a second run returns the same result.
settlements = Table(
    "settlements",
    metadata,
    _pid(),
    Column("period", String(7), primary_key=True),  # YYYY-MM in the programme's timezone
    Column("timezone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    CheckConstraint("period_end > period_start", name="period_ordered"),
    CheckConstraint("settled_at >= period_end", name="settled_after_period"),
    _fk(["program_id"], "programs", ["id"]),
)

settlement_lines = Table(
    "settlement_lines",
    metadata,
    _pid(),
    Column("period", String(7), primary_key=True),
    Column("partner", String(64), primary_key=True),
    Column("registered", Boolean, nullable=False),
    Column("billing", String(16)),  # the terms in force when settled (NULL: not a registered partner)
    Column("issue_price_minor", BigInteger),
    Column("issue_price_points", BigInteger),
    Column("redeem_price_minor", BigInteger),
    Column("redeem_price_points", BigInteger),
    Column("points_issued", BigInteger, nullable=False),
    Column("points_taken_back", BigInteger, nullable=False),
    Column("points_redeemed_at", BigInteger, nullable=False),
    Column("points_funded_redeemed", BigInteger, nullable=False),
    Column("points_expired", BigInteger, nullable=False),
    Column("owed_by_partner_minor", BigInteger, nullable=False),
    Column("owed_to_partner_minor", BigInteger, nullable=False),
    Column("net_minor", BigInteger, nullable=False),
    Column("redeemed_by_funder", JSON, nullable=False),  # {funding partner: points spent here}
    Column("funded_redeemed_at", JSON, nullable=False),  # {where spent: this partner's points}
    CheckConstraint("net_minor = owed_to_partner_minor - owed_by_partner_minor", name="net_consistent"),
    CheckConstraint("registered = (billing IS NOT NULL)", name="terms_iff_registered"),
    _fk(["program_id", "period"], "settlements", ["program_id", "period"]),
)

# -- shop adapters (issue 5, migration 0012) -------------------------------------------------------------------
shop_connections = Table(
    "shop_connections",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),  # in the inbound URL: /api/v1/inbound/{platform}/{id}
    Column("code", String(64), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("secret", String(256), nullable=False),  # HMAC key: must be kept in clear to verify signatures
    Column("match_by", String(16), nullable=False),
    Column("create_members", Boolean, nullable=False),
    Column("shipping_earns", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("platform IN ('shopify', 'woocommerce', 'shopware', 'generic')", name="platform_known"),
    CheckConstraint("match_by IN ('email', 'customer_id')", name="match_by_known"),
    CheckConstraint("length(secret) >= 8", name="secret_long_enough"),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_shop_connections_code", "program_id", "code", unique=True),
    Index("ix_shop_connections_id", "id"),  # an inbound delivery names only the connection
)

shop_deliveries = Table(
    "shop_deliveries",
    metadata,
    _pid(),
    Column("connection_id", Uuid, primary_key=True),
    Column("delivery_id", String(200), primary_key=True),  # the platform's webhook or event id
    Column("topic", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("external_order_id", String(200)),  # the order a skipped purchase would have recorded
    Column("result", JSON, nullable=False),  # the first answer, returned again to a repeated delivery
    Column("received_at", UTCDateTime, nullable=False),
    CheckConstraint("outcome IN ('processed', 'skipped', 'ignored')", name="outcome_known"),
    _fk(["program_id", "connection_id"], "shop_connections", ["program_id", "id"]),
    Index("ix_shop_deliveries_received", "program_id", "connection_id", "received_at"),
    Index("ix_shop_deliveries_order", "program_id", "connection_id", "external_order_id"),
)

# --- tills (issue 5) ---
# Offline till uploads (migration 0013). A batch is one JSON Lines file; each line is applied in its own
# transaction and leaves one row with its outcome, in file order (`line_no`) and in the order it was applied
# (`seq`: purchases first). A line's idempotency key belongs to the programme: the row that `owns_key` holds the
# key's first result (applied, or a final refusal), which every later line with the key replays.
till_batches = Table(
    "till_batches",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("upload_key", String(255)),  # the upload's Idempotency-Key: a retried upload gets the first batch
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_till_batches_upload_key", "program_id", "upload_key", unique=True,
          postgresql_where=text("upload_key IS NOT NULL"), sqlite_where=text("upload_key IS NOT NULL")),
    Index("ix_till_batches_received", "program_id", "received_at"),
)  # fmt: skip

till_batch_lines = Table(
    "till_batch_lines",
    metadata,
    _pid(),
    Column("batch_id", Uuid, primary_key=True),
    Column("line_no", Integer, primary_key=True),  # 1-based line of the file
    Column("seq", Integer, nullable=False),  # the order the lines were applied in
    Column("key", String(255)),
    Column("kind", String(16)),  # purchase, refund, coupon (NULL: the line could not be read)
    Column("occurred_at", UTCDateTime),
    Column("store", String(64)),
    Column("cashier", String(64)),
    Column("fingerprint", String(64)),  # sha256 of the line's content: a key reused for another line is refused
    Column("outcome", String(16), nullable=False),
    Column("code", String(64)),  # the stable error code of a conflict (or of the replayed first result)
    Column("detail", Text),
    Column("result", JSON),  # what the use case answered (a replay: the first answer)
    Column("owns_key", Boolean, nullable=False),
    Column("replay_of_batch", Uuid),
    Column("replay_of_line", Integer),
    Column("applied_at", UTCDateTime, nullable=False),
    CheckConstraint("outcome IN ('applied', 'replayed', 'conflict')", name="outcome_known"),
    CheckConstraint("key IS NOT NULL OR NOT owns_key", name="owner_has_key"),
    _fk(["program_id", "batch_id"], "till_batches", ["program_id", "id"]),
    Index("uq_till_batch_lines_key", "program_id", "key", unique=True,
          postgresql_where=text("owns_key"), sqlite_where=text("owns_key")),
)  # fmt: skip


# --- card-linked earning (issue 11) ---
# A member's payment card, linked by the token its payment provider issued (never a card number): purchases paid
# with the token in [linked_at, unlinked_at) are the member's. One active link per token and programme (partial
# unique index), so the intervals of a token never overlap; unlinking ends the interval, the row stays.
payment_cards = Table(
    "payment_cards",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("token", String(200), nullable=False),
    Column("fingerprint", String(200)),
    Column("brand", String(16), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("unlinked_at", UTCDateTime),
    Column("unlink_reason", String(200)),
    CheckConstraint("exp_month >= 1 AND exp_month <= 12", name="exp_month_valid"),
    CheckConstraint("length(last4) = 4", name="last4_four_digits"),
    CheckConstraint("unlinked_at IS NULL OR unlinked_at >= linked_at", name="unlinked_after_linked"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("uq_payment_cards_active_token", "program_id", "token", unique=True,
          postgresql_where=text("unlinked_at IS NULL"), sqlite_where=text("unlinked_at IS NULL")),
    Index("ix_payment_cards_token", "program_id", "token", "linked_at"),
    Index("ix_payment_cards_member", "program_id", "member_id", "linked_at"),
)  # fmt: skip

# How a purchase was paid with a token, and the link it matched (card_id and member NULL: nobody had it linked).
purchase_payments = Table(
    "purchase_payments",
    metadata,
    _pid(),
    Column("purchase_id", Uuid, primary_key=True),
    Column("token", String(200), nullable=False),
    Column("brand", String(16), nullable=False),
    Column("fingerprint", String(200)),
    Column("card_id", Uuid),
    Column("matched_member_id", Uuid),
    Column("offers", JSON, nullable=False),  # codes of the card-linked offers it earned by
    Column("created_at", UTCDateTime, nullable=False),
    _fk(["program_id", "purchase_id"], "purchases", ["program_id", "id"]),
    _fk(["program_id", "card_id"], "payment_cards", ["program_id", "id"]),
    Index("ix_purchase_payments_card", "program_id", "card_id"),
)

# An acquirer's merchant id and the partner whose purchases its transactions are.
card_merchants = Table(
    "card_merchants",
    metadata,
    _pid(),
    Column("merchant_id", String(64), primary_key=True),
    Column("partner", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
)

# An imported card-transaction feed (what it did), and each line it applied, keyed by partner, authorisation code
# and type: a line seen before is skipped, so importing a file again changes nothing.
card_feeds = Table(
    "card_feeds",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("filename", String(255)),
    Column("format", String(8), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    CheckConstraint("format IN ('csv', 'jsonl')", name="format_known"),
    _fk(["program_id"], "programs", ["id"]),
    Index("ix_card_feeds_imported", "program_id", "imported_at"),
)

card_feed_lines = Table(
    "card_feed_lines",
    metadata,
    _pid(),
    Column("partner", String(64), primary_key=True),
    Column("authorisation_code", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("feed_id", Uuid, nullable=False),
    Column("purchase_id", Uuid, nullable=False),
    Column("refund_id", Uuid),
    Column("member_id", Uuid),
    Column("amount_minor", BigInteger, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('sale', 'refund', 'chargeback')", name="kind_known"),
    _fk(["program_id", "feed_id"], "card_feeds", ["program_id", "id"]),
    _fk(["program_id", "purchase_id"], "purchases", ["program_id", "id"]),
)

# Card-linked offers ("5 % cashback at partner X in December"): each runs as a campaign of the rules engine
# (`campaign_id`) whose rule requires a card-linked purchase and the member's activation (member.offers).
offers = Table(
    "offers",
    metadata,
    _pid(),
    Column("code", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", JSON, nullable=False),
    Column("description", JSON, nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("partners", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("activation_required", Boolean, nullable=False),
    Column("limit_per_member", Integer),
    Column("definition", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('card_linked', 'targeted')", name="kind_known"),
    CheckConstraint("ends_at > starts_at", name="window_valid"),
    CheckConstraint("limit_per_member IS NULL OR limit_per_member > 0", name="limit_positive"),
    _fk(["program_id", "campaign_id"], "campaigns", ["program_id", "id"]),
)

# A member and an offer: shown -> activated -> used (uses counts the purchases it applied to).
offer_activations = Table(
    "offer_activations",
    metadata,
    _pid(),
    Column("offer_code", String(64), primary_key=True),
    Column("member_id", Uuid, primary_key=True),
    Column("shown_at", UTCDateTime),
    Column("activated_at", UTCDateTime),
    Column("uses", Integer, nullable=False, server_default=text("0")),
    Column("first_used_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    CheckConstraint("uses >= 0", name="uses_not_negative"),
    _fk(["program_id", "offer_code"], "offers", ["program_id", "code"]),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_offer_activations_member", "program_id", "member_id"),
)


# --- referrals and social rewards (issue 7) ---
# Settings per programme; one code per member (a replaced code stays, inactive: `code_expired`); referrals with
# their fraud-screen inputs as digests; what rules granted (coupons), once per source; moderation of events.

referral_settings = Table(
    "referral_settings",
    metadata,
    Column("program_id", Uuid, primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
)

referral_codes = Table(
    "referral_codes",
    metadata,
    _pid(),
    Column("code", String(16), primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("device_hash", String(64)),  # the member's own device and payment digests, when given at enrolment
    Column("payment_hash", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_referral_codes_member", "program_id", "member_id"),
)

referrals = Table(
    "referrals",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("referrer_id", Uuid),  # None: the code was unknown
    Column("referee_id", Uuid, nullable=False),
    Column("code", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),  # why a referral was rejected
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),  # end of the qualifying window (pending referrals)
    Column("completed_at", UTCDateTime),
    Column("purchase_id", Uuid),  # the qualifying purchase, or
    Column("event_id", Uuid),  # the qualifying event
    Column("return_until", UTCDateTime),  # a refund of the qualifying purchase until then reverses
    Column("rewards", JSON),  # per role: points, transfer, grants, budgets and usage (to give back)
    Column("reward_points", BigInteger, nullable=False, server_default=text("0")),
    Column("ended_at", UTCDateTime),  # expired or reversed
    Column("email_key", String(254)),  # the referee's canonical email
    Column("ip_hash", String(64)),
    Column("device_hash", String(64)),
    Column("payment_hash", String(64)),
    CheckConstraint("status IN ('pending', 'completed', 'rejected', 'expired', 'reversed')", name="status_known"),
    CheckConstraint("(status = 'rejected') = (reason IS NOT NULL)", name="reason_iff_rejected"),
    _fk(["program_id", "referee_id"], "members", ["program_id", "id"]),
    _fk(["program_id", "referrer_id"], "members", ["program_id", "id"]),
    Index("ix_referrals_referrer", "program_id", "referrer_id", "created_at"),
    # a member is the referee of at most one referral that was not rejected
    Index("uq_referrals_referee", "program_id", "referee_id", unique=True,
          postgresql_where=text("status <> 'rejected'"), sqlite_where=text("status <> 'rejected'")),
    Index("ix_referrals_pending", "program_id", "expires_at",
          postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    Index("ix_referrals_purchase", "program_id", "purchase_id"),
    Index("ix_referrals_email", "program_id", "email_key"),
    Index("ix_referrals_ip", "program_id", "ip_hash", "created_at"),
    Index("ix_referrals_device", "program_id", "device_hash", "created_at"),
)  # fmt: skip

reward_grants = Table(
    "reward_grants",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("source", String(200), nullable=False),  # "purchase:<id>", "event:<id>", "referral:<id>:referee"...
    Column("rule", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # reward | coupon
    Column("code", String(200), nullable=False),  # as the rule names it
    Column("seq", Integer, nullable=False),  # 1..quantity
    Column("status", String(16), nullable=False),
    Column("reward_id", Uuid),
    Column("redemption_id", Uuid),
    Column("transfer_id", Uuid),  # the reward's cost, issuance -> redemption
    Column("coupon_code", String(14)),
    Column("note", Text),  # why a grant was skipped
    Column("created_at", UTCDateTime, nullable=False),
    Column("cancelled_at", UTCDateTime),
    CheckConstraint("status IN ('granted', 'skipped', 'cancelled')", name="status_known"),
    CheckConstraint("kind IN ('reward', 'coupon')", name="kind_known"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("uq_reward_grants_once", "program_id", "member_id", "source", "rule", "kind", "code", "seq", unique=True),
)

event_moderations = Table(
    "event_moderations",
    metadata,
    _pid(),
    Column("event_id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("transfer_id", Uuid),  # the earn transfer whose lots wait for the decision
    # {"lots": [{"lot_id", "points", "available_at"}], "usage": [...], "budgets": [...]}: when each held lot becomes
    # available on approval, and what a rejection gives back to caps and campaign budgets
    Column("held", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(200)),
    Column("note", Text),
    Column("reverse_transfer_id", Uuid),
    CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
    _fk(["program_id", "event_id"], "events", ["program_id", "id"]),
    Index("ix_event_moderations_pending", "program_id", "created_at",
          postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
)  # fmt: skip

# --- gamification (issue 7) ---

# Missions: definitions (the goal, window, audience and reward as a definition document, parsed by
# treue.domain.gamification.missions), opt-ins, progress contributions (append-only: one row per counted event,
# a negative row when a refund takes one back, so progress is a sum that can be recomputed) and completions.
missions = Table(
    "missions",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_missions_code", "program_id", "code", unique=True),
)

mission_optins = Table(
    "mission_optins",
    metadata,
    _pid(),
    Column("mission_id", Uuid, primary_key=True),
    Column("member_id", Uuid, primary_key=True),
    Column("opted_in_at", UTCDateTime, nullable=False),
    _fk(["program_id", "mission_id"], "missions", ["program_id", "id"]),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

mission_progress = Table(
    "mission_progress",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("mission_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("window_key", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),  # events or minor units; negative: a refund took it back
    Column("source", String(8), nullable=False),  # event (the mission's own), rule (a mission_progress effect), refund
    Column("purchase_id", Uuid),
    Column("event_id", Uuid),
    Column("occurred_at", UTCDateTime, nullable=False),  # the event's time (it decides the window)
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("source IN ('event', 'rule', 'refund')", name="source_known"),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    _fk(["program_id", "mission_id"], "missions", ["program_id", "id"]),
    Index("ix_mission_progress_member", "program_id", "mission_id", "member_id", "window_key"),
    Index("ix_mission_progress_purchase", "program_id", "purchase_id"),
)

# What missions and streak milestones awarded, one row per completion (mission window, or streak run and
# milestone); unique while not reversed, so a completion is rewarded once however often it is checked.
gamification_completions = Table(
    "gamification_completions",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("kind", String(8), nullable=False),  # mission | streak
    Column("subject_id", Uuid, nullable=False),  # the mission or streak
    Column("member_id", Uuid, nullable=False),
    Column("completion_key", String(48), nullable=False),  # mission: window key or "once"; streak: run:milestone
    Column("window_key", String(32), nullable=False),  # mission: the window; streak: the run's first period
    Column("window_start", UTCDateTime),
    Column("window_end", UTCDateTime),
    Column("completed_at", UTCDateTime, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("transfer_id", Uuid),  # the earn of the points
    Column("coupon", String(64)),
    Column("badge", String(64)),
    Column("reversed_at", UTCDateTime),
    Column("reversal_transfer_id", Uuid),
    Column("points_taken_back", BigInteger),
    Column("points_forgiven", BigInteger),
    CheckConstraint("kind IN ('mission', 'streak')", name="kind_known"),
    CheckConstraint("points >= 0", name="points_not_negative"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("uq_gamification_completions_key", "program_id", "kind", "subject_id", "member_id", "completion_key",
          unique=True, postgresql_where=text("reversed_at IS NULL"), sqlite_where=text("reversed_at IS NULL")),
    Index("ix_gamification_completions_member", "program_id", "member_id", "completed_at"),
)  # fmt: skip

streaks = Table(
    "streaks",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_streaks_code", "program_id", "code", unique=True),
)

# One row per qualifying event (+1) and per full refund of a purchase that qualified (-1), append-only: the
# periods whose sum is positive are the periods of the member's streak.
streak_hits = Table(
    "streak_hits",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("streak_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("period_index", Integer, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("purchase_id", Uuid),
    Column("event_id", Uuid),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("amount IN (1, -1)", name="amount_unit"),
    _fk(["program_id", "streak_id"], "streaks", ["program_id", "id"]),
    Index("ix_streak_hits_member", "program_id", "streak_id", "member_id", "period_index"),
    Index("ix_streak_hits_purchase", "program_id", "purchase_id"),
)

badges = Table(
    "badges",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("name", JSON, nullable=False),
    Column("description", JSON, nullable=False),
    Column("image_url", String(2000)),
    Column("rare_below_percent", String(16)),  # an exact decimal ("5"), or null: no rarity
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_badges_code", "program_id", "code", unique=True),
)

# A member holds a badge once: the primary key makes a second grant a no-op.
member_badges = Table(
    "member_badges",
    metadata,
    _pid(),
    Column("badge_id", Uuid, primary_key=True),
    Column("member_id", Uuid, primary_key=True),
    Column("awarded_at", UTCDateTime, nullable=False),
    Column("source", JSON, nullable=False),  # what granted it: a rule, a mission, a streak, an instant win, staff
    _fk(["program_id", "badge_id"], "badges", ["program_id", "id"]),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_member_badges_member", "program_id", "member_id", "awarded_at"),
)

# Instant-win campaigns; their prize counters are rows of their own, spent with conditional UPDATEs (and CHECKs)
# so that concurrent draws never give more than a budget.
instant_wins = Table(
    "instant_wins",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("odds_version", Integer, nullable=False),
    Column("points_budget", BigInteger),
    Column("points_awarded", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("points_awarded >= 0 AND (points_budget IS NULL OR points_awarded <= points_budget)",
                    name="points_within_budget"),
    _fk(["program_id"], "programs", ["id"]),
    Index("uq_instant_wins_code", "program_id", "code", unique=True),
)  # fmt: skip

instant_win_prizes = Table(
    "instant_win_prizes",
    metadata,
    _pid(),
    Column("campaign_id", Uuid, primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("total", Integer),
    Column("awarded", Integer, nullable=False),
    CheckConstraint("awarded >= 0 AND (total IS NULL OR awarded <= total)", name="awarded_within_total"),
    _fk(["program_id", "campaign_id"], "instant_wins", ["program_id", "id"]),
)

instant_win_prize_days = Table(
    "instant_win_prize_days",
    metadata,
    _pid(),
    Column("campaign_id", Uuid, primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("day", Date, primary_key=True),  # local date in the programme's timezone
    Column("awarded", Integer, nullable=False),
    CheckConstraint("awarded >= 0", name="awarded_not_negative"),
    _fk(["program_id", "campaign_id"], "instant_wins", ["program_id", "id"]),
)

# Every version of a campaign's odds table, so a draw's number can be checked against the table it used.
instant_win_odds = Table(
    "instant_win_odds",
    metadata,
    _pid(),
    Column("campaign_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("odds", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    _fk(["program_id", "campaign_id"], "instant_wins", ["program_id", "id"]),
)

instant_win_draws = Table(
    "instant_win_draws",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("campaign_id", Uuid, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("number", Integer, nullable=False),  # the random number in [0, 1,000,000)
    Column("odds_version", Integer, nullable=False),
    Column("outcome", String(8), nullable=False),  # won | no_win
    Column("prize", String(64)),  # the prize drawn (also when it was not given: see reason)
    Column("reason", String(32)),  # why a drawn prize was not given: prize_exhausted, daily_cap, points_budget
    Column("points", BigInteger, nullable=False),
    Column("coupon", String(64)),
    Column("badge", String(64)),
    Column("transfer_id", Uuid),
    Column("purchase_id", Uuid),
    Column("event_id", Uuid),
    Column("drawn_at", UTCDateTime, nullable=False),
    CheckConstraint("outcome IN ('won', 'no_win')", name="outcome_known"),
    CheckConstraint("number >= 0 AND number < 1000000", name="number_in_range"),
    _fk(["program_id", "campaign_id"], "instant_wins", ["program_id", "id"]),
    Index("ix_instant_win_draws_campaign", "program_id", "campaign_id", "drawn_at"),
    Index("ix_instant_win_draws_member", "program_id", "member_id", "drawn_at"),
)

# Leaderboards show only members who agreed, under a nickname or "Anna M.".
leaderboard_consents = Table(
    "leaderboard_consents",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("consented", Boolean, nullable=False),
    Column("nickname", String(30)),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

# --- notifications (issue 8) ---
notification_settings = Table(
    "notification_settings",
    metadata,
    Column("program_id", Uuid, primary_key=True),
    Column("settings", JSON, nullable=False),  # triggers on/off, channels, purpose; quiet hours; weekly cap
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
)

notification_templates = Table(
    "notification_templates",
    metadata,
    _pid(),
    Column("trigger", String(40), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("locale", String(2), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
)

notification_messages = Table(
    "notification_messages",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("trigger", String(40), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("locale", String(2), nullable=False),
    Column("dedupe_key", String(200), nullable=False),  # trigger + period/lot/threshold: never sent twice
    Column("status", String(16), nullable=False),
    Column("reason", String(40)),  # why suppressed or bounced
    Column("recipient", String(254)),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("data", JSON, nullable=False),  # what the sender needs beside the text (coupon for the QR, tokens)
    Column("not_before", UTCDateTime, nullable=False),  # quiet hours and retries move it
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("read_at", UTCDateTime),
    CheckConstraint("status IN ('queued', 'sent', 'failed', 'bounced', 'suppressed')", name="status_known"),
    CheckConstraint("channel IN ('email', 'inbox', 'push')", name="channel_known"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("uq_notification_messages_key", "program_id", "channel", "dedupe_key", unique=True),
    Index("ix_notification_messages_member", "program_id", "member_id", "channel", "created_at"),
    Index("ix_notification_messages_due", "not_before",
          postgresql_where=text("status = 'queued'"), sqlite_where=text("status = 'queued'")),
)  # fmt: skip

notification_optins = Table(
    "notification_optins",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("address", String(254), nullable=False),  # the confirmation is for this address only
    Column("requested_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

notification_tokens = Table(
    "notification_tokens",
    metadata,
    _pid(),
    Column("id", String(64), primary_key=True),  # SHA-256 of the secret part of the link; the link is not stored
    Column("purpose", String(16), nullable=False),  # confirm | unsubscribe
    Column("member_id", Uuid, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("address", String(254)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("used_at", UTCDateTime),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_notification_tokens_member", "program_id", "member_id", "purpose", "channel"),
)

notification_digests = Table(
    "notification_digests",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),  # the member's local day the points were earned on
    Column("points", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

# --- segments, offers, recommendations, surveys (issue 8) ---
# Segments: dynamic (a CEL condition over member facts, recomputed by `treue jobs run segments` or on demand) or
# static (an imported list). Membership is stored, one row per member and segment (treue.domain.segments).
segments = Table(
    "segments",
    metadata,
    _pid(),
    Column("code", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("name", JSON, nullable=False),
    Column("description", JSON, nullable=False),
    Column("condition", Text),
    Column("members_count", Integer, nullable=False, server_default=text("0")),
    Column("refreshed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('dynamic', 'static')", name="kind_known"),
    CheckConstraint("(kind = 'dynamic') = (condition IS NOT NULL)", name="condition_iff_dynamic"),
    _fk(["program_id"], "programs", ["id"]),
)

segment_members = Table(
    "segment_members",
    metadata,
    _pid(),
    Column("segment_code", String(64), primary_key=True),
    Column("member_id", Uuid, primary_key=True),
    Column("added_at", UTCDateTime, nullable=False),
    _fk(["program_id", "segment_code"], "segments", ["program_id", "code"]),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_segment_members_member", "program_id", "member_id"),
)

# Item-to-item co-occurrence from purchase lines (members who bought both), with a cosine score; a row whose
# other_sku is its sku holds the item's popularity (members who bought it). Replaced by each recompute.
product_pairs = Table(
    "product_pairs",
    metadata,
    _pid(),
    Column("sku", String(200), primary_key=True),
    Column("other_sku", String(200), primary_key=True),
    Column("members", Integer, nullable=False),
    Column("score", BigInteger, nullable=False),  # cosine similarity in millionths
    Column("computed_at", UTCDateTime, nullable=False),
    CheckConstraint("members > 0", name="members_positive"),
    _fk(["program_id"], "programs", ["id"]),
)

# Surveys with an NPS question (0-10) and an optional comment; responses linked to members, one per member and
# period of the survey's `repeat` (a unique key), each also recorded as a `survey.answered` custom event.
surveys = Table(
    "surveys",
    metadata,
    _pid(),
    Column("code", String(64), primary_key=True),
    Column("name", JSON, nullable=False),
    Column("question", JSON, nullable=False),
    Column("comment_question", JSON),
    Column("repeat", String(8), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("repeat IN ('never', 'month', 'quarter', 'year')", name="repeat_known"),
    _fk(["program_id"], "programs", ["id"]),
)

survey_responses = Table(
    "survey_responses",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("survey_code", String(64), nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("period", String(8), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text),
    Column("channel", String(32), nullable=False),
    Column("tier", String(64)),  # the member's tier when answering
    Column("event_id", Uuid, nullable=False),  # the survey.answered event (rules may reward it)
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("score >= 0 AND score <= 10", name="score_range"),
    _fk(["program_id", "survey_code"], "surveys", ["program_id", "code"]),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("uq_survey_responses_member_period", "program_id", "survey_code", "member_id", "period", unique=True),
    Index("ix_survey_responses_time", "program_id", "survey_code", "occurred_at"),
)


# --- privacy and security (issue 10) ---
# An erased member keeps its row as a pseudonym (personal columns emptied, status "erased"): the ledger, purchases
# and aggregates still point at it. erased_at marks it (migration 0020).
members.append_column(Column("erased_at", UTCDateTime))

# Retention per programme: members inactive for longer than retention_months are erased by the `retention` job.
privacy_settings = Table(
    "privacy_settings",
    metadata,
    Column("program_id", Uuid, primary_key=True),
    Column("retention_months", Integer),  # NULL: off (the default)
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    CheckConstraint("retention_months IS NULL OR retention_months > 0", name="retention_positive"),
    _fk(["program_id"], "programs", ["id"]),
)

# One row per erased member: when, by whom, why and what was written off. No personal data (it is gone).
member_erasures = Table(
    "member_erasures",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # staff (admin UI, API, CLI) | member (portal) | retention
    Column("reason", Text, nullable=False),
    Column("points_forfeited", BigInteger, nullable=False),
    Column("transfer_id", Uuid),  # the write-off of the remaining points (none when nothing was left)
    Column("wallet_forfeited", JSON, nullable=False),  # {currency: minor units written off}
    Column("cleared", JSON, nullable=False),  # rows changed per table (what the erasure did)
    CheckConstraint("source IN ('staff', 'member', 'retention')", name="source_known"),
    CheckConstraint("points_forfeited >= 0", name="points_not_negative"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
)

# Present only inside an erasure's transaction (inserted first, deleted before commit): while it is, the
# append-only triggers of audit_log, events and shop_deliveries let that programme's rows be UPDATEd (never
# DELETEd), so the personal data in them can be blanked. No other transaction ever sees a row here.
privacy_redactions = Table(
    "privacy_redactions",
    metadata,
    _pid(),
    Column("member_id", Uuid, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
)


# --- fraud controls (issue 10) ---
# Settings per programme (caps and alert thresholds as JSON); velocity counters, one row per action, subject
# (kind:value, card/device/IP as salted digests) and fixed window, added to by one upsert per request; earns held
# over a cap until staff decide; anomaly alerts, once per kind, subject and period; one scan per programme and hour.

fraud_settings = Table(
    "fraud_settings",
    metadata,
    Column("program_id", Uuid, primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _fk(["program_id"], "programs", ["id"]),
)

fraud_counters = Table(
    "fraud_counters",
    metadata,
    _pid(),
    Column("action", String(8), primary_key=True),
    Column("subject", String(80), primary_key=True),
    Column("span", String(8), primary_key=True),  # hour | day
    Column("window_start", UTCDateTime, primary_key=True),
    Column("hits", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Index("ix_fraud_counters_start", "program_id", "window_start"),  # the scan prunes old windows
)

fraud_holds = Table(
    "fraud_holds",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("transfer_id", Uuid, nullable=False),  # the held earn
    Column("purchase_id", Uuid),
    Column("points", BigInteger, nullable=False),
    Column("reasons", JSON, nullable=False),  # the caps broken, with the totals that broke them
    Column("held", JSON, nullable=False),  # the lots as the rules meant them, campaign budgets and usage spent
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(200)),
    Column("note", Text),
    Column("reverse_transfer_id", Uuid),
    CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
    _fk(["program_id", "member_id"], "members", ["program_id", "id"]),
    Index("ix_fraud_holds_status", "program_id", "status", "created_at"),
    Index("ix_fraud_holds_member", "program_id", "member_id", "created_at"),
)

fraud_alerts = Table(
    "fraud_alerts",
    metadata,
    _pid(),
    Column("id", Uuid, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(80), nullable=False),
    Column("period", String(10), nullable=False),  # the programme's local day the alert was raised on
    Column("member_id", Uuid),
    Column("details", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(200)),
    Column("note", Text),
    CheckConstraint("status IN ('open', 'acknowledged')", name="status_known"),
    Index("uq_fraud_alerts_once", "program_id", "kind", "subject", "period", unique=True),
    Index("ix_fraud_alerts_status", "program_id", "status", "raised_at"),
)

fraud_scans = Table(
    "fraud_scans",
    metadata,
    _pid(),
    Column("period", String(16), primary_key=True),  # the UTC hour scanned, e.g. 2026-03-02T10
    Column("scanned_at", UTCDateTime, nullable=False),
    Column("alerts", Integer, nullable=False),
)
