"""Problem titles in German and English, chosen by the request's Accept-Language (Babel negotiates).

`code` stays the machine-readable key; `title` is for people. `detail` carries the specifics in English.
"""

from __future__ import annotations

from babel import Locale, UnknownLocaleError

SUPPORTED = ("en", "de")

TITLES: dict[str, dict[str, str]] = {
    "validation_error": {"en": "The request is not valid", "de": "Die Anfrage ist ungültig"},
    "invalid_input": {"en": "A value is not acceptable", "de": "Ein Wert ist nicht zulässig"},
    "unauthorized": {"en": "An API key is required", "de": "Ein API-Schlüssel ist erforderlich"},
    "forbidden": {"en": "This key may not do that", "de": "Dieser Schlüssel darf das nicht"},
    "rate_limited": {"en": "Too many requests", "de": "Zu viele Anfragen"},
    "payload_too_large": {"en": "The request is too large", "de": "Die Anfrage ist zu groß"},
    "not_found": {"en": "Not found", "de": "Nicht gefunden"},
    "method_not_allowed": {"en": "Method not allowed", "de": "Methode nicht erlaubt"},
    "conflict": {"en": "Conflict", "de": "Konflikt"},
    "duplicate_order": {"en": "This order was already recorded", "de": "Diese Bestellung wurde bereits erfasst"},
    "member_exists": {"en": "The member exists already", "de": "Das Mitglied existiert bereits"},
    "refund_exceeds_purchase": {"en": "The refund exceeds the purchase",
                                "de": "Die Rückerstattung übersteigt den Einkauf"},
    "currency_mismatch": {"en": "Wrong currency", "de": "Falsche Währung"},
    "insufficient_points": {"en": "Not enough points", "de": "Nicht genügend Punkte"},
    "reward_out_of_stock": {"en": "The reward is out of stock", "de": "Die Prämie ist vergriffen"},
    "reward_unavailable": {"en": "The reward cannot be redeemed now", "de": "Die Prämie ist derzeit nicht einlösbar"},
    "redemption_limit_reached": {"en": "Redemption limit reached", "de": "Einlöse-Limit erreicht"},
    "coupon_invalid": {"en": "The coupon cannot be used", "de": "Der Gutschein ist nicht einlösbar"},
    "rule_invalid": {"en": "The rule definition is not valid", "de": "Die Regeldefinition ist ungültig"},
    "already_cancelled": {"en": "Already cancelled", "de": "Bereits storniert"},
    "idempotency_key_reused": {"en": "Idempotency-Key used for another request",
                               "de": "Idempotency-Key für eine andere Anfrage verwendet"},
    "idempotency_in_progress": {"en": "The first request is still running",
                                "de": "Die erste Anfrage läuft noch"},
    "invalid_idempotency_key": {"en": "Invalid Idempotency-Key", "de": "Ungültiger Idempotency-Key"},
    "internal_error": {"en": "Internal error", "de": "Interner Fehler"},
    # tiers (issue 4)
    "no_tier_ladder": {"en": "The programme has no tier ladder", "de": "Das Programm hat keine Stufenleiter"},
    "tier_unknown": {"en": "Unknown tier", "de": "Unbekannte Stufe"},
    "tier_in_use": {"en": "Members still hold this tier", "de": "Mitglieder haben diese Stufe noch"},
    # wallet and checkout (issue 4)
    "insufficient_wallet": {"en": "Not enough money in the wallet", "de": "Nicht genügend Guthaben im Wallet"},
    "hold_not_active": {"en": "The checkout hold is no longer active",
                        "de": "Die Reservierung an der Kasse ist nicht mehr aktiv"},
    "hold_exceeded": {"en": "More than the hold keeps", "de": "Mehr als die Reservierung enthält"},
    "below_minimum_redemption": {"en": "Fewer points than the minimum redemption",
                                 "de": "Weniger Punkte als die Mindesteinlösung"},
    "payment_exceeds_total": {"en": "Points and wallet pay more than the cart costs",
                              "de": "Punkte und Guthaben übersteigen den Warenkorbwert"},
    # club (issue 4)
    # partners (issue 5)
    "partner_not_found": {"en": "Partner not found", "de": "Partner nicht gefunden"},
    "partner_unknown": {"en": "The partner is not registered in the programme",
                        "de": "Der Partner ist im Programm nicht registriert"},
    "partner_exists": {"en": "A partner with this code exists already",
                       "de": "Ein Partner mit diesem Code existiert bereits"},
    "period_invalid": {"en": "The period is not a month (YYYY-MM)", "de": "Der Zeitraum ist kein Monat (JJJJ-MM)"},
    "period_open": {"en": "The period has not ended yet", "de": "Der Zeitraum ist noch nicht abgeschlossen"},
    "settlement_not_found": {"en": "The period has not been settled", "de": "Der Zeitraum wurde nicht abgerechnet"},
    # webhooks and streams (issue 5)
    "webhook_invalid": {"en": "The webhook endpoint is not acceptable",
                        "de": "Der Webhook-Endpunkt ist nicht zulässig"},
    # shop adapters (issue 5)
    "signature_invalid": {"en": "The webhook signature is not valid", "de": "Die Webhook-Signatur ist ungültig"},
    "shop_payload_invalid": {"en": "The shop's payload is not valid", "de": "Die Nachricht des Shops ist ungültig"},
    "shop_order_unknown": {"en": "The order has not been recorded yet", "de": "Die Bestellung ist noch nicht erfasst"},
    "shop_connection_exists": {"en": "A shop connection with this code exists already",
                               "de": "Eine Shop-Anbindung mit diesem Kürzel existiert bereits"},
    "shop_connection_paused": {"en": "The shop connection is paused", "de": "Die Shop-Anbindung ist pausiert"},
    "club_plan_exists": {"en": "A club plan with this code exists already",
                         "de": "Ein Club-Tarif mit diesem Code existiert bereits"},
    "club_plan_unavailable": {"en": "The club plan is not available", "de": "Der Club-Tarif ist nicht verfügbar"},
    "club_already_subscribed": {"en": "The member is in the club already", "de": "Das Mitglied ist bereits im Club"},
    "club_subscription_ended": {"en": "The club membership has ended", "de": "Die Club-Mitgliedschaft ist beendet"},
    "club_period_invalid": {"en": "Not the billing period to pay next",
                            "de": "Nicht der als Nächstes zu zahlende Abrechnungszeitraum"},
    "club_period_paid": {"en": "The billing period is paid already", "de": "Der Abrechnungszeitraum ist bereits bezahlt"},
    "club_payment_mismatch": {"en": "The payment does not match the price",
                              "de": "Die Zahlung entspricht nicht dem Preis"},
    "club_payment_required": {"en": "The first period must be paid", "de": "Der erste Zeitraum muss bezahlt sein"},
    "club_payment_reference_reused": {"en": "Payment reference already recorded with other details",
                                      "de": "Zahlungsreferenz bereits mit anderen Angaben erfasst"},
    # tills and exports (issue 5)
    "card_not_ean13": {"en": "The card number does not fit an EAN-13 barcode",
                       "de": "Die Kartennummer passt nicht in einen EAN-13-Strichcode"},
    "scan_unrecognised": {"en": "Not a card, phone number or email address",
                          "de": "Weder Karte noch Telefonnummer noch E-Mail-Adresse"},
    "till_line_invalid": {"en": "The batch line is not valid", "de": "Die Zeile des Stapels ist ungültig"},
    "till_order_unknown": {"en": "The order is not recorded (yet)", "de": "Die Bestellung ist (noch) nicht erfasst"},
    "till_key_reused": {"en": "The idempotency key was used for another line",
                        "de": "Der Idempotenzschlüssel wurde für eine andere Zeile verwendet"},
    "till_batch_too_large": {"en": "The batch is too large", "de": "Der Stapel ist zu groß"},
    "till_batch_not_found": {"en": "Till batch not found", "de": "Kassenstapel nicht gefunden"},
    "export_range_invalid": {"en": "The export's time range is not valid",
                             "de": "Der Zeitraum des Exports ist ungültig"},
    # card-linked earning (issue 11)
    "card_number_refused": {"en": "A card number is not accepted; link the card by its payment token",
                            "de": "Eine Kartennummer wird nicht angenommen; bitte die Karte über ihr Zahlungs-Token verknüpfen"},
    "card_token_taken": {"en": "The card is linked to another member",
                         "de": "Die Karte ist mit einem anderen Mitglied verknüpft"},
    "card_not_found": {"en": "Linked card not found", "de": "Verknüpfte Karte nicht gefunden"},
    "card_feed_invalid": {"en": "The card transaction feed is not valid",
                          "de": "Die Datei mit Kartenumsätzen ist ungültig"},
    "merchant_unknown": {"en": "The merchant is not assigned to a partner",
                         "de": "Der Händler ist keinem Partner zugeordnet"},
    "offer_not_found": {"en": "Offer not found", "de": "Angebot nicht gefunden"},
    "offer_exists": {"en": "An offer with this code exists already",
                     "de": "Ein Angebot mit diesem Code existiert bereits"},
    "offer_unavailable": {"en": "The offer cannot be activated", "de": "Das Angebot kann nicht aktiviert werden"},
    # referrals and social rewards (issue 7)
    "moderation_decided": {"en": "The moderation of this event was decided already",
                           "de": "Über die Moderation dieses Ereignisses wurde bereits entschieden"},
    "event_not_moderated": {"en": "The event was not recorded for moderation",
                            "de": "Das Ereignis wurde nicht zur Moderation erfasst"},
    # gamification (issue 7)
    "gamification_invalid": {"en": "The gamification definition is not valid",
                             "de": "Die Definition (Mission, Serie, Abzeichen oder Sofortgewinn) ist ungültig"},
    "mission_not_found": {"en": "Mission not found", "de": "Mission nicht gefunden"},
    "mission_exists": {"en": "A mission with this code exists already",
                       "de": "Eine Mission mit diesem Code existiert bereits"},
    "mission_not_open": {"en": "The mission is not open to this member",
                         "de": "Die Mission steht diesem Mitglied nicht offen"},
    "streak_not_found": {"en": "Streak not found", "de": "Serie nicht gefunden"},
    "streak_exists": {"en": "A streak with this code exists already",
                      "de": "Eine Serie mit diesem Code existiert bereits"},
    "badge_not_found": {"en": "Badge not found", "de": "Abzeichen nicht gefunden"},
    "badge_exists": {"en": "A badge with this code exists already",
                     "de": "Ein Abzeichen mit diesem Code existiert bereits"},
    "instant_win_not_found": {"en": "Instant-win campaign not found", "de": "Sofortgewinn-Aktion nicht gefunden"},
    "instant_win_exists": {"en": "An instant-win campaign with this code exists already",
                           "de": "Eine Sofortgewinn-Aktion mit diesem Code existiert bereits"},
    # notifications (issue 8)
    "template_invalid": {"en": "The template is not valid", "de": "Die Vorlage ist ungültig"},
    "template_unsafe": {"en": "The template does something that is not allowed",
                        "de": "Die Vorlage enthält nicht erlaubten Code"},
    "notification_token_invalid": {"en": "The link is unknown or has expired",
                                   "de": "Der Link ist unbekannt oder abgelaufen"},
    # segments, offers, recommendations, surveys (issue 8)
    "segment_not_found": {"en": "Segment not found", "de": "Segment nicht gefunden"},
    "segment_exists": {"en": "A segment with this code exists already",
                       "de": "Ein Segment mit diesem Code existiert bereits"},
    "segment_not_static": {"en": "Members can be imported into static segments only",
                           "de": "Mitglieder können nur in statische Segmente importiert werden"},
    "survey_not_found": {"en": "Survey not found", "de": "Umfrage nicht gefunden"},
    "survey_exists": {"en": "A survey with this code exists already",
                      "de": "Eine Umfrage mit diesem Code existiert bereits"},
    "survey_closed": {"en": "The survey is closed", "de": "Die Umfrage ist geschlossen"},
    "survey_answered": {"en": "The member has answered this survey already",
                        "de": "Das Mitglied hat diese Umfrage bereits beantwortet"},
    # privacy and security (issue 10)
    "member_erased": {"en": "The member was erased", "de": "Das Mitglied wurde gelöscht"},
    # fraud controls (issue 10)
    "velocity_cap_exceeded": {"en": "A velocity limit of the programme is reached; try again later",
                              "de": "Ein Häufigkeitslimit des Programms ist erreicht; bitte später erneut versuchen"},
    "fraud_hold_not_found": {"en": "Held transaction not found", "de": "Zurückgehaltene Buchung nicht gefunden"},
    "fraud_hold_decided": {"en": "The held transaction was decided already",
                           "de": "Über die zurückgehaltene Buchung wurde bereits entschieden"},
    "fraud_alert_not_found": {"en": "Fraud alert not found", "de": "Betrugswarnung nicht gefunden"},
    # web (issue 9)
    "sign_in_failed": {"en": "Email or password is wrong", "de": "E-Mail-Adresse oder Passwort ist falsch"},
    "sign_in_locked": {"en": "Too many failed sign-ins; try again later",
                       "de": "Zu viele fehlgeschlagene Anmeldungen; bitte später erneut versuchen"},
    "sign_in_code_invalid": {"en": "The code is wrong or has expired", "de": "Der Code ist falsch oder abgelaufen"},
    "database_unavailable": {"en": "The database is unavailable; try again shortly",
                             "de": "Die Datenbank ist nicht erreichbar; bitte gleich erneut versuchen"},
}  # fmt: skip


def negotiate(accept_language: str | None) -> str:
    """The best of de/en for an Accept-Language header; English when nothing matches."""
    if not accept_language:
        return "en"
    wanted = []
    for part in accept_language.split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0  # a header weight, not an amount
        except ValueError:
            continue
        if tag and tag != "*":
            wanted.append((weight, tag.replace("-", "_")))
    wanted.sort(key=lambda item: -item[0])
    try:
        found = Locale.negotiate([tag for _, tag in wanted], list(SUPPORTED))
    except (UnknownLocaleError, ValueError):
        found = None
    return found.language if found else "en"


def title(code: str, language: str, fallback: str) -> str:
    return TITLES.get(code, {}).get(language, fallback)
