"""The web UI: the admin dashboard (/admin) and the member portal (/portal), server-rendered with Jinja2 and
HTMX (vendored under static/, served from here: no build step, no internet needed).

`mount(app)` adds both to the FastAPI application, with the static files and the handlers that turn a
missing sign-in into a redirect and a missing permission or CSRF token into a 403 page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from treue.services.mail import mailer_from_env
from treue.web import (
    admin,
    fraud,
    member_engagement,
    operations,
    overview,
    portal,
    portal_engage,
    portal_privacy,
    setup,
    setup_engage,
    setup_programme,
    simulator,
)
from treue.web.i18n import choose_language
from treue.web.render import render
from treue.web.security import LANG_COOKIE, CsrfRefused, Forbidden, SignInRequired

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    if not hasattr(app.state, "mailer"):
        app.state.mailer = mailer_from_env()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(overview.router)
    app.include_router(admin.router)
    app.include_router(member_engagement.router)
    app.include_router(setup.router)
    app.include_router(setup_programme.router)  # issue 9
    app.include_router(setup_engage.router)  # issue 9
    app.include_router(simulator.router)  # issue 9
    app.include_router(operations.router)  # issue 9/10
    app.include_router(fraud.router)  # issue 10
    # The portal's own pages before portal.router, whose /portal/{program_id}/... paths would match them too.
    app.include_router(portal_engage.router)  # issue 9
    app.include_router(portal_privacy.router)  # issue 10
    app.include_router(portal.router)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/admin", status_code=303)

    def _language(request: Request) -> str:
        return choose_language(request.cookies.get(LANG_COOKIE), None, request.headers.get("accept-language"))

    @app.exception_handler(SignInRequired)
    def sign_in_required(request: Request, error: SignInRequired) -> Response:
        target = f"/admin/sign-in?next={error.next_path}" if error.area == "admin" else "/portal"
        if request.headers.get("hx-request") == "true":  # HTMX follows this header, not a 303
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, error: Forbidden) -> Response:
        return render(request, "forbidden.html", _language(request), 403, reason="role")

    @app.exception_handler(CsrfRefused)
    def csrf_refused(request: Request, error: CsrfRefused) -> Response:
        return render(request, "forbidden.html", _language(request), 403, reason="csrf")
