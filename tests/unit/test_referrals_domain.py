"""Referral codes, email canonicalisation, the fraud screen, settings, and caps counted per attribute."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.referrals import (
    CODE_ALPHABET,
    CODE_LENGTH,
    Counts,
    Identity,
    ReferralSettings,
    Referrer,
    Rejection,
    canonical_email,
    fingerprint,
    new_referral_code,
    normalise_referral_code,
    parse_settings,
    period_start,
    referral_link,
    screen,
)
from treue.domain.rules.limits import Cap, Period, Scope, bounds, parse_caps
from treue.domain.rules.spec import Spec

codes = st.text(alphabet=CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH)


def test_the_alphabet_has_no_ambiguous_characters():
    assert not set("0O1IL") & set(CODE_ALPHABET)
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET) == 31


def test_new_codes_use_the_alphabet_and_differ():
    made = {new_referral_code(secrets.choice) for _ in range(2000)}
    assert len(made) == 2000
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in made)


@given(codes, st.data())
def test_a_code_survives_case_spaces_and_dashes(code, data):
    rng = random.Random(data.draw(st.integers(0, 10**6)))
    typed = "".join(ch.lower() if rng.random() < 0.5 else ch for ch in code)
    cut = data.draw(st.integers(1, CODE_LENGTH - 1))
    typed = f"  {typed[:cut]}-{typed[cut:]} "
    assert normalise_referral_code(typed) == code


@pytest.mark.parametrize("text", ["", "ABCD", "ABCDEFGHJ", "ABCD0FGH", "ABCDIFGH", "ABCDLFGH", None])
def test_what_cannot_be_a_code_is_none(text):
    assert normalise_referral_code(text) is None


def test_link():
    assert referral_link("https://shop.example/", "ABCD2345") == "https://shop.example/r/ABCD2345"


@pytest.mark.parametrize(("given_", "expected"), [
    ("Max.Muster+promo@GoogleMail.com", "maxmuster@gmail.com"),
    ("m.a.x@gmail.com", "max@gmail.com"),
    ("max+a+b@gmail.com", "max@gmail.com"),
    ("Max.Muster+x@web.de", "max.muster@web.de"),  # dots matter elsewhere
    ("max@example.org", "max@example.org"),
    ("+only@example.org", None),
    ("no-at-sign", None),
    (None, None),
])  # fmt: skip
def test_canonical_email(given_, expected):
    assert canonical_email(given_) == expected


local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=20)


@given(local_parts, st.sampled_from(["gmail.com", "googlemail.com", "GMail.com", "web.de", "example.org"]),
       st.text(alphabet="abc123", max_size=8))  # fmt: skip
def test_canonical_email_is_idempotent_and_ignores_plus_tags(local, domain, tag):
    email = f"{local}@{domain}"
    once = canonical_email(email)
    assert canonical_email(once) == once
    if "+" not in local and local.replace(".", ""):
        assert canonical_email(f"{local}+{tag}@{domain}") == once


@given(local_parts.filter(lambda s: s.replace(".", "")))
def test_gmail_dots_and_alias_are_one_mailbox(local):
    assert canonical_email(f"{local}@googlemail.com") == canonical_email(f"{local.replace('.', '')}@gmail.com")


def test_fingerprints_are_salted_per_programme_and_normalised():
    a, b = uuid4(), uuid4()
    assert fingerprint(a, "device", " Dev-1 ") == fingerprint(a, "device", "dev-1")
    assert fingerprint(a, "device", "dev-1") != fingerprint(b, "device", "dev-1")
    assert fingerprint(a, "device", "dev-1") != fingerprint(a, "payment", "dev-1")
    assert fingerprint(a, "ip", "  ") is None and fingerprint(a, "ip", None) is None


ALICE = UUID(int=1)


def referrer(**kw) -> Referrer:
    identity = Identity(ALICE, "alice.smith@gmail.com", "+491701111111", "alice", frozenset({"dev"}),
                        frozenset({"card"}))  # fmt: skip
    return Referrer(identity, kw.pop("active", True), kw.pop("code_active", True))


@pytest.mark.parametrize(("referee", "counts", "found", "expected"), [
    (Identity(UUID(int=2), "bob@example.org"), Counts(), referrer(), None),
    (Identity(UUID(int=2)), Counts(), None, Rejection.CODE_UNKNOWN),
    (Identity(UUID(int=2)), Counts(), referrer(active=False), Rejection.CODE_EXPIRED),
    (Identity(UUID(int=2)), Counts(), referrer(code_active=False), Rejection.CODE_EXPIRED),
    (Identity(ALICE), Counts(), referrer(), Rejection.SELF_REFERRAL),
    (Identity(UUID(int=2), "alice.smith@gmail.com"), Counts(), referrer(), Rejection.SELF_REFERRAL),
    (Identity(UUID(int=2), external_ref="alice"), Counts(), referrer(), Rejection.SELF_REFERRAL),
    (Identity(UUID(int=2)), Counts(velocity=5), referrer(), Rejection.VELOCITY),
    (Identity(UUID(int=2)), Counts(referee_known=True), referrer(), Rejection.REFEREE_ALREADY_MEMBER),
    (Identity(UUID(int=2), "alicesmith+x@googlemail.com"), Counts(), referrer(), Rejection.SAME_HOUSEHOLD),
    (Identity(UUID(int=2), phone="+491701111111"), Counts(), referrer(), Rejection.SAME_HOUSEHOLD),
    (Identity(UUID(int=2), devices=frozenset({"dev"})), Counts(), referrer(), Rejection.SAME_HOUSEHOLD),
    (Identity(UUID(int=2), payments=frozenset({"card"})), Counts(), referrer(), Rejection.SAME_HOUSEHOLD),
    (Identity(UUID(int=2)), Counts(referrer_period=3), referrer(), Rejection.REFERRER_LIMIT_REACHED),
    # the first reason in the fixed order wins
    (Identity(ALICE), Counts(velocity=9, referrer_period=9), referrer(), Rejection.SELF_REFERRAL),
])  # fmt: skip
def test_screen(referee, counts, found, expected):
    settings = ReferralSettings(referrer_limit=3, velocity_limit=5)
    assert screen(referee, found, counts, settings, code_known=found is not None) == expected


def test_a_programme_without_an_active_scheme_refuses_codes():
    assert screen(Identity(UUID(int=2)), referrer(), Counts(), ReferralSettings(active=False)) == Rejection.CODE_EXPIRED


def test_settings_parse_and_refuse():
    settings = parse_settings({"condition": "purchase.total >= 3000", "window_days": 30, "referrer_limit": 5,
                               "referrer_period": "year", "velocity_limit": None, "link_base": "https://x.example/"})  # fmt: skip
    assert settings.window_days == 30 and settings.referrer_period is Period.YEAR and settings.velocity_limit is None
    assert settings.link_base == "https://x.example"
    assert parse_settings(settings.as_dict()) == settings
    for bad in ({"window_days": 0}, {"window_days": True}, {"referrer_period": "fortnight"}, {"link_base": "ftp://x"},
                {"nope": 1}):  # fmt: skip
        with pytest.raises(InvalidInput):
            parse_settings(bad)
    with pytest.raises(RuleInvalid):
        parse_settings({"condition": "purchase.totl > 1"})


def test_period_start_in_the_programme_timezone():
    berlin = ZoneInfo("Europe/Berlin")
    local = datetime(2026, 3, 1, 0, 30, tzinfo=UTC).astimezone(berlin)  # 01:30 on 1 March in Berlin
    assert period_start(Period.MONTH, local, berlin) == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert period_start(Period.WEEK, local, berlin) == datetime(2026, 2, 22, 23, 0, tzinfo=UTC)  # Monday 23 Feb
    assert period_start(Period.YEAR, local, berlin) == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert period_start(Period.LIFETIME, local, berlin) is None


# -- caps per attribute (social rewards) ---------------------------------------------------------------------


def test_keyed_caps_parse_and_refuse():
    caps = parse_caps(Spec({"per_member": [{"awards": 1, "per": "lifetime", "key": "event.attributes.product"}]}))
    assert caps == (Cap(Period.LIFETIME, awards=1, key="product"),)
    assert "per event.attributes.product" in caps[0].describe()
    for key in ("product", "member.tier", "event.attributes.", "event.attributes.a.b"):
        with pytest.raises(RuleInvalid):
            parse_caps(Spec({"per_member": [{"awards": 1, "per": "month", "key": key}]}))


@given(st.text(min_size=0, max_size=30), st.text(min_size=0, max_size=30))
def test_keyed_caps_count_each_value_apart(a, b):
    cap = Cap(Period.MONTH, awards=1, key="product")
    local = datetime(2026, 3, 5, 12, tzinfo=UTC)
    key_a = bounds([cap], Scope.RULE, "review", local, {"product": a})[0].key
    key_b = bounds([cap], Scope.RULE, "review", local, {"product": b})[0].key
    assert len(key_a.key) == 16  # fits the stored period key
    assert (key_a == key_b) == (a == b)
    april = bounds([cap], Scope.RULE, "review", local.replace(month=4), {"product": a})[0].key
    assert april != key_a  # a new period counts afresh


def test_unkeyed_caps_keep_their_period_key():
    local = datetime(2026, 3, 5, 12, tzinfo=UTC)
    assert bounds([Cap(Period.MONTH, awards=5)], Scope.RULE, "share", local, {"network": "x"})[0].key.key == "2026-03"
