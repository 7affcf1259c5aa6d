"""GDPR erasure and retention (issue 10).

Members get `erased_at`; retention settings per programme; one row per erased member. The append-only triggers of
audit_log, events and shop_deliveries are replaced by ones that still refuse every DELETE, and refuse an UPDATE
unless the updating transaction holds a row of `privacy_redactions` for the row's programme: only an erasure
(services/privacy.py) inserts one, and deletes it again before it commits, so it can blank the personal data in
those facts and nothing else can change them.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

REDACTABLE = ("audit_log", "events", "shop_deliveries")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(_ts("erased_at", nullable=True))
    op.create_table(
        "privacy_settings",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("retention_months", sa.Integer(), nullable=True),
        _ts("updated_at"),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("retention_months IS NULL OR retention_months > 0",
                           name=op.f("ck_privacy_settings_retention_positive")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_privacy_settings_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_privacy_settings")),
    )  # fmt: skip
    op.create_table(
        "member_erasures",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        _ts("erased_at"),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("points_forfeited", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("wallet_forfeited", sa.JSON(), nullable=False),
        sa.Column("cleared", sa.JSON(), nullable=False),
        sa.CheckConstraint("source IN ('staff', 'member', 'retention')", name=op.f("ck_member_erasures_source_known")),
        sa.CheckConstraint("points_forfeited >= 0", name=op.f("ck_member_erasures_points_not_negative")),
        sa.ForeignKeyConstraint(["program_id", "member_id"], ["members.program_id", "members.id"],
                                name=op.f("fk_member_erasures_program_id_member_id_members")),
        sa.PrimaryKeyConstraint("program_id", "member_id", name=op.f("pk_member_erasures")),
    )  # fmt: skip
    op.create_table(
        "privacy_redactions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        _ts("started_at"),
        sa.PrimaryKeyConstraint("program_id", "member_id", name=op.f("pk_privacy_redactions")),
    )
    _redactable_triggers()


def downgrade() -> None:
    _strict_triggers()
    op.drop_table("privacy_redactions")
    op.drop_table("member_erasures")
    op.drop_table("privacy_settings")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("erased_at")


def _redactable_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION treue_append_only_redactable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND EXISTS (
                  SELECT 1 FROM privacy_redactions WHERE program_id = OLD.program_id) THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION 'treue: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation';
            END $$;
            """
        )
        for table in REDACTABLE:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION treue_append_only_redactable()"
            )
        return
    for table in REDACTABLE:
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            "WHEN NOT EXISTS (SELECT 1 FROM privacy_redactions WHERE program_id = OLD.program_id) "
            f"BEGIN SELECT RAISE(ABORT, 'treue: {table} is append-only'); END"
        )


def _strict_triggers() -> None:
    """The triggers as 0002, 0003 and 0012 made them (store/migrations/append_only.py)."""
    if op.get_bind().dialect.name == "postgresql":
        for table in REDACTABLE:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION treue_append_only()"
            )
        op.execute("DROP FUNCTION treue_append_only_redactable()")
        return
    for table in REDACTABLE:
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'treue: {table} is append-only'); END"
        )
