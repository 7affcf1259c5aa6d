"""`treue notifications`: settings, templates (with preview), consents, the inbox and the message log (issue 8).

Messages are queued from the outbox and by `treue jobs run notifications`, and sent by `treue worker run`
(email over SMTP: TREUE_SMTP_URL; push: the event notification.push to the webhook endpoints).
`treue notifications send` sends what is due once, without a running worker.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import notifications as cases
from treue.services.mail import mailer_from_env

notifications = typer.Typer(help="Notifications, templates, consents and the inbox (issue 8).", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _quiet(value: str) -> dict[str, str] | None:
    if value.lower() in ("off", "none", ""):
        return None
    start, sep, end = value.partition("-")
    if not sep:
        fail("invalid_input: --quiet-hours is HH:MM-HH:MM (e.g. 21:00-08:00) or off")
    return {"start": start.strip(), "end": end.strip()}


@notifications.command("settings")
@friendly
def settings(program: Program,
             trigger: str | None = typer.Option(None, "--trigger", help="the trigger the options below change"),
             enable: bool | None = typer.Option(None, "--enable/--disable"),
             channel: list[str] | None = typer.Option(None, "--channel", help="email, inbox, push; repeatable"),
             purpose: str | None = typer.Option(None, "--purpose", help="transactional or marketing"),
             mode: str | None = typer.Option(None, "--mode", help="points_earned: immediate or digest"),
             days: list[int] | None = typer.Option(None, "--days", help="points_expiring: days before; repeatable"),
             quiet_hours: str | None = typer.Option(None, "--quiet-hours", help="HH:MM-HH:MM local, or off"),
             weekly_cap: int | None = typer.Option(None, "--weekly-cap", help="marketing messages per week"),
             as_json: Json = False) -> None:  # fmt: skip
    """Show the settings, or change what is given (per trigger with --trigger)."""
    change: dict[str, Any] = {}
    values = {"enabled": enable, "channels": channel or None, "purpose": purpose, "mode": mode, "days": days or None}
    given = {k: v for k, v in values.items() if v is not None}
    if given and not trigger:
        fail("invalid_input: name the --trigger these options are for")
    if trigger:
        change["triggers"] = {trigger: given}
    if quiet_hours is not None:
        change["quiet_hours"] = _quiet(quiet_hours)
    if weekly_cap is not None:
        change["weekly_marketing_cap"] = weekly_cap
    pid = program_uuid(program)
    found = cases.update_settings(uow()(), pid, change, now(), actor="cli") if change else cases.get_settings(
        uow()(), pid)  # fmt: skip
    lines = [f"{code:<22} {'on ' if ts['enabled'] else 'off'} {ts['purpose']:<13} {','.join(ts['channels'])}"
             + (f"  mode={ts['mode']}" if code == "points_earned" else "")
             + (f"  days={','.join(map(str, ts['days']))}" if ts["days"] else "")
             for code, ts in found["triggers"].items()]  # fmt: skip
    quiet = found["quiet_hours"]
    lines.append(f"quiet hours: {quiet['start']}-{quiet['end']}" if quiet else "quiet hours: off")
    lines.append(f"weekly marketing cap: {found['weekly_marketing_cap']}")
    emit(found, as_json, "\n".join(lines))


@notifications.command("templates")
@friendly
def templates(program: Program, trigger: str | None = typer.Option(None, "--trigger"), as_json: Json = False) -> None:
    """Every trigger's wording per channel and locale (* = the programme's own)."""
    found = [t for t in cases.list_templates(uow()(), program_uuid(program)) if trigger in (None, t["trigger"])]
    lines = [f"{t['trigger']:<22} {x['channel']:<6} {x['locale']} {'*' if x['custom'] else ' '} {x['subject']}"
             for t in found for x in t["templates"]]  # fmt: skip
    emit(found, as_json, "\n".join(lines))


def _read(value: str | None) -> str | None:
    if value is not None and value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value


@notifications.command("set-template")
@friendly
def set_template(program: Program, trigger: str = typer.Option(..., "--trigger"),
                 channel: str = typer.Option("email", "--channel"), locale: str = typer.Option("de", "--locale"),
                 subject: str = typer.Option(..., "--subject"),
                 text: str = typer.Option(..., "--text", help="the text, or @file"),
                 html: str | None = typer.Option(None, "--html", help="email HTML, or @file")) -> None:  # fmt: skip
    """Save a trigger's wording (Jinja2, sandboxed); it must render with the trigger's sample data."""
    emit(cases.save_template(uow()(), program_uuid(program), trigger, channel, locale,
                             {"subject": subject, "text": _read(text), "html": _read(html)}, now(), actor="cli"))  # fmt: skip


@notifications.command("preview")
@friendly
def preview(program: Program, trigger: str = typer.Option(..., "--trigger"),
            channel: str = typer.Option("email", "--channel"), locale: str = typer.Option("de", "--locale"),
            data: str | None = typer.Option(None, "--data", help="JSON replacing sample values"),
            as_json: Json = False) -> None:  # fmt: skip
    """Render a trigger's template with sample data."""
    try:
        values = json.loads(data) if data else None
    except ValueError as error:
        fail(f"invalid_input: --data is not JSON: {error}")
        return
    shown = cases.preview(uow()(), program_uuid(program), trigger, channel, locale, None, values)
    emit(shown, as_json, f"Subject: {shown['subject']}\n\n{shown['text']}".rstrip())


