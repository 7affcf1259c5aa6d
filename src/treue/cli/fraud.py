"""`treue fraud`: velocity caps, anomaly alerts, held transactions (issue 10)."""

from __future__ import annotations

import typer

fraud = typer.Typer(help="Fraud controls: velocity caps, alerts, held transactions.", no_args_is_help=True)
