"""Social rewards on SQLite and PostgreSQL: coupons granted by rules (once per source, within stock), caps per
attribute and per month, and moderation (held points, approve, reject) with `treue verify` clean throughout."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.integration.helpers import enrol
from tests.integration.rules_helpers import event, fixed, rule
from treue.domain import events
from treue.domain.errors import InsufficientPoints, ModerationDecided, NotFound, NotModerated
from treue.services import earning
from treue.services.events import RecordEvent, list_moderations, moderate_event, record_event
from treue.services.grants import fulfil_grants
from treue.services.points import get_balance
from treue.services.rewards import create_reward, list_redemptions, redeem_reward
from treue.services.verify import verify


def topics(uow_factory, program_id, topic: str) -> list[dict[str, Any]]:
    with uow_factory() as uow:
        return [row["payload"] for row in uow.outbox.recent(program_id, topic, 100)]


def lamp(uow_factory, program_id, now, **kw: Any) -> dict[str, Any]:
    values = {"name": {"de": "Lampe"}, "type": "merchandise", "cost_points": 40, **kw}
    return create_reward(uow_factory(), program_id, values, now)


def granted(uow_factory, program_id, member) -> list[dict[str, Any]]:
    return [r for r in list_redemptions(uow_factory(), program_id, member) if r["status"] == "granted"]


# -- grants ---------------------------------------------------------------------------------------------------


def test_grant_issues_a_coupon_within_stock_and_skips_without_failing(uow_factory, program_id, now):
    reward = lamp(uow_factory, program_id, now, stock=1, sku="LAMP")
    rule(uow_factory, program_id, now, "review-lamp", {"type": "grant_reward", "reward": "LAMP"},
         trigger="review.created")  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    first = event(uow_factory, program_id, member, "review.created", now)
    second = event(uow_factory, program_id, member, "review.created", now)  # out of stock: still recorded
    assert first["id"] != second["id"]
    assert len(granted(uow_factory, program_id, member)) == 1
    outbox = sorted(topics(uow_factory, program_id, events.REWARD_GRANTED), key=lambda p: p["status"])
    assert [p["status"] for p in outbox] == ["granted", "skipped"]
    assert len(outbox[0]["coupon_codes"]) == 1 and outbox[1]["note"].startswith("reward_out_of_stock")
    with uow_factory() as uow:
        assert uow.rewards.get(program_id, UUID(reward["id"])).stock == 0
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 0  # the member's points untouched
    assert verify(uow_factory(), program_id, now) == []


def test_grant_of_an_unknown_or_inactive_reward_is_skipped_with_the_reason(uow_factory, program_id, now):
    off = lamp(uow_factory, program_id, now, active=False)
    rule(uow_factory, program_id, now, "review-gone", {"type": "grant_coupon", "coupon": "NO-SUCH-REWARD"},
         {"type": "grant_reward", "reward": off["id"]}, fixed(5), trigger="review.created")  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    view = event(uow_factory, program_id, member, "review.created", now)
    assert view["points"] == 5  # the event earned its points all the same
    notes = {p["code"]: p for p in topics(uow_factory, program_id, events.COUPON_GRANTED)
             + topics(uow_factory, program_id, events.REWARD_GRANTED)}  # fmt: skip
    assert notes["NO-SUCH-REWARD"]["status"] == "skipped" and notes["NO-SUCH-REWARD"]["note"].startswith(
        "reward_unknown"
    )
    assert notes[off["id"]]["note"].startswith("reward_unavailable")
    assert granted(uow_factory, program_id, member) == []


def test_grants_are_idempotent_per_source_and_honour_quantity(uow_factory, program_id, now):
    reward = lamp(uow_factory, program_id, now, stock=10)
    member = enrol(uow_factory, program_id, now)
    grant = {"kind": "reward", "code": reward["id"], "quantity": 2, "rule": "r"}
    source = {"event_id": "e-1", "event": "review.created"}
    for _ in range(2):
        with uow_factory() as uow:
            fulfil_grants(uow, program_id, member, [dict(grant)], source, now)
            uow.commit()
    assert len(granted(uow_factory, program_id, member)) == 2  # quantity 2, once
    again = dict(grant)
    with uow_factory() as uow:
        fulfil_grants(uow, program_id, member, [again], source, now)
    assert again["status"] == "already_granted" and len(again["coupon_codes"]) == 2
    with uow_factory() as uow:
        fulfil_grants(uow, program_id, member, [dict(grant)], {"event_id": "e-2"}, now)
        uow.commit()
    assert len(granted(uow_factory, program_id, member)) == 4  # another source grants again
    with uow_factory() as uow:
        assert uow.rewards.get(program_id, UUID(reward["id"])).stock == 6
    assert verify(uow_factory(), program_id, now) == []


# -- caps ------------------------------------------------------------------------------------------------------

KEYED = "attributes" in inspect.signature(earning.usage_keys).parameters and "facts.attributes" in inspect.getsource(
    earning.run_rules)  # fmt: skip


@pytest.mark.xfail(not KEYED, reason="needs services/earning.run_rules to pass facts.attributes to usage_keys (lead)",
                   strict=True)  # fmt: skip
def test_one_review_reward_per_product(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "review", fixed(50, pending="0D"), trigger="review.created",
         limits={"per_member": [{"awards": 1, "per": "lifetime", "key": "event.attributes.product"}]})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    got = [event(uow_factory, program_id, member, "review.created", now, product=p)["points"]
           for p in ("SOFA", "SOFA", "LAMP", "SOFA", "LAMP")]  # fmt: skip
    assert got == [50, 0, 50, 0, 0]
    other = enrol(uow_factory, program_id, now)  # per member
    assert event(uow_factory, program_id, other, "review.created", now, product="SOFA")["points"] == 50


def test_at_most_five_shares_rewarded_a_month(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "share", fixed(10, pending="0D"), trigger="social.shared",
         limits={"per_member": [{"awards": 5, "per": "month"}]})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    march = [event(uow_factory, program_id, member, "social.shared", now + timedelta(days=d), network="instagram",
                   url=f"https://instagram.example/p/{d}")["points"] for d in range(7)]  # fmt: skip
    assert march == [10] * 5 + [0, 0]
    april = now.replace(month=4, day=2)
    assert event(uow_factory, program_id, member, "social.shared", april, network="x")["points"] == 10
    assert get_balance(uow_factory(), program_id, member, april)["points"] == 60


# -- moderation ------------------------------------------------------------------------------------------------


def moderated(uow_factory, program_id, member, now, name: str = "review.created", **attributes: Any) -> dict[str, Any]:
    return record_event(uow_factory(), program_id, RecordEvent(name, member_id=member, attributes=attributes,
                                                               occurred_at=now, moderation="pending"), now)  # fmt: skip


def test_moderated_points_are_pending_until_approved(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "review", fixed(50, pending="0D"), trigger="review.created")
    reward = lamp(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    view = moderated(uow_factory, program_id, member, now, product="SOFA")
    assert view["points"] == 50 and view["moderation"] == "pending"
    balance = get_balance(uow_factory(), program_id, member, now + timedelta(days=30))
    assert (balance["points"], balance["available"], balance["pending"]) == (50, 0, 50)
    with pytest.raises(InsufficientPoints):
        redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    assert [m["event_id"] for m in list_moderations(uow_factory(), program_id)] == [view["id"]]
    assert verify(uow_factory(), program_id, now) == []

    later = now + timedelta(hours=2)
    approved = moderate_event(uow_factory(), program_id, UUID(view["id"]), "approve", later, actor="moderator")
    assert approved["status"] == "approved" and approved["lots"][0]["available_at"] == later.isoformat()
    assert get_balance(uow_factory(), program_id, member, later)["available"] == 50
    redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), later)
    assert get_balance(uow_factory(), program_id, member, later)["points"] == 10
    assert topics(uow_factory, program_id, events.EVENT_APPROVED)[0]["event_id"] == view["id"]
    assert list_moderations(uow_factory(), program_id) == []
    with pytest.raises(ModerationDecided):
        moderate_event(uow_factory(), program_id, UUID(view["id"]), "reject", later)
    assert verify(uow_factory(), program_id, later) == []


def test_rejected_moderation_voids_points_cancels_coupons_and_frees_the_cap(uow_factory, program_id, now):
    reward = lamp(uow_factory, program_id, now, stock=5)
    rule(uow_factory, program_id, now, "review", fixed(50, pending="0D"), {"type": "grant_reward", "reward": reward["id"]},
         trigger="review.created", limits={"per_member": [{"awards": 1, "per": "month"}]})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    view = moderated(uow_factory, program_id, member, now)
    assert len(granted(uow_factory, program_id, member)) == 1
    assert event(uow_factory, program_id, member, "review.created", now)["points"] == 0  # the cap counts it
    rejected = moderate_event(uow_factory(), program_id, UUID(view["id"]), "reject", now, note="spam")
    assert rejected["status"] == "rejected" and rejected["points_voided"] == 50
    assert rejected["coupons"][0]["status"] == "cancelled"
    balance = get_balance(uow_factory(), program_id, member, now)
    assert (balance["points"], balance["pending"]) == (0, 0)
    assert granted(uow_factory, program_id, member) == []
    assert topics(uow_factory, program_id, events.EVENT_REJECTED)[0]["event_id"] == view["id"]
    assert event(uow_factory, program_id, member, "review.created", now)["points"] == 50  # the cap was given back
    with uow_factory() as uow:
        assert uow.rewards.get(program_id, UUID(reward["id"])).stock == 4  # 5 - 2 granted + 1 back
    assert verify(uow_factory(), program_id, now) == []


def test_moderation_of_an_unmoderated_or_unknown_event_is_refused(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "review", fixed(50), trigger="review.created")
    member = enrol(uow_factory, program_id, now)
    plain = event(uow_factory, program_id, member, "review.created", now)
    with pytest.raises(NotModerated):
        moderate_event(uow_factory(), program_id, UUID(plain["id"]), "approve", now)
    with pytest.raises(NotFound):
        moderate_event(uow_factory(), program_id, UUID(int=7), "approve", now)
    zero = moderated(uow_factory, program_id, member, now, "survey.answered")  # no rule: nothing held
    assert moderate_event(uow_factory(), program_id, UUID(zero["id"]), "reject", now)["points_voided"] == 0
