"""`treue till`: identify members, draw their cards, upload offline till batches and read their reports (issue 5)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import tills as cases

tills = typer.Typer(help="Tills: identify members, card codes, offline batches and their reports.",
                    no_args_is_help=True)  # fmt: skip

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _report_format(path: Path, given: str | None) -> str:
    fmt = given or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    if fmt not in ("csv", "jsonl"):
        fail(f"invalid_input: report format '{fmt}' (csv or jsonl)")
    return fmt


def _write_report(program: str, batch_id: str, path: Path | None, fmt: str) -> None:
    chunks = cases.report(uow(), program_uuid(program), uuid_arg(batch_id, "batch"), fmt)
    if path is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        for chunk in chunks:
            out.write(chunk)


@tills.command("upload")
@friendly
def upload(file: Path, program: Program,
           report: Annotated[Path | None, typer.Option("--report", help="write the per-line report here "
                                                       "(.csv: CSV, else JSON Lines)")] = None,
           report_format: Annotated[str | None, typer.Option("--report-format", help="csv or jsonl")] = None,
           as_json: Json = False) -> None:  # fmt: skip
    """Apply an offline till's batch (JSON Lines: purchases, refunds, coupon redemptions). Lines are applied one
    by one (purchases first); conflicts are reported per line. Uploading the same file again changes nothing."""
    if not file.is_file():
        fail(f"invalid_input: no such file: {file}")
    content = file.read_bytes()
    pid = program_uuid(program)
    lines = sum(1 for line in content.splitlines() if line.strip())
    columns = (TextColumn("[bold]applying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(
        *columns,
        console=Console(stderr=True),
        redirect_stdout=False,
        transient=True,
        disable=as_json or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("batch", total=lines)
        summary = cases.upload_batch(uow(), pid, content, now(), actor="cli",
                                     progress=lambda n: bar.advance(task, n))  # fmt: skip
    if report is not None:
        _write_report(program, summary["batch_id"], report, _report_format(report, report_format))
    if as_json:
        emit(summary)
        return
    codes = ", ".join(f"{code} {n}" for code, n in summary["conflict_codes"].items())
    typer.echo(f"batch {summary['batch_id']}: {summary['lines']} lines, {summary['applied']} applied, "
               f"{summary['replayed']} replayed, {summary['conflicts']} conflicts" + (f" ({codes})" if codes else ""))  # fmt: skip
    if report is not None:
        typer.echo(f"report: {report}")


@tills.command("report")
@friendly
def batch_report(batch_id: str, program: Program,
                 out: Annotated[Path | None, typer.Option("--out", help="file to write (default: stdout)")] = None,
                 report_format: Annotated[str | None, typer.Option("--format", help="jsonl (default) or csv")] = None,
                 ) -> None:  # fmt: skip
    """A batch's per-line report: outcome, stable error code, what was recorded."""
    fmt = _report_format(out, report_format) if out is not None else (report_format or "jsonl")
    if fmt not in ("csv", "jsonl"):
        fail(f"invalid_input: report format '{fmt}' (csv or jsonl)")
    _write_report(program, batch_id, out, fmt)


@tills.command("show")
@friendly
def show(batch_id: str, program: Program, as_json: Json = False) -> None:
    """A batch's summary."""
    view = cases.get_batch(uow()(read_only=True), program_uuid(program), uuid_arg(batch_id, "batch"))
    emit(view, as_json, f"batch {view['batch_id']}: {view['lines']} lines, {view['applied']} applied, "
                        f"{view['replayed']} replayed, {view['conflicts']} conflicts")  # fmt: skip


@tills.command("identify")
@friendly
def identify(program: Program, scan: str | None = None, card: str | None = None, phone: str | None = None,
             email: str | None = None, as_json: Json = False) -> None:  # fmt: skip
    """Find the member a till's input names: --scan (anything scanned or typed), --card, --phone or --email."""
    found = cases.identify(uow()(read_only=True), program_uuid(program), now(), scan=scan, card_number=card,
                           phone=phone, email=email)  # fmt: skip
    text = "\n".join(f"{m['card_number']}  {m['name'] or '-'}  {m['balance']['available']} points"
                     + (f"  {m['tier']['code']}" if m["tier"] else "") + f"  ({m['id']})" for m in found)  # fmt: skip
    emit(found, as_json, text or "no member found")


@tills.command("card")
@friendly
def card(member: str, program: Program,
         out: Annotated[Path, typer.Option("--out", help="a .svg or .png file")],
         symbology: Annotated[str, typer.Option("--symbology", help="qr, code128 or ean13")] = "qr") -> None:  # fmt: skip
    """Write a member's card code (QR, Code 128 or EAN-13) as SVG or PNG; the printable card is
    GET /api/v1/members/{id}/card.html."""
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in ("svg", "png"):
        fail("invalid_input: --out must end in .svg or .png")
    image = cases.card_image(uow()(read_only=True), program_uuid(program), uuid_arg(member, "member"), symbology,
                             suffix)  # fmt: skip
    out.write_bytes(image)
    typer.echo(f"{symbology} {suffix}: {out} ({len(image)} bytes)")
