"""The admin dashboard over HTTP (TestClient) on SQLite and PostgreSQL: sign-in, sessions, lockout, CSRF,
roles, languages, and the pages' use cases (search, profile, adjust, rules with the live CEL check, preview)."""

from __future__ import annotations

from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import PASSWORD, Web, csrf_of, text_of
from treue.domain.members import new_card_number
from treue.ids import random_digits
from treue.services.audit import list_audit
from treue.services.points import get_balance
from treue.services.rules import list_rules


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


@pytest.fixture
def member(web: Web, program_id: UUID) -> UUID:
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Anna", last_name="Berg", email="anna@example.org",
                      phone="+49 170 1234567", locale="de")  # fmt: skip
    buy(web.uow, program_id, member_id, "120.00", web.clock())
    return member_id


def card_of(web: Web, program_id: UUID, member_id: UUID) -> str:
    with web.uow() as uow:
        return str(uow.members.get(program_id, member_id)["card_number"])


# -- sign-in, sessions, sign-out -----------------------------------------------------------------------------
def test_pages_need_a_session_and_sign_in_opens_one_with_safe_cookie_flags(web: Web, program_id: UUID):
    client = web.client()
    response = client.get("/admin/members")
    assert response.status_code == 303 and response.headers["location"] == "/admin/sign-in?next=/admin/members"

    email = web.staff(program_id, "owner")
    response = web.sign_in(client, email)
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("treue_staff=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http (a test server); see the https test
    assert client.get("/admin").status_code == 200

    session_cookie = client.cookies.get("treue_staff")
    signed_out = client.post("/admin/sign-out", data={"csrf_token": csrf_of(client.get("/admin").text)})
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/admin/sign-in"
    # The server forgot the session: the old cookie value no longer opens anything.
    replay = web.client()
    replay.cookies.set("treue_staff", session_cookie)
    assert replay.get("/admin").status_code == 303


def test_the_session_cookie_is_secure_over_https(engine, now, program_id: UUID):
    web = Web(engine, Clock(now), base_url="https://testserver")
    client = web.client()
    response = web.sign_in(client, web.staff(program_id, "owner"))
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_a_forged_or_expired_session_is_no_session(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    for value in ("nonsense", f"{program_id}.not-a-token", "not-a-uuid.token"):
        forged = web.client()
        forged.cookies.set("treue_staff", value)
        assert forged.get("/admin").status_code == 303
    web.clock.advance(hours=12, seconds=1)
    assert client.get("/admin").status_code == 303


def test_five_failures_in_fifteen_minutes_lock_the_account_even_for_the_right_password(web: Web, program_id: UUID):
    email = web.staff(program_id, "manager")
    client = web.client()
    for attempt in range(4):
        response = web.sign_in(client, email, "wrong-password-1")
        assert response.status_code == 401, attempt
        assert "Email or password is wrong" in response.text
        web.clock.advance(minutes=1)
    assert web.sign_in(client, email, "wrong-password-1").status_code == 429  # the fifth locks
    locked = web.sign_in(client, email, PASSWORD)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert "treue_staff" not in locked.headers.get("set-cookie", "")
    with web.uow() as uow:
        assert any(a["action"] == "staff.locked" for a in uow.audit.list(program_id, 20))

    web.clock.advance(minutes=15)
    assert web.sign_in(client, email, PASSWORD).status_code == 303


def test_failures_spread_over_more_than_the_window_do_not_lock(web: Web, program_id: UUID):
    email = web.staff(program_id, "support")
    client = web.client()
    for _ in range(8):
        assert web.sign_in(client, email, "wrong-password-1").status_code == 401
        web.clock.advance(minutes=4)  # the count restarts every 15 minutes
    assert web.sign_in(client, email, PASSWORD).status_code == 303


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(web: Web, program_id: UUID):
    web.staff(program_id, "owner", email="real@staff.example")
    client = web.client()
    unknown = web.sign_in(client, "nobody@staff.example", PASSWORD)
    wrong = web.sign_in(client, "real@staff.example", "wrong-password-1")
    assert unknown.status_code == wrong.status_code == 401
    assert text_of(unknown.text).replace("nobody", "X") == text_of(wrong.text).replace("real", "X")


# -- CSRF ------------------------------------------------------------------------------------------------
def test_posts_without_the_csrf_token_are_refused_and_change_nothing(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "support")
    balance = get_balance(web.uow(), program_id, member, web.clock())["points"]
    for token in (None, "", "forged-token"):
        data = {"points": "50", "reason": "goodwill"} | ({"csrf_token": token} if token is not None else {})
        response = client.post(f"/admin/members/{member}/adjust", data=data)
        assert response.status_code == 403, token
        assert "The form has expired" in response.text
    assert get_balance(web.uow(), program_id, member, web.clock())["points"] == balance

    # HTMX sends the token as a header instead of a field: that is accepted.
    page = client.get(f"/admin/members/{member}")
    response = client.post(f"/admin/members/{member}/adjust", data={"points": "50", "reason": "goodwill"},
                           headers={"X-CSRF-Token": csrf_of(page.text)})  # fmt: skip
    assert response.status_code == 200, response.text
    assert get_balance(web.uow(), program_id, member, web.clock())["points"] == balance + 50


def test_the_sign_in_form_needs_its_double_submit_token(web: Web, program_id: UUID):
    email = web.staff(program_id, "owner")
    client = web.client()
    response = client.post("/admin/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": "x" * 43})
    assert response.status_code == 403
    assert "treue_staff" not in response.headers.get("set-cookie", "")


def test_signing_out_needs_the_csrf_token(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    assert client.post("/admin/sign-out", data={}).status_code == 403
    assert client.get("/admin").status_code == 200  # still signed in


# -- roles ---------------------------------------------------------------------------------------------------
PAGES = ("/admin", "/admin/members?q=anna", "/admin/members/{member}", "/admin/lookup?card={card}", "/admin/rules",
         "/admin/rules/new")  # fmt: skip
ALLOWED = {
    "owner": set(PAGES),
    "manager": set(PAGES),
    "support": {"/admin", "/admin/members?q=anna", "/admin/members/{member}", "/admin/lookup?card={card}"},
    "analyst": {"/admin", "/admin/rules", "/admin/rules/new"},
    "partner": {"/admin", "/admin/lookup?card={card}"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_opens_its_pages_and_gets_a_403_page_elsewhere(web: Web, program_id: UUID, member: UUID, role: str):
    client = web.signed_in(program_id, role, partner="acme" if role == "partner" else None)
    card = card_of(web, program_id, member)
    for template in PAGES:
        path = template.format(member=member, card=card)
        response = client.get(path)
        expected = 200 if template in ALLOWED[role] else 403
        assert response.status_code == expected, f"{role} {path}: {response.status_code}"
        if expected == 403:
            assert "Your role may not open this page" in response.text
    navigation = client.get("/admin").text
    assert ('href="/admin/members"' in navigation) == ("/admin/members?q=anna" in ALLOWED[role])
    assert ('href="/admin/rules"' in navigation) == ("/admin/rules" in ALLOWED[role])


def test_roles_without_the_permission_cannot_post_either(web: Web, program_id: UUID, member: UUID):
    for role in ("analyst", "partner"):
        client = web.signed_in(program_id, role, partner="acme" if role == "partner" else None)
        token = csrf_of(client.get("/admin").text)
        response = client.post(f"/admin/members/{member}/adjust", data={"points": "5", "reason": "x",
                                                                         "csrf_token": token})  # fmt: skip
        assert response.status_code == 403
    support = web.signed_in(program_id, "support")
    token = csrf_of(support.get("/admin").text)
    response = support.post("/admin/rules/save", data={"rule_id": "sneaky", "trigger": "purchase", "csrf_token": token,
                                                       "effects": '[{"type": "fixed_points", "points": 1}]'})  # fmt: skip
    assert response.status_code == 403
    assert list_rules(web.uow(), program_id) == []
    assert get_balance(web.uow(), program_id, member, web.clock())["points"] == 120


def test_a_partner_sees_only_its_own_partners_figures(web: Web, program_id: UUID, member: UUID):
    buy(web.uow, program_id, member, "30.00", web.clock(), partner="acme")
    buy(web.uow, program_id, member, "7.00", web.clock(), partner="acme")
    web.clock.advance(minutes=1)  # the overview's period ends now (exclusive)
    partner = web.signed_in(program_id, "partner", partner="acme")
    page = partner.get("/admin").text
    assert 'data-kpi="purchases">2<' in page and 'data-kpi="issued">37<' in page
    assert 'data-kpi="members"' not in page  # the programme's member count is not a partner's business
    owner = web.signed_in(program_id, "owner")
    page = owner.get("/admin").text
    assert 'data-kpi="purchases">3<' in page and 'data-kpi="issued">157<' in page and 'data-kpi="members">1<' in page


def test_staff_of_one_programme_never_see_another_programmes_member(web: Web, program_id: UUID, member: UUID, now):
    from treue.services.programs import create_program

    other = UUID(create_program(web.uow(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    client = web.signed_in(other, "owner")
    assert client.get(f"/admin/members/{member}").status_code == 404
    assert "Anna" not in client.get("/admin/members?q=anna").text
    assert "Anna" not in client.get(f"/admin/lookup?card={card_of(web, program_id, member)}").text


# -- languages and formatting ---------------------------------------------------------------------------------
def test_language_from_profile_then_browser_and_the_switcher_wins(web: Web, program_id: UUID, member: UUID):
    german = web.signed_in(program_id, "owner", locale="de")
    page = german.get(f"/admin/members/{member}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.headers["content-language"] == "de"
    assert '<html lang="de">' in page.text
    words = text_of(page.text)
    assert "Punktestand" in words and "Verfügbar" in words and "Verlauf" in words
    assert "Einkauf order-" in words  # the stored explanation, in plain German
    assert "1,20 €" in words  # 120 points at 0.01 EUR, formatted for Germany

    switched = german.get("/admin/language?lang=en&next=/admin/members")
    assert switched.status_code == 303 and switched.headers["location"] == "/admin/members"
    page = german.get(f"/admin/members/{member}")
    assert page.headers["content-language"] == "en"
    assert "€1.20" in text_of(page.text) and "Balance" in page.text


def test_signed_out_pages_follow_accept_language(web: Web):
    client = web.client()
    assert "Anmeldung zum Verwaltungsbereich" in client.get("/admin/sign-in", headers={"Accept-Language": "de-AT"}).text
    assert "Sign in to the admin dashboard" in client.get("/admin/sign-in", headers={"Accept-Language": "fr"}).text
    assert "Sign in to the admin dashboard" in client.get("/admin/sign-in").text


def test_the_language_switcher_redirects_only_inside_the_ui(web: Web):
    client = web.client()
    for target in ("https://evil.example/", "//evil.example/admin"):
        response = client.get("/admin/language", params={"lang": "de", "next": target})
        assert response.headers["location"] == "/admin"


# -- pages -----------------------------------------------------------------------------------------------------
def test_search_by_card_email_phone_and_name_and_the_htmx_partial(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "support")
    card = card_of(web, program_id, member)
    for query in (card, "anna@example.org", "+49 170 1234567", "berg"):
        page = client.get("/admin/members", params={"q": query})
        assert f'href="/admin/members/{member}"' in page.text, query
    partial = client.get("/admin/members", params={"q": "berg"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.text and f"/admin/members/{member}" in partial.text
    assert "No member found." in client.get("/admin/members", params={"q": "zzz-nobody"}).text


def test_adjusting_points_with_a_reason_is_audited_and_refusals_change_nothing(web: Web, program_id: UUID,
                                                                               member: UUID):  # fmt: skip
    client = web.signed_in(program_id, "support")
    token = csrf_of(client.get(f"/admin/members/{member}").text)
    url = f"/admin/members/{member}/adjust"
    for data, message in (({"points": "10", "reason": " "}, "needs a reason"),
                          ({"points": "ten", "reason": "x"}, "whole number"),
                          ({"points": "0", "reason": "x"}, "zero points"),
                          ({"points": "-5000", "reason": "x"}, "Not enough points")):  # fmt: skip
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 422 and message in response.text, (data, response.text[-800:])
    assert get_balance(web.uow(), program_id, member, web.clock())["points"] == 120

    response = client.post(url, data={"points": "-20", "reason": "damaged voucher", "csrf_token": token})
    assert response.status_code == 200 and "the balance is now 100" in response.text
    audit = list_audit(web.uow(), program_id)
    entry = next(a for a in audit if a["action"] == "points.adjust")
    assert entry["reason"] == "damaged voucher" and entry["actor"].startswith("staff:support-")
    assert "Adjusted by hand: damaged voucher" in text_of(client.get(f"/admin/members/{member}").text)


def test_the_rule_editor_checks_the_condition_as_it_is_typed_and_saves(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "manager")
    token = csrf_of(client.get("/admin/rules/new").text)
    form = {"rule_id": "big-carts", "name": "Big carts", "trigger": "purchase", "csrf_token": token,
            "effects": '[{"type": "fixed_points", "points": 25}]'}  # fmt: skip

    bad = client.post("/admin/rules/validate", data={**form, "condition": "purchase.total >= 50 && purchase.totl > 1"},
                      headers={"HX-Request": "true"})  # fmt: skip
    assert bad.status_code == 200 and 'data-check="invalid"' in bad.text and "<html" not in bad.text
    assert "line 1, column 34" in bad.text and "totl" in bad.text
    assert "\n" + " " * 33 + "^</pre>" in bad.text  # the caret under the offending name

    syntax = client.post("/admin/rules/validate", data={**form, "condition": "purchase.total >= "})
    assert 'data-check="invalid"' in syntax.text and "syntax error" in syntax.text
    effects = client.post("/admin/rules/validate", data={**form, "condition": "", "effects": "[{"})
    assert 'data-check="invalid"' in effects.text and "effects: not JSON" in effects.text

    good = client.post("/admin/rules/validate", data={**form, "condition": "purchase.total >= 50"})
    assert 'data-check="valid"' in good.text

    saved = client.post("/admin/rules/save", data={**form, "condition": "purchase.total >= 50", "new": "1"})
    assert saved.status_code == 303, text_of(saved.text)[-600:]
    assert saved.headers["location"] == "/admin/rules/big-carts?saved=1"
    assert [r["id"] for r in list_rules(web.uow(), program_id)] == ["big-carts"]
    assert "big-carts" in client.get("/admin/rules").text
    web.clock.advance(minutes=1)  # a new version starts after the latest one
    edited = client.post("/admin/rules/save", data={**form, "condition": "purchase.total >= 80", "new": "0"})
    assert edited.status_code == 303, text_of(edited.text)[-600:]
    assert list_rules(web.uow(), program_id)[0]["version"] == 2
    refused = client.post("/admin/rules/save", data={**form, "condition": "purchase.totl", "new": "0"})
    assert refused.status_code == 422 and "The rule definition is not valid" in refused.text
    assert list_rules(web.uow(), program_id)[0]["version"] == 2


def test_the_sample_cart_panel_previews_without_writing(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "analyst")
    token = csrf_of(client.get("/admin/rules/new").text)
    card = card_of(web, program_id, member)
    response = client.post("/admin/rules/preview", data={"total": "42.00", "card_number": card, "csrf_token": token})
    assert response.status_code == 200 and 'data-preview-points="42"' in response.text
    anonymous = client.post("/admin/rules/preview", data={"total": "42.00", "csrf_token": token})
    assert 'data-preview-points="0"' in anonymous.text and "No member given" in anonymous.text
    wrong = client.post("/admin/rules/preview", data={"total": "4x", "csrf_token": token})
    assert "A value is not acceptable" in wrong.text
    assert get_balance(web.uow(), program_id, member, web.clock())["points"] == 120


def test_the_cashier_look_up_shows_name_and_balance_by_card(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "partner", partner="acme")
    card = card_of(web, program_id, member)
    page = client.get("/admin/lookup", params={"card": f"{card[:4]} {card[4:]}"})
    assert "Anna" in page.text and 'data-balance="available">120<' in page.text
    assert "anna@example.org" not in page.text  # a till needs the name, not the contact details
    assert f'href="/admin/members/{member}"' not in page.text  # a partner may not open the profile
    unknown = new_card_number(random_digits)  # a valid number nobody holds
    assert "No member has this card number." in client.get("/admin/lookup", params={"card": unknown}).text
    broken = card[:-1] + str((int(card[-1]) + 1) % 10)  # the check digit no longer matches
    assert "not a valid loyalty card number" in client.get("/admin/lookup", params={"card": broken}).text
