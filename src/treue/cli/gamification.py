"""`treue gamification`: Missions, streaks, badges, instant wins (issue 7)."""

from __future__ import annotations

import typer

gamification = typer.Typer(help="Missions, streaks, badges, instant wins (issue 7).", no_args_is_help=True)
