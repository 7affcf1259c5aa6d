"""Notifications (issue 8): settings and templates of a programme, turning domain events into queued messages
(in the outbox relay's transaction), the `notifications` job (expiring points, points now available, the daily
digest, the monthly statement), sending due messages by `treue worker run`, consents with double opt-in and
one-click unsubscribe, the member's inbox, and the message log.

Every message has a dedupe key (member + trigger + the event, lot and threshold, day or month it is about) that is
unique per channel: two relays or two job runs that race insert it once, and the sender claims each queued message
under a lease, so a message is never sent twice for the same trigger and period.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import qrcode

from treue.domain import events
from treue.domain.durations import zone
from treue.domain.errors import DomainError, InvalidInput, NotFound, NotificationTokenInvalid
from treue.domain.events import Event
from treue.domain.notification_templates import DEFAULT_HTML, DEFAULTS, sample
from treue.domain.notifications import (
    BY_EVENT,
    LOCALES,
    PUSH_EVENT,
    TRIGGERS,
    Channel,
    Consent,
    NotificationSettings,
    Purpose,
    Status,
    Template,
    channel,
    decide,
    expiring_threshold,
    locale,
    next_attempt,
    trigger,
)
from treue.domain.programs import Program
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.mail import InlineImage, Mailer, MailMessage
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.templating import render

log = logging.getLogger("treue.notifications")
PUBLIC_URL_ENV = "TREUE_PUBLIC_URL"
CONFIRM_DAYS = 7  # a confirmation link works this long
LEASE = timedelta(minutes=2)
PAGE = 200
QR_CID = "coupon-qr"


def public_url() -> str:
    """Where links in messages point: TREUE_PUBLIC_URL (the address members reach Treue at)."""
    return (os.environ.get(PUBLIC_URL_ENV) or "http://localhost:8000").rstrip("/")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- settings ------------------------------------------------------------------------------------------------
def load_settings(uow: UnitOfWork, program_id: UUID) -> NotificationSettings:
    return NotificationSettings.parse(uow.notifications.settings(program_id))


def get_settings(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return load_settings(uow, program_id).as_json()


def update_settings(uow: UnitOfWork, program_id: UUID, data: dict[str, Any], now: datetime,
                    actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Merge `data` into the settings: triggers on/off, channels, purpose, mode (points_earned: immediate or
    digest), days (points_expiring), quiet hours (local HH:MM, or null for none), weekly marketing cap."""
    with uow:
        uow.programs.get(program_id, cached=True)
        before = load_settings(uow, program_id)
        after = NotificationSettings.parse(data, before)
        stored = {"triggers": {code: ts.as_json() for code, ts in after.triggers.items()},
                  "quiet_hours": after.quiet_hours.as_json() if after.quiet_hours else None,
                  "weekly_marketing_cap": after.weekly_marketing_cap}  # fmt: skip
        uow.notifications.save_settings(program_id, stored, now)
        record_audit(uow, program_id, actor, "notifications.settings", "notifications", program_id, before.as_json(),
                     after.as_json(), None, now)  # fmt: skip
        uow.commit()
    return after.as_json()


# -- templates -----------------------------------------------------------------------------------------------
def default_template(code: str, chan: Channel, loc: str) -> Template:
    subject, text = DEFAULTS[code][loc]
    html = DEFAULT_HTML.get(code, {}).get(loc) if chan is Channel.EMAIL else None
    return Template(subject, text, html)


def _template(uow: UnitOfWork, program_id: UUID, code: str, chan: Channel, loc: str) -> tuple[Template, bool]:
    row = uow.notifications.template(program_id, code, chan.value, loc)
    if row is None:
        return default_template(code, chan, loc), False
    return Template(row["subject"], row["body_text"], row["body_html"]), True


