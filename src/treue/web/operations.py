"""Operations in the admin (issue 9/10): API keys (create, rotate, revoke; a secret is shown once), webhooks with
their delivery log and redelivery, a purchase import that runs in the background with progress, and the audit log.

Keys, webhooks and imports need `operations.manage`; the audit log needs `audit.view`. Every change goes through
the services, which audit it with the actor `staff:<email>`.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from treue.domain.errors import DomainError, InvalidInput, NotFound
from treue.domain.staff import Permission, can
from treue.domain.webhooks import STATUSES
from treue.services import keys as key_cases
from treue.services import webhooks as webhook_cases
from treue.services.imports import REQUIRED
from treue.services.operations import audit_page
from treue.services.staff import StaffSession
from treue.web import operations_imports as imports
from treue.web import security
from treue.web.admin import is_htmx, language, page, problem_text
from treue.web.i18n import translate
from treue.web.security import SignInRequired, require
from treue.web.setup import actor as staff_actor
from treue.web.setup import form_of, place

router = APIRouter(prefix="/admin", include_in_schema=False)
MANAGE = Permission.MANAGE_OPERATIONS
AUDIT = Permission.VIEW_AUDIT
KEY_SCOPES = ("admin", "pos", "shop", "read_only", "partner")  # an operator key is not the programme's to make
GRACE_HOURS = (0, 1, 24, 72, 168)
DELIVERIES_SHOWN = 100


def _operations_staff(request: Request) -> StaffSession:
    """Either permission opens the operations area; each tab then asks for its own."""
    session = security.staff(request)
    if session is None:
        raise SignInRequired("admin", request.url.path)
    if not (can(session.role, MANAGE) or can(session.role, AUDIT)):
        raise security.Forbidden(MANAGE.value)
    return session


@router.get("/operations")
def operations(session: StaffSession = Depends(_operations_staff)) -> Response:
    target = "/admin/operations/keys" if can(session.role, MANAGE) else "/admin/operations/audit"
    return RedirectResponse(target, status_code=303)


def _not_found(request: Request, session: StaffSession) -> Response:
    return page(request, session, "admin/not_found.html", status=404)


# -- API keys ---------------------------------------------------------------------------------------------------
@router.get("/operations/keys")
def keys(request: Request, session: StaffSession = Depends(require(MANAGE))) -> Response:
    return _keys_page(request, session, {"name": "", "scope": "pos", "partner": ""}, {})


def _keys_page(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str],
               status: int = 200) -> Response:  # fmt: skip
    found = key_cases.list_api_keys(security.uow(request, read_only=True), session.program_id)
    found.sort(key=lambda k: (k["revoked_at"] is not None, k["created_at"]), reverse=False)
    return page(request, session, "admin/ops_keys.html", status, keys=found, draft=draft, errors=errors,
                scopes=KEY_SCOPES, revoked=request.query_params.get("revoked"))  # fmt: skip


@router.post("/operations/keys")
async def create_key(request: Request, session: StaffSession = Depends(require(MANAGE))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    draft = {k: values.get(k, "").strip() for k in ("name", "scope", "partner")}
    errors: dict[str, str] = {}
    if draft["scope"] not in KEY_SCOPES:
        errors["scope"] = translate(lang, "Choose a scope.")
    if len(draft["name"]) > 200:
        errors["name"] = translate(lang, "At most 200 characters.")
    if errors:
        return _keys_page(request, session, draft, errors, 422)
    try:
        created = key_cases.create_api_key(security.uow(request), session.program_id, draft["scope"], draft["name"],
                                           security.now(request), draft["partner"] or None, actor=staff_actor(session))  # fmt: skip
    except DomainError as error:
        place(error, ("partner", "scope", "name"), errors, lang)
        return _keys_page(request, session, draft, errors, 422)
    return page(request, session, "admin/ops_key_secret.html", 201, key=created, rotated=False)


def _key_of(request: Request, session: StaffSession, key_id: str) -> dict[str, Any] | None:
    found = key_cases.list_api_keys(security.uow(request, read_only=True), session.program_id)
    return next((k for k in found if k["id"] == key_id), None)


@router.get("/operations/keys/{key_id}/rotate")
def rotate_form(request: Request, key_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    key = _key_of(request, session, key_id)
    if key is None or key["revoked_at"]:
        return _not_found(request, session)
    return page(request, session, "admin/ops_key_rotate.html", key=key, graces=GRACE_HOURS, grace="24", errors={})


@router.post("/operations/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    key = _key_of(request, session, key_id)
    if key is None or key["revoked_at"]:
        return _not_found(request, session)
    grace = values.get("grace_hours", "").strip()
    errors: dict[str, str] = {}
    try:
        hours = int(grace)
        rotated = key_cases.rotate_api_key(security.uow(request), UUID(key_id), session.program_id,
                                           security.now(request), timedelta(hours=hours), actor=staff_actor(session))  # fmt: skip
    except ValueError:
        errors["grace_hours"] = translate(lang, "A whole number, please.")
    except NotFound:
        return _not_found(request, session)
    except DomainError as error:
        errors["grace_hours"] = problem_text(error, lang)
    if errors:
        return page(request, session, "admin/ops_key_rotate.html", 422, key=key, graces=GRACE_HOURS, grace=grace,
                    errors=errors)  # fmt: skip
    return page(request, session, "admin/ops_key_secret.html", key=rotated, rotated=True)


@router.get("/operations/keys/{key_id}/revoke")
def revoke_form(request: Request, key_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    key = _key_of(request, session, key_id)
    if key is None or key["revoked_at"]:
        return _not_found(request, session)
    return page(request, session, "admin/ops_key_revoke.html", key=key)


@router.post("/operations/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    await form_of(request, session)
    try:
        key_cases.revoke_api_key(security.uow(request), UUID(key_id), session.program_id, security.now(request),
                                 actor=staff_actor(session))  # fmt: skip
    except (ValueError, NotFound):
        return _not_found(request, session)
    return RedirectResponse("/admin/operations/keys?revoked=1", status_code=303)


# -- webhooks ---------------------------------------------------------------------------------------------------
@router.get("/operations/webhooks")
def webhooks(request: Request, session: StaffSession = Depends(require(MANAGE))) -> Response:
    return _webhooks_page(request, session, {"url": "", "events": "*", "description": ""}, {})


def _webhooks_page(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str],
                   status: int = 200) -> Response:  # fmt: skip
    found = webhook_cases.list_endpoints(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/ops_webhooks.html", status, endpoints=found, draft=draft, errors=errors)


@router.post("/operations/webhooks")
async def create_webhook(request: Request, session: StaffSession = Depends(require(MANAGE))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    draft = {k: values.get(k, "").strip() for k in ("url", "events", "description")}
    errors: dict[str, str] = {}
    events = [e.strip() for e in draft["events"].replace("\n", ",").split(",") if e.strip()] or ["*"]
    if not draft["url"]:
        errors["url"] = translate(lang, "Required.")
        return _webhooks_page(request, session, draft, errors, 422)
    try:
        created = webhook_cases.create_endpoint(security.uow(request), session.program_id,
                                                {"url": draft["url"], "events": events,
                                                 "description": draft["description"] or None},
                                                security.now(request), actor=staff_actor(session))  # fmt: skip
    except DomainError as error:
        place(error, ("url", "events", "description"), errors, lang)
        if "" in errors and "filter" in (error.detail or ""):
            errors["events"] = errors.pop("")
        return _webhooks_page(request, session, draft, errors, 422)
    return RedirectResponse(f"/admin/operations/webhooks/{created['id']}?created=1", status_code=303)


@router.get("/operations/webhooks/{endpoint_id}")
def webhook(request: Request, endpoint_id: str, status: str = "",
            session: StaffSession = Depends(require(MANAGE))) -> Response:  # fmt: skip
    try:
        uow = security.uow(request, read_only=True)
        endpoint = webhook_cases.get_endpoint(uow, session.program_id, UUID(endpoint_id))
        deliveries = webhook_cases.list_deliveries(uow, session.program_id, UUID(endpoint_id),
                                                   status if status in STATUSES else None, DELIVERIES_SHOWN)  # fmt: skip
    except (ValueError, NotFound):
        return _not_found(request, session)
    notice = {k: request.query_params.get(k) for k in ("created", "requeued", "changed")}
    return page(request, session, "admin/ops_webhook.html", endpoint=endpoint, deliveries=deliveries,
                statuses=STATUSES, shown=status, notice=notice)  # fmt: skip


@router.post("/operations/webhooks/{endpoint_id}/enabled")
async def enable_webhook(request: Request, endpoint_id: str,
                         session: StaffSession = Depends(require(MANAGE))) -> Response:  # fmt: skip
    values = await form_of(request, session)
    try:
        webhook_cases.update_endpoint(security.uow(request), session.program_id, UUID(endpoint_id),
                                      {"enabled": values.get("enabled") == "1"}, security.now(request),
                                      actor=staff_actor(session))  # fmt: skip
    except (ValueError, NotFound):
        return _not_found(request, session)
    return RedirectResponse(f"/admin/operations/webhooks/{endpoint_id}?changed=1", status_code=303)


@router.post("/operations/webhooks/{endpoint_id}/redeliver")
async def redeliver(request: Request, endpoint_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    values = await form_of(request, session)
    try:
        done = webhook_cases.redeliver(security.uow(request), session.program_id, UUID(endpoint_id),
                                       security.now(request), delivery_id=UUID(values.get("delivery_id", "")),
                                       actor=staff_actor(session))  # fmt: skip
    except (ValueError, NotFound):
        return _not_found(request, session)
    return RedirectResponse(f"/admin/operations/webhooks/{endpoint_id}?requeued={done['requeued']}", status_code=303)


# -- import -----------------------------------------------------------------------------------------------------
@router.get("/operations/import")
def import_form(request: Request, session: StaffSession = Depends(require(MANAGE))) -> Response:
    return _import_page(request, session, {}, {"create_members": "", "on_error": "skip"})


def _import_page(request: Request, session: StaffSession, errors: dict[str, str], draft: dict[str, str],
                 status: int = 200) -> Response:  # fmt: skip
    return page(request, session, "admin/ops_import.html", status, errors=errors, draft=draft,
                runs=imports.recent(session.program_id), required=",".join(REQUIRED))  # fmt: skip


@router.post("/operations/import")
async def start_import(request: Request, session: StaffSession = Depends(require(MANAGE))) -> Response:
    form = await request.form()
    security.check_csrf(request, session.csrf_token, str(form.get("csrf_token") or ""))
    lang = language(request, session)
    draft = {"create_members": "1" if form.get("create_members") else "",
             "on_error": str(form.get("on_error") or "skip")}  # fmt: skip
    errors: dict[str, str] = {}
    upload = form.get("file")
    lines: list[str] = []
    if draft["on_error"] not in ("skip", "abort"):
        errors["on_error"] = translate(lang, "Choose what happens to bad rows.")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = translate(lang, "Choose a CSV file.")
    else:
        content = await upload.read(imports.MAX_BYTES + 1)
        try:
            lines = _csv_lines(content, lang)
        except InvalidInput as error:
            errors["file"] = error.detail
    if errors:
        return _import_page(request, session, errors, draft, 422)
    assert isinstance(upload, UploadFile)
    run = imports.start(request.app.state.uow, session.program_id, lines, upload.filename or "upload.csv",
                        staff_actor(session), request.app.state.clock, create_members=bool(draft["create_members"]),
                        on_error=draft["on_error"])  # fmt: skip
    return RedirectResponse(f"/admin/operations/import/{run.id}", status_code=303)


def _csv_lines(content: bytes, lang: str) -> list[str]:
    """The upload as lines, refused here (before anything runs) when it is too big, not text, or lacks columns."""
    if len(content) > imports.MAX_BYTES:
        raise InvalidInput(translate(lang, "The file is larger than 20 MB; import it with `treue import`."))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(translate(lang, "The file is not UTF-8 text.")) from None
    lines = text.splitlines(keepends=True)
    header = next(csv.reader(lines[:1]), [])
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidInput(translate(lang, "The header lacks the columns: %(columns)s.") % {
            "columns": ", ".join(missing)})  # fmt: skip
    if len(lines) < 2:
        raise InvalidInput(translate(lang, "The file has no rows under its header."))
    return lines


def _run_of(session: StaffSession, run_id: str) -> imports.ImportRun | None:
    try:
        return imports.find(session.program_id, UUID(run_id))
    except ValueError:
        return None


@router.get("/operations/import/{run_id}")
def import_run(request: Request, run_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    run = _run_of(session, run_id)
    if run is None:
        return _not_found(request, session)
    return page(request, session, "admin/ops_import_run.html", run=run)


@router.get("/operations/import/{run_id}/progress")
def import_progress(request: Request, run_id: str, session: StaffSession = Depends(require(MANAGE))) -> Response:
    """The small fragment HTMX polls while the import runs; once it has finished it stops asking."""
    run = _run_of(session, run_id)
    if run is None:
        return _not_found(request, session)
    return page(request, session, "admin/ops_import_progress.html", run=run)


# -- audit log --------------------------------------------------------------------------------------------------
@router.get("/operations/audit")
def audit(request: Request, actor: str = "", action: str = "", target: str = "",
          page_number: str = Query("1", alias="page"),
          session: StaffSession = Depends(require(AUDIT))) -> Response:  # fmt: skip
    found = audit_page(security.uow(request, read_only=True), session.program_id, actor=actor, action=action,
                       target=target, page=int(page_number) if page_number.isdigit() else 1)  # fmt: skip
    entries = [entry | {"changes": changes(entry.get("before"), entry.get("after"))} for entry in found.entries]
    filters = {"actor": actor, "action": action, "target": target}
    template = "admin/ops_audit_entries.html" if is_htmx(request) else "admin/ops_audit.html"
    return page(request, session, template, found=found, entries=entries, filters=filters)


def _text(value: Any) -> str:
    if value is None:
        return "\u2013"  # an en dash: no value
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(before: Any, after: Any) -> list[dict[str, Any]]:
    """Before and after as rows a person reads: one per field, changed fields first (then the unchanged ones)."""
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [{"field": "", "before": _text(before), "after": _text(after), "changed": before != after}]
    old, new = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
    rows = [{"field": name, "before": _text(old.get(name)) if before is not None else "",
             "after": _text(new.get(name)) if after is not None else "", "changed": old.get(name) != new.get(name)}
            for name in dict.fromkeys([*old, *new])]  # fmt: skip
    return sorted(rows, key=lambda row: not row["changed"])
