"""Offline tills: a JSON Lines batch of purchases, refunds and coupon redemptions, each line applied on its own
with its own idempotency key and original time; conflicts reported per line; uploading again changes nothing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.api_helpers import Api, Caller, assert_problem
from treue.services.tills import REPORT_COLUMNS

NDJSON = "application/x-ndjson"
TILL_TABLES = ("till_batches", "till_batch_lines", "outbox")


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def upload(caller: Caller, text: str, *, media: str = NDJSON, key: str | None = None, status: int = 201) -> Any:
    headers = {"Authorization": f"Bearer {caller.token}", "Content-Type": media}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = caller.client.post("/api/v1/till/batches", content=text.encode(), headers=headers)
    if response.status_code >= 400:
        assert_problem(response)
    assert response.status_code == status, response.text
    return response


def jsonl(*lines: dict[str, Any] | str) -> str:
    return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"


def business(api: Api, program_id: str) -> dict[str, Any]:
    return {k: v for k, v in api.snapshot(program_id).items() if k not in TILL_TABLES}


def report(caller: Caller, batch_id: str, fmt: str) -> str:
    response = caller.request("GET", f"/till/batches/{batch_id}/report", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert f'filename="till-batch-{batch_id}.{fmt}"' in response.headers["content-disposition"]
    return response.text


def by_line(caller: Caller, batch_id: str) -> dict[int, dict[str, Any]]:
    return {row["line"]: row for row in map(json.loads, report(caller, batch_id, "jsonl").splitlines())}


def test_offline_batch_applies_lines_reports_conflicts_and_replays_on_upload_again(api: Api, now):
    shop = api.tenant("Möbel", pending_days=0)
    anna = shop.pos.post("/members", {"first_name": "Anna"})
    ben = shop.pos.post("/members", {"first_name": "Ben"})
    shop.pos.post("/purchases", {"member_id": ben["id"], "external_order_id": "online-1", "total": "100.00",
                                 "currency": "EUR", "occurred_at": (now - timedelta(days=5)).isoformat()})  # fmt: skip
    reward = shop.admin.post("/rewards", {"name": {"de": "Kissen"}, "type": "merchandise", "cost_points": 50})
    coupon = shop.pos.post("/redemptions", {"reward_id": reward["id"], "member_id": ben["id"]})["coupon"]["code"]
    yesterday = now - timedelta(days=1)

    def at(minutes: int) -> str:
        return (yesterday + timedelta(minutes=minutes)).isoformat()

    till = {"store": "berlin-1", "cashier": "c-17"}
    text = jsonl(
        # 1: a refund written before its purchase (line 2): applied after it
        {"key": "till7-r1", "type": "refund", "occurred_at": at(30), "external_order_id": "T-1", "amount": "10.00",
         **till},
        {"key": "till7-p1", "type": "purchase", "occurred_at": at(0), "external_order_id": "T-1", "total": "30.00",
         "currency": "EUR", "scan": anna["card_number"], "lines": [{"sku": "CUP", "quantity": 3, "unit_price": "10.00"}],
         **till},
        {"key": "till7-p2", "type": "purchase", "occurred_at": at(5), "external_order_id": "T-2", "total": "20.00",
         "currency": "EUR", "member_id": ben["id"], "store": "berlin-1", "cashier": "c-3"},
        {"key": "till7-r2", "type": "refund", "occurred_at": at(40), "external_order_id": "T-404"},  # unknown order
        {"key": "till7-r3", "type": "refund", "occurred_at": at(41), "external_order_id": "T-2", "amount": "50.00"},
        {"key": "till7-c1", "type": "coupon", "occurred_at": at(6), "code": coupon, "external_order_id": "T-2"},
        {"key": "till7-c2", "type": "coupon", "occurred_at": at(50), "code": coupon},  # the same coupon again
        "{oops",
        "",  # blank lines are skipped, their numbers kept
        {"key": "till7-p3", "type": "purchase", "occurred_at": at(60), "external_order_id": "T-3", "total": "9.00",
         "currency": "EUR", "card_number": "9276000000000000000"},  # not a card: 422 from the use case
    )  # fmt: skip
    first = upload(shop.pos, text).json()
    assert (first["lines"], first["applied"], first["replayed"], first["conflicts"]) == (9, 4, 0, 5)
    assert first["conflict_codes"] == {"coupon_invalid": 1, "invalid_input": 1, "refund_exceeds_purchase": 1,
                                       "till_line_invalid": 1, "till_order_unknown": 1}  # fmt: skip
    lines = by_line(shop.read_only, first["batch_id"])
    assert sorted(lines) == [1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert {n: (r["outcome"], r["code"]) for n, r in lines.items()} == {
        1: ("applied", None), 2: ("applied", None), 3: ("applied", None), 4: ("conflict", "till_order_unknown"),
        5: ("conflict", "refund_exceeds_purchase"), 6: ("applied", None), 7: ("conflict", "coupon_invalid"),
        8: ("conflict", "till_line_invalid"), 10: ("conflict", "invalid_input")}  # fmt: skip
    assert (lines[2]["points"], lines[1]["points"]) == (30, -10)  # earned, then taken back
    assert (lines[1]["store"], lines[1]["cashier"], lines[3]["cashier"]) == ("berlin-1", "c-17", "c-3")

    # What was applied is what the online use cases record, at the original times.
    purchase = shop.read_only.get(f"/purchases/{lines[2]['reference']}")
    assert (purchase["member_id"], purchase["store"], purchase["cashier"]) == (anna["id"], "berlin-1", "c-17")
    assert purchase["occurred_at"] == "2026-03-01T10:00:00Z"  # the till's time, not the upload's
    assert purchase["refunded"] == "10.00" and purchase["refunds"][0]["external_refund_id"] == "till7-r1"
    assert shop.read_only.get(f"/members/{anna['id']}/balance")["points"] == 20
    assert shop.read_only.get(f"/coupons/{coupon}")["status"] == "consumed"
    assert shop.read_only.get("/purchases", params={"external_order_id": "T-2"})["refunded"] == "0.00"

    # Uploading the same file again changes nothing: every line replays its first result; only the order that is
    # still unknown (and the unreadable line) are reported again.
    before = business(api, shop.program_id)
    again = upload(shop.pos, text).json()
    assert again["batch_id"] != first["batch_id"]
    assert (again["applied"], again["replayed"], again["conflicts"]) == (0, 7, 2)
    assert again["conflict_codes"] == {"till_line_invalid": 1, "till_order_unknown": 1}
    assert business(api, shop.program_id) == before
    replayed = by_line(shop.read_only, again["batch_id"])
    assert replayed[2]["reference"] == lines[2]["reference"] and replayed[2]["points"] == 30
    assert (replayed[7]["outcome"], replayed[7]["code"]) == ("replayed", "coupon_invalid")
    assert (replayed[2]["replay_of_batch"], replayed[2]["replay_of_line"]) == (first["batch_id"], 2)

    # Once the unknown order arrives, uploading the file again applies its refund (and only that).
    shop.pos.post("/purchases", {"member_id": anna["id"], "external_order_id": "T-404", "total": "15.00",
                                 "currency": "EUR", "occurred_at": at(20)})  # fmt: skip
    third = upload(shop.pos, text).json()
    assert (third["applied"], third["replayed"], third["conflicts"]) == (1, 7, 1)
    assert shop.read_only.get("/purchases", params={"external_order_id": "T-404"})["refunded"] == "15.00"
    assert shop.read_only.get(f"/members/{anna['id']}/balance")["points"] == 20

    # A key used again for another line is refused; the first line's result stands.
    changed = jsonl({"key": "till7-p1", "type": "purchase", "occurred_at": at(0), "external_order_id": "T-1",
                     "total": "31.00", "currency": "EUR"})  # fmt: skip
    reused = upload(shop.pos, changed).json()
    assert reused["conflict_codes"] == {"till_key_reused": 1}

    summary = shop.read_only.get(f"/till/batches/{first['batch_id']}")
    assert {k: summary[k] for k in ("lines", "applied", "replayed", "conflicts")} == {
        "lines": 9, "applied": 4, "replayed": 0, "conflicts": 5}  # fmt: skip
    assert summary["finished_at"] is not None
    assert [b["batch_id"] for b in shop.read_only.get("/till/batches")][-1] == first["batch_id"]

    # The report downloads as CSV too: a header, one row per line in file order.
    rows = list(csv.DictReader(io.StringIO(report(shop.read_only, first["batch_id"], "csv"))))
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert [r["line"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7", "8", "10"]
    assert rows[3]["code"] == "till_order_unknown" and rows[1]["points"] == "30" and rows[5]["reference"] == coupon
    assert api.verify(shop.program_id) == []


def test_refund_before_its_purchase_in_one_file_and_coupon_checked_at_the_original_time(api: Api, now):
    shop = api.tenant("Möbel", pending_days=0)
    anna = shop.pos.post("/members", {})
    shop.admin.post(f"/members/{anna['id']}/adjustments", {"points": 100, "reason": "start"})
    reward = shop.admin.post("/rewards", {"name": {"de": "Tasse"}, "type": "merchandise", "cost_points": 50,
                                          "coupon_valid_days": 1})  # fmt: skip
    coupon = shop.pos.post("/redemptions", {"reward_id": reward["id"], "member_id": anna["id"]})["coupon"]
    api.clock.advance(days=3)  # the coupon has expired by the time the till is back online
    later = api.clock()
    text = jsonl(
        {"key": "r", "type": "refund", "occurred_at": (later - timedelta(hours=1)).isoformat(),
         "external_order_id": "T-9", "lines": [{"sku": "LAMP", "quantity": 1}]},
        {"key": "c", "type": "coupon", "occurred_at": now.isoformat(), "code": coupon["code"]},
        {"key": "p", "type": "purchase", "occurred_at": (later - timedelta(hours=2)).isoformat(),
         "external_order_id": "T-9", "total": "40.00", "currency": "EUR", "member_id": anna["id"],
         "lines": [{"sku": "LAMP", "quantity": 1, "unit_price": "25.00"}, {"sku": "CUP", "quantity": 1,
                                                                          "unit_price": "15.00"}]},
    )  # fmt: skip
    summary = upload(shop.pos, text).json()
    assert (summary["applied"], summary["conflicts"]) == (3, 0), by_line(shop.pos, summary["batch_id"])
    purchase = shop.read_only.get("/purchases", params={"external_order_id": "T-9"})
    assert purchase["refunded"] == "25.00"
    assert shop.read_only.get(f"/members/{anna['id']}/balance")["points"] == 100 - 50 + 40 - 25
    # The same coupon at today's time would be refused: the till accepted it while it was valid.
    api.refused(shop.pos, "POST", f"/coupons/{coupon['code']}/consume", 422, "coupon_invalid", shop.program_id,
                json={"order_id": "x"})  # fmt: skip


def test_upload_refusals_upload_key_partner_keys_and_tenancy(api: Api, now):
    shop = api.tenant("Möbel")
    other = api.tenant("Other")
    acme = api.key(shop.program_id, "partner", partner="acme")
    anna = shop.pos.post("/members", {})
    line = {"key": "k-1", "type": "purchase", "occurred_at": now.isoformat(), "external_order_id": "T-1",
            "total": "10.00", "currency": "EUR", "member_id": anna["id"]}  # fmt: skip
    text = jsonl(line)
    pid = shop.program_id
    with api.unchanged(pid):
        for media, status, code in (("application/json", 415, "unsupported_media_type"),
                                    ("text/plain", 415, "unsupported_media_type")):  # fmt: skip
            assert upload(shop.pos, text, media=media, status=status).json()["code"] == code
        assert upload(shop.pos, "\n \n", status=422).json()["code"] == "till_line_invalid"
        assert upload(shop.pos, "x" * (5 * 1024 * 1024 + 1), status=413).json()["code"] == "till_batch_too_large"
        assert upload(shop.pos, jsonl(*([line] * 10_001)), status=413).json()["code"] == "till_batch_too_large"
        response = shop.read_only.client.post("/api/v1/till/batches", content=text.encode(), headers={
            "Authorization": f"Bearer {shop.read_only.token}", "Content-Type": NDJSON})  # fmt: skip
        assert response.status_code == 403
        # Programme B's till naming A's member: the line is refused, A is untouched.
        stranger = upload(other.pos, text).json()
        assert stranger["conflict_codes"] == {"not_found": 1}
        api.refused(shop.pos, "GET", f"/till/batches/{stranger['batch_id']}", 404, "till_batch_not_found", pid)
        assert other.pos.get(f"/till/batches/{stranger['batch_id']}")["lines"] == 1
    assert shop.read_only.request("GET", f"/till/batches/{stranger['batch_id']}/report").status_code == 404

    # An upload with an Idempotency-Key: a retry returns the first batch; another file with the key is refused.
    first = upload(shop.pos, text, key="upload-1").json()
    retry = upload(shop.pos, text, key="upload-1", status=200)
    assert retry.json()["batch_id"] == first["batch_id"] and retry.headers["Idempotent-Replayed"] == "true"
    assert upload(shop.pos, jsonl(line | {"key": "k-2"}), key="upload-1", status=409).json()["code"] == \
        "till_key_reused"  # fmt: skip
    assert len(shop.read_only.get("/till/batches")) == 1

    # A partner's key uploads lines of its own partner only (a line without partner is the partner's).
    mixed = jsonl(line | {"key": "a-1", "external_order_id": "A-1"},
                  line | {"key": "a-2", "external_order_id": "A-2", "partner": "globex"})  # fmt: skip
    result = upload(acme, mixed).json()
    assert (result["applied"], result["conflict_codes"]) == (1, {"invalid_input": 1})
    assert shop.read_only.get("/purchases", params={"external_order_id": "A-1", "partner": "acme"})["partner"] == "acme"
