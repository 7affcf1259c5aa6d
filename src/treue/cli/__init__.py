"""The `treue` command line: operate, administer and script a Treue installation."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from treue.cli.analytics import analytics as analytics_app
from treue.cli.backup import backup as backup_app
from treue.cli.cards import cards as cards_app
from treue.cli.checkout import checkout as checkout_app
from treue.cli.club import club as club_app
from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.cli.exports import exports as exports_app
from treue.cli.fraud import fraud as fraud_app
from treue.cli.gamification import gamification as gamification_app
from treue.cli.notifications import notifications as notifications_app
from treue.cli.partners import partners as partners_app
from treue.cli.partners import settle
from treue.cli.privacy import privacy as privacy_app
from treue.cli.referrals import referrals as referrals_app
from treue.cli.rules import events as events_app
from treue.cli.rules import rules as rules_app
from treue.cli.segments import segments as segments_app
from treue.cli.simulate import simulate
from treue.cli.staff import staff as staff_app
from treue.cli.tiers import tiers as tiers_app
from treue.cli.tills import tills as tills_app
from treue.cli.worker import worker as worker_app
from treue.logs import configure as configure_logging
from treue.services import keys as key_cases
from treue.services import members as member_cases
from treue.services import points as point_cases
from treue.services import programs as program_cases
from treue.services import purchases as purchase_cases
from treue.services import rewards as reward_cases
from treue.services.imports import import_purchases
from treue.services.verify import INVARIANTS, verify

app = typer.Typer(help="Treue - an open-source customer-loyalty engine.", no_args_is_help=True,
                  pretty_exceptions_enable=False)  # fmt: skip
programs = typer.Typer(help="Create and inspect programmes.", no_args_is_help=True)
members = typer.Typer(help="Enrol, find and inspect members.", no_args_is_help=True)
purchases = typer.Typer(help="Record purchases and refunds.", no_args_is_help=True)
rewards = typer.Typer(help="Reward catalogue and redemptions.", no_args_is_help=True)
points = typer.Typer(help="Adjust and transfer points.", no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
jobs = typer.Typer(help="Run background jobs by hand.", no_args_is_help=True)
importer = typer.Typer(help="Bulk import.", no_args_is_help=True)
for sub, name in ((programs, "programs"), (members, "members"), (purchases, "purchases"), (rewards, "rewards"),
                  (points, "points"), (keys, "keys"), (jobs, "jobs"), (importer, "import"), (rules_app, "rules"),
                  (events_app, "events"), (tiers_app, "tiers"), (checkout_app, "checkout"), (club_app, "club"),
                  (analytics_app, "analytics"), (staff_app, "staff"), (partners_app, "partners"),
                  (worker_app, "worker"), (tills_app, "till"), (exports_app, "export"), (cards_app, "cards"),
                  (referrals_app, "referrals"), (gamification_app, "missions"), (notifications_app, "notifications"),
                  (segments_app, "segments"), (privacy_app, "privacy"), (fraud_app, "fraud"),
                  (backup_app, "backup")):  # fmt: skip
    app.add_typer(sub, name=name)
app.command("simulate")(simulate)
app.command("settle")(settle)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def main() -> None:
    configure_logging(logging.WARNING)  # TREUE_LOG_FORMAT=json for one JSON object per line
    app()


# -- operations ------------------------------------------------------------------------------------
@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (TREUE_DATABASE_URL)."""
    from treue.store.migrate import migrate as run_migrations

    run_migrations(uow().engine)
    typer.echo(f"database at {uow().engine.url.render_as_string(hide_password=True)} is up to date")


