"""`treue analytics`: KPIs, predictive CLV and churn, finance reports (issue 6)."""

from __future__ import annotations

import typer

analytics = typer.Typer(help="Analytics: KPIs, predictive CLV and churn, finance reports.", no_args_is_help=True)
