"""The FastAPI application: REST API under /api/v1, OpenAPI at /docs and /openapi.json, /healthz."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text

from treue import __version__
from treue.api import errors
from treue.api.limits import BodyLimit, Limits
from treue.api.observe import Observe
from treue.api.routes import (
    analytics,
    cards,
    checkout,
    club,
    exports,
    fraud,
    gamification,
    members,
    notifications,
    partners,
    privacy,
    programs,
    purchases,
    referrals,
    rewards,
    rules,
    segments,
    shops,
    simulation,
    tiers,
    tills,
    webhooks,
)
from treue.metrics import REGISTRY, OutboxCollector
from treue.store.database import make_engine
from treue.store.unit_of_work import SqlUnitOfWorkFactory


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(engine: Engine | None = None, clock: Callable[[], datetime] = system_clock,
               limits: Limits | None = None) -> FastAPI:  # fmt: skip
    """The application. `limits` (rates per key and member, body sizes) default to the environment's."""
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
    app.state.limits = limits or Limits.from_environment()
    errors.install(app)
    app.add_middleware(BodyLimit, limits=lambda: app.state.limits)
    app.add_middleware(Observe)  # outermost: counts and times every answer, refusals included
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
        notifications,  # issue 8
        segments,  # issue 8
        privacy,  # issue 10
        fraud,  # issue 10
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

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready"}})
    def readyz() -> JSONResponse:
        """Ready to serve: the database answers and its schema is at this version's migration head."""
        from treue.store.migrate import pending_migrations

        try:
            pending = pending_migrations(engine)
        except Exception as error:  # any failure to reach the database means "not ready"
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, status_code=503)
        if pending:
            return JSONResponse({"status": "migrations_pending", "pending": pending}, status_code=503)
        return JSONResponse({"status": "ready", "version": __version__})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics of this process, and the outbox backlog read from the database."""
        scraped = CollectorRegistry()
        scraped.register(OutboxCollector(engine))
        body = generate_latest(REGISTRY) + generate_latest(scraped)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
