"""The default wording of every notification trigger in German and English, and sample data for previews.

Each entry is (subject, text); the email's HTML is the text as simple HTML unless a programme saves its own.
A programme overrides any of them per trigger, channel and locale (PUT /notifications/templates). Variables every
template gets: `member` (first_name, last_name, card_number, email), `program` (name), `portal_url`, and for
marketing email `unsubscribe_url`. Jinja2 in a sandbox; the filter `points` writes 1234 as 1.234.
"""

from __future__ import annotations

from typing import Any

_HELLO_DE = "Hallo {{ member.first_name or 'liebes Mitglied' }},"
_HELLO_EN = "Hello {{ member.first_name or 'dear member' }},"
_BYE_DE = "\n\nIhr Team von {{ program.name }}\n{{ portal_url }}"
_BYE_EN = "\n\nYour {{ program.name }} team\n{{ portal_url }}"

DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "welcome": {
        "de": ("Willkommen bei {{ program.name }}",
               _HELLO_DE + "\n\nschön, dass Sie dabei sind! Ihre Kartennummer: {{ card_number }}." + _BYE_DE),
        "en": ("Welcome to {{ program.name }}",
               _HELLO_EN + "\n\nwelcome aboard! Your card number: {{ card_number }}." + _BYE_EN),
    },
    "email_confirmation": {
        "de": ("Bitte bestätigen Sie Ihre E-Mail-Adresse",
               _HELLO_DE + "\n\nbitte bestätigen Sie, dass wir Ihnen Angebote und Neuigkeiten von {{ program.name }} "
               "an diese Adresse senden dürfen:\n{{ confirm_url }}\n\nWenn Sie das nicht angefordert haben, "
               "ignorieren Sie diese E-Mail." + _BYE_DE),
        "en": ("Please confirm your email address",
               _HELLO_EN + "\n\nplease confirm that {{ program.name }} may send offers and news to this address:\n"
               "{{ confirm_url }}\n\nIf you did not ask for this, ignore this email." + _BYE_EN),
    },
    "points_earned": {
        "de": ("{% if digest %}Heute gesammelt: {{ points|points }} Punkte{% else %}Sie haben {{ points|points }} "
               "Punkte gesammelt{% endif %}",
               _HELLO_DE + "\n\n{% if digest %}am {{ day }} haben Sie bei {{ count }} Gelegenheiten insgesamt "
               "{{ points|points }} Punkte gesammelt.{% else %}Ihnen wurden {{ points|points }} Punkte "
               "gutgeschrieben.{% endif %} Ihr Punktestand: {{ balance|points }}." + _BYE_DE),
        "en": ("{% if digest %}Earned today: {{ points|points }} points{% else %}You earned {{ points|points }} "
               "points{% endif %}",
               _HELLO_EN + "\n\n{% if digest %}on {{ day }} you earned {{ points|points }} points in {{ count }} "
               "transactions.{% else %}{{ points|points }} points were credited to you.{% endif %} "
               "Your balance: {{ balance|points }}." + _BYE_EN),
    },
    "points_available": {
        "de": ("{{ points|points }} Punkte sind jetzt einlösbar",
               _HELLO_DE + "\n\n{{ points|points }} Punkte sind seit {{ available_on }} verfügbar. Einlösbar "
               "insgesamt: {{ available|points }}." + _BYE_DE),
        "en": ("{{ points|points }} points are ready to redeem",
               _HELLO_EN + "\n\n{{ points|points }} points are available since {{ available_on }}. Available "
               "in total: {{ available|points }}." + _BYE_EN),
    },
    "points_expiring": {
        "de": ("{{ points|points }} Punkte nur noch bis {{ expires_on }} gültig",
               _HELLO_DE + "\n\n{{ points|points }} Ihrer Punkte sind nur noch bis einschließlich {{ expires_on }} "
               "gültig (noch {{ days_left }} Tage). Lösen Sie sie vorher ein!" + _BYE_DE),
        "en": ("{{ points|points }} points valid only until {{ expires_on }}",
               _HELLO_EN + "\n\n{{ points|points }} of your points are valid only until {{ expires_on }} inclusive "
               "({{ days_left }} days left). Redeem them before then!" + _BYE_EN),
    },
    "reward_redeemed": {
        "de": ("Ihre Prämie: {{ reward }}",
               _HELLO_DE + "\n\nSie haben {{ points|points }} Punkte für „{{ reward }}“ eingelöst. Ihr "
               "Gutscheincode: {{ coupon_code }}\n(Der QR-Code zum Vorzeigen an der Kasse ist in dieser E-Mail.)" + _BYE_DE),
        "en": ("Your reward: {{ reward }}",
               _HELLO_EN + "\n\nyou redeemed {{ points|points }} points for \"{{ reward }}\". Your coupon code: "
               "{{ coupon_code }}\n(The QR code to show at the till is in this email.)" + _BYE_EN),
    },
    "tier_upgraded": {
        "de": ("Glückwunsch: Sie sind jetzt {{ tier }}", _HELLO_DE + "\n\nSie sind von {{ previous }} auf "
               "{{ tier }} aufgestiegen." + _BYE_DE),
        "en": ("Congratulations: you are now {{ tier }}", _HELLO_EN + "\n\nyou moved up from {{ previous }} to "
               "{{ tier }}." + _BYE_EN),
    },
    "tier_downgraded": {
        "de": ("Ihre Stufe ist jetzt {{ tier }}", _HELLO_DE + "\n\nIhre Stufe wurde von {{ previous }} auf "
               "{{ tier }} geändert." + _BYE_DE),
        "en": ("Your tier is now {{ tier }}", _HELLO_EN + "\n\nyour tier changed from {{ previous }} to "
               "{{ tier }}." + _BYE_EN),
    },
    "tier_will_downgrade": {
        "de": ("Behalten Sie Ihre Stufe {{ tier }}", _HELLO_DE + "\n\nbei der Überprüfung am {{ decides_on }} "
               "würden Sie auf {{ would_be }} fallen. Es fehlen noch {{ needed }}." + _BYE_DE),
        "en": ("Keep your {{ tier }} tier", _HELLO_EN + "\n\nat the review on {{ decides_on }} you would move down "
               "to {{ would_be }}. Still needed: {{ needed }}." + _BYE_EN),
    },
    "mission_completed": {
        "de": ("Mission geschafft: {{ mission }}", _HELLO_DE + "\n\nSie haben die Mission {{ mission }} "
               "abgeschlossen." + _BYE_DE),
        "en": ("Mission completed: {{ mission }}", _HELLO_EN + "\n\nyou completed the mission {{ mission }}."
               + _BYE_EN),
    },
    "referral_completed": {
        "de": ("Ihre Empfehlung hat sich gelohnt", _HELLO_DE + "\n\nIhre Empfehlung war erfolgreich"
               "{% if points %}: {{ points|points }} Punkte für Sie{% endif %}. Danke!" + _BYE_DE),
        "en": ("Your referral paid off", _HELLO_EN + "\n\nyour referral was successful"
               "{% if points %}: {{ points|points }} points for you{% endif %}. Thank you!" + _BYE_EN),
    },
    "club_renewed": {
        "de": ("Ihre Mitgliedschaft {{ plan }} wurde verlängert", _HELLO_DE + "\n\nwir haben {{ amount }} "
               "{{ currency }} erhalten; Ihre Mitgliedschaft läuft bis {{ period_end }}." + _BYE_DE),
        "en": ("Your {{ plan }} membership was renewed", _HELLO_EN + "\n\nwe received {{ amount }} {{ currency }}; "
               "your membership runs until {{ period_end }}." + _BYE_EN),
    },
    "club_payment_failed": {
        "de": ("Zahlung für {{ plan }} fehlgeschlagen", _HELLO_DE + "\n\ndie Zahlung von {{ amount }} "
               "{{ currency }} ist fehlgeschlagen. Bitte prüfen Sie Ihre Zahlungsdaten." + _BYE_DE),
        "en": ("Payment for {{ plan }} failed", _HELLO_EN + "\n\nthe payment of {{ amount }} {{ currency }} failed. "
               "Please check your payment details." + _BYE_EN),
    },
    "monthly_statement": {
        "de": ("Ihr Punkte-Auszug für {{ month }}",
               _HELLO_DE + "\n\nIhr Punktestand: {{ balance|points }} Punkte.\nIm {{ month }} gesammelt: "
               "{{ earned|points }}, eingelöst: {{ spent|points }}.\n{% if expiring %}Verfallen in den nächsten 30 "
               "Tagen: {{ expiring|points }} (gültig bis {{ expiring_on }}).\n{% endif %}{% if tier %}Ihre Stufe: {{ tier }}"
               "{% if next_tier %}; bis {{ next_tier }} fehlen {{ needed }}{% endif %}.\n{% endif %}"
               "\nAbmelden: {{ unsubscribe_url }}" + _BYE_DE),
        "en": ("Your points statement for {{ month }}",
               _HELLO_EN + "\n\nyour balance: {{ balance|points }} points.\nEarned in {{ month }}: {{ earned|points }}, "
               "redeemed: {{ spent|points }}.\n{% if expiring %}Expiring in the next 30 days: {{ expiring|points }} "
               "(valid until {{ expiring_on }}).\n{% endif %}{% if tier %}Your tier: {{ tier }}{% if next_tier %}; "
               "{{ needed }} more for {{ next_tier }}{% endif %}.\n{% endif %}"
               "\nUnsubscribe: {{ unsubscribe_url }}" + _BYE_EN),
    },
}  # fmt: skip

