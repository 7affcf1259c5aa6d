"""Card-linked earning (issue 11): a purchase paid with a linked card is the member's without a loyalty card;
matching follows the link's history; tokens are per programme; rule conditions see the payment; card-linked
offers apply once activated; the acquirer's feed imports idempotently, with refunds and chargebacks reversing
what the sale earned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from tests.integration.api_helpers import snapshot
from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import fixed, rule
from treue.domain.errors import CardNumberRefused, CardTokenTaken, OfferUnavailable
from treue.services.card_feeds import import_feed
from treue.services.cards import link_card, member_cards, set_merchant, unlink_card
from treue.services.kpis import kpis
from treue.services.offers import activate_offer, create_offer, list_offers, member_offers
from treue.services.partners import create_partner
from treue.services.programs import create_program
from treue.services.purchases import PaymentInput, RefundPurchase, get_purchase, refund_purchase
from treue.services.verify import verify
from treue.services.wallet import get_wallet

VISA = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2029}


def link(uow_factory, program_id, member, token, now, **display):
    return link_card(uow_factory(), program_id, member, {"token": token, **VISA, **display}, now)


def paid(token: str, brand: str | None = "visa") -> PaymentInput:
    return PaymentInput(token, brand)


# -- matching ---------------------------------------------------------------------------------------------------
def test_a_token_purchase_is_the_members_only_while_the_card_is_linked(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    card = link(uow_factory, program_id, member, "tok_alice_visa", now)
    assert card["created"] and card["status"] == "linked" and card["linked_at"] == "2026-03-02T10:00:00Z"

    before = buy(uow_factory, program_id, None, "10.00", now - timedelta(hours=1), payment=paid("tok_alice_visa"))
    during = buy(uow_factory, program_id, None, "20.00", now + timedelta(hours=1), payment=paid("tok_alice_visa"))
    assert before["member_id"] is None and before["points_earned"] == 0 and not before["payment"]["card_linked"]
    assert during["member_id"] == str(member) and during["points_earned"] == 20
    assert during["payment"] == {"card_linked": True, "card_id": card["id"], "brand": "visa", "offers": []}

    unlinked = unlink_card(uow_factory(), program_id, member, UUID(card["id"]), now + timedelta(hours=2), "lost")
    assert unlinked["status"] == "unlinked" and unlinked["unlinked_at"] == "2026-03-02T12:00:00Z"
    after = buy(uow_factory, program_id, None, "30.00", now + timedelta(hours=3), payment=paid("tok_alice_visa"))
    assert after["member_id"] is None and after["points_earned"] == 0
    # A purchase made while the card was linked, arriving after the unlink (a late feed), is still the member's.
    late = buy(uow_factory, program_id, None, "40.00", now + timedelta(hours=1, minutes=30),
               payment=paid("tok_alice_visa"))  # fmt: skip
    assert late["member_id"] == str(member) and late["points_earned"] == 40
    # History stays: the unlinked card is listed with --all only.
    assert member_cards(uow_factory(), program_id, member, now) == []
    (history,) = member_cards(uow_factory(), program_id, member, now, include_unlinked=True)
    assert history["unlink_reason"] == "lost" and history["last4"] == "4242"
    # An unknown token is an anonymous purchase; a named member keeps the purchase, card_linked only if it is theirs.
    other = enrol(uow_factory, program_id, now)
    relinked = link(uow_factory, program_id, member, "tok_alice_visa", now + timedelta(hours=4))
    assert relinked["created"] and relinked["id"] != card["id"]
    named = buy(uow_factory, program_id, other, "5.00", now + timedelta(hours=5), payment=paid("tok_alice_visa"))
    assert named["member_id"] == str(other) and not named["payment"]["card_linked"]
    own = buy(uow_factory, program_id, member, "5.00", now + timedelta(hours=5), payment=paid("tok_alice_visa"))
    assert own["payment"]["card_linked"]
    assert buy(uow_factory, program_id, None, "5.00", now, payment=paid("tok_nobody"))["member_id"] is None
    assert verify(uow_factory(), program_id, now + timedelta(hours=6)) == []


def test_a_token_belongs_to_one_member_per_programme(uow_factory, program_id, now):
    alice, bob = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    first = link(uow_factory, program_id, alice, "tok_shared_1", now)
    again = link(uow_factory, program_id, alice, "tok_shared_1", now + timedelta(minutes=5))
    assert again["id"] == first["id"] and again["created"] is False
    with pytest.raises(CardTokenTaken):
        link(uow_factory, program_id, bob, "tok_shared_1", now)
    unlink_card(uow_factory(), program_id, alice, UUID(first["id"]), now + timedelta(hours=1))
    taken_over = link(uow_factory, program_id, bob, "tok_shared_1", now + timedelta(hours=2))
    assert taken_over["member_id"] == str(bob)
    # Each purchase goes to whoever had the token at its time.
    at = {"alice": now + timedelta(minutes=30), "gap": now + timedelta(hours=1, minutes=30),
          "bob": now + timedelta(hours=3)}  # fmt: skip
    owners = {name: buy(uow_factory, program_id, None, "1.00", when, payment=paid("tok_shared_1"))["member_id"]
              for name, when in at.items()}  # fmt: skip
    assert owners == {"alice": str(alice), "gap": None, "bob": str(bob)}


def test_tokens_are_per_programme(uow_factory, program_id, now):
    other_program = UUID(create_program(uow_factory(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    here, there = enrol(uow_factory, program_id, now), enrol(uow_factory, other_program, now)
    link(uow_factory, program_id, here, "tok_same_everywhere", now)
    link(uow_factory, other_program, there, "tok_same_everywhere", now)  # no conflict across programmes
    later = now + timedelta(hours=1)
    a = buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_same_everywhere"))
    b = buy(uow_factory, other_program, None, "10.00", later, payment=paid("tok_same_everywhere"))
    assert (a["member_id"], b["member_id"]) == (str(here), str(there))
    assert member_cards(uow_factory(), other_program, there, now)[0]["member_id"] == str(there)
    with pytest.raises(Exception, match="not found"):
        member_cards(uow_factory(), program_id, there, now)  # B's member is not A's


def test_a_card_number_is_refused_wherever_it_is_given(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    for data in (
        {"token": "4111 1111 1111 1111"},
        {"token": "tok_ok_123", "fingerprint": "4111-1111-1111-1111"},
        {"token": "tok_ok_123", "last4": "4111111111111111"},
        {"token": "tok_4111111111111111"},
    ):
        with pytest.raises(CardNumberRefused) as refused:
            link_card(uow_factory(), program_id, member, {**VISA, **data}, now)
        assert "4111" not in refused.value.detail
    with pytest.raises(CardNumberRefused):
        buy(uow_factory, program_id, None, "1.00", now, payment=paid("5500000000000004"))
    assert member_cards(uow_factory(), program_id, member, now, include_unlinked=True) == []


# -- rule conditions ----------------------------------------------------------------------------------------------
def test_rules_can_test_whether_a_purchase_was_card_linked_and_its_brand_and_partner(uow_factory, program_id, now):
    create_partner(uow_factory(), program_id, {"code": "px", "name": "Partner X"}, now)
    rule(
        uow_factory,
        program_id,
        now,
        "card-bonus",
        fixed(50),
        condition='purchase.payment.card_linked && purchase.payment.brand == "visa" && purchase.partner == "px"',
    )
    member = enrol(uow_factory, program_id, now)
    link(uow_factory, program_id, member, "tok_rule_visa", now)
    link(uow_factory, program_id, member, "tok_rule_amex", now, brand="amex")
    later = now + timedelta(minutes=1)
    visa = buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_rule_visa"), partner="px")
    amex = buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_rule_amex", "amex"), partner="px")
    other_partner = buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_rule_visa"))
    loyalty_card = buy(uow_factory, program_id, member, "10.00", later, partner="px")
    assert [x["points_earned"] for x in (visa, amex, other_partner, loyalty_card)] == [60, 10, 10, 10]
    with pytest.raises(Exception, match="no field 'card_number'"):
        rule(uow_factory, program_id, now, "bad", fixed(1), condition="purchase.payment.card_number == ''")


# -- card-linked offers ---------------------------------------------------------------------------------------------
def xmas_offer(uow_factory, program_id, now, **fields):
    data = {"code": "march5", "name": {"de": "5 % Cashback bei Partner X im März", "en": "5 % cashback at X"},
            "partners": ["px"], "starts": "2026-03-01", "ends": "2026-03-31",
            "effects": [{"type": "cashback_percent", "percent": "5"}], "limit_per_member": 2, **fields}  # fmt: skip
    return create_offer(uow_factory(), program_id, data, now)


def test_a_card_linked_offer_applies_once_activated_inside_its_window_at_its_partner(uow_factory, program_id, now):
    create_partner(uow_factory(), program_id, {"code": "px", "name": "Partner X"}, now)
    offer = xmas_offer(uow_factory, program_id, now)
    assert offer["campaign_id"] == "offer-march5" and offer["status"] == "running"
    member = enrol(uow_factory, program_id, now)
    link(uow_factory, program_id, member, "tok_offer", now)
    at = now + timedelta(hours=1)

    not_activated = buy(uow_factory, program_id, None, "100.00", at, payment=paid("tok_offer"), partner="px")
    assert "cashback" not in not_activated and not_activated["payment"]["offers"] == []
    assert [o["state"] for o in member_offers(uow_factory(), program_id, member, at)] == ["available"]

    activated = activate_offer(uow_factory(), program_id, member, "march5", at)
    assert activated["activated"] and activated["state"] == "activated"
    assert activate_offer(uow_factory(), program_id, member, "march5", at)["activated"] is False
    later = at + timedelta(minutes=1)
    applies = buy(uow_factory, program_id, None, "100.00", later, payment=paid("tok_offer"), partner="px")
    assert applies["cashback"]["amount"] == "5.00" and applies["payment"]["offers"] == ["march5"]
    other_partner = buy(uow_factory, program_id, None, "100.00", later, payment=paid("tok_offer"))
    assert "cashback" not in other_partner
    with_loyalty_card = buy(uow_factory, program_id, member, "100.00", later, partner="px")  # not card-linked
    assert "cashback" not in with_loyalty_card
    outside = buy(uow_factory, program_id, None, "100.00", datetime(2026, 4, 2, 10, tzinfo=UTC),
                  payment=paid("tok_offer"), partner="px")  # fmt: skip
    assert outside["member_id"] == str(member) and "cashback" not in outside
    # A purchase before the activation (a late feed) does not get it.
    earlier = buy(uow_factory, program_id, None, "100.00", at - timedelta(minutes=1), payment=paid("tok_offer"),
                  partner="px")  # fmt: skip
    assert "cashback" not in earlier

    second = buy(uow_factory, program_id, None, "50.00", later, payment=paid("tok_offer"), partner="px")
    assert second["cashback"]["amount"] == "2.50"
    third = buy(uow_factory, program_id, None, "50.00", later, payment=paid("tok_offer"), partner="px")
    assert "cashback" not in third  # the limit per member is 2
    (mine,) = member_offers(uow_factory(), program_id, member, later)
    assert (mine["state"], mine["uses"], mine["uses_left"]) == ("exhausted", 2, 0)
    (funnel,) = list_offers(uow_factory(), program_id, later)
    assert (funnel["members_activated"], funnel["uses"]) == (1, 2)
    assert get_wallet(uow_factory(), program_id, member, later)["balance"] == "7.50"

    # A refund reverses the offer's cashback in proportion (the return policy decides what is forgiven).
    back = refund_purchase(uow_factory(), program_id, UUID(applies["id"]), RefundPurchase(amount="100.00"), later)
    assert back["cashback"]["taken_back"] == "5.00"
    assert get_wallet(uow_factory(), program_id, member, later)["balance"] == "2.50"
    assert verify(uow_factory(), program_id, later) == []


def test_an_ended_offer_or_one_outside_the_audience_cannot_be_activated(uow_factory, program_id, now):
    create_partner(uow_factory(), program_id, {"code": "px", "name": "Partner X"}, now)
    xmas_offer(uow_factory, program_id, now, code="gold-only", audience='member.tier == "gold"')
    xmas_offer(uow_factory, program_id, now, code="february", starts="2026-02-01", ends="2026-02-28")
    member = enrol(uow_factory, program_id, now)
    for code in ("gold-only", "february"):
        with pytest.raises(OfferUnavailable):
            activate_offer(uow_factory(), program_id, member, code, now)
    assert member_offers(uow_factory(), program_id, member, now) == []


# -- the acquirer's feed ----------------------------------------------------------------------------------------------
HEADER = "merchant_id,token,amount,currency,occurred_at,authorisation_code,type,original_authorisation_code\n"


def feed(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


def test_a_feed_imports_once_matches_tokens_and_reverses_refunds_and_chargebacks(engine, uow_factory, program_id,
                                                                                 now):  # fmt: skip
    create_partner(uow_factory(), program_id, {"code": "px", "name": "Partner X"}, now)
    set_merchant(uow_factory(), program_id, "MID-0001", "px", now)
    member = enrol(uow_factory, program_id, now)
    link(uow_factory, program_id, member, "tok_feed_1", now)
    text = feed(
        "MID-0001,tok_feed_1,100.00,EUR,2026-03-02T11:00:00Z,A1,sale,",
        "MID-0001,tok_feed_1,40.00,EUR,2026-03-02T12:00:00Z,A2,sale,",
        "MID-0001,tok_stranger,25.00,EUR,2026-03-02T12:00:00Z,A3,sale,",
        "MID-0001,tok_feed_1,30.00,EUR,2026-03-03T09:00:00Z,R1,refund,A1",
        "MID-0001,tok_feed_1,40.00,EUR,2026-03-04T09:00:00Z,C1,chargeback,A2",
        "MID-9999,tok_feed_1,10.00,EUR,2026-03-02T12:00:00Z,A4,sale,",
        "MID-0001,tok_feed_1,10.00,USD,2026-03-02T12:00:00Z,A5,sale,",
        "MID-0001,4111111111111111,10.00,EUR,2026-03-02T12:00:00Z,A6,sale,",
        "MID-0001,tok_feed_1,10.00,EUR,2026-03-02T12:00:00Z,R2,refund,NOPE",
    )
    ticks: list[int] = []
    first = import_feed(uow_factory, program_id, text, "csv", now, filename="feed.csv", progress=ticks.append)
    assert len(ticks) == 9
    assert {k: first[k] for k in ("lines", "sales", "matched", "anonymous", "refunds", "chargebacks",
                                  "already_imported")} == {"lines": 9, "sales": 3, "matched": 2, "anonymous": 1,
                                                           "refunds": 1, "chargebacks": 1, "already_imported": 0}  # fmt: skip
    errors = {e["line"]: e["code"] for e in first["errors"]}
    assert errors == {7: "merchant_unknown", 8: "currency_mismatch", 9: "card_number_refused",
                      10: "card_feed_invalid"}  # fmt: skip
    assert "4111111111111111" not in str(first)
    assert first["points_earned"] == 140 and first["points_taken_back"] == 30 + 40

    before = {k: v for k, v in snapshot(engine, program_id).items() if k != "card_feeds"}
    second = import_feed(uow_factory, program_id, text, "csv", now)
    assert (second["sales"], second["refunds"], second["chargebacks"], second["already_imported"]) == (0, 0, 0, 5)
    after = {k: v for k, v in snapshot(engine, program_id).items() if k != "card_feeds"}
    assert after == before  # the same purchases, refunds, ledger and wallet: a re-import changes nothing

    with uow_factory() as uow:
        sale = uow.purchases.find_id(program_id, "px", "card:A1")
        charged = uow.purchases.find_id(program_id, "px", "card:A2")
    one = get_purchase(uow_factory(), program_id, sale)
    assert (one["member_id"], one["points_earned"], one["refunded"]) == (str(member), 100, "30.00")
    two = get_purchase(uow_factory(), program_id, charged)
    assert two["refunded"] == "40.00"
    assert [r["external_refund_id"] for r in two["refunds"]] == ["card-chargeback:C1"]
    assert verify(uow_factory(), program_id, now) == []


def test_a_refund_before_its_sale_in_the_file_and_jsonl(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    link(uow_factory, program_id, member, "tok_jsonl", now)
    text = "\n".join([
        '{"merchant_id": "default", "token": "tok_jsonl", "amount": "20.00", "currency": "EUR", '
        '"occurred_at": "2026-03-03T10:00:00Z", "authorisation_code": "R9", "type": "refund", '
        '"original_authorisation_code": "S9"}',
        '{"merchant_id": "default", "token": "tok_jsonl", "amount": "50.00", "currency": "EUR", '
        '"occurred_at": "2026-03-02T11:00:00Z", "authorisation_code": "S9", "type": "sale", "brand": "mastercard"}',
        "not json at all 4111111111111111",
    ])  # fmt: skip
    report = import_feed(uow_factory, program_id, text, "jsonl", now)
    assert (report["sales"], report["refunds"], report["matched"]) == (1, 1, 1)
    assert report["errors"] == [{"line": 3, "code": "card_feed_invalid", "message": "line 3: not a JSON object"}]
    assert report["points_earned"] == 50 and report["points_taken_back"] == 20


def test_kpis_count_anonymous_card_purchases_apart_from_members(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    link(uow_factory, program_id, member, "tok_kpi", now)
    later = now + timedelta(hours=1)
    buy(uow_factory, program_id, None, "30.00", later, payment=paid("tok_kpi"))
    buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_unknown"))
    buy(uow_factory, program_id, None, "20.00", later)
    report = kpis(uow_factory(), program_id, later.date(), later.date(), later)
    assert report["average_order_value"]["amount"] == "30.00"
    assert report["average_order_value_anonymous"]["amount"] == "15.00"
    assert report["members_revenue_share"] == "0.5000"
    assert report["card_payments"] == {"purchases": 2, "matched": 1, "unmatched": 1,
                                       "revenue_matched": {"amount": "30.00", "currency": "EUR"},
                                       "revenue_unmatched": {"amount": "10.00", "currency": "EUR"}}  # fmt: skip


def test_the_simulator_sees_how_purchases_were_paid(uow_factory, program_id, now):
    from treue.services.simulation import simulate

    rule(uow_factory, program_id, now, "card-bonus", fixed(50), condition="purchase.payment.card_linked")
    member = enrol(uow_factory, program_id, now)
    link(uow_factory, program_id, member, "tok_sim_visa", now)
    later = now + timedelta(minutes=1)
    recorded = [buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_sim_visa")),
                buy(uow_factory, program_id, member, "10.00", later),
                buy(uow_factory, program_id, None, "10.00", later, payment=paid("tok_sim_nobody"))]  # fmt: skip
    assert [r["points_earned"] for r in recorded] == [60, 10, 0]
    day = later.astimezone(UTC).date()
    draft = {"format": "treue.rules/1", "rules": [
        {"id": "card-double", "trigger": "purchase", "condition": "purchase.payment.card_linked",
         "effects": [{"type": "multiplier", "factor": "2"}]}]}  # fmt: skip
    report = simulate(uow_factory(read_only=True), program_id, draft, day - timedelta(days=1), day + timedelta(days=1))
    assert report["current"]["points_issued"] == 70  # today's rules reproduce what was recorded
    assert report["draft"]["points_issued"] == 10 + 10 + 10  # base for both, x2 only for the card-linked one