def list_templates(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    """Every trigger with its wording per channel and locale (the programme's own, or the default)."""
    with uow:
        uow.programs.get(program_id, cached=True)
        own = {(r["trigger"], r["channel"], r["locale"]): r for r in uow.notifications.templates(program_id)}
    out = []
    for code, trig in TRIGGERS.items():
        items = []
        for chan in Channel:
            for loc in LOCALES:
                row = own.get((code, chan.value, loc))
                tpl = Template(row["subject"], row["body_text"], row["body_html"]) if row else default_template(
                    code, chan, loc)  # fmt: skip
                items.append({"channel": chan.value, "locale": loc, "custom": row is not None, "subject": tpl.subject,
                              "text": tpl.text, "html": tpl.html})  # fmt: skip
        out.append({"trigger": code, "purpose": trig.purpose.value, "events": list(trig.events),
                    "description": trig.description, "variables": sorted(sample(code)), "templates": items})  # fmt: skip
    return out


def save_template(uow: UnitOfWork, program_id: UUID, code: str, chan: str, loc: str, values: dict[str, Any],
                  now: datetime, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Save the programme's wording for one trigger, channel and locale. It must render with the trigger's sample
    data in the sandbox (422 template_invalid / template_unsafe otherwise); nothing is saved then."""
    trig, ch, lo = trigger(code), channel(chan), locale(loc)
    tpl = Template(str(values.get("subject") or ""), str(values.get("text") or ""),
                   values.get("html") if ch is Channel.EMAIL else None)  # fmt: skip
    if not tpl.subject.strip() or not tpl.text.strip():
        raise InvalidInput("a template needs a subject and a text")
    rendered = render(tpl, sample(trig.code), strict=True)
    with uow:
        uow.programs.get(program_id, cached=True)
        before, _ = _template(uow, program_id, trig.code, ch, lo)
        uow.notifications.save_template({"program_id": program_id, "trigger": trig.code, "channel": ch.value,
                                         "locale": lo, "subject": tpl.subject, "body_text": tpl.text,
                                         "body_html": tpl.html, "updated_at": now})  # fmt: skip
        record_audit(uow, program_id, actor, "notifications.template", "notification_template",
                     f"{trig.code}/{ch.value}/{lo}", {"subject": before.subject, "text": before.text},
                     {"subject": tpl.subject, "text": tpl.text}, None, now)  # fmt: skip
        uow.commit()
    return {"trigger": trig.code, "channel": ch.value, "locale": lo, "custom": True, "subject": tpl.subject,
            "text": tpl.text, "html": tpl.html, "preview": _rendered_view(rendered)}  # fmt: skip


def reset_template(uow: UnitOfWork, program_id: UUID, code: str, chan: str, loc: str, now: datetime,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    trig, ch, lo = trigger(code), channel(chan), locale(loc)
    with uow:
        uow.programs.get(program_id, cached=True)
        custom = uow.notifications.template(program_id, trig.code, ch.value, lo)
        removed = uow.notifications.delete_template(program_id, trig.code, ch.value, lo)
        if removed and custom is not None:  # the audit keeps the wording that was removed
            before = {k: custom.get(k) for k in ("subject", "text", "html")}
            record_audit(uow, program_id, actor, "notifications.template_reset", "notification_template",
                         f"{trig.code}/{ch.value}/{lo}", before, {"custom": False}, None, now)  # fmt: skip
        uow.commit()
    tpl = default_template(trig.code, ch, lo)
    return {"trigger": trig.code, "channel": ch.value, "locale": lo, "custom": False, "subject": tpl.subject,
            "text": tpl.text, "html": tpl.html}  # fmt: skip


def _rendered_view(rendered: Any) -> dict[str, Any]:
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}


def preview(uow: UnitOfWork, program_id: UUID, code: str, chan: str, loc: str,
            template: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Render a trigger's template (the saved one, or `template` as a draft) with sample data, overridden by
    `data`. A draft is checked strictly: unknown variables are errors, as when it is saved."""
    trig, ch, lo = trigger(code), channel(chan), locale(loc)
    with uow:
        program = uow.programs.get(program_id, cached=True)
        saved, custom = _template(uow, program_id, trig.code, ch, lo)
    values = sample(trig.code) | {"program": {"name": program.name}} | (data or {})
    if template is not None:
        draft = Template(str(template.get("subject") or ""), str(template.get("text") or ""),
                         template.get("html") if ch is Channel.EMAIL else None)  # fmt: skip
        rendered = render(draft, values, strict=True)
    else:
        rendered = render(saved, values)
    return {"trigger": trig.code, "channel": ch.value, "locale": lo, "custom": custom and template is None,
            **_rendered_view(rendered)}  # fmt: skip


# -- tokens ----------------------------------------------------------------------------------------------------
def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_token(uow: UnitOfWork, program_id: UUID, member_id: UUID, purpose: str, chan: str, address: str | None,
               now: datetime, valid: timedelta | None) -> str:  # fmt: skip
    """A link token `<program id hex>.<secret>`: only its SHA-256 is stored, so the table leaks no working link."""
    secret = secrets.token_urlsafe(24)
    uow.notifications.add_token({"program_id": program_id, "id": _token_hash(secret), "purpose": purpose,
                                 "member_id": member_id, "channel": chan, "address": address, "created_at": now,
                                 "expires_at": now + valid if valid else None, "used_at": None})  # fmt: skip
    return f"{program_id.hex}.{secret}"


def _find_token(uow: UnitOfWork, token: str, purpose: str, now: datetime) -> dict[str, Any]:
    head, _, secret = (token or "").partition(".")
    try:
        program_id = UUID(hex=head)
    except ValueError:
        raise NotificationTokenInvalid("this link is not valid") from None
    found: dict[str, Any] | None = uow.notifications.token(program_id, _token_hash(secret)) if secret else None
    if found is None or found["purpose"] != purpose:
        raise NotificationTokenInvalid("this link is not valid")
    if found["expires_at"] is not None and found["expires_at"] <= now:
        raise NotificationTokenInvalid("this link has expired")
    return found


def confirm_url(token: str) -> str:
    return f"{public_url()}/api/v1/inbound/notifications/confirm/{token}"


def unsubscribe_url(token: str) -> str:
    return f"{public_url()}/api/v1/inbound/notifications/unsubscribe/{token}"


# -- consents and double opt-in ------------------------------------------------------------------------------
def _marketing_consents(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, dict[str, Any]]:
    return {c["channel"]: c for c in uow.members.consents(program_id, member_id) if c["purpose"] == "marketing"}


def _email_confirmed(uow: UnitOfWork, program_id: UUID, member: dict[str, Any]) -> bool:
    found = uow.notifications.optin(program_id, member["id"], Channel.EMAIL.value)
    return bool(found and found["confirmed_at"] is not None and member.get("email")
                and found["address"] == member["email"])  # fmt: skip


def consents_view(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, Any]:
    member = uow.members.get(program_id, member_id)
    given = _marketing_consents(uow, program_id, member_id)
    optin = uow.notifications.optin(program_id, member_id, Channel.EMAIL.value)
    out: dict[str, Any] = {"member_id": str(member_id), "channels": {}}
    for name in ("email", "push", "sms", "post"):
        row = given.get(name)
        view: dict[str, Any] = {"granted": bool(row and row["granted"]), "source": row["source"] if row else None,
                                "updated_at": _iso(row["updated_at"]) if row else None}  # fmt: skip
        if name == "email":
            confirmed = _email_confirmed(uow, program_id, member)
            view |= {"confirmed": confirmed, "confirmation_requested_at": _iso(optin["requested_at"]) if optin else None,
                     "effective": view["granted"] and confirmed}  # fmt: skip
        else:
            view["effective"] = view["granted"]
        out["channels"][name] = view
    return out


def get_consents(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, Any]:
    with uow:
        view: dict[str, Any] = consents_view(uow, program_id, member_id)
    return view


def set_consent(uow: UnitOfWork, program_id: UUID, member_id: UUID, chan: str, granted: bool, source: str | None,
                now: datetime, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Record marketing consent for one channel. Granting email starts the double opt-in: a confirmation mail with
    a link; marketing email goes out only after it was followed. Withdrawing ends the confirmation too."""
    if chan not in ("email", "push", "sms", "post"):
        raise InvalidInput("consent channels are: email, push, sms, post")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        before = consents_view(uow, program_id, member_id)
        uow.members.set_consent(program_id, member_id, chan, granted, now, source)
        if chan == "email":
            if granted:
                member = uow.members.get(program_id, member_id)
                if not _email_confirmed(uow, program_id, member):
                    _start_optin(uow, program, member, now)
            else:
                uow.notifications.delete_optin(program_id, member_id, chan)
        after = consents_view(uow, program_id, member_id)
        record_audit(uow, program_id, actor, "member.consent", "member", member_id, before, after, source, now)
        uow.emit(program_id, Event(events.MEMBER_UPDATED, {"member_id": str(member_id)}))
        uow.commit()
    return after


def _start_optin(uow: UnitOfWork, program: Program, member: dict[str, Any], now: datetime) -> bool:
    """Queue the confirmation mail for the member's current address (none without an address)."""
    address = member.get("email")
    if not address:
        return False
    token = _new_token(uow, program.id, member["id"], "confirm", "email", address, now, timedelta(days=CONFIRM_DAYS))
    uow.notifications.save_optin({"program_id": program.id, "member_id": member["id"], "channel": "email",
                                  "address": address, "requested_at": now, "confirmed_at": None})  # fmt: skip
    queue(uow, program, member, "email_confirmation", {"confirm_url": confirm_url(token)},
          f"confirm:{_token_hash(token)[:16]}", now, force=True)  # fmt: skip
    return True


def check_token(uow: UnitOfWork, token: str, purpose: str, now: datetime) -> dict[str, Any]:
    """Whether a link is valid (for the page a GET shows); changes nothing."""
    with uow:
        found = _find_token(uow, token, purpose, now)
        program = uow.programs.get(found["program_id"], cached=True)
        member = uow.members.get(found["program_id"], found["member_id"])
    return {"program": program.name, "locale": member.get("locale") or program.default_locale,
            "channel": found["channel"]}  # fmt: skip


def confirm(uow: UnitOfWork, token: str, now: datetime) -> dict[str, Any]:
    """Follow a double opt-in link: the member's email address is confirmed for marketing."""
    with uow:
        found = _find_token(uow, token, "confirm", now)
        program_id, member_id = found["program_id"], found["member_id"]
        program = uow.programs.get(program_id, cached=True)
        member = uow.members.get(program_id, member_id)
        optin = uow.notifications.optin(program_id, member_id, "email")
        if optin is None or optin["address"] != found["address"] or member.get("email") != found["address"]:
            raise NotificationTokenInvalid("this link is for an address the member no longer uses")
        if optin["confirmed_at"] is None:
            uow.notifications.save_optin(optin | {"confirmed_at": now})
            uow.notifications.use_token(program_id, found["id"], now)
            record_audit(uow, program_id, "member", "member.consent_confirmed", "member", member_id, None,
                         {"channel": "email", "address": found["address"]}, "double opt-in", now)  # fmt: skip
        uow.commit()
    return {"program": program.name, "locale": member.get("locale") or program.default_locale, "confirmed": True}


def unsubscribe(uow: UnitOfWork, token: str, now: datetime) -> dict[str, Any]:
    """One click (RFC 8058): marketing consent for the link's channel is withdrawn. Repeating it is harmless."""
    with uow:
        found = _find_token(uow, token, "unsubscribe", now)
        program_id, member_id, chan = found["program_id"], found["member_id"], found["channel"]
        program = uow.programs.get(program_id, cached=True)
        member = uow.members.get(program_id, member_id)
        current = _marketing_consents(uow, program_id, member_id).get(chan)
        if current is None or current["granted"]:
            uow.members.set_consent(program_id, member_id, chan, False, now, "unsubscribe")
            uow.notifications.delete_optin(program_id, member_id, chan)
            uow.notifications.use_token(program_id, found["id"], now)
            record_audit(uow, program_id, "member", "member.unsubscribe", "member", member_id, None,
                         {"channel": chan}, "one-click unsubscribe", now)  # fmt: skip
            uow.emit(program_id, Event(events.MEMBER_UPDATED, {"member_id": str(member_id)}))
        uow.commit()
    return {"program": program.name, "locale": member.get("locale") or program.default_locale,
            "unsubscribed": True, "channel": chan}  # fmt: skip


# -- queueing --------------------------------------------------------------------------------------------------
def _member_zone(member: dict[str, Any], program: Program) -> ZoneInfo:
    """The member's timezone (attribute `timezone`, an IANA name), else the programme's."""
    name = (member.get("attributes") or {}).get("timezone")
    if isinstance(name, str) and name:
        try:
            return zone(name)
        except DomainError:
            pass
    return zone(program.timezone)


def _card(number: str | None) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4)) if number else ""


def queue(uow: UnitOfWork, program: Program, member: dict[str, Any], code: str, context: dict[str, Any], key: str,
          now: datetime, *, settings: NotificationSettings | None = None, force: bool = False,
          extra: dict[str, Any] | None = None) -> dict[str, int]:  # fmt: skip
    """Inside the caller's transaction: one message per channel of the trigger, rendered in the member's locale,
    each queued (or deferred by quiet hours), delivered (inbox) or suppressed with its reason. A (channel, key)
    that exists already adds nothing. `force` sends even when the trigger is switched off (the opt-in mail)."""
    counts = {"queued": 0, "suppressed": 0, "duplicate": 0}
    trig = TRIGGERS[code]
    settings = settings or load_settings(uow, program.id)
    ts = settings.of(code)
    if (not ts.enabled and not force) or member.get("status") != "active":
        return counts
    member_id = member["id"]
    loc = str(member.get("locale") if member.get("locale") in LOCALES else program.default_locale)
    tz = _member_zone(member, program)
    consents = _marketing_consents(uow, program.id, member_id)
    marketing = ts.purpose is Purpose.MARKETING
    sent_this_week = (
        uow.notifications.marketing_since(program.id, member_id, now - timedelta(days=7)) if marketing else 0
    )
    confirmed = _email_confirmed(uow, program.id, member) if marketing else False
    base = {"member": {"first_name": member.get("first_name"), "last_name": member.get("last_name"),
                       "card_number": member.get("card_number"), "email": member.get("email")},
            "program": {"name": program.name}, "portal_url": f"{public_url()}/portal/{program.id}",
            "unsubscribe_url": ""} | context  # fmt: skip
    channels = ts.channels if not force else trig.channels
    for chan in channels:
        granted = consents.get(chan.value)
        decision = decide(trig, ts.purpose, chan, address=member.get("email"),
                          consent=Consent(bool(granted and granted["granted"]), confirmed),
                          marketing_last_week=sent_this_week, settings=settings, now=now, tz=tz)  # fmt: skip
        data: dict[str, Any] = dict(extra or {})
        values = dict(base)
        unsubscribe_secret = None
        if marketing and chan is Channel.EMAIL and decision.send:
            unsubscribe_secret = f"{program.id.hex}.{secrets.token_urlsafe(24)}"
            link = unsubscribe_url(unsubscribe_secret)
            values["unsubscribe_url"] = link
            data["headers"] = {"List-Unsubscribe": f"<{link}>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}  # fmt: skip
        template, _ = _template(uow, program.id, code, chan, loc)
        try:
            rendered = render(template, values)
        except DomainError as error:  # a saved template that no longer renders: the default speaks instead
            log.warning("template %s/%s/%s of %s failed (%s); using the default", code, chan, loc, program.id,
                        error.detail)  # fmt: skip
            rendered = render(default_template(code, chan, loc), values)
        status = Status.QUEUED if decision.send else Status.SUPPRESSED
        if decision.send and chan is Channel.INBOX:
            status = Status.SENT
        row = {"program_id": program.id, "id": new_id(), "member_id": member_id, "trigger": code,
               "channel": chan.value, "purpose": ts.purpose.value, "locale": loc,
               "dedupe_key": f"{member_id}:{code}:{key}"[:200], "status": status.value, "reason": decision.reason,
               "recipient": member.get("email") if chan is Channel.EMAIL else None, "subject": rendered.subject,
               "body_text": rendered.text, "body_html": rendered.html if chan is Channel.EMAIL else None,
               "data": data, "not_before": decision.not_before or now, "attempts": 0, "created_at": now,
               "sent_at": now if status is Status.SENT else None}  # fmt: skip
        if not uow.notifications.add_message(row):
            counts["duplicate"] += 1
            continue
        if unsubscribe_secret is not None:
            secret = unsubscribe_secret.partition(".")[2]
            uow.notifications.add_token({"program_id": program.id, "id": _token_hash(secret), "purpose": "unsubscribe",
                                         "member_id": member_id, "channel": chan.value, "address": member.get("email"),
                                         "created_at": now, "expires_at": None, "used_at": None})  # fmt: skip
        if status is Status.SUPPRESSED:
            counts["suppressed"] += 1
        else:
            counts["queued"] += 1
            if marketing and chan is not Channel.INBOX:
                sent_this_week += 1
    return counts


# -- from the outbox -----------------------------------------------------------------------------------------
def _local_date(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(tz).date().isoformat()


def _tier_name(uow: UnitOfWork, program_id: UUID, code: str | None, loc: str) -> str:
    if not code:
        return ""
    try:
        ladder = uow.tiers.ladder(program_id, cached=True)
        names = dict(ladder.tier(code).name) if ladder is not None else {}
    except (DomainError, KeyError, AttributeError):
        return code
    return str(names.get(loc) or names.get("de") or names.get("en") or code)


def _context(uow: UnitOfWork, program: Program, member: dict[str, Any], code: str, payload: dict[str, Any],
             now: datetime) -> tuple[dict[str, Any], dict[str, Any]] | None:  # fmt: skip
    """The template variables (and the sender's extras) of a trigger fired by an event; None: nothing to say."""
    tz = _member_zone(member, program)
    loc = member.get("locale") or program.default_locale
    if code == "welcome":
        return {"card_number": _card(member.get("card_number"))}, {}
    if code == "points_earned":
        if payload.get("moderation") == "pending" or not payload.get("points"):
            return None
        balance = uow.ledger.load_account(program.id, member["id"]).balance_at(now)
        return {"points": int(payload["points"]), "balance": balance.total, "digest": False, "count": 1,
                "day": now.astimezone(tz).date().isoformat(), "reason": payload.get("reason") or ""}, {}  # fmt: skip
    if code == "reward_redeemed":
        try:
            reward = uow.rewards.get(program.id, UUID(payload["reward_id"]))
            name = reward.name.get(loc) or next(iter(reward.name.values()), "")
        except (DomainError, KeyError, ValueError):
            name = ""
        coupon = payload.get("coupon_code") or ""
        return ({"reward": name, "points": payload.get("points") or 0, "coupon_code": coupon, "qr_cid": QR_CID},
                {"qr": coupon} if coupon else {})  # fmt: skip
    if code in ("tier_upgraded", "tier_downgraded"):
        return {"tier": _tier_name(uow, program.id, payload.get("to"), loc),
                "previous": _tier_name(uow, program.id, payload.get("from"), loc)}, {}  # fmt: skip
    if code == "tier_will_downgrade":
        return {"tier": _tier_name(uow, program.id, payload.get("tier"), loc),
                "would_be": _tier_name(uow, program.id, payload.get("would_be"), loc),
                "decides_on": _local_date(payload.get("decides_at"), tz), "needed": payload.get("needed_to_keep")}, {}  # fmt: skip
    if code == "mission_completed":
        return {"mission": payload.get("mission") or ""}, {}
    if code == "referral_completed":
        reward = (payload.get("rewards") or {}).get("referrer") or {}
        return {"points": reward.get("points") or 0}, {}
    if code in ("club_renewed", "club_payment_failed"):
        return {"plan": payload.get("plan") or "", "amount": payload.get("amount") or "",
                "currency": payload.get("currency") or "",
                "period_end": _local_date(payload.get("period_end"), tz)}, {}  # fmt: skip
    return {}, {}


def _recipient(code: str, payload: dict[str, Any]) -> str | None:
    return payload.get("referrer_id") if code == "referral_completed" else payload.get("member_id")


def on_event(uow: UnitOfWork, message: dict[str, Any], now: datetime) -> int:
    """The outbox handler: the notifications an event fires, queued in the relay's transaction (keyed by the
    outbox message, so a relay that runs again adds nothing). Returns how many messages were queued."""
    topic = message["topic"]
    if topic not in BY_EVENT and topic != events.MEMBER_UPDATED:
        return 0
    program_id = message["program_id"]
    payload = message["payload"] or {}
    program = uow.programs.get(program_id, cached=True)
    settings = load_settings(uow, program_id)
    queued = 0
    if topic in (events.MEMBER_ENROLLED, events.MEMBER_UPDATED):
        queued += _optin_on_profile(uow, program, payload.get("member_id"), now)
    for trig in BY_EVENT.get(topic, []):
        ts = settings.of(trig.code)
        member_id = _recipient(trig.code, payload)
        if not ts.enabled or not member_id:
            continue
        try:
            member = uow.members.get(program_id, UUID(str(member_id)))
        except DomainError:
            continue
        if trig.code == "points_earned" and ts.mode == "digest":
            points = int(payload.get("points") or 0)
            if points > 0 and payload.get("moderation") != "pending":
                day = now.astimezone(_member_zone(member, program)).date()
                uow.notifications.add_to_digest(program_id, member["id"], day, points, now)
            continue
        found = _context(uow, program, member, trig.code, payload, now)
        if found is None:
            continue
        context, extra = found
        queued += queue(uow, program, member, trig.code, context, f"event:{message['id']}", now, settings=settings,
                        extra=extra)["queued"]  # fmt: skip
    return queued


def _optin_on_profile(uow: UnitOfWork, program: Program, member_id: Any, now: datetime) -> int:
    """Consent to marketing email given with the profile (enrolment, PATCH): start the double opt-in once per
    address."""
    if not member_id:
        return 0
    try:
        member = uow.members.get(program.id, UUID(str(member_id)))
    except DomainError:
        return 0
    consent = _marketing_consents(uow, program.id, member["id"]).get("email")
    if not consent or not consent["granted"] or not member.get("email"):
        return 0
    optin = uow.notifications.optin(program.id, member["id"], "email")
    if optin is not None and optin["address"] == member["email"]:
        return 0  # confirmed, or asked already for this address
    return 1 if _start_optin(uow, program, member, now) else 0


# -- the `notifications` job ------------------------------------------------------------------------------------
def run_notifications_job(uow_factory: UnitOfWorkFactory, now: datetime,
                          program_id: UUID | None = None) -> dict[str, int]:  # fmt: skip
    """Expiring points (per lot and threshold), points that became available, the daily digest and the monthly
    statement. Safe to run often and on several workers at once: every message is keyed by what it is about."""
    totals = {"expiring": 0, "available": 0, "digests": 0, "statements": 0, "suppressed": 0}
    with uow_factory() as uow:
        programs = [uow.programs.get(program_id)] if program_id else [p for p, _ in uow.programs.list()]
    for program in programs:
        with uow_factory() as uow:
            settings = load_settings(uow, program.id)
        _expiring(uow_factory, program, settings, now, totals)
        _available(uow_factory, program, settings, now, totals)
        _digests(uow_factory, program, settings, now, totals)
        _statements(uow_factory, program, settings, now, totals)
    return totals


def _add(totals: dict[str, int], name: str, counts: dict[str, int]) -> None:
    totals[name] += counts["queued"]
    totals["suppressed"] += counts["suppressed"]


def _last_valid_day(expires_at: datetime, tz: ZoneInfo) -> date:
    """Points expire at the first instant after their last day: that day is what a member is told."""
    return (expires_at - timedelta(microseconds=1)).astimezone(tz).date()


def _expiring(uow_factory: UnitOfWorkFactory, program: Program, settings: NotificationSettings, now: datetime,
              totals: dict[str, int]) -> None:  # fmt: skip
    ts = settings.of("points_expiring")
    if not ts.enabled or not ts.days:
        return
    until = now + timedelta(days=max(ts.days))
    after: UUID | None = None
    while True:
        with uow_factory() as uow:
            lots = uow.notifications.expiring_lots(program.id, now, until, after, PAGE)
            for lot in lots:
                days = expiring_threshold(lot["expires_at"], now, ts.days)
                if days is None:
                    continue
                member = uow.members.get(program.id, lot["member_id"])
                tz = _member_zone(member, program)
                last = _last_valid_day(lot["expires_at"], tz)
                context = {"points": int(lot["remaining"]), "days": days, "lot_id": str(lot["id"]),
                           "expires_on": last.isoformat(), "days_left": (last - now.astimezone(tz).date()).days}  # fmt: skip
                _add(totals, "expiring", queue(uow, program, member, "points_expiring", context,
                                               f"lot:{lot['id']}:{days}d", now, settings=settings))  # fmt: skip
            uow.commit()
        if len(lots) < PAGE:
            return
        after = lots[-1]["id"]


def _available(uow_factory: UnitOfWorkFactory, program: Program, settings: NotificationSettings, now: datetime,
               totals: dict[str, int]) -> None:  # fmt: skip
    if not settings.of("points_available").enabled:
        return
    after: UUID | None = None
    while True:
        with uow_factory() as uow:
            lots = uow.notifications.lots_became_available(program.id, now - timedelta(days=3), now, after, PAGE)
            for lot in lots:
                member = uow.members.get(program.id, lot["member_id"])
                tz = _member_zone(member, program)
                available = uow.ledger.load_account(program.id, lot["member_id"]).balance_at(now).available
                context = {"points": int(lot["remaining"]), "available": available,
                           "available_on": lot["available_at"].astimezone(tz).date().isoformat()}  # fmt: skip
                _add(totals, "available", queue(uow, program, member, "points_available", context,
                                                f"lot:{lot['id']}:available", now, settings=settings))  # fmt: skip
            uow.commit()
        if len(lots) < PAGE:
            return
        after = lots[-1]["id"]


def _digests(uow_factory: UnitOfWorkFactory, program: Program, settings: NotificationSettings, now: datetime,
             totals: dict[str, int]) -> None:  # fmt: skip
    """Yesterday's (and older) sums of points earned, one message per member and local day, once the day is over
    in the programme's timezone."""
    today = now.astimezone(zone(program.timezone)).date()
    while True:
        with uow_factory() as uow:
            rows = uow.notifications.digests_before(program.id, today, PAGE)
            for row in rows:
                member = uow.members.get(program.id, row["member_id"])
                balance = uow.ledger.load_account(program.id, row["member_id"]).balance_at(now)
                context = {"points": int(row["points"]), "count": int(row["count"]), "digest": True,
                           "day": row["day"].isoformat(), "balance": balance.total}  # fmt: skip
                _add(totals, "digests", queue(uow, program, member, "points_earned", context,
                                              f"digest:{row['day'].isoformat()}", now, settings=settings))  # fmt: skip
                uow.notifications.remove_digest(program.id, row["member_id"], row["day"])
            uow.commit()
        if len(rows) < PAGE:
            return


def _month_bounds(now: datetime, tz: ZoneInfo) -> tuple[str, datetime, datetime]:
    """The last full local month: its name (YYYY-MM) and its start and end in UTC."""
    local = now.astimezone(tz)
    end_day = date(local.year, local.month, 1)
    start_day = (end_day - timedelta(days=1)).replace(day=1)
    start = datetime.combine(start_day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(end_day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    return start_day.strftime("%Y-%m"), start, end


STATEMENT_DAYS = 7  # statements for last month are made in the first days of a month (a stopped worker catches up)


def _statements(uow_factory: UnitOfWorkFactory, program: Program, settings: NotificationSettings, now: datetime,
                totals: dict[str, int]) -> None:  # fmt: skip
    if not settings.of("monthly_statement").enabled:
        return
    tz = zone(program.timezone)
    if now.astimezone(tz).day > STATEMENT_DAYS:
        return
    month, start, end = _month_bounds(now, tz)
    after: UUID | None = None
    while True:
        with uow_factory() as uow:
            ids = uow.notifications.active_members(program.id, after, PAGE)
            for member_id in ids:
                member = uow.members.get(program.id, member_id)
                context = _statement(uow, program, member, month, start, end, now)
                _add(totals, "statements", queue(uow, program, member, "monthly_statement", context, f"month:{month}",
                                                 now, settings=settings))  # fmt: skip
            uow.commit()
        if len(ids) < PAGE:
            return
        after = ids[-1]


def _statement(uow: UnitOfWork, program: Program, member: dict[str, Any], month: str, start: datetime,
               end: datetime, now: datetime) -> dict[str, Any]:  # fmt: skip
    account = uow.ledger.load_account(program.id, member["id"])
    earned, spent = uow.notifications.flows(program.id, member["id"], start, end)
    soon = [lot for lot in account.lots if lot.remaining > 0 and lot.expires_at and now < lot.expires_at <= now
            + timedelta(days=30)]  # fmt: skip
    tz = _member_zone(member, program)
    context: dict[str, Any] = {
        "month": month, "balance": account.balance_at(now).total, "earned": earned, "spent": spent,
        "expiring": sum(lot.remaining for lot in soon),
        "expiring_on": _last_valid_day(min(lot.expires_at for lot in soon if lot.expires_at), tz).isoformat()
        if soon else "", "tier": "", "next_tier": "", "needed": ""}  # fmt: skip
    try:
        from treue.services.tiers import member_tier

        standing = member_tier(uow, program.id, member["id"], now, history=0)
    except DomainError:
        return context
    loc = member.get("locale") or program.default_locale
    if standing.get("tier"):
        context["tier"] = standing["tier"]["name"].get(loc) or standing["tier"]["code"]
        if standing.get("next_tier"):
            context["next_tier"] = standing["next_tier"]["name"].get(loc) or standing["next_tier"]["code"]
            context["needed"] = str(standing.get("needed") or "")
    return context


# -- sending -------------------------------------------------------------------------------------------------------
def _qr_png(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, box_size=8, border=2).save(out)
    return out.getvalue()


def _still_allowed(uow: UnitOfWork, message: dict[str, Any]) -> bool:
    """Marketing is checked again at the send: an unsubscribe between queueing and sending wins."""
    if message["purpose"] != Purpose.MARKETING.value or message["channel"] == Channel.INBOX.value:
        return True
    program_id, member_id = message["program_id"], message["member_id"]
    consent = _marketing_consents(uow, program_id, member_id).get(message["channel"])
    if not consent or not consent["granted"]:
        return False
    if message["channel"] == Channel.EMAIL.value:
        return _email_confirmed(uow, program_id, uow.members.get(program_id, member_id))
    return True


def send_due(uow_factory: UnitOfWorkFactory, clock: Callable[[], datetime], worker: str, mailer: Mailer | None,
             limit: int = 50, program_id: UUID | None = None, lease: timedelta = LEASE) -> dict[str, int]:  # fmt: skip
    """Claim due messages (email and push) under a lease, send each outside any transaction, record each outcome
    in its own. A failed email is retried (1 min, 5 min, 30 min, 2 h, 6 h), then `failed`. A push becomes the
    event `notification.push`, which the programme's webhook endpoints receive."""
    now = clock()
    with uow_factory() as uow:
        claimed = uow.notifications.claim_due(now, limit, worker[:100], now + lease, program_id)
        uow.commit()
    done = {"attempted": 0, "sent": 0, "failed": 0, "retrying": 0, "suppressed": 0}
    for message in claimed:
        done["attempted"] += 1
        with uow_factory() as uow:
            allowed = _still_allowed(uow, message)
        if not allowed:
            _finish(uow_factory, message, worker, {"status": Status.SUPPRESSED.value, "reason": "no_consent"}, done,
                    "suppressed")  # fmt: skip
            continue
        if message["channel"] == Channel.PUSH.value:
            _push(uow_factory, message, worker, clock(), done)
            continue
        error = None
        if mailer is None:
            error = "no mailer configured"
        else:
            try:
                mailer.send(_mail(message))
            except Exception as failure:  # SMTP refusals, timeouts, TLS: all retried
                error = f"{type(failure).__name__}: {failure}"[:500]
        at = clock()
        if error is None:
            _finish(uow_factory, message, worker, {"status": Status.SENT.value, "sent_at": at, "last_error": None},
                    done, "sent")  # fmt: skip
        else:
            retry = next_attempt(message["attempts"], at)
            values: dict[str, Any] = {"last_error": error}
            values |= {"not_before": retry} if retry else {"status": Status.FAILED.value, "reason": "retries_spent"}
            _finish(uow_factory, message, worker, values, done, "retrying" if retry else "failed")
    return done


def _mail(message: dict[str, Any]) -> MailMessage:
    data = message["data"] or {}
    images = (InlineImage(QR_CID, _qr_png(data["qr"])),) if data.get("qr") else ()
    return MailMessage(message["recipient"], message["subject"], message["body_text"], message["body_html"],
                       dict(data.get("headers") or {}), images)  # fmt: skip


def _finish(uow_factory: UnitOfWorkFactory, message: dict[str, Any], worker: str, values: dict[str, Any],
            done: dict[str, int], outcome: str) -> None:  # fmt: skip
    with uow_factory() as uow:
        if uow.notifications.finish(message["program_id"], message["id"], worker[:100], values):
            done[outcome] += 1
        uow.commit()


def _push(uow_factory: UnitOfWorkFactory, message: dict[str, Any], worker: str, now: datetime,
          done: dict[str, int]) -> None:  # fmt: skip
    with uow_factory() as uow:
        if uow.notifications.finish(message["program_id"], message["id"], worker[:100],
                                    {"status": Status.SENT.value, "sent_at": now}):  # fmt: skip
            uow.emit(message["program_id"], Event(PUSH_EVENT, {
                "message_id": str(message["id"]), "member_id": str(message["member_id"]),
                "trigger": message["trigger"], "purpose": message["purpose"], "locale": message["locale"],
                "title": message["subject"], "body": message["body_text"].strip()}))  # fmt: skip
            done["sent"] += 1
        uow.commit()


# -- the log, bounces, the inbox ------------------------------------------------------------------------------
def message_view(row: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
    view = {"id": str(row["id"]), "member_id": str(row["member_id"]), "trigger": row["trigger"],
            "channel": row["channel"], "purpose": row["purpose"], "locale": row["locale"], "status": row["status"],
            "reason": row["reason"], "subject": row["subject"], "created_at": _iso(row["created_at"]),
            "not_before": _iso(row["not_before"]), "sent_at": _iso(row["sent_at"])}  # fmt: skip
    if full:
        view |= {"recipient": row["recipient"], "attempts": row["attempts"], "last_error": row["last_error"],
                 "key": row["dedupe_key"], "text": row["body_text"]}  # fmt: skip
    return view


def list_messages(uow: UnitOfWork, program_id: UUID, *, member_id: UUID | None = None, status: str | None = None,
                  chan: str | None = None, code: str | None = None, limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
    """The delivery log, newest first."""
    if status is not None and status not in {s.value for s in Status}:
        raise InvalidInput(f"status must be one of {', '.join(s.value for s in Status)}")
    with uow:
        uow.programs.get(program_id, cached=True)
        if member_id is not None:
            uow.members.get(program_id, member_id)
        rows = uow.notifications.messages(program_id, member_id=member_id, status=status,
                                          channel=channel(chan).value if chan else None,
                                          trigger=trigger(code).code if code else None, limit=max(1, min(limit, 500)))  # fmt: skip
    return [message_view(r) for r in rows]


def report_bounce(uow: UnitOfWork, program_id: UUID, message_id: UUID, reason: str | None, permanent: bool,
                  now: datetime, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """The mail provider reported that a sent email bounced. A permanent bounce also ends the address's double
    opt-in, so no marketing goes to it until it is confirmed again."""
    with uow:
        found = uow.notifications.message(program_id, message_id, lock=True)
        if found is None or found["channel"] != Channel.EMAIL.value:
            raise NotFound(f"no email message {message_id}")
        if found["status"] not in (Status.SENT.value, Status.BOUNCED.value):
            raise InvalidInput(f"only a sent email can bounce; this one is {found['status']}")
        values = {"status": Status.BOUNCED.value, "reason": ("permanent" if permanent else "transient"),
                  "last_error": (reason or "")[:500] or None}  # fmt: skip
        uow.notifications.update_message(program_id, message_id, values)
        if permanent:
            optin = uow.notifications.optin(program_id, found["member_id"], "email")
            if optin is not None and optin["address"] == found["recipient"]:
                uow.notifications.delete_optin(program_id, found["member_id"], "email")
        record_audit(uow, program_id, actor, "notifications.bounce", "notification_message", message_id, None, values,
                     reason, now)  # fmt: skip
        uow.commit()
    return message_view(found | values)


def inbox(uow: UnitOfWork, program_id: UUID, member_id: UUID, unread_only: bool = False,
          limit: int = 50) -> dict[str, Any]:  # fmt: skip
    """The member's in-app messages, newest first, with the unread count."""
    with uow:
        uow.members.get(program_id, member_id)
        rows = uow.notifications.messages(program_id, member_id=member_id, channel="inbox", status="sent",
                                          unread=unread_only, limit=max(1, min(limit, 200)))  # fmt: skip
        unread = uow.notifications.unread_count(program_id, member_id)
    return {"member_id": str(member_id), "unread": unread,
            "messages": [{"id": str(r["id"]), "trigger": r["trigger"], "subject": r["subject"], "text": r["body_text"],
                          "locale": r["locale"], "created_at": _iso(r["created_at"]), "read": r["read_at"] is not None,
                          "read_at": _iso(r["read_at"])} for r in rows]}  # fmt: skip


def mark_read(uow: UnitOfWork, program_id: UUID, member_id: UUID, message_id: UUID, now: datetime) -> dict[str, Any]:
    with uow:
        found = uow.notifications.message(program_id, message_id, lock=True)
        if found is None or found["member_id"] != member_id or found["channel"] != Channel.INBOX.value:
            raise NotFound(f"no inbox message {message_id} for member {member_id}")
        read_at = found["read_at"] or now
        if found["read_at"] is None:
            uow.notifications.update_message(program_id, message_id, {"read_at": now})
        unread = uow.notifications.unread_count(program_id, member_id)
        uow.commit()
    return {"id": str(message_id), "read": True, "read_at": _iso(read_at), "unread": unread}


RESENDABLE = frozenset({Status.SENT.value, Status.FAILED.value, Status.BOUNCED.value})


def resend_message(uow: UnitOfWork, program_id: UUID, message_id: UUID, now: datetime, *, actor: str = "api",
                   reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Support sends an email or push again (lost, in the spam folder, the address corrected after a bounce): a
    new message with the same text, to the member's address now; the original stays as it was in the log. The
    send checks marketing consent again, as for every message, so a resend cannot reach a member who withdrew."""
    with uow:
        found = uow.notifications.message(program_id, message_id)
        if found is None or found["channel"] == Channel.INBOX.value:
            raise NotFound(f"no email or push message {message_id}", resource="notification_message")
        if found["status"] not in RESENDABLE:
            raise InvalidInput(f"only a sent, failed or bounced message can be sent again; this one is "
                               f"{found['status']}")  # fmt: skip
        member = uow.members.get(program_id, found["member_id"])
        if member.get("status") != "active":
            raise InvalidInput("the member is not active")
        recipient = None
        if found["channel"] == Channel.EMAIL.value:
            recipient = member.get("email")
            if not recipient:
                raise InvalidInput("the member has no email address")
        copy_id = new_id()
        row = {key: found[key] for key in ("program_id", "member_id", "trigger", "channel", "purpose", "locale",
                                           "subject", "body_text", "body_html", "data")}  # fmt: skip
        row |= {"id": copy_id, "dedupe_key": f"resend:{copy_id}", "status": Status.QUEUED.value, "reason": None,
                "recipient": recipient, "not_before": now, "attempts": 0, "created_at": now, "sent_at": None}  # fmt: skip
        uow.notifications.add_message(row)
        record_audit(uow, program_id, actor, "notifications.resend", "notification_message", message_id,
                     {"status": found["status"]}, {"resent_as": str(copy_id)}, reason, now)  # fmt: skip
        uow.commit()
    return message_view(row | {"last_error": None, "read_at": None})
