"""The FastAPI application: REST API under /api/v1, OpenAPI at /docs and /openapi.json, /healthz."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, text

from treue import __version__
from treue.api import errors
from treue.api.routes import (
    analytics,
    cards,
    checkout,
    club,
    exports,
    gamification,
    members,
    partners,
    programs,
    purchases,
    referrals,
    rewards,
    rules,
    shops,
    simulation,
    tiers,
    tills,
    webhooks,
)
from treue.store.database import make_engine
from treue.store.unit_of_work import SqlUnitOfWorkFactory


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(engine: Engine | None = None, clock: Callable[[], datetime] = system_clock) -> FastAPI:
    engine = engine or make_engine()
    app = FastAPI(
        title="Treue",
        version=__version__,
        description=(
            "Open-source customer-loyalty engine. Authenticate with `Authorization: Bearer <API key>`. "
            "Every POST accepts an `Idempotency-Key` header. Errors are RFC 9457 problem+json with a stable `code`. "
            "Money is a decimal string in major units with its currency; points are integers."
        ),
    )
    app.state.engine = engine
    app.state.uow = SqlUnitOfWorkFactory(engine)
    app.state.clock = clock
    errors.install(app)
    for module in (
        programs,
        members,
        purchases,
        rewards,
        rules,
        tiers,
        checkout,
        club,
        simulation,
        analytics,
        partners,
        webhooks,
        shops,
        tills,  # issue 5
        exports,  # issue 5
        cards,  # issue 11
        referrals,  # issue 7
        gamification,  # issue 7
    ):
        app.include_router(module.router, prefix="/api/v1")
    from treue.web import mount  # the admin dashboard (/admin) and member portal (/portal), HTML

    mount(app)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        """Liveness and database reachability."""
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": engine.dialect.name}

    return app
