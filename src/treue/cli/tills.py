"""`treue tills`: Offline till batches and card images (issue 5)."""

from __future__ import annotations

import typer

tills = typer.Typer(help="Offline till batches and card images (issue 5).", no_args_is_help=True)
