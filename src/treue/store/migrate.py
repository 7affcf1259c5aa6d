"""Bring a database to the newest schema (Alembic), from code: `treue migrate`, tests, the demo."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    # Alembic's own transaction per migration; SQLite's BEGIN IMMEDIATE hook applies too.
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def pending_migrations(engine: Engine) -> list[str]:
    """The migrations not yet applied to the database (empty: the schema is at this version's head)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    if set(current) == set(script.get_heads()):
        return []
    lower = current[0] if len(current) == 1 else "base"
    return [rev.revision for rev in script.iterate_revisions("heads", lower)][::-1]
