"""`treue backup`: back up the database (TREUE_DATABASE_URL) to one file and restore it into an empty database."""

from __future__ import annotations

from pathlib import Path

import typer

from treue.cli.common import emit, friendly
from treue.services.backup import create_backup, restore_backup

backup = typer.Typer(help="Back up and restore the database.", no_args_is_help=True)


@backup.command("create")
@friendly
def create(to: Path = typer.Option(..., "--to", help="the backup file to write (must not exist)")) -> None:
    """Back up the whole database while it serves: SQLite's online backup API, or pg_dump's custom format."""
    emit(create_backup(to))


@backup.command("restore")
@friendly
def restore(source: Path = typer.Option(..., "--from", help="a file written by `treue backup create`")) -> None:
    """Restore a backup into the database, which must be empty (a new SQLite file or a new PostgreSQL database);
    then run `treue verify`."""
    emit(restore_backup(source))
