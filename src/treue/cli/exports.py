"""`treue exports`: Bulk export (issue 5)."""

from __future__ import annotations

import typer

exports = typer.Typer(help="Bulk export (issue 5).", no_args_is_help=True)
