"""Bulk export: every member and every transfer exactly once, CSV with its header, JSON Lines that parse, and
balances that add up to the ledger's."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import and_, select

from tests.integration.api_helpers import Api, Caller
from treue.domain.errors import ExportRangeInvalid, InvalidInput
from treue.services.exports import BALANCE_COLUMNS, MEMBER_COLUMNS, POSTING_COLUMNS, TRANSFER_COLUMNS, start_export
from treue.store import tables as t


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def download(caller: Caller, kind: str, **params: str) -> tuple[str, dict[str, str]]:
    response = caller.request("GET", f"/exports/{kind}", params=params)
    assert response.status_code == 200, response.text
    return response.text, dict(response.headers)


def _world(api: Api, now) -> tuple[Caller, str, list[str]]:
    shop = api.tenant("Möbel", pending_days=0)
    shop.admin.post("/rules", {"id": "cashback", "trigger": "purchase",
                               "effects": [{"type": "cashback_percent", "percent": "5"}]})  # fmt: skip
    reward = shop.admin.post("/rewards", {"name": {"de": "Lampe"}, "type": "merchandise", "cost_points": 30})
    members = []
    for n in range(7):
        member = shop.pos.post("/members", {"first_name": f"M{n}", "last_name": "=HYPERLINK(\"x\")" if n == 0 else None,
                                            "phone": "+4917000000" + f"{n:02d}", "attributes": {"n": n}})  # fmt: skip
        members.append(member["id"])
        api.clock.advance(hours=1)
        bought = shop.pos.post("/purchases", {"member_id": member["id"], "external_order_id": f"E-{n}",
                                              "total": f"{40 + n}.00", "currency": "EUR",
                                              "occurred_at": api.clock().isoformat(), "store": "s-1"})  # fmt: skip
        if n % 2:
            shop.pos.post(f"/purchases/{bought['id']}/refunds", {"amount": "10.00"})
        if n % 3 == 0:
            shop.pos.post("/redemptions", {"reward_id": reward["id"], "member_id": member["id"]})
    shop.admin.post(f"/members/{members[1]}/adjustments", {"points": -5, "reason": "correction"})
    shop.pos.post("/members", {})  # a member without any transfer
    return shop.admin, shop.program_id, members


def test_exports_every_member_and_transfer_once_and_balances_add_up(api: Api, now):
    admin, pid, _ = _world(api, now)
    program = UUID(pid)
    with api.engine.connect() as conn:
        member_ids = {str(x) for x in conn.execute(select(t.members.c.id).where(t.members.c.program_id == program))
                      .scalars()}  # fmt: skip
        transfers = {str(x) for x in conn.execute(select(t.transfers.c.id).where(t.transfers.c.program_id == program))
                     .scalars()}  # fmt: skip
        postings = Counter((str(r.transfer_id), str(r.account_id), r.unit, r.amount) for r in conn.execute(
            select(t.postings).where(t.postings.c.program_id == program)))  # fmt: skip
        ledger = defaultdict(int)  # the members' share per unit, from the postings
        for r in conn.execute(select(t.postings.c.unit, t.postings.c.amount).join(t.accounts, and_(
                t.accounts.c.program_id == t.postings.c.program_id, t.accounts.c.id == t.postings.c.account_id))
                .where(t.postings.c.program_id == program, t.accounts.c.member_id.is_not(None))):  # fmt: skip
            ledger[r.unit] += r.amount
    assert len(member_ids) == 8 and len(transfers) > 15 and set(ledger) == {"PTS", "EUR"}

    # members: CSV with its header, one row each; JSON Lines the same members.
    text, headers = download(admin, "members")
    assert headers["content-type"].startswith("text/csv") and headers["x-export-total"] == "8"
    assert 'filename="members.csv"' in headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == MEMBER_COLUMNS
    assert Counter(r["id"] for r in rows) == Counter(member_ids)
    assert rows[0]["last_name"] == '\'=HYPERLINK("x")'  # a formula is defused for spreadsheets
    assert rows[0]["phone"] == "+491700000000" and json.loads(rows[0]["attributes"]) == {"n": 0}
    lines = [json.loads(x) for x in download(admin, "members", format="jsonl")[0].splitlines()]
    assert Counter(x["id"] for x in lines) == Counter(member_ids) and lines[0]["attributes"] == {"n": 0}
    assert lines[0]["last_name"] == '=HYPERLINK("x")'  # JSON Lines carry the value as it is

    # transactions: JSON Lines one object per transfer, its postings summing to zero per unit.
    text, headers = download(admin, "transactions", format="jsonl")
    assert headers["content-type"].startswith("application/jsonl")
    objects = [json.loads(x) for x in text.splitlines()]
    assert Counter(x["transfer_id"] for x in objects) == Counter(transfers)
    assert headers["x-export-total"] == str(len(transfers))
    for transfer in objects:
        sums: dict[str, int] = defaultdict(int)
        for leg in transfer["postings"]:
            sums[leg["unit"]] += leg["amount"]
        assert set(sums.values()) == {0}, transfer
    kinds = Counter(x["kind"] for x in objects)
    assert kinds["earn"] == 7 and kinds["reverse"] >= 3 and kinds["redeem"] == 3 and kinds["adjust"] == 1
    earn = next(x for x in objects if x["kind"] == "earn")
    assert earn["external_order_id"].startswith("E-") and earn["store"] == "s-1" and earn["card_number"]
    assert "rules" in earn["explanation"] or "points" in earn["explanation"]
    # CSV: one row per posting, every posting exactly once.
    rows = list(csv.DictReader(io.StringIO(download(admin, "transactions")[0])))
    assert tuple(rows[0]) == TRANSFER_COLUMNS + POSTING_COLUMNS
    assert Counter((r["transfer_id"], r["account_id"], r["unit"], int(r["amount"])) for r in rows) == postings

    # balances: members' accounts, then the programme's; per unit they sum to zero, the members' to the ledger's.
    rows = list(csv.DictReader(io.StringIO(download(admin, "balances")[0])))
    assert tuple(rows[0]) == BALANCE_COLUMNS
    total: dict[str, int] = defaultdict(int)
    members: dict[str, int] = defaultdict(int)
    for r in rows:
        total[r["unit"]] += int(r["balance"])
        if r["member_id"]:
            members[r["unit"]] += int(r["balance"])
    assert dict(total) == {"PTS": 0, "EUR": 0}
    assert dict(members) == dict(ledger)
    assert {r["kind"] for r in rows if not r["member_id"]} >= {"issuance", "redemption", "cashback"}
    wallet = next(r for r in rows if r["kind"] == "wallet")
    assert wallet["amount"] == f"{int(wallet['balance']) // 100}.{int(wallet['balance']) % 100:02d}"
    jsonl = [json.loads(x) for x in download(admin, "balances", format="jsonl")[0].splitlines()]
    assert len(jsonl) == len(rows) and sum(x["balance"] for x in jsonl if x["unit"] == "PTS") == 0
    assert api.verify(pid) == []


def test_time_range_scopes_and_refusals(api: Api, now, uow_factory):
    admin, pid, members = _world(api, now)
    start, end = now + timedelta(hours=2), now + timedelta(hours=4)  # purchases of members 1..3 were booked then
    params = {"from": start.isoformat(), "to": end.isoformat(), "format": "jsonl"}
    objects = [json.loads(x) for x in download(admin, "transactions", **params)[0].splitlines()]
    assert objects and all(start.isoformat() <= x["recorded_at"].replace("Z", "+00:00") < end.isoformat()
                           for x in objects)  # fmt: skip
    assert {x["member_id"] for x in objects} == {members[1], members[2]}
    enrolled = [json.loads(x)["id"] for x in download(admin, "members", **params)[0].splitlines()]
    assert enrolled == members[2:4]

    tenant_b = api.tenant("B", scopes=("admin", "pos", "read_only"))
    assert download(tenant_b.read_only, "members")[0].splitlines()[1:] == []  # B's export has no A rows
    for kind in ("members", "transactions", "balances"):
        api.refused(tenant_b.pos, "GET", f"/exports/{kind}", 403, "forbidden", pid)
        api.refused(api.operator, "GET", f"/exports/{kind}", 403, "forbidden", pid)
        api.refused(api.anonymous, "GET", f"/exports/{kind}", 401, "unauthorized", pid)
        api.refused(admin, "GET", f"/exports/{kind}", 422, "validation_error", pid, params={"format": "xlsx"})
    api.refused(admin, "GET", "/exports/members", 422, "export_range_invalid", pid,
                params={"from": end.isoformat(), "to": start.isoformat()})  # fmt: skip

    program = UUID(pid)
    with pytest.raises(ExportRangeInvalid):
        start_export(uow_factory, program, "balances", "csv", start=start)
    with pytest.raises(ExportRangeInvalid):
        start_export(uow_factory, program, "members", "csv", start=start.replace(tzinfo=None))
    with pytest.raises(InvalidInput):
        start_export(uow_factory, program, "coupons", "csv")
    # The service streams: nothing is read before the first chunk is asked for, and progress counts units.
    seen: list[int] = []
    export = start_export(uow_factory, program, "transactions", "jsonl", progress=seen.append)
    assert seen == [] and export.unit == "transfers"
    assert sum(1 for _ in export.chunks) == export.total == len(seen)
