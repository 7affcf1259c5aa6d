"""Card-linked earning in the domain (issue 11): card-number detection, card display data, feed lines, offers
compiled into campaigns, and rule conditions over the payment."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.api_helpers import luhn_ok
from treue.domain.cards import (
    CardDisplay,
    FeedError,
    FeedKind,
    FeedLine,
    Payment,
    contains_card_number,
    looks_like_card_number,
    luhn_valid,
    payment_of,
    read_feed,
    refuse_card_numbers,
)
from treue.domain.durations import zone
from treue.domain.errors import CardFeedInvalid, CardNumberRefused, InvalidInput, RuleInvalid
from treue.domain.money import Money
from treue.domain.offers import OfferState, code_of_campaign, member_state, parse_offer
from treue.domain.purchases import Channel, Purchase
from treue.domain.rules.conditions import condition
from treue.domain.rules.context import EventFacts, build_context
from treue.domain.rules.definitions import parse_campaign

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@given(st.text(alphabet="0123456789", min_size=2, max_size=25))
def test_luhn_agrees_with_an_independent_check(digits):
    assert luhn_valid(digits) == luhn_ok(digits)


@pytest.mark.parametrize("text", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
                                  "tok_4111111111111111", "card 5500 0000 0000 0004 exp 12/29", "378282246310005",
                                  "6011111111111117", "4222222222222"])  # fmt: skip
def test_card_numbers_are_found_anywhere_in_text(text):
    assert looks_like_card_number(text)


@pytest.mark.parametrize("text", ["4111111111111112", "tok_1Nv0aZ2eZvKYlo2C", "4242", "2026-03-02T10:00:00Z",
                                  "123456789012", "4111  1111 1111 1111", "411111111111111111111111"])  # fmt: skip
def test_other_text_is_not_a_card_number(text):
    assert not looks_like_card_number(text)


def test_a_card_number_anywhere_in_nested_data_is_refused_without_repeating_it():
    assert contains_card_number({"a": [{"b": 4111111111111111}]})
    assert contains_card_number({"4111111111111111": "key"})
    assert not contains_card_number({"exp_year": 2029, "ok": True, "none": None, "amount": 12.5})
    with pytest.raises(CardNumberRefused) as refused:
        refuse_card_numbers({"note": "4111 1111 1111 1111"})
    assert "4111" not in refused.value.detail and refused.value.code == "card_number_refused"


def test_card_display_data_is_checked():
    card = CardDisplay.of("VISA", "4242", 1, 2027)
    assert card.brand == "visa" and not card.expired_at(T) and card.expired_at(datetime(2027, 2, 1, tzinfo=UTC))
    for args in (("visa", "42", 1, 2027), ("visa", "4242", 13, 2027), ("bitcoin", "4242", 1, 2027)):
        with pytest.raises(InvalidInput):
            CardDisplay.of(*args)
    with pytest.raises(CardNumberRefused):
        payment_of("5500000000000004")
    assert payment_of("tok_abcdef", "Mastercard") == Payment("tok_abcdef", "mastercard")


CSV = ("merchant_id,token,amount,currency,occurred_at,authorisation_code,type,original_authorisation_code\n"
       "M1,tok_aaaaaa,12.50,EUR,2026-03-02T10:00:00Z,A1,sale,\n"
       "M1,tok_aaaaaa,2.50,EUR,2026-03-03T10:00:00+01:00,R1,Refund,A1\n"
       "M1,tok_aaaaaa,-1.00,EUR,2026-03-03T10:00:00Z,R2,refund,A1\n"
       "M1,tok_aaaaaa,1.00,EUR,2026-03-03T10:00:00,R3,refund,A1\n"
       "M1,tok_aaaaaa,1.00,EUR,2026-03-03T10:00:00Z,R4,gift,A1\n"
       "M1,4111111111111111,1.00,EUR,2026-03-03T10:00:00Z,A9,sale,\n"
       "\n")  # fmt: skip


def test_feed_lines_are_parsed_or_refused_one_by_one():
    items = list(read_feed(CSV, "csv"))
    sale, refund, *errors = items
    assert sale == FeedLine(2, "M1", "tok_aaaaaa", Money(1250, "EUR"), T, "A1", FeedKind.SALE)
    assert isinstance(refund, FeedLine) and refund.kind is FeedKind.REFUND and refund.original == "A1"
    assert refund.occurred_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert [(e.line, e.code) for e in errors if isinstance(e, FeedError)] == [
        (4, "card_feed_invalid"), (5, "card_feed_invalid"), (6, "card_feed_invalid"), (7, "card_number_refused")]  # fmt: skip
    assert all("4111111111111111" not in e.message for e in errors if isinstance(e, FeedError))
    with pytest.raises(CardFeedInvalid, match="lacks"):
        list(read_feed("token,amount\n", "csv"))


# -- offers ---------------------------------------------------------------------------------------------------------
OFFER = {"code": "xmas5", "name": "5 % Cashback bei Partner X im Dezember", "partners": ["partner-x"],
         "starts": "2026-12-01", "ends": "2026-12-31", "effects": [{"type": "cashback_percent", "percent": "5"}],
         "limit_per_member": 3}  # fmt: skip


def test_an_offer_compiles_into_a_campaign_with_one_rule():
    spec = parse_offer(OFFER)
    definition = spec.campaign_definition()
    campaign = parse_campaign(definition, timezone="Europe/Berlin", currency="EUR", valid_from=T)
    assert campaign.id == "offer-xmas5" and code_of_campaign(campaign.id) == "xmas5"
    assert campaign.starts_at == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert campaign.ends_at == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    (rule,) = campaign.rules
    version = rule.latest
    assert version.partners == frozenset({"partner-x"})
    assert version.condition is not None
    assert version.condition.source == 'purchase.payment.card_linked && "xmas5" in member.offers'
    assert version.needs() == {"purchase": frozenset({"payment"}), "member": frozenset({"offers"})}
    assert [(c.per.value, c.awards) for c in campaign.caps] == [("lifetime", 3)]
    unconditional = parse_offer({**OFFER, "activation_required": False, "kind": "targeted"})
    assert unconditional.rule_condition() is None
    for bad in ({"code": "Bad Code"}, {"effects": [{"type": "badge", "badge": "x"}]}, {"extra": 1},
                {"limit_per_member": 0}):  # fmt: skip
        with pytest.raises(InvalidInput):
            parse_offer({**OFFER, **bad})


def test_where_a_member_stands_with_an_offer():
    starts, ends = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    december = datetime(2026, 12, 5, tzinfo=UTC)

    def state(activation, now=december, limit=2, required=True):
        return member_state(starts, ends, activation, limit, required, now)

    assert state(None) is OfferState.AVAILABLE
    assert state({"uses": 0, "shown_at": T, "activated_at": None}) is OfferState.SHOWN
    assert state({"uses": 0, "shown_at": None, "activated_at": T}) is OfferState.ACTIVATED
    assert state({"uses": 1, "shown_at": None, "activated_at": T}) is OfferState.USED
    assert state({"uses": 2, "shown_at": None, "activated_at": T}) is OfferState.EXHAUSTED
    assert state({"uses": 1, "shown_at": None, "activated_at": T}, now=ends) is OfferState.ENDED


# -- rule conditions over the payment ------------------------------------------------------------------------------
def purchase(payment: Payment | None, member=None) -> Purchase:
    return Purchase(uuid4(), member, "px", None, Channel.STORE, "o-1", T, Money(1000, "EUR"), payment=payment)


def holds(source: str, facts: EventFacts) -> bool:
    check = condition(source, "condition")
    context = build_context(facts, zone("Europe/Berlin"), "EUR", check.needs)
    whole = build_context(facts, zone("Europe/Berlin"), "EUR")
    assert check.holds(whole) == check.holds(context)  # flattened and whole agree
    return check.holds(context)


def test_conditions_see_whether_the_purchase_was_paid_with_the_members_linked_card():
    member = uuid4()
    linked = Payment("tok_abcdef", "visa", None, uuid4(), member)
    source = 'purchase.payment.card_linked && purchase.payment.brand == "visa"'
    assert holds(source, EventFacts.of_purchase(purchase(linked, member)))
    assert not holds(source, EventFacts.of_purchase(purchase(linked, uuid4())))  # another member's card
    assert not holds(source, EventFacts.of_purchase(purchase(Payment("tok_abcdef", "visa"), member)))
    assert not holds(source, EventFacts.of_purchase(purchase(None, member)))
    assert not holds(source, EventFacts("review.created", T))  # no purchase: an empty payment
    with pytest.raises(RuleInvalid, match=r"purchase\.payment has no field 'token'"):
        condition('purchase.payment.token == "x"', "condition")


def test_the_plan_reads_no_payment_when_no_rule_asks():
    assert condition("purchase.total >= 100", "c").needs == {"purchase": frozenset({"total"})}
