"""`treue fraud`: velocity caps, anomaly alerts, held transactions (issue 10)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import fraud as cases

fraud = typer.Typer(help="Fraud controls: velocity caps, alerts, held transactions.", no_args_is_help=True)
settings = typer.Typer(help="Velocity caps and alert thresholds.", no_args_is_help=True)
fraud.add_typer(settings, name="settings")

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
CAP_HELP = ("ACTION:SUBJECT:WINDOW:LIMITS, e.g. earn:member:day:count=5 or redeem:member:day:points=2000 "
            "(action earn|redeem, subject member|card|device|ip, window hour|day; count= and/or points=)")  # fmt: skip


def parse_cap(text: str) -> dict[str, Any]:
    """`earn:member:day:count=5,points=1000` as the settings' cap object (validated by the service)."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"--cap {text!r}: expected {CAP_HELP}")
    action, subject, window, limits = parts
    cap: dict[str, Any] = {"action": action, "subject": subject, "window": window}
    for item in limits.split(","):
        name, _, value = item.partition("=")
        if name not in ("count", "points") or not value.isdigit():
            raise ValueError(f"--cap {text!r}: limits are count=N and/or points=N")
        cap[f"max_{name}"] = int(value)
    return cap


def _settings_text(view: dict[str, Any]) -> str:
    lines = [f"configured: {view['configured']}  active: {view['active']}"]
    for cap in view["caps"]:
        limits = ", ".join(f"{k.removeprefix('max_')} {cap[k]}" for k in ("max_count", "max_points") if cap[k])
        lines.append(f"cap {cap['action']}:{cap['subject']}:{cap['window']}  {limits}")
    if not view["caps"]:
        lines.append("no caps")
    lines.append("alerts: " + "  ".join(f"{k}={v}" for k, v in view["alerts"].items()))
    return "\n".join(lines)


@settings.command("show")
@friendly
def show(program: Program, as_json: Json = False) -> None:
    """The programme's caps and alert thresholds."""
    view = cases.get_settings(uow()(), program_uuid(program))
    emit(view, as_json, _settings_text(view))


@settings.command("set")
@friendly
def set_(program: Program,
         cap: list[str] = typer.Option([], "--cap", help=CAP_HELP),
         alert: list[str] = typer.Option([], "--alert", help="a threshold, e.g. cap_hits=2 or refund_days=30"),
         inactive: bool = typer.Option(False, "--inactive", help="keep the settings but apply no caps and no scan"),
         from_json: str | None = typer.Option(None, "--from-json", help="the whole settings object as JSON"),
         as_json: Json = False) -> None:  # fmt: skip
    """Replace the caps and thresholds (thresholds not given keep their defaults)."""
    if from_json is not None:
        try:
            values = json.loads(from_json)
        except ValueError:
            fail("invalid_input: --from-json is not JSON")
            return
        if not isinstance(values, dict):
            fail("invalid_input: --from-json must be a JSON object")
    else:
        thresholds: dict[str, int] = {}
        for item in alert:
            name, _, value = item.partition("=")
            if not value.isdigit():
                fail(f"invalid_input: --alert {item!r}: expected NAME=N")
            thresholds[name] = int(value)
        values = {"active": not inactive, "caps": [parse_cap(c) for c in cap], "alerts": thresholds}
    view = cases.save_settings(uow()(), program_uuid(program), values, now(), actor="cli")
    emit(view, as_json, _settings_text(view))


@fraud.command("held")
@friendly
def held(program: Program, status: str = typer.Option("pending", help="pending, approved, rejected or all"),
         limit: int = 100, as_json: Json = False) -> None:  # fmt: skip
    """Earns held over a velocity cap, newest first."""
    found = cases.list_holds(uow()(), program_uuid(program), None if status == "all" else status, limit)
    if as_json:
        emit(found)
        return
    for h in found:
        caps = ", ".join(r["cap"] for r in h["reasons"])
        typer.echo(f"{h['id']}  {h['status']:<8}  {h['points']:>8} points  member {h['member_id']}  {caps}")
    if not found:
        typer.echo("nothing held")


def _decide(program: str, hold: str, decision: str, reason: str | None, as_json: bool) -> None:
    view = cases.decide_hold(uow()(), program_uuid(program), uuid_arg(hold, "held transaction"), decision, now(),
                             actor="cli", note=reason)  # fmt: skip
    extra = f", {view['points_reversed']} points reversed" if decision == "reject" else ""
    emit(view, as_json, f"{view['id']} {view['status']} ({view['points']} points{extra})")


@fraud.command("approve")
@friendly
def approve(program: Program, hold: str = typer.Argument(..., help="held transaction id"),
            reason: str | None = typer.Option(None, help="why (audited)"), as_json: Json = False) -> None:  # fmt: skip
    """Release a held earn's points."""
    _decide(program, hold, "approve", reason, as_json)


@fraud.command("reject")
@friendly
def reject(program: Program, hold: str = typer.Argument(..., help="held transaction id"),
           reason: str | None = typer.Option(None, help="why (audited)"), as_json: Json = False) -> None:  # fmt: skip
    """Reverse a held earn's points."""
    _decide(program, hold, "reject", reason, as_json)


@fraud.command("alerts")
@friendly
def alerts(program: Program, status: str = typer.Option("open", help="open, acknowledged or all"), limit: int = 100,
           as_json: Json = False) -> None:  # fmt: skip
    """Anomaly alerts, newest first."""
    found = cases.list_alerts(uow()(), program_uuid(program), None if status == "all" else status, limit)
    if as_json:
        emit(found)
        return
    for a in found:
        details = " ".join(f"{k}={v}" for k, v in a["details"].items())
        typer.echo(f"{a['id']}  {a['period']}  {a['kind']}  {a['subject']}  {details}  [{a['status']}]")
    if not found:
        typer.echo("no alerts")


@fraud.command("acknowledge")
@friendly
def acknowledge(program: Program, alert: str = typer.Argument(..., help="alert id"),
                note: str | None = typer.Option(None, help="what was found (audited)"),
                as_json: Json = False) -> None:  # fmt: skip
    """Mark an alert as seen."""
    view = cases.acknowledge_alert(uow()(), program_uuid(program), uuid_arg(alert, "alert"), now(), actor="cli",
                                   note=note)  # fmt: skip
    emit(view, as_json, f"{view['id']} {view['status']}")


@fraud.command("scan")
@friendly
def scan(program: Program, as_json: Json = False) -> None:
    """Run the anomaly scan for the programme now (the `fraud_scan` job does it hourly)."""
    program_id = program_uuid(program)
    view = cases.scan(uow(), now(), program_id)
    result = view["results"][str(program_id)]
    emit(view, as_json, result.get("skipped") or f"{result['alerts']} new alerts ({result['findings']} findings)")
