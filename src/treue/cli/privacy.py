"""`treue privacy`: GDPR export and erasure, retention (issue 10)."""

from __future__ import annotations

import typer

privacy = typer.Typer(help="GDPR export and erasure, retention (issue 10).", no_args_is_help=True)