# Email HTML shipped beside the text where a picture belongs: the coupon's QR code, attached inline (cid:).
DEFAULT_HTML: dict[str, dict[str, str]] = {
    "reward_redeemed": {
        "de": "<!doctype html>\n<html><body>\n<p>Hallo {{ member.first_name or 'liebes Mitglied' }},</p>\n"
        "<p>Sie haben {{ points|points }} Punkte für „{{ reward }}“ eingelöst.</p>\n"
        "<p>Ihr Gutscheincode: <strong>{{ coupon_code }}</strong></p>\n"
        '<p><img src="cid:{{ qr_cid }}" alt="QR-Code {{ coupon_code }}" width="200" height="200"></p>\n'
        '<p>Ihr Team von {{ program.name }}<br><a href="{{ portal_url }}">{{ portal_url }}</a></p>\n'
        "</body></html>\n",
        "en": "<!doctype html>\n<html><body>\n<p>Hello {{ member.first_name or 'dear member' }},</p>\n"
        '<p>you redeemed {{ points|points }} points for "{{ reward }}".</p>\n'
        "<p>Your coupon code: <strong>{{ coupon_code }}</strong></p>\n"
        '<p><img src="cid:{{ qr_cid }}" alt="QR code {{ coupon_code }}" width="200" height="200"></p>\n'
        '<p>Your {{ program.name }} team<br><a href="{{ portal_url }}">{{ portal_url }}</a></p>\n'
        "</body></html>\n",
    },
}

