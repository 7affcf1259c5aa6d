"""Ledger invariants enforced by the database itself

Append-only ledger tables (no UPDATE, no DELETE) on every backend; on PostgreSQL also a deferred
constraint trigger that refuses to commit a transfer whose postings do not sum to zero per unit.
So no code path that bypasses the services can break them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = ("transfers", "postings", "allocations", "audit_log")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION treue_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'treue: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation';
            END $$;
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION treue_append_only()"
            )
        op.execute(
            """
            CREATE FUNCTION treue_transfer_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE bad record;
            BEGIN
              SELECT unit, sum(amount) AS total INTO bad FROM postings
               WHERE program_id = NEW.program_id AND transfer_id = NEW.transfer_id
               GROUP BY unit HAVING sum(amount) <> 0 LIMIT 1;
              IF FOUND THEN
                RAISE EXCEPTION 'treue: postings of transfer % sum to % %, not zero',
                  NEW.transfer_id, bad.total, bad.unit USING ERRCODE = 'check_violation';
              END IF;
              RETURN NULL;
            END $$;
            """
        )
        op.execute(
            "CREATE CONSTRAINT TRIGGER postings_sum_to_zero AFTER INSERT ON postings "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION treue_transfer_balanced()"
        )
    else:
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'treue: {table} is append-only'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER postings_sum_to_zero ON postings")
        op.execute("DROP FUNCTION treue_transfer_balanced()")
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION treue_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{action}")
