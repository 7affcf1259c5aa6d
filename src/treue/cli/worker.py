"""`treue worker`: Outbound delivery: webhooks and event streams."""

from __future__ import annotations

import typer

worker = typer.Typer(help="Outbound delivery: webhooks and event streams.", no_args_is_help=True)
