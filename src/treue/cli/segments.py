"""`treue segments`: Segments, targeted offers, recommendations, surveys (issue 8)."""

from __future__ import annotations

import typer

segments = typer.Typer(help="Segments, targeted offers, recommendations, surveys (issue 8).", no_args_is_help=True)
