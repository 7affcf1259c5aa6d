"""`treue cards`: Linked payment cards, card-transaction feeds, card-linked offers (issue 11)."""

from __future__ import annotations

import typer

cards = typer.Typer(
    help="Linked payment cards, card-transaction feeds, card-linked offers (issue 11).", no_args_is_help=True
)