_COMMON = {"member": {"first_name": "Alex", "last_name": "Muster", "card_number": "9276000000000000000",
                      "email": "alex@example.org"},
           "program": {"name": "Treue"}, "portal_url": "https://loyalty.example/portal",
           "unsubscribe_url": "https://loyalty.example/u/TOKEN"}  # fmt: skip
SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {"card_number": "9276 0000 0000 0000 000"},
    "email_confirmation": {"confirm_url": "https://loyalty.example/confirm/TOKEN"},
    "points_earned": {"points": 120, "balance": 1520, "digest": False, "day": "2026-03-02", "count": 1,
                      "reason": "purchase"},
    "points_available": {"points": 120, "available": 1520, "available_on": "2026-03-16"},
    "points_expiring": {"points": 300, "expires_on": "2026-12-31", "days": 30, "days_left": 28, "lot_id": "…"},
    "reward_redeemed": {"reward": "Kaffeebecher", "points": 500, "coupon_code": "ABCD-EFGH-JKLM",
                        "qr_cid": "coupon-qr"},
    "tier_upgraded": {"tier": "Gold", "previous": "Silber"},
    "tier_downgraded": {"tier": "Silber", "previous": "Gold"},
    "tier_will_downgrade": {"tier": "Gold", "would_be": "Silber", "decides_on": "2026-12-31", "needed": "120.00"},
    "mission_completed": {"mission": "Fünf Einkäufe"},
    "referral_completed": {"points": 500},
    "club_renewed": {"plan": "Plus", "amount": "4.90", "currency": "EUR", "period_end": "2026-04-02"},
    "club_payment_failed": {"plan": "Plus", "amount": "4.90", "currency": "EUR", "period_end": "2026-04-02"},
    "monthly_statement": {"month": "2026-02", "balance": 1520, "earned": 320, "spent": 500, "expiring": 100,
                          "expiring_on": "2026-03-31", "tier": "Silber", "next_tier": "Gold", "needed": "80.00"},
}  # fmt: skip


def sample(trigger: str) -> dict[str, Any]:
    return _COMMON | SAMPLES.get(trigger, {})
