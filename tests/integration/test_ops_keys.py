"""API key rotation on SQLite and PostgreSQL: a new secret for the same key, the old one honoured for a grace
period and refused after it, last-used times, tenancy, the audit trail, the API route and `treue keys rotate`."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID

import pytest
from typer.testing import CliRunner

from tests.integration.api_helpers import Api, Caller
from treue.api.auth import forget_cached_keys
from treue.domain.errors import InvalidInput, NotFound
from treue.services.audit import list_audit
from treue.services.keys import (
    TOUCH_EVERY,
    Unauthorized,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    rotate_api_key,
)
from treue.services.programs import create_program


def _key(uow_factory, program_id: UUID, key_id: str) -> dict:
    return next(k for k in list_api_keys(uow_factory(), program_id) if k["id"] == key_id)


def test_a_rotated_key_keeps_its_identity_and_honours_the_old_secret_for_the_grace_period(uow_factory, program_id,
                                                                                          now):  # fmt: skip
    created = create_api_key(uow_factory(), program_id, "pos", "till 1", now)
    old = created["key"]
    rotated = rotate_api_key(uow_factory(), UUID(created["id"]), program_id, now, timedelta(hours=24),
                             actor="staff:owner@example.org")  # fmt: skip
    new = rotated["key"]
    assert new != old and new.startswith(f"trk_{created['prefix']}_")
    assert (rotated["id"], rotated["scope"], rotated["name"]) == (created["id"], "pos", "till 1")
    assert rotated["previous_valid_until"] == (now + timedelta(hours=24)).isoformat().replace("+00:00", "Z")

    for token in (old, new):  # within the grace period both work, as the same key
        who = authenticate(uow_factory(), token, now + timedelta(hours=23, minutes=59))
        assert (str(who.key_id), who.scope.value, who.name) == (created["id"], "pos", "till 1")
    with pytest.raises(Unauthorized):
        authenticate(uow_factory(), old, now + timedelta(hours=24))  # the grace period is over
    assert str(authenticate(uow_factory(), new, now + timedelta(days=90)).key_id) == created["id"]

    listed = _key(uow_factory, program_id, created["id"])
    assert listed["rotated_at"] == now.isoformat().replace("+00:00", "Z") and listed["revoked_at"] is None
    # Only hashes are stored, and the audit log names the key, never a secret.
    (entry,) = [a for a in list_audit(uow_factory(), program_id) if a["action"] == "api_key.rotate"]
    assert entry["actor"] == "staff:owner@example.org" and entry["target_id"] == created["id"]
    assert entry["after"]["prefix"] == created["prefix"] and entry["before"]["previous_valid_until"] is None
    text = json.dumps(entry)
    assert old.split("_", 2)[2] not in text and new.split("_", 2)[2] not in text  # the secret may hold "_"


def test_without_a_grace_period_the_old_secret_is_refused_at_once(uow_factory, program_id, now):
    created = create_api_key(uow_factory(), program_id, "admin", "", now)
    rotated = rotate_api_key(uow_factory(), UUID(created["id"]), program_id, now, timedelta(0))
    assert rotated["previous_valid_until"] is None
    with pytest.raises(Unauthorized):
        authenticate(uow_factory(), created["key"], now)
    assert authenticate(uow_factory(), rotated["key"], now).scope.value == "admin"


def test_rotating_twice_keeps_only_the_current_and_the_one_before(uow_factory, program_id, now):
    first = create_api_key(uow_factory(), program_id, "pos", "", now)
    second = rotate_api_key(uow_factory(), UUID(first["id"]), program_id, now, timedelta(hours=1))
    third = rotate_api_key(
        uow_factory(), UUID(first["id"]), program_id, now + timedelta(minutes=10), timedelta(hours=1)
    )
    at = now + timedelta(minutes=20)
    with pytest.raises(Unauthorized):
        authenticate(uow_factory(), first["key"], at)
    assert authenticate(uow_factory(), second["key"], at) == authenticate(uow_factory(), third["key"], at)


def test_the_last_used_time_follows_either_secret_to_the_touch_precision(uow_factory, program_id, now):
    created = create_api_key(uow_factory(), program_id, "pos", "", now)
    assert _key(uow_factory, program_id, created["id"])["last_used_at"] is None
    rotated = rotate_api_key(uow_factory(), UUID(created["id"]), program_id, now, timedelta(hours=2))
    used = now + timedelta(minutes=30)
    authenticate(uow_factory(), created["key"], used)  # the old secret, in its grace period
    assert _key(uow_factory, program_id, created["id"])["last_used_at"] == used.isoformat().replace("+00:00", "Z")
    authenticate(uow_factory(), rotated["key"], used + TOUCH_EVERY / 2)  # within the precision: no write
    assert _key(uow_factory, program_id, created["id"])["last_used_at"] == used.isoformat().replace("+00:00", "Z")
    later = used + TOUCH_EVERY + timedelta(seconds=1)
    authenticate(uow_factory(), rotated["key"], later)
    assert _key(uow_factory, program_id, created["id"])["last_used_at"] == later.isoformat().replace("+00:00", "Z")


def test_another_programmes_key_a_revoked_key_and_a_bad_grace_cannot_be_rotated(uow_factory, program_id, now):
    other = UUID(create_program(uow_factory(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    theirs = create_api_key(uow_factory(), other, "admin", "", now)
    with pytest.raises(NotFound):
        rotate_api_key(uow_factory(), UUID(theirs["id"]), program_id, now)
    assert authenticate(uow_factory(), theirs["key"], now).program_id == other  # unchanged
    assert not [a for a in list_audit(uow_factory(), program_id) if a["action"] == "api_key.rotate"]

    mine = create_api_key(uow_factory(), program_id, "pos", "", now)
    for grace in (timedelta(hours=-1), timedelta(days=31)):
        with pytest.raises(InvalidInput):
            rotate_api_key(uow_factory(), UUID(mine["id"]), program_id, now, grace)
    revoke_api_key(uow_factory(), UUID(mine["id"]), program_id, now, actor="staff:x@example.org")
    with pytest.raises(NotFound):
        rotate_api_key(uow_factory(), UUID(mine["id"]), program_id, now)
    actions = [(a["action"], a["target_id"]) for a in list_audit(uow_factory(), program_id)]
    assert ("api_key.revoke", mine["id"]) in actions and ("api_key.create", mine["id"]) in actions


def test_the_api_rotates_a_key_of_its_own_programme_only(engine, now):
    api = Api(engine, now)
    a = api.tenant("A", scopes=("admin", "pos", "read_only"))
    b = api.tenant("B", scopes=("admin",))
    pos = a.pos
    old = Caller(api.client, pos.token, pos.key_id)
    rotated = a.admin.post(f"/keys/{pos.key_id}/rotate", {"grace_hours": 1}, status=200)
    assert rotated["id"] == pos.key_id and rotated["key"] != pos.token and rotated["scope"] == "pos"
    new = Caller(api.client, rotated["key"], pos.key_id)
    forget_cached_keys()
    assert old.get("/program")["id"] == new.get("/program")["id"] == a.program_id  # within the hour: both
    api.clock.advance(hours=1)
    forget_cached_keys()
    assert old.request("GET", "/program").status_code == 401
    assert new.get("/program")["id"] == a.program_id

    with api.unchanged(a.program_id):
        api.refused(b.admin, "POST", f"/keys/{pos.key_id}/rotate", 404, "not_found", a.program_id,
                    json={"grace_hours": 0})  # fmt: skip
        api.refused(a.read_only, "POST", f"/keys/{pos.key_id}/rotate", 403, "forbidden", a.program_id, json={})
        api.refused(a.admin, "POST", f"/keys/{pos.key_id}/rotate", 422, "validation_error", a.program_id,
                    json={"grace_hours": -1})  # fmt: skip
    # A retry with the same Idempotency-Key answers with the same secret and rotates nothing more.
    once = a.admin.post(f"/keys/{pos.key_id}/rotate", {"grace_hours": 0}, status=200, idem="rotate-1")
    again = a.admin.post(f"/keys/{pos.key_id}/rotate", {"grace_hours": 0}, status=200, idem="rotate-1")
    assert once["key"] == again["key"]
    forget_cached_keys()
    assert new.request("GET", "/program").status_code == 401  # no grace asked for
    assert Caller(api.client, once["key"]).get("/program")["id"] == a.program_id
    audit = a.admin.get("/audit")
    assert [e["actor"] for e in audit if e["action"] == "api_key.rotate"] == ["key:admin", "key:admin"]
    api.client.close()


def test_treue_keys_rotate(uow_factory, program_id, now, monkeypatch):
    from treue import cli
    from treue.cli import common

    monkeypatch.setattr(common, "_factory", uow_factory)
    created = create_api_key(uow_factory(), program_id, "pos", "till", now)
    runner = CliRunner()
    done = runner.invoke(cli.app, ["keys", "rotate", created["id"], "--grace-hours", "0", "--json"])
    assert done.exit_code == 0, done.output
    view = json.loads(done.stdout)
    assert view["id"] == created["id"] and view["key"] != created["key"] and view["previous_valid_until"] is None
    with pytest.raises(Unauthorized):
        authenticate(uow_factory(), created["key"], now + timedelta(seconds=1))
    assert authenticate(uow_factory(), view["key"], now + timedelta(seconds=1)).name == "till"
    assert ("api_key.rotate", "cli") in [(a["action"], a["actor"]) for a in list_audit(uow_factory(), program_id)]

    other = UUID(create_program(uow_factory(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    refused = runner.invoke(cli.app, ["keys", "rotate", created["id"], "--program", str(other)])
    assert refused.exit_code == 1 and "not_found" in refused.output
    refused = runner.invoke(cli.app, ["keys", "rotate", "not-a-key"])
    assert refused.exit_code == 1 and "invalid_input" in refused.output
