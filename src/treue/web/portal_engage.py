"""Portal: offers, missions, streaks, badges, referral link, club, NPS survey, preferences, inbox (issue 9).

Every page reads the signed-in member's own data through the services; every form posts with the session's CSRF
token and answers with a redirect (303) to the page it came from, or with the page and an error (4xx) when the
services refuse, so nothing is changed by bad input. Identifiers in paths (an offer's or a mission's code, a
message id) are checked against the member's own: the services refuse what is not theirs.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from treue.domain.errors import (
    AlreadyCancelled,
    ClubAlreadySubscribed,
    ClubPaymentRequired,
    ClubPlanUnavailable,
    DomainError,
    MissionNotOpen,
    NotFound,
    OfferUnavailable,
    SurveyAnswered,
    SurveyClosed,
)
from treue.services import club as club_cases
from treue.services import gamification as game_cases
from treue.services import members as member_cases
from treue.services import notifications as notice_cases
from treue.services import offers as offer_cases
from treue.services import referrals as referral_cases
from treue.services import surveys as survey_cases
from treue.services.portal import MemberSession
from treue.services.programs import get_program
from treue.web import security
from treue.web.i18n import LANGUAGES, translate
from treue.web.portal import _lang, _member_page, benefit_figures, open_surveys
from treue.web.security import LANG_COOKIE, signed_in_member

router = APIRouter(prefix="/portal", include_in_schema=False)

CONSENT_CHANNELS = ("email", "sms", "push", "post")


def _actor(session: MemberSession) -> str:
    return f"member:{session.member_id}"


def _see_other(target: str) -> Response:
    return RedirectResponse(target, status_code=303)


def _program(request: Request, session: MemberSession) -> dict[str, Any]:
    return get_program(security.uow(request, read_only=True), session.program_id)


# -- offers -------------------------------------------------------------------------------------------------------
def _offers_page(request: Request, session: MemberSession, status: int = 200, error: str | None = None,
                 done: str | None = None) -> Response:  # fmt: skip
    now = security.now(request)
    found = offer_cases.member_offers(security.uow(request, read_only=True), session.program_id, session.member_id,
                                      now)  # fmt: skip
    for offer in [o for o in found if o["state"] == "available" and o["activation_required"]]:
        # The page is the funnel's first step: an offer counts as shown the first time its member sees it here.
        with suppress(DomainError):  # the offer went away between the two reads: shown as listed
            offer.update(state=offer_cases.mark_shown(security.uow(request), session.program_id, session.member_id,
                                                      offer["code"], now)["state"])  # fmt: skip
    for offer in found:
        # ends_at is the first instant after the offer: its last valid day is the day before it begins.
        offer["last_at"] = (datetime.fromisoformat(offer["ends_at"]) - timedelta(seconds=1)).isoformat()
    return _member_page(request, session, "portal/offers.html", status, offers=found, error=error, done=done)


@router.get("/offers")
def offers(request: Request, activated: str | None = None,
           session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    return _offers_page(request, session, done=activated)


@router.post("/offers/{code}/activate")
def activate_offer(request: Request, code: str, csrf_token: str | None = Form(None),
                   session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = _lang(request, session)
    try:
        offer_cases.activate_offer(security.uow(request), session.program_id, session.member_id, code,
                                   security.now(request))  # fmt: skip
    except NotFound:
        return _offers_page(request, session, 404, translate(lang, "There is no such offer for you."))
    except OfferUnavailable:
        return _offers_page(request, session, 409, translate(lang, "This offer cannot be activated (any more)."))
    return _see_other(f"/portal/offers?activated={quote(code)}")


# -- missions, streaks, badges ------------------------------------------------------------------------------------
def _missions_page(request: Request, session: MemberSession, status: int = 200, error: str | None = None,
                   done: str | None = None) -> Response:  # fmt: skip
    lang = _lang(request, session)
    uow = security.uow(request, read_only=True)
    now = security.now(request)
    missions = game_cases.member_missions(uow, session.program_id, session.member_id, now, locale=lang)
    for mission in missions:
        mission["percent"] = min(100, mission["current"] * 100 // mission["target"]) if mission["target"] else 100
    streaks = game_cases.member_streaks(uow, session.program_id, session.member_id, now)
    badges = game_cases.member_badges(uow, session.program_id, session.member_id)
    for badge in badges:  # a percentage ("12.50") as the rate the percent filter formats per locale
        badge["held_rate"] = str(Decimal(badge["held_by_percent"]) / 100) if badge.get("held_by_percent") else None
    return _member_page(request, session, "portal/missions.html", status, missions=missions, streaks=streaks,
                        badges=badges, error=error, done=done)  # fmt: skip


@router.get("/missions")
def missions(request: Request, joined: str | None = None,
             session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    return _missions_page(request, session, done=joined)


@router.post("/missions/{code}/opt-in")
def opt_in(request: Request, code: str, csrf_token: str | None = Form(None),
           session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = _lang(request, session)
    now = security.now(request)
    # Only a mission the member is shown and that asks for an opt-in: one outside their audience is not theirs.
    listed = game_cases.member_missions(security.uow(request, read_only=True), session.program_id, session.member_id,
                                        now)  # fmt: skip
    if not any(m["code"] == code and m["opt_in_required"] for m in listed):
        return _missions_page(request, session, 404, translate(lang, "There is no such mission for you."))
    try:
        game_cases.opt_in(security.uow(request), session.program_id, session.member_id, code, now)
    except NotFound:
        return _missions_page(request, session, 404, translate(lang, "There is no such mission for you."))
    except MissionNotOpen:
        return _missions_page(request, session, 409, translate(lang, "This mission takes no new participants."))
    return _see_other(f"/portal/missions?joined={quote(code)}")


# -- invite friends -----------------------------------------------------------------------------------------------
@router.get("/invite")
def invite(request: Request, session: MemberSession = Depends(signed_in_member)) -> Response:
    lang = _lang(request, session)
    # Writes on the first visit: the member's code is created when first asked for.
    mine = referral_cases.member_referrals(security.uow(request), session.program_id, session.member_id,
                                           security.now(request))  # fmt: skip
    program = _program(request, session)
    target = mine["link"] or mine["code"]
    if mine["link"]:
        text = translate(lang, "Join %(program)s with my invitation: %(link)s") % {"program": program["name"],
                                                                                   "link": mine["link"]}  # fmt: skip
    else:
        text = translate(lang, "Join %(program)s and give my invitation code %(code)s when you sign up.") % {
            "program": program["name"], "code": mine["code"]}  # fmt: skip
    subject = translate(lang, "An invitation to %(program)s") % {"program": program["name"]}
    share = {"text": text, "target": target, "title": subject,
             "mailto": f"mailto:?subject={quote(subject, safe='')}&body={quote(text, safe='')}",
             "whatsapp": f"https://wa.me/?text={quote(text, safe='')}"}  # fmt: skip
    return _member_page(request, session, "portal/invite.html", referrals=mine, share=share)


# -- club ---------------------------------------------------------------------------------------------------------
def _club_page(request: Request, session: MemberSession, status: int = 200, error: str | None = None,
               done: str | None = None) -> Response:  # fmt: skip
    lang = _lang(request, session)
    uow = security.uow(request, read_only=True)
    mine = club_cases.member_club(uow, session.program_id, session.member_id, security.now(request))
    plans = [p for p in club_cases.list_plans(uow, session.program_id) if p["active"]]
    first_time = mine["subscription"] is None  # only a member's first subscription gets a plan's trial
    running = mine["subscription"] is not None and mine["subscription"]["status"] in ("trialing", "active",
                                                                                       "past_due")  # fmt: skip
    for plan in plans:
        plan["trial_applies"] = first_time and plan["trial_days"] > 0
        plan["shown_benefits"] = benefit_figures(plan["benefits"], lang)
    names = {p["code"]: p["name"] for p in club_cases.list_plans(uow, session.program_id)}
    return _member_page(request, session, "portal/club.html", status, club=mine, plans=plans, running=running,
                        names=names, benefits=benefit_figures(mine["benefits"], lang), error=error,
                        done=done)  # fmt: skip


@router.get("/club")
def club(request: Request, done: str | None = None, session: MemberSession = Depends(signed_in_member)) -> Response:
    return _club_page(request, session, done=done if done in ("joined", "cancelled") else None)


@router.post("/club/join")
def join_club(request: Request, plan: str = Form(""), csrf_token: str | None = Form(None),
              session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = _lang(request, session)
    try:
        # No payment: the portal cannot take one. Only a plan's trial starts here; without one the service refuses.
        club_cases.join_club(security.uow(request), session.program_id, session.member_id, plan,
                             security.now(request), actor=_actor(session))  # fmt: skip
    except NotFound:
        return _club_page(request, session, 404, translate(lang, "There is no such plan."))
    except ClubPaymentRequired:
        needs = translate(lang, "This plan starts with a payment, which this portal cannot take. Ask us in the shop.")
        return _club_page(request, session, 402, needs)
    except ClubAlreadySubscribed:
        return _club_page(request, session, 409, translate(lang, "You are in the club already."))
    except ClubPlanUnavailable:
        return _club_page(request, session, 409, translate(lang, "This plan takes no new members."))
    return _see_other("/portal/club?done=joined")


@router.post("/club/cancel")
def cancel_club(request: Request, csrf_token: str | None = Form(None),
                session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = _lang(request, session)
    try:
        club_cases.cancel_subscription(security.uow(request), session.program_id, session.member_id,
                                       security.now(request), at_period_end=True, reason="cancelled in the portal",
                                       actor=_actor(session))  # fmt: skip
    except NotFound:
        return _club_page(request, session, 404, translate(lang, "You have no club membership to cancel."))
    except AlreadyCancelled:
        return _club_page(request, session, 409, translate(lang, "Your membership is cancelled already."))
    return _see_other("/portal/club?done=cancelled")


# -- NPS survey ---------------------------------------------------------------------------------------------------
def _survey_page(request: Request, session: MemberSession, code: str, status: int = 200, error: str | None = None,
                 score: str = "", comment: str = "", done: bool = False) -> Response:  # fmt: skip
    survey = next((s for s in open_surveys(request, session, security.now(request)) if s["code"] == code), None)
    if survey is None:
        lang = _lang(request, session)
        return _member_page(request, session, "portal/survey.html", 404, survey=None,
                            error=translate(lang, "This survey is not open."), score="", comment="", done=False)  # fmt: skip
    return _member_page(request, session, "portal/survey.html", status, survey=survey, error=error, score=score,
                        comment=comment, done=done)  # fmt: skip


@router.get("/survey/{code}")
def survey(request: Request, code: str, done: str | None = None,
           session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    return _survey_page(request, session, code, done=done == "1")


@router.post("/survey/{code}")
def answer_survey(request: Request, code: str, score: str = Form(""), comment: str = Form(""),
                  csrf_token: str | None = Form(None), session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = _lang(request, session)
    value = int(score) if score.strip().isdigit() else None
    if value is None or not 0 <= value <= 10:
        return _survey_page(request, session, code, 422, translate(lang, "Choose a score from 0 to 10."), score,
                            comment)  # fmt: skip
    if len(comment) > 2000:
        too_long = translate(lang, "The comment is too long (at most 2000 characters).")
        return _survey_page(request, session, code, 422, too_long, score, comment)
    try:
        survey_cases.answer_survey(security.uow(request), session.program_id, code, session.member_id, value,
                                   security.now(request), comment=comment.strip() or None, channel="portal")  # fmt: skip
    except SurveyAnswered:
        return _survey_page(request, session, code, 409, translate(lang, "You have answered this survey already."))
    except (NotFound, SurveyClosed):
        return _survey_page(request, session, code, 404)
    return _see_other(f"/portal/survey/{quote(code)}?done=1")


# -- preferences --------------------------------------------------------------------------------------------------
def _preferences_page(request: Request, session: MemberSession, status: int = 200, error: str | None = None,
                      done: bool = False) -> Response:  # fmt: skip
    uow = security.uow(request, read_only=True)
    consents = notice_cases.get_consents(uow, session.program_id, session.member_id)["channels"]
    member = member_cases.get_member(uow, session.program_id, session.member_id)
    return _member_page(request, session, "portal/preferences.html", status, consents=consents, member=member,
                        channels=CONSENT_CHANNELS, error=error, done=done)  # fmt: skip


@router.get("/preferences")
def preferences(request: Request, saved: str | None = None,
                session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    return _preferences_page(request, session, done=saved == "1")


async def _form_fields(request: Request) -> dict[str, str]:
    """Every field of a posted form (the preferences' consent boxes are checked against the known channels)."""
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


@router.post("/preferences")
def save_preferences(request: Request, given: dict[str, str] = Depends(_form_fields),
                     session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, given.get("csrf_token"))
    lang = _lang(request, session)
    locale = given.get("locale", "")
    if locale not in LANGUAGES:  # checked before anything is saved: a bad form changes nothing
        return _preferences_page(request, session, 422, translate(lang, "Choose German or English."))
    unknown = [key for key, value in given.items() if key.startswith("consent_")
               and (key.removeprefix("consent_") not in CONSENT_CHANNELS or value not in ("yes", "no"))]  # fmt: skip
    if unknown:
        return _preferences_page(request, session, 422, translate(lang, "The form was not understood."))
    now = security.now(request)
    uow = security.uow(request, read_only=True)
    current = notice_cases.get_consents(uow, session.program_id, session.member_id)["channels"]
    member = member_cases.get_member(uow, session.program_id, session.member_id)
    for chan in CONSENT_CHANNELS:
        wanted = given.get(f"consent_{chan}") == "yes"  # an unticked box sends nothing: withdrawn
        if wanted != current[chan]["granted"]:
            notice_cases.set_consent(security.uow(request), session.program_id, session.member_id, chan, wanted,
                                     "portal", now, actor=_actor(session))  # fmt: skip
    if member.get("locale") != locale:
        member_cases.update_member(security.uow(request), session.program_id, session.member_id, {"locale": locale},
                                   now, actor=_actor(session))  # fmt: skip
    response = _see_other("/portal/preferences?saved=1")
    # The language chosen here is the member's choice: it wins over an earlier switch of the language links.
    security.set_cookie(response, request, LANG_COOKIE, locale, max_age=365 * 24 * 3600)
    return response


# -- inbox --------------------------------------------------------------------------------------------------------
def _inbox_page(request: Request, session: MemberSession, status: int = 200, error: str | None = None) -> Response:
    found = notice_cases.inbox(security.uow(request, read_only=True), session.program_id, session.member_id)
    return _member_page(request, session, "portal/inbox.html", status, inbox=found, error=error)


@router.get("/inbox")
def inbox(request: Request, session: MemberSession = Depends(signed_in_member)) -> Response:
    return _inbox_page(request, session)


@router.post("/inbox/{message_id}/read")
def mark_read(request: Request, message_id: str, csrf_token: str | None = Form(None),
              session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    try:
        notice_cases.mark_read(security.uow(request), session.program_id, session.member_id, UUID(message_id),
                               security.now(request))  # fmt: skip
    except (ValueError, NotFound):
        lang = _lang(request, session)
        return _inbox_page(request, session, 404, translate(lang, "There is no such message for you."))
    return _see_other(f"/portal/inbox#m-{message_id}")
