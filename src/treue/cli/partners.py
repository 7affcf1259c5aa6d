"""`treue partners`: Coalition partners, their terms and settlement."""

from __future__ import annotations

import typer

partners = typer.Typer(help="Coalition partners, their terms and settlement.", no_args_is_help=True)
