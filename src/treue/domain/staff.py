"""Staff of a programme: roles, what each role may do, and the sign-in lockout rule. Pure: no I/O, no clock."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from treue.domain.errors import InvalidInput


class Role(enum.StrEnum):
    OWNER = "owner"  # everything, including staff accounts
    MANAGER = "manager"  # runs the programme: rules, members, support actions
    SUPPORT = "support"  # helps members: look-up, profile, adjust points with a reason
    ANALYST = "analyst"  # numbers and rules, no personal data
    PARTNER = "partner"  # a coalition partner: its own figures and a card look-up at its till


class Permission(enum.StrEnum):
    VIEW_OVERVIEW = "overview.view"
    LOOKUP_CARD = "members.lookup_card"  # a cashier's look-up: card number -> name and balance
    VIEW_MEMBERS = "members.view"  # search by name/email/phone, the full profile and history
    ADJUST_POINTS = "points.adjust"
    VIEW_RULES = "rules.view"
    EDIT_RULES = "rules.edit"
    PREVIEW_CART = "rules.preview"
    MANAGE_STAFF = "staff.manage"
    ERASE_MEMBERS = "members.erase"  # GDPR erasure: irreversible, so not for support
    REVIEW_FRAUD = "fraud.review"  # held transactions and anomaly alerts
    MANAGE_OPERATIONS = "operations.manage"  # API keys, webhooks, imports
    VIEW_AUDIT = "audit.view"
    RUN_SIMULATIONS = "simulations.run"


_ALL = frozenset(Permission)
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _ALL,
    Role.MANAGER: _ALL - {Permission.MANAGE_STAFF},
    Role.SUPPORT: frozenset(
        {
            Permission.VIEW_OVERVIEW,
            Permission.LOOKUP_CARD,
            Permission.VIEW_MEMBERS,
            Permission.ADJUST_POINTS,
            Permission.REVIEW_FRAUD,
        }
    ),
    Role.ANALYST: frozenset(
        {Permission.VIEW_OVERVIEW, Permission.VIEW_RULES, Permission.PREVIEW_CART, Permission.RUN_SIMULATIONS}
    ),
    Role.PARTNER: frozenset({Permission.VIEW_OVERVIEW, Permission.LOOKUP_CARD}),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput("role must be one of: " + ", ".join(r.value for r in Role)) from None


def can(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]


# -- who a staff user is -----------------------------------------------------------------------------------
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


def normalise_staff_email(value: str) -> str:
    email = (value or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidInput(f"'{value}' is not an email address")
    return email


def check_partner(role: Role, partner: str | None) -> str | None:
    """A partner user names its partner; nobody else does (their data is the whole programme's)."""
    partner = (partner or "").strip() or None
    if (role is Role.PARTNER) != (partner is not None):
        raise InvalidInput("partner users, and only they, name a partner (--partner)")
    return partner


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


# -- lockout after repeated failures --------------------------------------------------------------------
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SignInState:
    """Failed sign-ins counted since `window_start`, and the time until which sign-in is refused."""

    failures: int = 0
    window_start: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def failed(self, now: datetime) -> SignInState:
        """One more failure: the count restarts when the window has passed; the fifth in it locks."""
        if self.window_start is None or now - self.window_start >= FAILURE_WINDOW:
            failures, start = 1, now
        else:
            failures, start = self.failures + 1, self.window_start
        if failures >= MAX_FAILURES:
            return SignInState(0, None, now + LOCK_FOR)
        return SignInState(failures, start, self.locked_until)

    @staticmethod
    def succeeded() -> SignInState:
        return SignInState()
