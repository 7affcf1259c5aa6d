"""The programme simulator over HTTP: replay a recorded period against a draft, beside today's rules.

Synchronous and bounded (at most `LIMIT` purchases and events per request); larger periods run with
`treue simulate`, which shows progress. Admin keys only: it reads every member's history.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from treue.api.auth import ADMIN, Context
from treue.api.schemas.common import PROBLEMS, Input, Output
from treue.services import simulation as cases

router = APIRouter(responses=PROBLEMS, tags=["analytics"])
LIMIT = 200_000


class SimulationCreate(Input):
    draft: dict[str, Any] = Field(description="the draft rules: a treue.rules/1 document (as GET /rules/export)")
    # Bounded (found by fuzzing: 0001-01-01 overflowed the timezone arithmetic into a 500).
    from_: date = Field(alias="from", ge=date(1970, 1, 1), le=date(9998, 12, 31),
                        description="first day replayed (programme-local date)")  # fmt: skip
    to: date = Field(ge=date(1970, 1, 1), le=date(9998, 12, 31), description="last day replayed, inclusive")
    top: int = Field(10, ge=1, le=1000, description="how many rules and members to list")


class SimulationOut(Output):
    period: dict[str, Any]
    current: dict[str, Any]
    draft: dict[str, Any]
    difference: dict[str, int]
    most_affected: list[dict[str, Any]]
    not_replayed: list[str]


@router.post("/simulations", response_model=SimulationOut)
def simulate(body: SimulationCreate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Replay the period's purchases and events against the draft and against today's rules; nothing is
    written. Side by side: points issued, taken back by refunds, projected liability, cost per 100 of revenue,
    the draft's top rules by cost and the members whose points change most."""
    return cases.simulate(ctx.uow(read_only=True), ctx.program_id, body.draft, body.from_, body.to, top=body.top,
                          limit=LIMIT)  # fmt: skip
