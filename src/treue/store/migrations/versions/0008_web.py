"""web UI: staff users and their sessions, member sign-in codes and portal sessions

Staff sign in to /admin with email and password (argon2 hash, failure counters for the lockout on the row);
members sign in to /portal with a one-time code sent by email (stored hashed). Sessions are server-side rows
keyed by the SHA-256 of the cookie's token.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treue.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, treue.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=2), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("failure_window_start", nullable=True),
        _ts("locked_until", nullable=True),
        _ts("created_at"),
        _ts("disabled_at", nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'manager', 'support', 'analyst', 'partner')", name=op.f("ck_staff_users_role_known")
        ),
        sa.CheckConstraint(
            "(role = 'partner') = (partner IS NOT NULL)", name=op.f("ck_staff_users_partner_iff_partner_role")
        ),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_staff_users_failures_not_negative")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_staff_users_program_id_programs")),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_staff_users")),
    )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.create_index("uq_staff_users_email", ["program_id", "email"], unique=True)
        batch_op.create_index("ix_staff_users_sign_in", ["email"], unique=False)

    op.create_table(
        "staff_sessions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.ForeignKeyConstraint(
            ["program_id", "staff_id"],
            ["staff_users.program_id", "staff_users.id"],
            name=op.f("fk_staff_sessions_program_id_staff_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("program_id", "token_hash", name=op.f("pk_staff_sessions")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_staff_sessions_staff", ["program_id", "staff_id"], unique=False)

    op.create_table(
        "member_sign_in_codes",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_member_sign_in_codes_attempts_not_negative")),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_member_sign_in_codes_expires_after_created")),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_member_sign_in_codes_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "id", name=op.f("pk_member_sign_in_codes")),
    )
    with op.batch_alter_table("member_sign_in_codes", schema=None) as batch_op:
        batch_op.create_index("ix_member_sign_in_codes_member", ["program_id", "member_id", "created_at"], unique=False)

    op.create_table(
        "member_sessions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.id"],
            name=op.f("fk_member_sessions_program_id_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("program_id", "token_hash", name=op.f("pk_member_sessions")),
    )
    with op.batch_alter_table("member_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_member_sessions_member", ["program_id", "member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_member_sessions_member")
    op.drop_table("member_sessions")
    with op.batch_alter_table("member_sign_in_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_member_sign_in_codes_member")
    op.drop_table("member_sign_in_codes")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_sessions_staff")
    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_users_sign_in")
        batch_op.drop_index("uq_staff_users_email")
    op.drop_table("staff_users")
