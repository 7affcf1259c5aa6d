"""gamification: missions, streaks, badges, instant wins, leaderboards (issue 7)

Missions and streaks keep their definitions as documents (parsed by treue.domain.gamification) and their
progress as append-only contributions (one row per counted event, a negative row when a refund takes one
back), so progress is recomputed from facts. Completions are unique per member and window while not reversed.
Instant-win prize counters are rows of their own with CHECKs that no budget is exceeded; every draw is recorded
(append-only) with its random number and the version of the odds table.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types
from treue.store.migrations.append_only import protect, unprotect

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

APPEND_ONLY = ("mission_progress", "streak_hits", "instant_win_draws")


def upgrade() -> None:
    op.create_table(
        "badges",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("rare_below_percent", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_badges_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_badges")),
    )
    with op.batch_alter_table("badges", schema=None) as batch_op:
        batch_op.create_index("uq_badges_code", ["program_id", "code"], unique=True)

    op.create_table(
        "instant_wins",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("odds_version", sa.Integer(), nullable=False),
        sa.Column("points_budget", sa.BigInteger(), nullable=True),
        sa.Column("points_awarded", sa.BigInteger(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "points_awarded >= 0 AND (points_budget IS NULL OR points_awarded <= points_budget)",
            name=op.f("ck_instant_wins_points_within_budget"),
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_instant_wins_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_instant_wins")),
    )
    with op.batch_alter_table("instant_wins", schema=None) as batch_op:
        batch_op.create_index("uq_instant_wins_code", ["program_id", "code"], unique=True)

    op.create_table(
        "missions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_missions_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_missions")),
    )
    with op.batch_alter_table("missions", schema=None) as batch_op:
        batch_op.create_index("uq_missions_code", ["program_id", "code"], unique=True)

    op.create_table(
        "streaks",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_streaks_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_streaks")),
    )
    with op.batch_alter_table("streaks", schema=None) as batch_op:
        batch_op.create_index("uq_streaks_code", ["program_id", "code"], unique=True)

    op.create_table(
        "gamification_completions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("completion_key", sa.String(length=48), nullable=False),
        sa.Column("window_key", sa.String(length=32), nullable=False),
        sa.Column("window_start", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("window_end", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("coupon", sa.String(length=64), nullable=True),
        sa.Column("badge", sa.String(length=64), nullable=True),
        sa.Column("reversed_at", treue.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reversal_transfer_id", sa.Uuid(), nullable=True),
        sa.Column("points_taken_back", sa.BigInteger(), nullable=True),
        sa.Column("points_forgiven", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("kind IN ('mission', 'streak')", name=op.f("ck_gamification_completions_kind_known")),
        sa.CheckConstraint("points >= 0", name=op.f("ck_gamification_completions_points_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_gamification_completions_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_gamification_completions")),
    )
    with op.batch_alter_table("gamification_completions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gamification_completions_member", ["program_id", "member_id", "completed_at"], unique=False
        )
        batch_op.create_index(
            "uq_gamification_completions_key",
            ["program_id", "kind", "subject_id", "member_id", "completion_key"],
            unique=True,
            postgresql_where=sa.text("reversed_at IS NULL"),
            sqlite_where=sa.text("reversed_at IS NULL"),
        )

    op.create_table(
        "instant_win_draws",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("odds_version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("prize", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupon", sa.String(length=64), nullable=True),
        sa.Column("badge", sa.String(length=64), nullable=True),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("drawn_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('won', 'no_win')", name=op.f("ck_instant_win_draws_outcome_known")),
        sa.CheckConstraint("number >= 0 AND number < 1000000", name=op.f("ck_instant_win_draws_number_in_range")),
        sa.ForeignKeyConstraint(
            ["program_id", "campaign_id"],
            ["instant_wins.program_id", "instant_wins.id"],
            name=op.f("fk_instant_win_draws_program_id_campaign_id_instant_wins"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_instant_win_draws")),
    )
    with op.batch_alter_table("instant_win_draws", schema=None) as batch_op:
        batch_op.create_index("ix_instant_win_draws_campaign", ["program_id", "campaign_id", "drawn_at"], unique=False)
        batch_op.create_index("ix_instant_win_draws_member", ["program_id", "member_id", "drawn_at"], unique=False)

    op.create_table(
        "instant_win_odds",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("odds", sa.JSON(), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id", "campaign_id"],
            ["instant_wins.program_id", "instant_wins.id"],
            name=op.f("fk_instant_win_odds_program_id_campaign_id_instant_wins"),
        ),
        sa.PrimaryKeyConstraint("program_id", "campaign_id", "version", name=op.f("pk_instant_win_odds")),
    )
    op.create_table(
        "instant_win_prize_days",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("awarded", sa.Integer(), nullable=False),
        sa.CheckConstraint("awarded >= 0", name=op.f("ck_instant_win_prize_days_awarded_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id", "campaign_id"],
            ["instant_wins.program_id", "instant_wins.id"],
            name=op.f("fk_instant_win_prize_days_program_id_campaign_id_instant_wins"),
        ),
        sa.PrimaryKeyConstraint("program_id", "campaign_id", "code", "day", name=op.f("pk_instant_win_prize_days")),
    )
    op.create_table(
        "instant_win_prizes",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("awarded", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "awarded >= 0 AND (total IS NULL OR awarded <= total)",
            name=op.f("ck_instant_win_prizes_awarded_within_total"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "campaign_id"],
            ["instant_wins.program_id", "instant_wins.id"],
            name=op.f("fk_instant_win_prizes_program_id_campaign_id_instant_wins"),
        ),
        sa.PrimaryKeyConstraint("program_id", "campaign_id", "code", name=op.f("pk_instant_win_prizes")),
    )
    op.create_table(
        "leaderboard_consents",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("consented", sa.Boolean(), nullable=False),
        sa.Column("nickname", sa.String(length=30), nullable=True),
        sa.Column("updated_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_leaderboard_consents_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "member_id", name=op.f("pk_leaderboard_consents")),
    )
    op.create_table(
        "member_badges",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("badge_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("awarded_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id", "badge_id"],
            ["badges.program_id", "badges.id"],
            name=op.f("fk_member_badges_program_id_badge_id_badges"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_member_badges_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "badge_id", "member_id", name=op.f("pk_member_badges")),
    )
    with op.batch_alter_table("member_badges", schema=None) as batch_op:
        batch_op.create_index("ix_member_badges_member", ["program_id", "member_id", "awarded_at"], unique=False)

    op.create_table(
        "mission_optins",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("mission_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("opted_in_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_mission_optins_program_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "mission_id"],
            ["missions.program_id", "missions.id"],
            name=op.f("fk_mission_optins_program_id_mission_id_missions"),
        ),
        sa.PrimaryKeyConstraint("program_id", "mission_id", "member_id", name=op.f("pk_mission_optins")),
    )
    op.create_table(
        "mission_progress",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("mission_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("window_key", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('event', 'rule', 'refund')", name=op.f("ck_mission_progress_source_known")),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_mission_progress_amount_not_zero")),
        sa.ForeignKeyConstraint(
            ["program_id", "mission_id"],
            ["missions.program_id", "missions.id"],
            name=op.f("fk_mission_progress_program_id_mission_id_missions"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_mission_progress")),
    )
    with op.batch_alter_table("mission_progress", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mission_progress_member", ["program_id", "mission_id", "member_id", "window_key"], unique=False
        )
        batch_op.create_index("ix_mission_progress_purchase", ["program_id", "purchase_id"], unique=False)

    op.create_table(
        "streak_hits",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("streak_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", treue.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount IN (1, -1)", name=op.f("ck_streak_hits_amount_unit")),
        sa.ForeignKeyConstraint(
            ["program_id", "streak_id"],
            ["streaks.program_id", "streaks.id"],
            name=op.f("fk_streak_hits_program_id_streak_id_streaks"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_streak_hits")),
    )
    with op.batch_alter_table("streak_hits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_streak_hits_member", ["program_id", "streak_id", "member_id", "period_index"], unique=False
        )
        batch_op.create_index("ix_streak_hits_purchase", ["program_id", "purchase_id"], unique=False)

    # ### end Alembic commands ###

    protect(APPEND_ONLY)  # treue_append_only() comes from 0002


def downgrade() -> None:
    unprotect(APPEND_ONLY)
    with op.batch_alter_table("streak_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_streak_hits_purchase")
        batch_op.drop_index("ix_streak_hits_member")

    op.drop_table("streak_hits")
    with op.batch_alter_table("mission_progress", schema=None) as batch_op:
        batch_op.drop_index("ix_mission_progress_purchase")
        batch_op.drop_index("ix_mission_progress_member")

    op.drop_table("mission_progress")
    op.drop_table("mission_optins")
    with op.batch_alter_table("member_badges", schema=None) as batch_op:
        batch_op.drop_index("ix_member_badges_member")

    op.drop_table("member_badges")
    op.drop_table("leaderboard_consents")
    op.drop_table("instant_win_prizes")
    op.drop_table("instant_win_prize_days")
    op.drop_table("instant_win_odds")
    with op.batch_alter_table("instant_win_draws", schema=None) as batch_op:
        batch_op.drop_index("ix_instant_win_draws_member")
        batch_op.drop_index("ix_instant_win_draws_campaign")

    op.drop_table("instant_win_draws")
    with op.batch_alter_table("gamification_completions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_gamification_completions_key",
            postgresql_where=sa.text("reversed_at IS NULL"),
            sqlite_where=sa.text("reversed_at IS NULL"),
        )
        batch_op.drop_index("ix_gamification_completions_member")

    op.drop_table("gamification_completions")
    with op.batch_alter_table("streaks", schema=None) as batch_op:
        batch_op.drop_index("uq_streaks_code")

    op.drop_table("streaks")
    with op.batch_alter_table("missions", schema=None) as batch_op:
        batch_op.drop_index("uq_missions_code")

    op.drop_table("missions")
    with op.batch_alter_table("instant_wins", schema=None) as batch_op:
        batch_op.drop_index("uq_instant_wins_code")

    op.drop_table("instant_wins")
    with op.batch_alter_table("badges", schema=None) as batch_op:
        batch_op.drop_index("uq_badges_code")

    op.drop_table("badges")
    # ### end Alembic commands ###