@notifications.command("consent")
@friendly
def consent(program: Program, member: str = typer.Option(..., "--member"),
            channel: str = typer.Option(..., "--channel", help="email, push, sms, post"),
            grant: bool = typer.Option(..., "--grant/--withdraw"),
            source: str | None = typer.Option("cli", "--source")) -> None:  # fmt: skip
    """Record marketing consent; granting email sends the confirmation mail (double opt-in)."""
    emit(cases.set_consent(uow()(), program_uuid(program), uuid_arg(member, "member"), channel, grant, source, now(),
                           actor="cli"))  # fmt: skip


@notifications.command("inbox")
@friendly
def inbox(program: Program, member: str = typer.Option(..., "--member"),
          unread: bool = typer.Option(False, "--unread"), as_json: Json = False) -> None:  # fmt: skip
    """A member's in-app messages."""
    found = cases.inbox(uow()(), program_uuid(program), uuid_arg(member, "member"), unread)
    lines = [f"{m['created_at'][:16]}  {' ' if m['read'] else '*'} {m['subject']}" for m in found["messages"]]
    emit(found, as_json, "\n".join([f"{found['unread']} unread", *lines]))


@notifications.command("log")
@friendly
def log(program: Program, member: str | None = typer.Option(None, "--member"),
        status: str | None = typer.Option(None, "--status"), channel: str | None = typer.Option(None, "--channel"),
        trigger: str | None = typer.Option(None, "--trigger"), limit: int = typer.Option(50, "--limit"),
        as_json: Json = False) -> None:  # fmt: skip
    """The message log, newest first: queued, sent, failed, bounced, suppressed (with the reason)."""
    found = cases.list_messages(uow()(), program_uuid(program), member_id=uuid_arg(member, "member") if member
                                else None, status=status, chan=channel, code=trigger, limit=limit)  # fmt: skip
    lines = [f"{m['created_at'][:16]}  {m['trigger']:<20} {m['channel']:<5} {m['status']:<10} "
             f"{m['reason'] or ''} {m['recipient'] or m['member_id']}  {m['subject']}" for m in found]  # fmt: skip
    emit(found, as_json, "\n".join(lines) or "no messages")


@notifications.command("bounce")
@friendly
def bounce(program: Program, message: str = typer.Option(..., "--message"),
           reason: str | None = typer.Option(None, "--reason"),
           permanent: bool = typer.Option(True, "--permanent/--transient")) -> None:  # fmt: skip
    """Record a bounce reported by the mail provider."""
    emit(cases.report_bounce(uow()(), program_uuid(program), uuid_arg(message, "message"), reason, permanent, now(),
                             actor="cli"))  # fmt: skip


@notifications.command("send")
@friendly
def send(limit: int = typer.Option(100, "--limit")) -> None:
    """Send the due messages once (what `treue worker run` does continuously)."""
    emit(cases.send_due(uow(), now, f"cli:{socket.gethostname()}:{os.getpid()}", mailer_from_env(), limit=limit))
