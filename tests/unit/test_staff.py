"""Staff roles, permissions, and the sign-in lockout rule (pure domain, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from treue.domain.errors import InvalidInput
from treue.domain.staff import (
    MAX_FAILURES,
    Permission,
    Role,
    SignInState,
    can,
    check_partner,
    check_password,
    normalise_staff_email,
    parse_role,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_each_role_holds_exactly_its_permissions():
    assert all(can(Role.OWNER, p) for p in Permission)
    assert not can(Role.MANAGER, Permission.MANAGE_STAFF) and can(Role.MANAGER, Permission.EDIT_RULES)
    assert can(Role.SUPPORT, Permission.ADJUST_POINTS) and not can(Role.SUPPORT, Permission.VIEW_RULES)
    # Analysts see numbers and rules but no personal data; partners only their own figures and a card look-up.
    assert not can(Role.ANALYST, Permission.VIEW_MEMBERS) and not can(Role.ANALYST, Permission.LOOKUP_CARD)
    assert {p for p in Permission if can(Role.PARTNER, p)} == {Permission.VIEW_OVERVIEW, Permission.LOOKUP_CARD}


def test_roles_partners_emails_and_passwords_are_checked():
    assert parse_role("support") is Role.SUPPORT
    with pytest.raises(InvalidInput, match="owner, manager, support, analyst, partner"):
        parse_role("admin")
    assert check_partner(Role.PARTNER, " acme ") == "acme"
    with pytest.raises(InvalidInput):
        check_partner(Role.PARTNER, " ")
    with pytest.raises(InvalidInput):
        check_partner(Role.OWNER, "acme")
    assert normalise_staff_email("  Ann@Shop.Example ") == "ann@shop.example"
    with pytest.raises(InvalidInput):
        normalise_staff_email("not-an-address")
    with pytest.raises(InvalidInput, match="10 characters"):
        check_password("short")


def test_the_fifth_failure_within_fifteen_minutes_locks_for_fifteen_minutes():
    state = SignInState()
    for minute in range(MAX_FAILURES - 1):
        state = state.failed(T0 + timedelta(minutes=minute * 3))
        assert not state.locked(T0 + timedelta(minutes=minute * 3))
    fifth = T0 + timedelta(minutes=14)
    state = state.failed(fifth)
    assert state.locked(fifth) and state.locked(fifth + timedelta(minutes=14, seconds=59))
    assert not state.locked(fifth + timedelta(minutes=15))
    assert state.failures == 0  # after the lock the count starts afresh


def test_failures_outside_the_window_start_a_new_count():
    state = SignInState()
    for _ in range(4):
        state = state.failed(T0)
    state = state.failed(T0 + timedelta(minutes=15))  # the window of the first four has passed
    assert not state.locked(T0 + timedelta(minutes=15)) and state.failures == 1
    assert SignInState.succeeded() == SignInState()
