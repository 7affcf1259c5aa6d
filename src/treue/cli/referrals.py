"""`treue referrals`: Referrals and moderation (issue 7)."""

from __future__ import annotations

import typer

referrals = typer.Typer(help="Referrals and moderation (issue 7).", no_args_is_help=True)
