"""Member use cases: enrol, update, find, and consents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from treue.domain import events
from treue.domain.errors import InvalidInput, MemberErased, MemberExists, NotFound
from treue.domain.events import Event
from treue.domain.members import (
    STATUS_ERASED,
    ConsentChannel,
    new_card_number,
    normalise_card_number,
    normalise_email,
    normalise_phone,
    validate_locale,
)
from treue.domain.programs import Program
from treue.domain.rules.context import EventFacts
from treue.ids import new_id, random_digits
from treue.services.audit import record_audit
from treue.services.earning import emit_grants_and_hooks, post_earn, run_rules
from treue.services.ports import UnitOfWork
from treue.services.referrals import ReferralInput, refer_on_enrolment
from treue.services.views import member_view

PROFILE_FIELDS = (
    "external_ref",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "locale",
    "attributes",
)


@dataclass
class EnrolMember:
    external_ref: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: date | None = None
    locale: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)  # marketing consent per channel
    consent_source: str | None = None
    # Referrals (issue 7): the code the new member came with, and what the fraud screen compares (never stored
    # in clear: device, IP and payment fingerprint are kept as salted digests).
    referral_code: str | None = None
    device_id: str | None = None
    ip: str | None = None
    payment_fingerprint: str | None = None


def _clean_profile(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "email" in out:
        out["email"] = normalise_email(out["email"])
    if "phone" in out:
        out["phone"] = normalise_phone(out["phone"])
    if out.get("locale") is not None:
        validate_locale(out["locale"])
    if "external_ref" in out and out["external_ref"] is not None:
        out["external_ref"] = out["external_ref"].strip() or None
    return out


def _consent_channels(consents: dict[str, bool]) -> dict[ConsentChannel, bool]:
    try:
        return {ConsentChannel(channel): bool(granted) for channel, granted in consents.items()}
    except ValueError:
        raise InvalidInput("consent channels are: " + ", ".join(c.value for c in ConsentChannel)) from None


def enrol_member(uow: UnitOfWork, program_id: UUID, cmd: EnrolMember, now: datetime) -> dict[str, Any]:
    profile = _clean_profile({name: getattr(cmd, name) for name in PROFILE_FIELDS})
    channels = _consent_channels(cmd.consents)
    member_id = new_id()
    with uow:
        program = uow.programs.get(program_id, cached=True)
        profile["locale"] = profile["locale"] or program.default_locale
        for attempt in range(3):  # a card number collision is astronomically rare, but not impossible
            card = new_card_number(random_digits)
            try:
                uow.members.add({"program_id": program_id, "id": member_id, "card_number": card, "status": "active",
                                 "enrolled_at": now, "updated_at": now, **profile})  # fmt: skip
                break
            except IntegrityError as error:
                if "external_ref" in str(error.orig):
                    raise MemberExists("a member with this external reference exists") from None
                if attempt == 2:
                    raise
        uow.ledger.open_member_account(program_id, member_id, program.negative_balance_allowed, now)
        for channel, granted in channels.items():
            uow.members.set_consent(program_id, member_id, channel.value, granted, now, cmd.consent_source)
        uow.emit(program_id, Event(events.MEMBER_ENROLLED, {"member_id": str(member_id), "card_number": card}))
        _earn_on_enrolment(uow, program, member_id, now)
        referral = refer_on_enrolment(uow, program, member_id, profile, ReferralInput(
            cmd.referral_code, cmd.device_id, cmd.ip, cmd.payment_fingerprint), now)  # fmt: skip
        view = member_view(uow.members.get(program_id, member_id), uow.members.consents(program_id, member_id))
        uow.commit()
    if referral is not None:  # a rejected referral does not refuse the enrolment: the response says why
        view["referral"] = referral
    return view


def _earn_on_enrolment(uow: UnitOfWork, program: Program, member_id: UUID, now: datetime) -> None:
    """Rules triggered by `enrolment` (a welcome bonus...); without such rules nothing is read or written."""
    rules = uow.rules.ruleset(program, cached=True)
    if not rules.entries("enrolment"):
        return
    earning = run_rules(uow, program, rules, EventFacts("enrolment", now), member_id)
    if earning.points > 0:
        post_earn(uow, program, member_id, earning, now, now, {"event": "enrolment"})
    emit_grants_and_hooks(uow, program.id, member_id, earning.evaluation, {"event": "enrolment"}, now)


def update_member(uow: UnitOfWork, program_id: UUID, member_id: UUID, changes: dict[str, Any], now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    unknown = set(changes) - set(PROFILE_FIELDS) - {"consents", "consent_source"}
    if unknown:
        raise InvalidInput(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
    consents = _consent_channels(changes.pop("consents", None) or {})
    source = changes.pop("consent_source", None)
    profile = _clean_profile(changes)
    with uow:
        row = uow.members.get(program_id, member_id)
        _not_erased(row)  # personal data given to an erased member would be a new profile under its pseudonym
        before = member_view(row, uow.members.consents(program_id, member_id))
        if profile:
            try:
                uow.members.update(program_id, member_id, {**profile, "updated_at": now})
            except IntegrityError:
                raise MemberExists("a member with this external reference exists") from None
        for channel, granted in consents.items():
            uow.members.set_consent(program_id, member_id, channel.value, granted, now, source)
        after = member_view(uow.members.get(program_id, member_id), uow.members.consents(program_id, member_id))
        record_audit(uow, program_id, actor, "member.update", "member", member_id, before, after, None, now)
        uow.emit(program_id, Event(events.MEMBER_UPDATED, {"member_id": str(member_id)}))
        uow.commit()
    return after


def get_member(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, Any]:
    with uow:
        return member_view(uow.members.get(program_id, member_id), uow.members.consents(program_id, member_id))


def find_members(uow: UnitOfWork, program_id: UUID, *, card_number: str | None = None, email: str | None = None,
                 phone: str | None = None, external_ref: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Exact look-up by one identifier, as a till or shop does it."""
    criteria = {
        "card_number": normalise_card_number(card_number) if card_number else None,
        "email": normalise_email(email), "phone": normalise_phone(phone),
        "external_ref": external_ref.strip() if external_ref else None,
    }  # fmt: skip
    if not any(criteria.values()):
        raise InvalidInput("give a card_number, email, phone or external_ref to look a member up")
    with uow:
        return [member_view(row) for row in uow.members.find(program_id, **criteria) if row["status"] != ERASED]


