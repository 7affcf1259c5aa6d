"""`treue checkout`: Checkout holds (reserve, capture, release) and cashback wallets."""

from __future__ import annotations

import typer

checkout = typer.Typer(help="Checkout holds (reserve, capture, release) and cashback wallets.", no_args_is_help=True)
