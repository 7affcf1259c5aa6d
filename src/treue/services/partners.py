"""Coalition partners: register a merchant, change its terms, look it up."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.errors import InvalidInput, PartnerExists, PartnerUnknown
from treue.domain.money import Money
from treue.domain.partners import DEFAULT_PARTNER, Partner, Price, check_code, parse_billing
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork

EDITABLE = ("name", "stores", "channels", "issue_price", "issue_points", "redeem_price", "redeem_points", "billing")


def partner_view(partner: Partner, currency: str) -> dict[str, Any]:
    return {"code": partner.code, "name": partner.name, "stores": list(partner.stores),
            "channels": list(partner.channels), "currency": currency,
            "issue_price": Money(partner.issue_price.minor, currency).format(),
            "issue_points": partner.issue_price.points,
            "redeem_price": Money(partner.redeem_price.minor, currency).format(),
            "redeem_points": partner.redeem_price.points, "billing": partner.billing.value}  # fmt: skip


def _names(values: Sequence[str] | None, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if any(not isinstance(v, str) or not v.strip() or len(v) > 64 for v in values):
        raise InvalidInput(f"{what} are names of 1 to 64 characters")
    return tuple(dict.fromkeys(values))  # keep the order given, drop repeats


def _apply(base: Partner, values: dict[str, Any], currency: str) -> Partner:
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"unknown partner fields: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    if "name" in values:
        changes["name"] = values["name"] or ""
    for key in ("stores", "channels"):
        if key in values:
            changes[key] = _names(values[key], key)
    for kind in ("issue", "redeem"):
        old: Price = getattr(base, f"{kind}_price")
        price, points = values.get(f"{kind}_price"), values.get(f"{kind}_points")
        if price is not None or points is not None:
            minor = Money.parse(price, currency).minor if price is not None else old.minor
            changes[f"{kind}_price"] = Price(minor, points if points is not None else old.points)
    if values.get("billing") is not None:
        changes["billing"] = parse_billing(values["billing"])
    return dataclasses.replace(base, **changes)


def create_partner(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    values = dict(values)
    code = check_code(str(values.pop("code", "")))
    with uow:
        program = uow.programs.get(program_id, cached=True)
        draft = Partner(code, values.get("name") or code, Price(0), Price(0))
        partner = _apply(draft, values, program.currency)
        if uow.partners.exists(program_id, code):
            raise PartnerExists(f"a partner '{code}' exists already")
        uow.partners.add(program_id, partner, now)
        view = partner_view(partner, program.currency)
        record_audit(uow, program_id, actor, "partner.create", "partner", code, None, view, None, now)
        uow.commit()
    return view


def update_partner(uow: UnitOfWork, program_id: UUID, code: str, changes: dict[str, Any], now: datetime,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Change a partner's name, places or terms. Settled months keep the terms they were settled at."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        before = uow.partners.get(program_id, code, lock=True)
        partner = _apply(before, changes, program.currency)
        uow.partners.update(program_id, partner, now)
        view = partner_view(partner, program.currency)
        record_audit(uow, program_id, actor, "partner.update", "partner", code,
                     partner_view(before, program.currency), view, None, now)  # fmt: skip
        uow.commit()
    return view


def list_partners(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return [partner_view(p, program.currency) for p in uow.partners.all(program_id)]


def get_partner(uow: UnitOfWork, program_id: UUID, code: str) -> dict[str, Any]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return partner_view(uow.partners.get(program_id, code), program.currency)


def require_partner(uow: UnitOfWork, program_id: UUID, code: str | None) -> str:
    """The partner a request names, which must be the programme itself or a registered partner."""
    code = code or DEFAULT_PARTNER
    if code != DEFAULT_PARTNER and not uow.partners.exists(program_id, code):
        raise PartnerUnknown(f"no partner '{code}' in this programme", field="partner")
    return code
