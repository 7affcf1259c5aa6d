"""The till's codes: one payload (the card number's digits), EAN-13 only where the number allows it, and a scan
read back to what it names; offline batch lines read and checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.errors import CardNotEan13, InvalidInput, ScanUnrecognised, TillLineInvalid
from treue.domain.members import luhn_check_digit
from treue.domain.tills import (
    BadLine,
    LineKind,
    TillLine,
    application_order,
    card_numbers_to_try,
    card_payload,
    ean13_check_digit,
    ean13_of,
    ean13_valid,
    read_line,
    read_scan,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CARD = "9276" + "12345678901234"
CARD += str(luhn_check_digit(CARD))


def test_the_payload_is_the_card_number_as_the_portal_qr_code_carries_it():
    assert card_payload(CARD) == CARD
    assert card_payload("9276 1234-5678") == "927612345678"


@pytest.mark.parametrize(("body", "digit"), [("400638133393", 1), ("590123412345", 7), ("000000000000", 0),
                                             ("978014300723", 4)])  # fmt: skip
def test_ean13_check_digits_of_published_examples(body, digit):
    assert ean13_check_digit(body) == digit
    assert ean13_valid(body + str(digit))
    assert not ean13_valid(body + str((digit + 1) % 10))


def test_ean13_takes_12_digits_or_13_with_a_valid_check_digit_and_refuses_the_rest():
    assert ean13_of("400638133393") == "4006381333931"
    assert ean13_of("4006381333931") == "4006381333931"
    with pytest.raises(CardNotEan13) as wrong:
        ean13_of("4006381333932")
    assert wrong.value.extra["reason"] == "check_digit" and wrong.value.code == "card_not_ean13"
    for number in (CARD, "12345", "40063813339311", "40063813339a"):
        with pytest.raises(CardNotEan13) as refused:
            ean13_of(number)
        assert refused.value.extra["reason"] == "length"
    assert refused.value.status == 422


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_every_12_digit_number_makes_an_ean13_that_reads_back_to_it(body):
    code = ean13_of(body)
    assert len(code) == 13 and ean13_valid(code) and code[:12] == body
    assert read_scan(code).cards == (code, body)  # stored with or without its check digit
    # one wrong digit is always caught by the check digit
    position = int(body[0]) % 12
    changed = code[:position] + str((int(code[position]) + 1) % 10) + code[position + 1 :]
    assert not ean13_valid(changed)


def test_a_scan_is_a_card_a_short_card_a_phone_number_or_an_email():
    assert read_scan(CARD).cards == (CARD,) and read_scan(CARD).phone is None
    assert read_scan(f"  {CARD[:4]} {CARD[4:8]} {CARD[8:]}\n").cards == (CARD,)  # spaces from a typed number
    assert read_scan("+49 170 1111 2222").phone == "+4917011112222" and read_scan("+49 170 1111 2222").cards == ()
    assert read_scan("0049 170 1111 2222").cards == ()
    twelve = read_scan("017011112222")  # 12 digits: a short card first, else a phone number
    assert twelve.cards == ("017011112222",) and twelve.phone == "017011112222"
    assert read_scan("Anna@Example.org").email == "anna@example.org"
    for text in ("", "hello", "12-ab", "@", CARD[:-1] + str((int(CARD[-1]) + 1) % 10) + "x"):
        with pytest.raises(ScanUnrecognised):
            read_scan(text)


def test_a_typed_card_number_must_be_a_card_number():
    assert card_numbers_to_try(CARD) == (CARD,)
    assert card_numbers_to_try("4006381333931") == ("4006381333931", "400638133393")
    for text in ("4006381333932", CARD[:-1] + str((int(CARD[-1]) + 1) % 10), "+4917011112222", "x"):
        with pytest.raises(InvalidInput):
            card_numbers_to_try(text)


def _line(**fields):
    import json

    return json.dumps({"key": "k1", "type": "purchase", "occurred_at": "2026-03-01T09:00:00+01:00",
                       "external_order_id": "T-1", "total": "10.00", "currency": "EUR"} | fields)  # fmt: skip


def test_a_batch_line_is_read_with_its_key_time_store_and_cashier():
    line = read_line(3, _line(store="berlin-1", cashier="c-7"), NOW)
    assert isinstance(line, TillLine)
    assert (line.number, line.key, line.kind, line.store, line.cashier) == (3, "k1", LineKind.PURCHASE, "berlin-1",
                                                                            "c-7")  # fmt: skip
    assert line.occurred_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert "key" not in line.data and line.data["external_order_id"] == "T-1"
    # the fingerprint ignores key order and whitespace, not content
    import json

    same = json.dumps(json.loads(_line(store="berlin-1", cashier="c-7")), indent=1, sort_keys=True).replace("\n", "")
    assert read_line(4, same, NOW).fingerprint == line.fingerprint  # type: ignore[union-attr]
    assert read_line(4, _line(store="berlin-2", cashier="c-7"), NOW).fingerprint != line.fingerprint  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", "not JSON"), ("[1, 2]", "not a JSON object"), (_line(key=None), "`key`"), (_line(key=""), "`key`"),
    (_line(type="voucher"), "`type`"), (_line(total=None), "needs total"), (_line(colour="red"), "unknown fields"),
    (_line(occurred_at=None), "occurred_at"), (_line(occurred_at="yesterday"), "not an ISO 8601"),
    (_line(occurred_at="2026-03-01T09:00:00"), "UTC offset"), (_line(occurred_at="2026-03-03T09:00:00Z"), "future"),
    (_line(store="x" * 65), "`store`"), (_line(cashier=7), "`cashier`"),
])  # fmt: skip
def test_unreadable_lines_are_refused_with_a_stable_code(text, words):
    bad = read_line(9, text, NOW)
    assert isinstance(bad, BadLine) and bad.number == 9
    assert bad.error.code == "till_line_invalid" and isinstance(bad.error, TillLineInvalid)
    assert words in bad.error.detail and bad.error.detail.startswith("line 9")


def test_a_till_clock_a_little_ahead_is_tolerated():
    ahead = (NOW + timedelta(minutes=4)).isoformat()
    assert isinstance(read_line(1, _line(occurred_at=ahead), NOW), TillLine)


def test_purchases_are_applied_before_refunds_and_coupons_each_in_file_order():
    kinds = ["refund", "purchase", "coupon", "purchase", "refund"]
    extra = {"refund": {"external_order_id": "T"}, "purchase": {}, "coupon": {"code": "C"}}
    lines = []
    for n, kind in enumerate(kinds, 1):
        fields = {"key": f"k{n}", "type": kind} | extra[kind]
        if kind != "purchase":
            fields |= {"total": None, "currency": None, "external_order_id": extra[kind].get("external_order_id")}
        import json

        data = {k: v for k, v in json.loads(_line(**fields)).items() if v is not None}
        lines.append(read_line(n, json.dumps(data), NOW))
    assert all(isinstance(x, TillLine) for x in lines), lines
    assert [x.number for x in application_order(lines)] == [2, 4, 1, 3, 5]  # type: ignore[arg-type]
