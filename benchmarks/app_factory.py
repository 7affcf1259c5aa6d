"""The ASGI app for `benchmarks/serve.py` (or `uvicorn app_factory:app --app-dir benchmarks --workers N`).

Each uvicorn worker process imports this module and builds its own app (and engine, and connection pool)
from TREUE_DATABASE_URL and TREUE_DB_POOL_SIZE, as `treue serve` does, without the background scheduler.
"""

from __future__ import annotations

from treue.api.app import create_app

app = create_app()
