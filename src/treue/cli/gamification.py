"""`treue missions`: missions, streaks, badges, instant wins and leaderboards (issue 7).

Definitions are given as JSON (`--definition '{...}'` or `--file mission.json`), in the format the API takes
(see docs/gamification.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import gamification as cases

gamification = typer.Typer(help="Missions, streaks, badges, instant wins, leaderboards (issue 7).",
                           no_args_is_help=True)  # fmt: skip

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Member = Annotated[str, typer.Option("--member", "-m", help="member id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
Definition = Annotated[str | None, typer.Option("--definition", "-d", help="the definition as JSON text")]
File = Annotated[Path | None, typer.Option("--file", "-f", help="a JSON file with the definition")]


def _definition(text: str | None, file: Path | None) -> dict[str, Any]:
    if (text is None) == (file is None):
        fail("invalid_input: give the definition with --definition or --file (one of them)")
    try:
        data = json.loads(text if text is not None else file.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    except (OSError, json.JSONDecodeError) as error:
        fail(f"invalid_input: the definition is not readable JSON: {error}")
        raise AssertionError from None
    if not isinstance(data, dict):
        fail("invalid_input: the definition is a JSON object")
    return data  # type: ignore[no-any-return]


# -- missions ------------------------------------------------------------------------------------------------
@gamification.command("create")
@friendly
def create(program: Program, definition: Definition = None, file: File = None, as_json: Json = False) -> None:
    """Create a mission from its definition."""
    view = cases.create_mission(uow()(), program_uuid(program), _definition(definition, file), now(), actor="cli")
    emit(view, as_json, f"{view['code']}  {view['goal']['type']} {view['goal']['target']}  per {view['window']['type']}"
                        "  created")  # fmt: skip


@gamification.command("list")
@friendly
def list_(program: Program, as_json: Json = False) -> None:
    """The programme's missions."""
    found = cases.list_missions(uow()(), program_uuid(program))
    if as_json:
        emit(found)
        return
    for m in found:
        state = "" if m["active"] else "  (inactive)"
        typer.echo(f"{m['code']}  {m['goal']['type']} {m['goal']['target']} {m['goal']['event'] or '(rules)'}  "
                   f"per {m['window']['type']}  {'opt-in' if m['opt_in'] else 'automatic'}{state}")  # fmt: skip


@gamification.command("set-active")
@friendly
def set_active(program: Program, code: str = typer.Argument(...), active: bool = typer.Option(True, "--active/--inactive"),
               as_json: Json = False) -> None:  # fmt: skip
    """Switch a mission on or off."""
    view = cases.update_mission(uow()(), program_uuid(program), code, {"active": active}, now(), actor="cli")
    emit(view, as_json, f"{view['code']}  {'active' if view['active'] else 'inactive'}")


@gamification.command("progress")
@friendly
def progress(program: Program, member: Member, locale: str | None = typer.Option(None, help="de or en"),
             as_json: Json = False) -> None:  # fmt: skip
    """A member's missions with progress ("2 of 3 purchases in May 2026")."""
    found = cases.member_missions(uow()(), program_uuid(program), uuid_arg(member, "member"), now(), locale)
    if as_json:
        emit(found)
        return
    for m in found:
        done = "  completed" if m["completed"] else ""
        join = "  (opt-in needed)" if m["opt_in_required"] and not m["opted_in"] else ""
        typer.echo(f"{m['code']}  {m['label']}{done}{join}")


@gamification.command("opt-in")
@friendly
def opt_in(program: Program, member: Member, code: str = typer.Argument(...), as_json: Json = False) -> None:
    """A member joins a mission."""
    view = cases.opt_in(uow()(), program_uuid(program), uuid_arg(member, "member"), code, now())
    emit(view, as_json, f"{view['code']}  opted in  {view['label']}")


# -- streaks -------------------------------------------------------------------------------------------------
@gamification.command("streak-create")
@friendly
def streak_create(program: Program, definition: Definition = None, file: File = None, as_json: Json = False) -> None:
    """Create a streak from its definition."""
    view = cases.create_streak(uow()(), program_uuid(program), _definition(definition, file), now(), actor="cli")
    emit(view, as_json, f"{view['code']}  per {view['period']}  {len(view['milestones'])} milestone(s)  created")


@gamification.command("streaks")
@friendly
def streaks(program: Program, member: Annotated[str | None, typer.Option("--member", "-m")] = None,
            as_json: Json = False) -> None:  # fmt: skip
    """The programme's streaks, or with --member where the member stands."""
    pid = program_uuid(program)
    if member is None:
        found = cases.list_streaks(uow()(), pid)
        lines = [f"{s['code']}  per {s['period']}  {s['event']}" for s in found]
    else:
        found = cases.member_streaks(uow()(), pid, uuid_arg(member, "member"), now())
        lines = [f"{s['code']}  {s['length']} {s['period']}(s)  best {s['best']}"
                 f"{'  at risk' if s['at_risk'] else ''}" for s in found]  # fmt: skip
    if as_json:
        emit(found)
        return
    for line in lines:
        typer.echo(line)


