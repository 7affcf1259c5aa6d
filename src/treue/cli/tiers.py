"""`treue tiers`: Tier ladders, member tiers and progress."""

from __future__ import annotations

import typer

tiers = typer.Typer(help="Tier ladders, member tiers and progress.", no_args_is_help=True)
