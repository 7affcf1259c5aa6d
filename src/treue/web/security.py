"""Cookies, CSRF and permission checks of the web UI.

- Sessions are server-side (services/staff.py, services/portal.py); the cookie holds a random token and is
  HttpOnly, SameSite=Lax, and Secure when the request came over https.
- Every POST carries a CSRF token, as a form field `csrf_token` or, from HTMX, the header `X-CSRF-Token`.
  Signed in, it is the session's token; on the sign-in forms (no session yet) it is a double-submit token
  that must equal the `treue_form` cookie.
- A page names the permission it needs (domain/staff.py); without a session the browser is sent to sign in,
  with a role that lacks it the answer is a 403 page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request, Response

from treue.domain.staff import Permission, can
from treue.services.portal import MemberSession, member_session_of
from treue.services.staff import StaffSession, csrf_matches, session_of

STAFF_COOKIE = "treue_staff"
MEMBER_COOKIE = "treue_member"
FORM_COOKIE = "treue_form"
LANG_COOKIE = "treue_lang"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    def __init__(self, area: str, next_path: str) -> None:
        super().__init__(area)
        self.area = area
        self.next_path = next_path


class Forbidden(Exception):
    """A signed-in staff user's role lacks a permission."""


class CsrfRefused(Exception):
    """A POST without the right CSRF token."""


def now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def uow(request: Request, read_only: bool = False) -> Any:
    return request.app.state.uow(read_only=read_only)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")  # fmt: skip


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")


def staff(request: Request) -> StaffSession | None:
    if not hasattr(request.state, "staff"):
        request.state.staff = session_of(uow(request), request.cookies.get(STAFF_COOKIE), now(request))
    found: StaffSession | None = request.state.staff
    return found


def member(request: Request) -> MemberSession | None:
    if not hasattr(request.state, "member"):
        request.state.member = member_session_of(uow(request), request.cookies.get(MEMBER_COOKIE), now(request))
    found: MemberSession | None = request.state.member
    return found


def require(permission: Permission) -> Callable[[Request], StaffSession]:
    """A dependency: the signed-in staff user, who must hold `permission`."""

    def dependency(request: Request) -> StaffSession:
        session = staff(request)
        if session is None:
            raise SignInRequired("admin", request.url.path)
        if not can(session.role, permission):
            raise Forbidden(permission.value)
        return session

    return dependency


def signed_in_member(request: Request) -> MemberSession:
    session = member(request)
    if session is None:
        raise SignInRequired("portal", request.url.path)
    return session


def check_csrf(request: Request, expected: str | None, given: str | None) -> None:
    token = given or request.headers.get(CSRF_HEADER)
    if not expected or not csrf_matches(expected, token):
        raise CsrfRefused()


def form_token(request: Request) -> str:
    """The double-submit token of a sign-in form: the cookie's, or a new one (set by `keep_form_token`)."""
    existing = request.cookies.get(FORM_COOKIE)
    if existing and len(existing) >= 32:
        return existing
    if not hasattr(request.state, "form_token"):
        request.state.form_token = secrets.token_urlsafe(32)
    token: str = request.state.form_token
    return token


def keep_form_token(response: Response, request: Request) -> None:
    if request.cookies.get(FORM_COOKIE) != form_token(request):
        set_cookie(response, request, FORM_COOKIE, form_token(request), max_age=3600)


def check_form_token(request: Request, given: str | None) -> None:
    check_csrf(request, request.cookies.get(FORM_COOKIE), given)