def search_members(uow: UnitOfWork, program_id: UUID, text: str | None, limit: int = 50,
                   after: datetime | None = None) -> list[dict[str, Any]]:  # fmt: skip
    with uow:
        return [member_view(row) for row in uow.members.search(program_id, text, min(limit, 200), after)
                if row["status"] != ERASED]  # fmt: skip


def resolve_member(uow: UnitOfWork, program_id: UUID, *, member_id: UUID | None = None,
                   card_number: str | None = None, external_ref: str | None = None) -> UUID:  # fmt: skip
    """The member a request names by id, card number or external reference (exactly one)."""
    given = [x for x in (member_id, card_number, external_ref) if x]
    if len(given) != 1:
        raise InvalidInput("name the member by exactly one of member_id, card_number, external_ref")
    if member_id:
        # 404 (not a foreign-key failure) for another programme's member; 409 for an erased one (issue 10)
        _not_erased(uow.members.get(program_id, member_id))
        return member_id
    if card_number:
        found: UUID = uow.members.id_by(program_id, card_number=normalise_card_number(card_number))
    else:
        found = uow.members.id_by(program_id, external_ref=external_ref)
    return found


ERASED = STATUS_ERASED  # the status of a member whose personal data was erased (services/privacy.py)


def _not_erased(row: dict[str, Any]) -> None:
    if row["status"] == ERASED:
        raise MemberErased(f"member {row['id']} was erased (GDPR); nothing new can be recorded for it")


__all__ = ["EnrolMember", "NotFound", "enrol_member", "find_members", "get_member", "update_member"]
