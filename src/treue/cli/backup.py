"""`treue backup`: back up and restore the database (issue 10)."""

from __future__ import annotations

import typer

backup = typer.Typer(help="Back up and restore the database.", no_args_is_help=True)