# -- badges --------------------------------------------------------------------------------------------------
@gamification.command("badge-create")
@friendly
def badge_create(program: Program, code: str = typer.Option(...), name_de: str | None = typer.Option(None, "--name-de"),
                 name_en: str | None = typer.Option(None, "--name-en"), image_url: str | None = None,
                 rare_below_percent: str | None = typer.Option(None, help='e.g. "5": rare when < 5 % hold it'),
                 as_json: Json = False) -> None:  # fmt: skip
    """Create a badge."""
    name = {k: v for k, v in (("de", name_de), ("en", name_en)) if v}
    values: dict[str, Any] = {"code": code, "name": name, "image_url": image_url,
                              "rare_below_percent": rare_below_percent}  # fmt: skip
    view = cases.create_badge(uow()(), program_uuid(program), values, now(), actor="cli")
    emit(view, as_json, f"{view['code']}  created")


@gamification.command("badges")
@friendly
def badges(program: Program, member: Annotated[str | None, typer.Option("--member", "-m")] = None,
           as_json: Json = False) -> None:  # fmt: skip
    """The programme's badges with their rarity, or with --member the member's badges."""
    pid = program_uuid(program)
    found = cases.list_badges(uow()(), pid) if member is None else cases.member_badges(uow()(), pid, uuid_arg(
        member, "member"))  # fmt: skip
    if as_json:
        emit(found)
        return
    for b in found:
        rare = "  rare" if b.get("rare") else ""
        typer.echo(f"{b['code']}  held by {b['holders']} ({b['held_by_percent']} %){rare}")


@gamification.command("grant-badge")
@friendly
def grant_badge(program: Program, member: Member, badge: str = typer.Option(...), reason: str | None = None,
                as_json: Json = False) -> None:  # fmt: skip
    """Give a member a badge (a member holds a badge once)."""
    view = cases.grant_badge(uow()(), program_uuid(program), uuid_arg(member, "member"), badge, now(), reason,
                             actor="cli")  # fmt: skip
    emit(view, as_json, f"{view['code']}  {'awarded' if view['awarded'] else 'held already'}")


# -- instant wins ----------------------------------------------------------------------------------------------
@gamification.command("instant-win-create")
@friendly
def instant_win_create(program: Program, definition: Definition = None, file: File = None,
                       as_json: Json = False) -> None:  # fmt: skip
    """Create an instant-win campaign from its definition."""
    view = cases.create_instant_win(uow()(), program_uuid(program), _definition(definition, file), now(), actor="cli")
    emit(view, as_json, f"{view['code']}  {len(view['prizes'])} prize(s)  odds version {view['odds_version']}  created")


@gamification.command("instant-wins")
@friendly
def instant_wins(program: Program, code: str | None = typer.Argument(None), as_json: Json = False) -> None:
    """The instant-win campaigns, or one campaign with its counters."""
    pid = program_uuid(program)
    if code is not None:
        view = cases.get_instant_win(uow()(), pid, code, now())
        lines = [f"{view['code']}  won {view['draws']['won']}  no win {view['draws']['no_win']}  points given "
                 f"{view['points_awarded']}"] + [f"  {p['code']}  {p['probability']} %  given {p['awarded']}"
                                                 for p in view["prizes"]]  # fmt: skip
        found: Any = view
    else:
        found = cases.list_instant_wins(uow()(), pid)
        lines = [f"{c['code']}  {c['event']}  {len(c['prizes'])} prize(s){'' if c['active'] else '  (inactive)'}"
                 for c in found]  # fmt: skip
    if as_json:
        emit(found)
        return
    for line in lines:
        typer.echo(line)


@gamification.command("draws")
@friendly
def draws(program: Program, code: str = typer.Argument(...), limit: int = 100, as_json: Json = False) -> None:
    """The audit trail of a campaign's draws: random number, odds version, outcome."""
    found = cases.instant_win_draws(uow()(), program_uuid(program), code, limit)
    if as_json:
        emit(found)
        return
    for d in found:
        typer.echo(f"{d['drawn_at']}  {d['number']:>6}  v{d['odds_version']}  {d['outcome']}  {d['prize'] or ''}"
                   f"{'  (' + d['reason'] + ')' if d['reason'] else ''}")  # fmt: skip


# -- leaderboards ----------------------------------------------------------------------------------------------
@gamification.command("leaderboard")
@friendly
def leaderboard(program: Program, mission: str | None = typer.Option(None, help="a mission code; else points"),
                period: str = typer.Option("month", help="week or month (points)"), limit: int = 10,
                as_json: Json = False) -> None:  # fmt: skip
    """Members who agreed to be shown, ranked by mission progress or points earned in the period."""
    pid = program_uuid(program)
    if mission is not None:
        found = cases.mission_leaderboard(uow()(), pid, mission, now(), limit=limit)
    else:
        found = cases.points_leaderboard(uow()(), pid, now(), period, limit=limit)
    emit(found, as_json, "\n".join(f"{e['rank']:>3}. {e['display_name']}  {e['value']}" for e in found["entries"])
         or "(nobody yet)")  # fmt: skip
