"""`treue club`: Paid premium club: plans, subscriptions, payments."""

from __future__ import annotations

import typer

club = typer.Typer(help="Paid premium club: plans, subscriptions, payments.", no_args_is_help=True)
