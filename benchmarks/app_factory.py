"""The ASGI app for `benchmarks/serve.py` (or `uvicorn app_factory:app --app-dir benchmarks --workers N`).

Each uvicorn worker process imports this module and builds its own app (and engine, and connection pool)
from TREUE_DATABASE_URL and TREUE_DB_POOL_SIZE, as `treue serve` does, without the background scheduler.
"""

from __future__ import annotations

import os

from treue.api.app import create_app

# One API key drives the whole load: its rate limit is set out of reach (the limiter still runs on every request).
os.environ.setdefault("TREUE_RATE_LIMIT_KEY", str(10**9))
app = create_app()
