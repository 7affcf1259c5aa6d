"""Retention (issue 10): with the programme's setting on, the `retention` job erases exactly the members inactive
for longer than it (no purchase, redemption, custom event, portal sign-in, profile change since), in batches,
once; a dry run lists them and erases none; off by default and per programme; the ledger stays whole."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from tests.integration.helpers import buy, enrol
from treue.domain.errors import MemberErased
from treue.jobs.registry import JOBS
from treue.services.events import RecordEvent, record_event
from treue.services.members import get_member
from treue.services.privacy import get_retention, run_retention, set_retention
from treue.services.programs import create_program
from treue.services.verify import verify


def status(uow_factory, program_id, member_id) -> str:
    return str(get_member(uow_factory(), program_id, member_id)["status"])


def test_the_job_erases_exactly_the_inactive_members(uow_factory, program_id, now):
    assert get_retention(uow_factory(), program_id)["retention_months"] is None  # off by default
    idle = enrol(uow_factory, program_id, now, email="idle@retention.example", first_name="Ida")
    buyer = enrol(uow_factory, program_id, now, email="buyer@retention.example")
    reviewer = enrol(uow_factory, program_id, now, email="reviewer@retention.example")
    late = enrol(uow_factory, program_id, now + timedelta(days=340), email="late@retention.example")
    buy(uow_factory, program_id, buyer, "50.00", now + timedelta(days=300))
    record_event(uow_factory(), program_id, RecordEvent("review.created", member_id=reviewer,
                                                        occurred_at=now + timedelta(days=330)), now + timedelta(days=330))  # fmt: skip
    later = now + timedelta(days=400)  # 13 months on: only `idle` has done nothing for 12 months
    assert run_retention(uow_factory, later, program_id)["programs"] == 0  # off: nothing happens

    set_retention(uow_factory(), program_id, 12, now, actor="test")
    dry = run_retention(uow_factory, later, program_id, dry_run=True)
    assert [c["member_id"] for c in dry["candidates"]] == [str(idle)] and dry["would_erase"] == 1
    assert status(uow_factory, program_id, idle) == "active"

    done = JOBS["retention"](uow_factory, later, program_id)
    assert (done["erased"], done["skipped"]) == (1, 0), done
    assert [status(uow_factory, program_id, m) for m in (idle, buyer, reviewer, late)] == [
        "erased", "active", "active", "active"]  # fmt: skip
    assert get_member(uow_factory(), program_id, idle)["email"] is None
    assert JOBS["retention"](uow_factory, later, program_id)["erased"] == 0  # idempotent

    much_later = now + timedelta(days=300 + 366)  # a year after the purchase, 11 months after the review
    assert run_retention(uow_factory, much_later, program_id, batch=1)["erased"] == 1  # the buyer; batches of one
    assert [status(uow_factory, program_id, m) for m in (buyer, reviewer, late)] == ["erased", "active", "active"]
    assert run_retention(uow_factory, now + timedelta(days=800), program_id, batch=1)["erased"] == 2
    assert verify(uow_factory(), program_id) == []


def test_retention_is_per_programme_and_refuses_bad_values(uow_factory, program_id, now):
    other = UUID(create_program(uow_factory(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    mine = enrol(uow_factory, program_id, now)
    theirs = enrol(uow_factory, other, now)
    set_retention(uow_factory(), program_id, 1, now, actor="test")
    result = run_retention(uow_factory, now + timedelta(days=90))  # every programme with retention on
    assert status(uow_factory, program_id, mine) == "erased" and status(uow_factory, other, theirs) == "active"
    assert result["erased"] >= 1
    for bad in (0, -1, 241, "12", 1.5, True):
        try:
            set_retention(uow_factory(), program_id, bad, now)
        except Exception as error:
            assert getattr(error, "code", None) == "invalid_input", bad
        else:
            raise AssertionError(f"{bad!r} was accepted")
    try:
        record_event(uow_factory(), program_id, RecordEvent("review.created", member_id=mine), now)
    except MemberErased:
        pass
    else:
        raise AssertionError("an erased member's event was recorded")