@app.command(name="verify")
def verify_cmd(program: Annotated[str | None, typer.Option("--program", "-p")] = None, as_json: Json = False) -> None:
    """Check every ledger invariant; exit 1 naming each violation."""
    found = verify(uow()(read_only=True), program_uuid(program) if program else None)
    if as_json:
        emit({"ok": not found, "violations": [v.__dict__ for v in found], "checked": list(INVARIANTS)})
    else:
        for violation in found:
            typer.echo(f"VIOLATION {violation}", err=True)
        if not found:
            typer.echo(f"ok: {len(INVARIANTS)} invariants hold")
            for name, text in INVARIANTS.items():
                typer.echo(f"  - {name}: {text}")
    if found:
        raise typer.Exit(1)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, scheduler: bool = True, interval: float = 60.0) -> None:
    """Serve the API (and run expiry and the outbox in the background)."""
    import uvicorn

    from treue.api.app import create_app, system_clock
    from treue.jobs.scheduler import Scheduler

    api = create_app(uow().engine)
    background = Scheduler(api.state.uow, system_clock, interval) if scheduler else None
    if background:
        background.start()
    try:
        logging.getLogger().setLevel(os.environ.get("TREUE_LOG_LEVEL", "INFO").upper())
        uvicorn.run(api, host=host, port=port, log_config=None)  # uvicorn's loggers use the format set in main()
    finally:
        if background:
            background.stop()


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000, members_count: int = typer.Option(200, "--members"),
         serve_after: bool = typer.Option(True, "--serve/--no-serve")) -> None:  # fmt: skip
    """Create (once) the "Möbelhaus Demo" programme with a year of history, then serve it."""
    from treue.cli.demo import find_demo, seed
    from treue.store.migrate import migrate as run_migrations

    run_migrations(uow().engine)
    existing = find_demo(uow())
    if existing:
        typer.echo(
            f"Möbelhaus Demo exists already (programme {existing}); keys: treue keys create --program {existing}"
        )
    else:
        result = seed(uow(), now(), members_count)
        c = result["counts"]
        typer.echo(f"Seeded Möbelhaus Demo: programme {result['program_id']}")
        typer.echo(f"  {c['members']} members, {c['purchases']} purchases, {c['refunds']} refunds, "
                   f"{c['redemptions']} redemptions")  # fmt: skip
        for scope, key in result["keys"].items():
            typer.echo(f"  {scope:8} API key: {key}")
        typer.echo(
            f"Try: curl -H 'Authorization: Bearer {result['keys']['admin']}' http://{host}:{port}/api/v1/rewards"
        )
    if serve_after:
        typer.echo(f"API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
        serve(host, port)


# -- programmes ------------------------------------------------------------------------------------
@programs.command("create")
@friendly
def programs_create(
    name: str, currency: str = "EUR", timezone: str = "Europe/Berlin",
    earn_points: int | None = None, earn_per_amount: str | None = None,
    earn_basis: str | None = typer.Option(None, help="per_amount | per_item"),
    pending_days: int | None = None, expiry_policy: str | None = typer.Option(None, help="none | rolling | fixed_day"),
    expiry_months: int | None = None, expiry_day: str | None = None, expiry_years: int | None = None,
    return_policy: str | None = typer.Option(None, help="only_pending | within_balance | allow_negative"),
    rounding: str | None = typer.Option(None, help="floor | half_up | half_even | ceil"),
    point_value: str | None = typer.Option(None, help="money per point, e.g. 0.01"),
    default_locale: str | None = None, as_json: Json = False,
) -> None:  # fmt: skip
    """Create a programme; prints its id (or the whole programme with --json)."""
    settings = {k: v for k, v in locals().items() if k not in ("name", "currency", "timezone", "as_json")}
    view = program_cases.create_program(uow()(), name, currency, timezone, settings, now(), actor="cli")
    emit(view, as_json, view["id"])


@programs.command("list")
def programs_list(as_json: Json = False) -> None:
    views = program_cases.list_programs(uow()())
    emit(views, as_json, "\n".join(f"{p['id']}  {p['currency']}  {p['timezone']:16}  {p['name']}" for p in views))


@programs.command("show")
@friendly
def programs_show(program_id: str) -> None:
    emit(program_cases.get_program(uow()(), program_uuid(program_id)))


@programs.command("update")
@friendly
def programs_update(
    program_id: str, name: str | None = None, timezone: str | None = None, pending_days: int | None = None,
    earn_points: int | None = None, earn_per_amount: str | None = None, expiry_policy: str | None = None,
    expiry_months: int | None = None, expiry_day: str | None = None, return_policy: str | None = None,
    rounding: str | None = None,
) -> None:  # fmt: skip
    changes = {k: v for k, v in locals().items() if k != "program_id" and v is not None}
    emit(program_cases.update_program(uow()(), program_uuid(program_id), changes, now(), actor="cli"))


# -- keys -------------------------------------------------------------------------------------------
@keys.command("create")
@friendly
def keys_create(program: Annotated[str | None, typer.Option("--program", "-p")] = None,
                scope: str = typer.Option("admin", help="admin | pos | shop | read_only | partner | operator"),
                name: str = "", partner: str | None = None, as_json: Json = False) -> None:  # fmt: skip
    """Create an API key (shown once). Without --program: an operator key."""
    if program is None and scope != "operator":
        fail("invalid_input: give --program ID, or --scope operator for an operator key")
    view = key_cases.create_api_key(uow()(), program_uuid(program) if program else None, scope, name, now(), partner)
    emit(view, as_json, view["key"])


@keys.command("list")
def keys_list(program: Annotated[str | None, typer.Option("--program", "-p")] = None) -> None:
    emit(key_cases.list_api_keys(uow()(), program_uuid(program) if program else None))


@keys.command("revoke")
@friendly
def keys_revoke(key_id: str) -> None:
    key_cases.revoke_api_key(uow()(), uuid_arg(key_id, "key"), None, now(), actor="cli")
    typer.echo("revoked")


@keys.command("rotate")
@friendly
def keys_rotate(key_id: str,
                grace_hours: int = typer.Option(24, min=0, max=720, help="hours the old secret keeps working; 0: none"),
                program: Annotated[str | None, typer.Option("--program", "-p", help="refuse keys of other programmes")] = None,
                as_json: Json = False) -> None:  # fmt: skip
    """Give a key a new secret (shown once); the old one works for --grace-hours more, then is refused."""
    view = key_cases.rotate_api_key(uow()(), uuid_arg(key_id, "key"), program_uuid(program) if program else None, now(),
                                    timedelta(hours=grace_hours), actor="cli")  # fmt: skip
    emit(view, as_json, view["key"])


# -- members ----------------------------------------------------------------------------------------
@members.command("enrol")
@friendly
def members_enrol(program: Program, external_ref: str | None = None, first_name: str | None = None,
                  last_name: str | None = None, email: str | None = None, phone: str | None = None,
                  birthday: str | None = None, locale: str | None = None,
                  consent: list[str] = typer.Option([], help="marketing consent channel, e.g. email"),
                  referral_code: str | None = typer.Option(None, "--referral-code", help="a referring member's code"),
                  device_id: str | None = typer.Option(None, help="referral fraud screen: device id"),
                  ip: str | None = typer.Option(None, help="referral fraud screen: IP address"),
                  payment_fingerprint: str | None = typer.Option(None, help="referral fraud screen: card fingerprint"),
                  as_json: Json = False) -> None:  # fmt: skip
    """Enrol a member; prints the card number (or everything with --json)."""
    command = member_cases.EnrolMember(
        external_ref=external_ref, first_name=first_name, last_name=last_name, email=email, phone=phone,
        birthday=date.fromisoformat(birthday) if birthday else None, locale=locale,
        consents={channel: True for channel in consent}, consent_source="cli", referral_code=referral_code,
        device_id=device_id, ip=ip, payment_fingerprint=payment_fingerprint,
    )  # fmt: skip
    view = member_cases.enrol_member(uow()(), program_uuid(program), command, now())
    referral = view.get("referral")
    note = ""
    if referral is not None:
        note = f"  referral {referral['status']}" + (f" ({referral['reason']})" if referral["reason"] else "")
    emit(view, as_json, f"{view['id']}  card {view['card_number']}{note}")


@members.command("find")
@friendly
def members_find(program: Program, card: str | None = None, email: str | None = None, phone: str | None = None,
                 external_ref: str | None = None, query: str | None = typer.Option(None, "--query", "-q")) -> None:  # fmt: skip
    """Find members by card number, email, phone, external reference, or a search text."""
    pid = program_uuid(program)
    if any((card, email, phone, external_ref)):
        found = member_cases.find_members(uow()(), pid, card_number=card, email=email, phone=phone,
                                          external_ref=external_ref)  # fmt: skip
    else:
        found = member_cases.search_members(uow()(), pid, query)
    emit(found)


@members.command("show")
@friendly
def members_show(program: Program, member_id: str) -> None:
    """A member with balance and next expiry."""
    pid, mid = program_uuid(program), uuid_arg(member_id, "member")
    view = member_cases.get_member(uow()(), pid, mid)
    view["balance"] = point_cases.get_balance(uow()(), pid, mid, now())
    emit(view)


@members.command("history")
@friendly
def members_history(program: Program, member_id: str, limit: int = 50) -> None:
    """Points movements with their explanations, newest first."""
    emit(point_cases.get_history(uow()(), program_uuid(program), uuid_arg(member_id, "member"), limit))


# -- purchases --------------------------------------------------------------------------------------
@purchases.command("record")
@friendly
def purchases_record(
    program: Program, order_id: str = typer.Option(..., help="the shop's order id"),
    total: str = typer.Option(..., help="major units, e.g. 49.90"), currency: str = "EUR",
    member: str | None = typer.Option(None, help="member id"), card: str | None = None,
    external_ref: str | None = None, occurred_at: str | None = None, partner: str = "default",
    store: str | None = None, channel: str = "store",
    line: list[str] = typer.Option([], help="SKU:QTY:UNIT_PRICE[:CATEGORY], repeatable"), as_json: Json = False,
) -> None:  # fmt: skip
    """Record a purchase and earn points for it."""
    from treue.services.imports import _parse_items

    at = datetime.fromisoformat(occurred_at.replace("Z", "+00:00")) if occurred_at else now()
    command = purchase_cases.RecordPurchase(
        external_order_id=order_id, total=total, currency=currency, occurred_at=at,
        member_id=uuid_arg(member, "member") if member else None, card_number=card, external_ref=external_ref,
        partner=partner, store=store, channel=channel, lines=_parse_items("|".join(line), currency),
    )  # fmt: skip
    view = purchase_cases.record_purchase(uow()(), program_uuid(program), command, now())
    emit(view, as_json, f"{view['id']}  earned {view['points_earned']} points")


@purchases.command("preview")
@friendly
def purchases_preview(
    program: Program, total: str = typer.Option(..., help="major units, e.g. 49.90"), currency: str = "EUR",
    member: str | None = typer.Option(None, help="member id"), card: str | None = None,
    external_ref: str | None = None, occurred_at: str | None = None, partner: str = "default",
    store: str | None = None, channel: str = "store",
    line: list[str] = typer.Option([], help="SKU:QTY:UNIT_PRICE[:CATEGORY], repeatable"), as_json: Json = False,
) -> None:  # fmt: skip
    """What a cart would earn, rule by rule, without writing anything."""
    from treue.services.imports import _parse_items

    at = datetime.fromisoformat(occurred_at.replace("Z", "+00:00")) if occurred_at else now()
    command = purchase_cases.RecordPurchase(
        external_order_id="", total=total, currency=currency, occurred_at=at,
        member_id=uuid_arg(member, "member") if member else None, card_number=card, external_ref=external_ref,
        partner=partner, store=store, channel=channel, lines=_parse_items("|".join(line), currency),
    )  # fmt: skip
    view = purchase_cases.preview_purchase(uow()(read_only=True), program_uuid(program), command, now())
    rules = ", ".join(f"{r['rule']} {r['points']}" for r in view["rules"])
    emit(view, as_json, f"would earn {view['points']} points" + (f" ({rules})" if rules else ""))


@purchases.command("refund")
@friendly
def purchases_refund(program: Program, purchase_id: str, amount: str | None = None,
                     refund_id: str | None = None) -> None:  # fmt: skip
    """Refund a purchase (everything left, or --amount); points are taken back in proportion."""
    command = purchase_cases.RefundPurchase(amount=amount, external_refund_id=refund_id)
    emit(
        purchase_cases.refund_purchase(
            uow()(), program_uuid(program), uuid_arg(purchase_id, "purchase"), command, now()
        )
    )


# -- rewards ------------------------------------------------------------------------------------------
@rewards.command("create")
@friendly
def rewards_create(program: Program, name: str, cost: int = typer.Option(..., help="cost in points"),
                   type_: str = typer.Option("merchandise", "--type"), name_en: str | None = None,
                   stock: int | None = None, value: str | None = None, percent: int | None = None,
                   per_member_limit: int | None = None) -> None:  # fmt: skip
    values: dict[str, Any] = {"name": {"de": name, **({"en": name_en} if name_en else {})}, "type": type_,
                              "cost_points": cost, "stock": stock, "value": value, "percent": percent,
                              "per_member_limit": per_member_limit}  # fmt: skip
    emit(reward_cases.create_reward(uow()(), program_uuid(program), {k: v for k, v in values.items() if v is not None},
                                    now(), actor="cli"))  # fmt: skip


@rewards.command("list")
def rewards_list(program: Program) -> None:
    emit(reward_cases.list_rewards(uow()(), program_uuid(program)))


@rewards.command("redeem")
@friendly
def rewards_redeem(program: Program, member_id: str, reward_id: str) -> None:
    emit(reward_cases.redeem_reward(uow()(), program_uuid(program), uuid_arg(member_id, "member"),
                                    uuid_arg(reward_id, "reward"), now()))  # fmt: skip


@rewards.command("cancel")
@friendly
def rewards_cancel(program: Program, redemption_id: str, reason: str | None = None) -> None:
    emit(reward_cases.cancel_redemption(uow()(), program_uuid(program), uuid_arg(redemption_id, "redemption"), now(),
                                        actor="cli", reason=reason))  # fmt: skip


# -- points -----------------------------------------------------------------------------------------
@points.command("adjust")
@friendly
def points_adjust(program: Program, member_id: str, points_: int = typer.Option(..., "--points"),
                  reason: str = typer.Option(...)) -> None:  # fmt: skip
    emit(point_cases.adjust_points(uow()(), program_uuid(program), uuid_arg(member_id, "member"), points_, reason,
                                   now(), actor="cli"))  # fmt: skip


@points.command("transfer")
@friendly
def points_transfer(program: Program, from_member: str, to_member: str, points_: int = typer.Option(..., "--points"),
                    note: str | None = None) -> None:  # fmt: skip
    emit(point_cases.transfer_points(uow()(), program_uuid(program), uuid_arg(from_member, "member"),
                                     uuid_arg(to_member, "member"), points_, now(), note, actor="cli"))  # fmt: skip


@points.command("balance")
@friendly
def points_balance(program: Program, member_id: str) -> None:
    emit(point_cases.get_balance(uow()(), program_uuid(program), uuid_arg(member_id, "member"), now()))


# -- import -----------------------------------------------------------------------------------------
@importer.command("purchases")
@friendly
def import_purchases_cmd(
    file: Path, program: Program, create_members: bool = False,
    on_error: str = typer.Option("skip", help="skip bad rows, or abort the whole import"), as_json: Json = False,
) -> None:  # fmt: skip
    """Import purchases from CSV (member,order_id,occurred_at,total,currency[,items,channel,partner])."""
    if not file.exists():
        fail(f"invalid_input: no such file: {file}")
    text = file.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    columns = (TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=as_json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("import", total=max(len(text) - 1, 0))
        report = import_purchases(uow(), program_uuid(program), text, now, create_members=create_members,
                                  on_error=on_error, progress=lambda n: bar.advance(task, n))  # fmt: skip
    if as_json:
        emit(report.as_dict())
    else:
        for error in report.errors:
            typer.echo(f"line {error.line}: {error.message}", err=True)
        verdict = "ABORTED, nothing imported" if report.aborted else "done"
        typer.echo(f"{verdict}: {report.rows} rows, {report.imported} imported, {report.already_imported} already "
                   f"imported, {report.members_created} members created, {len(report.errors)} bad rows, "
                   f"{report.points} points")  # fmt: skip
    if report.aborted:
        raise typer.Exit(1)


# -- jobs -------------------------------------------------------------------------------------------
@jobs.command("run")
@friendly
def jobs_run(name: str, program: Annotated[str | None, typer.Option("--program", "-p")] = None) -> None:
    """Run a job now by name: expire (points past their expiry to breakage), rules (birthday, anniversary and cron
    rules due now), outbox (deliver events), tiers, club, clv, referrals, notifications, segments, fraud_scan,
    retention, kpi_rollup (the daily sums KPIs read)."""
    from treue.jobs.registry import JOBS

    if name not in JOBS:
        fail(f"invalid_input: unknown job '{name}' (known: {', '.join(JOBS)})")
    result = JOBS[name](uow(), now(), program_uuid(program) if program else None)
    typer.echo(json.dumps({"job": name, **result}))
