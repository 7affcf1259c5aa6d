"""`treue segments`: Segments, targeted offers, recommendations, surveys (issue 8)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import offers, recommendations, surveys
from treue.services import segments as cases

segments = typer.Typer(help="Segments, targeted offers, recommendations, surveys (issue 8).", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Member = Annotated[str, typer.Option("--member", "-m", help="member id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        fail(f"invalid_input: cannot read {file}: {type(error).__name__}")
        raise AssertionError from None  # unreachable; fail() exits


def _object(file: Path, what: str) -> dict[str, Any]:
    try:
        data: Any = json.loads(_read(file))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        fail(f"invalid_input: the {what} file must hold a JSON object")
    return data  # type: ignore[no-any-return]


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"invalid_input: {option} is a date such as 2026-03-01")
        raise AssertionError from None


@segments.command("create")
@friendly
def create(program: Program, file: Path = typer.Option(..., help="the segment as JSON (see docs/segments.md)"),
           as_json: Json = False) -> None:  # fmt: skip
    """Create a segment from a JSON file: {"code", "name", "condition"} (dynamic) or {"kind": "static"}."""
    view = cases.create_segment(uow()(), program_uuid(program), _object(file, "segment"), now(), actor="cli")
    emit(view, as_json, f"{view['code']}  {view['kind']}  {view['members']} members")


@segments.command("list")
@friendly
def list_segments(program: Program, as_json: Json = False) -> None:
    """The segments with their member counts."""
    found = cases.list_segments(uow()(), program_uuid(program))
    if as_json:
        emit(found)
        return
    for s in found:
        typer.echo(f"{s['code']}  {s['kind']}  {s['members']} members  {s['condition'] or ''}".rstrip())


@segments.command("members")
@friendly
def members(code: str, program: Program, limit: int = typer.Option(100, min=1, max=500),
            offset: int = typer.Option(0, min=0), as_json: Json = False) -> None:  # fmt: skip
    """A page of the segment's members."""
    page = cases.segment_members(uow()(), program_uuid(program), code, limit=limit, offset=offset)
    if as_json:
        emit(page)
        return
    typer.echo(f"{page['total']} members")
    for m in page["members"]:
        typer.echo(f"{m['member_id']}  {m['card_number']}")


@segments.command("refresh")
@friendly
def refresh(program: Program, code: Annotated[str | None, typer.Argument(help="a segment; none: all")] = None,
            as_json: Json = False) -> None:  # fmt: skip
    """Recompute a dynamic segment (or, without CODE, all of them and the product co-occurrence)."""
    pid = program_uuid(program)
    if code is None:
        result = cases.refresh_segments(uow(), now(), pid) | recommendations.recompute_all_products(uow(), now(), pid)
        emit(result, as_json, f"{result['segments']} segments refreshed, {result['product_pairs']} product pairs")
        return
    view = cases.refresh_segment(uow()(), pid, code, now())
    emit(view, as_json, f"{view['segment']}  {view['members']} members  +{view['added']} -{view['removed']}")


@segments.command("import")
@friendly
def import_members(code: str, program: Program,
                   file: Path = typer.Option(..., help="CSV: member_id, card_number or email column"),
                   mode: str = typer.Option("add", help="add, replace or remove"), as_json: Json = False) -> None:  # fmt: skip
    """Import a static segment's members from CSV."""
    values = cases.identifiers_from_csv(_read(file))
    view = cases.import_members(uow()(), program_uuid(program), code, values, now(), mode=mode, actor="cli")
    emit(view, as_json, f"{view['segment']}  {view['members']} members  +{view['added']} -{view['removed']}"
                        f"  unknown {view['unknown_count']}")  # fmt: skip
    for value in view["unknown"][:20]:
        typer.echo(f"unknown: {value}", err=True)


@segments.command("facts")
@friendly
def facts(program: Program, member: Member, as_json: Json = False) -> None:
    """A member's segments and facts (RFM, recency, churn risk...) as segment conditions see them."""
    view = cases.member_segments(uow()(), program_uuid(program), uuid_arg(member, "member"), now())
    if as_json:
        emit(view)
        return
    typer.echo(f"segments: {', '.join(view['segments']) or '-'}")
    for name in sorted(view["facts"]):
        if name != "attributes":
            typer.echo(f"{name}: {view['facts'][name]}")


@segments.command("recommend")
@friendly
def recommend(program: Program, member: Member, limit: int = typer.Option(5, min=1, max=50),
              as_json: Json = False) -> None:  # fmt: skip
    """The member's next best rewards and products."""
    view = recommendations.recommendations(uow()(), program_uuid(program), uuid_arg(member, "member"), now(),
                                           limit=limit)  # fmt: skip
    if as_json:
        emit(view)
        return
    for r in view["rewards"]:
        typer.echo(f"reward {r['reward_id']}  {r['cost_points']} points  {r['affordable']}")
    for p in view["products"]:
        typer.echo(f"product {p['sku']}  {p['score']}")


@segments.command("offer-stats")
@friendly
def offer_stats(offer: str, program: Program, as_json: Json = False) -> None:
    """An offer's funnel: shown -> activated -> used."""
    view = offers.offer_stats(uow()(), program_uuid(program), offer, now())
    emit(view, as_json, f"{view['offer']}  shown {view['shown']}  activated {view['activated']}  used {view['used']}"
                        f"  uses {view['uses']}")  # fmt: skip


@segments.command("create-survey")
@friendly
def create_survey(program: Program, file: Path = typer.Option(..., help="the survey as JSON"),
                  as_json: Json = False) -> None:  # fmt: skip
    """Create an NPS survey from a JSON file: {"code", "name", "repeat"}."""
    view = surveys.create_survey(uow()(), program_uuid(program), _object(file, "survey"), now(), actor="cli")
    emit(view, as_json, f"{view['code']}  repeat {view['repeat']}")


@segments.command("answer")
@friendly
def answer(survey: str, program: Program, member: Member, score: int = typer.Option(..., help="0-10"),
           comment: str | None = None, channel: str | None = None, as_json: Json = False) -> None:  # fmt: skip
    """Record a member's answer to a survey."""
    view = surveys.answer_survey(uow()(), program_uuid(program), survey, uuid_arg(member, "member"), score, now(),
                                 comment=comment, channel=channel)  # fmt: skip
    emit(view, as_json, f"{view['survey']}  {view['score']} ({view['category']})  +{view['points']} points")


@segments.command("nps")
@friendly
def nps(survey: str, program: Program, start: str | None = typer.Option(None, "--from"),
        end: str | None = typer.Option(None, "--to"), by: str | None = typer.Option(None, help="segment, tier, channel"),
        as_json: Json = False) -> None:  # fmt: skip
    """NPS of a survey on the local days [--from, --to], optionally per segment, tier or channel."""
    report = surveys.survey_nps(uow()(), program_uuid(program), survey, _day(start, "--from"), _day(end, "--to"), by=by)
    if as_json:
        emit(report)
        return
    rows = [("all", report), *((str(g["key"]), g) for g in report.get("groups", []))]
    for label, g in rows:
        value = "-" if g["nps"] is None else f"{g['nps']:g}"
        typer.echo(f"{label}  NPS {value}  responses {g['responses']}  promoters {g['promoters']}  "
                   f"passives {g['passives']}  detractors {g['detractors']}")  # fmt: skip
