"""`treue notifications`: Notifications, templates, consents and the inbox (issue 8)."""

from __future__ import annotations

import typer

notifications = typer.Typer(help="Notifications, templates, consents and the inbox (issue 8).", no_args_is_help=True)
