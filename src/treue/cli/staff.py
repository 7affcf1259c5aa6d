"""`treue staff ...`: the people who sign in to the admin dashboard (/admin) of a programme."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import typer

from treue.cli.common import emit, friendly, now, program_uuid, uow
from treue.services import staff as cases

staff = typer.Typer(help="Staff users of the admin dashboard: add and list.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]


@staff.command("add")
@friendly
def staff_add(
    program: Program,
    email: Annotated[str, typer.Option(help="the address the person signs in with")],
    role: Annotated[str, typer.Option(help="owner | manager | support | analyst | partner")],
    partner: Annotated[str | None, typer.Option(help="partner users: the partner whose data they see")] = None,
    locale: Annotated[str, typer.Option(help="de | en: the dashboard's language for this person")] = "de",
    prompt: Annotated[
        bool, typer.Option("--prompt", help="type the password (hidden) instead of a generated one")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Add a staff user. Without --prompt a password is generated and printed once."""
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True) if prompt else None
    view = cases.add_staff(uow()(), program_uuid(program), email, role, now(), password=password, partner=partner,
                           locale=locale)  # fmt: skip
    text = f"added {view['email']} ({view['role']}{', ' + view['partner'] if view['partner'] else ''})"
    if view["password"]:
        text += f"\npassword: {view['password']}  (shown only now)"
    emit(view, as_json, text)


@staff.command("list")
@friendly
def staff_list(program: Program, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The programme's staff users and their roles."""
    found = cases.list_staff(uow()(), program_uuid(program))
    if as_json:
        emit(found)
        return
    for row in found:
        locked = f"  locked until {row['locked_until']}" if row["locked_until"] else ""
        typer.echo(f"{row['email']}  {row['role']}{'  ' + row['partner'] if row['partner'] else ''}{locked}")


DEMO_ROLES = (("owner", None), ("manager", None), ("support", None), ("analyst", None), ("partner", "default"))


def add_demo_staff(factory: Any, program_id: UUID, at: datetime) -> list[dict[str, Any]]:
    """`treue demo`: one staff user per role, with generated passwords printed once."""
    added = []
    typer.echo("Admin dashboard (/admin) users of the demo:")
    for role, partner in DEMO_ROLES:
        view = cases.add_staff(factory(), program_id, f"{role}@demo.example", role, at, partner=partner,
                               actor="demo")  # fmt: skip
        typer.echo(f"  {role:8} {view['email']:24} password: {view['password']}")
        added.append(view)
    return added
