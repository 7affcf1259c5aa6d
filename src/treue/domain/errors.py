"""Domain errors carry a stable machine code; the API maps them to RFC 9457 problems."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the request. `code` is stable and documented."""

    code: str = "domain_error"
    status: int = 422

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    status = 422


class RewardOutOfStock(DomainError):
    code = "reward_out_of_stock"
    status = 409


class RewardUnavailable(DomainError):
    code = "reward_unavailable"
    status = 422


class RedemptionLimitReached(DomainError):
    code = "redemption_limit_reached"
    status = 422


class DuplicateOrder(DomainError):
    code = "duplicate_order"
    status = 409


class RefundExceedsPurchase(DomainError):
    code = "refund_exceeds_purchase"
    status = 422


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"
    status = 422


class CouponInvalid(DomainError):
    code = "coupon_invalid"
    status = 422


class InvariantViolated(DomainError):
    """Raised when code tries to build a ledger entry that breaks an invariant (a bug, not user input)."""

    code = "invariant_violated"
    status = 500


class MemberExists(Conflict):
    code = "member_exists"


class AlreadyCancelled(Conflict):
    code = "already_cancelled"


class RuleInvalid(InvalidInput):
    """A rule, campaign or rule set definition was refused. `location` (an extra) names the offending part,
    e.g. ``effects[1].per`` or ``condition``; CEL problems also carry ``line`` and ``column``.

    Its stable code is ``rule_invalid`` (422); it is still an ``InvalidInput`` for callers that catch that.
    """

    code = "rule_invalid"


# -- paid premium club (issue 4) -------------------------------------------------------------------------
class ClubPlanExists(Conflict):
    code = "club_plan_exists"


class ClubPlanUnavailable(DomainError):
    """The plan takes no new members (inactive), or a payment names another plan than the subscription's."""

    code = "club_plan_unavailable"
    status = 422


class ClubAlreadySubscribed(Conflict):
    """The member has a subscription that has not ended (trialing, active or past due)."""

    code = "club_already_subscribed"


class ClubSubscriptionEnded(Conflict):
    """The subscription was cancelled or has expired (or ends before the period named)."""

    code = "club_subscription_ended"


class ClubPeriodInvalid(DomainError):
    """A payment names a period that is not the next one to pay (periods are paid in order)."""

    code = "club_period_invalid"
    status = 422


class ClubPeriodPaid(Conflict):
    code = "club_period_paid"


class ClubPaymentMismatch(DomainError):
    """The payment's amount is not the price agreed for the period."""

    code = "club_payment_mismatch"
    status = 422


class ClubPaymentRequired(DomainError):
    """Joining a plan without a trial needs the first period's succeeded payment."""

    code = "club_payment_required"
    status = 422


class ClubPaymentReferenceReused(Conflict):
    """The provider reference was recorded before with other details."""

    code = "club_payment_reference_reused"


# -- wallet and checkout (issue 4) -----------------------------------------------------------------------
class InsufficientWallet(DomainError):
    """The wallet's usable money (available, less what active checkout holds keep) is less than asked."""

    code = "insufficient_wallet"
    status = 422


class HoldNotActive(Conflict):
    """A checkout hold can no longer be captured: `reason` (an extra) is expired, released or captured."""

    code = "hold_not_active"


class HoldExceeded(DomainError):
    """A capture asked to pay with more points or wallet money than the hold keeps."""

    code = "hold_exceeded"
    status = 422


class BelowMinimumRedemption(DomainError):
    """Fewer points than the programme's minimum redemption (`min_redemption_points`)."""

    code = "below_minimum_redemption"
    status = 422


class PaymentExceedsTotal(DomainError):
    """Points and wallet money would pay more than the cart costs."""

    code = "payment_exceeds_total"
    status = 422


# -- web UI: staff sign-in and the member portal (issue 9) -----------------------------------------------
class SignInFailed(DomainError):
    """Unknown email or wrong password (the two are not told apart)."""

    code = "sign_in_failed"
    status = 401


class SignInLocked(DomainError):
    """Too many failed sign-ins in a short time: sign-in is refused for a while (`until`, an extra)."""

    code = "sign_in_locked"
    status = 429


class SignInCodeInvalid(DomainError):
    """The member portal's one-time code is wrong, used, expired or tried too often."""

    code = "sign_in_code_invalid"
    status = 401


# -- tiers (issue 4) ----------------------------------------------------------------------------------------
class NoTierLadder(DomainError):
    """The programme has no tier ladder yet (PUT /tiers sets one)."""

    code = "no_tier_ladder"
    status = 422


class TierUnknown(DomainError):
    """No tier with this code in the programme's ladder."""

    code = "tier_unknown"
    status = 422


class TierInUse(Conflict):
    """A new ladder would drop a tier that members still hold (earned or assigned): `tiers` (an extra) names them."""

    code = "tier_in_use"


# -- outbound webhooks (issue 5) ------------------------------------------------------------------------------
class WebhookInvalid(InvalidInput):
    """A webhook endpoint's url or event filters are not acceptable."""

    code = "webhook_invalid"
    status = 422


# -- coalition partners and settlement (issue 5) ---------------------------------------------------------------
class PartnerNotFound(NotFound):
    """No partner with this code in the programme."""

    code = "partner_not_found"


class PartnerUnknown(InvalidInput):
    """A request names a partner (e.g. where points are redeemed) that is not registered in the programme."""

    code = "partner_unknown"


class PartnerExists(Conflict):
    code = "partner_exists"


class PeriodInvalid(InvalidInput):
    """A settlement period is a month written YYYY-MM."""

    code = "period_invalid"


class PeriodOpen(Conflict):
    """A month can be settled only after it has ended in the programme's timezone."""

    code = "period_open"


class SettlementNotFound(NotFound):
    code = "settlement_not_found"


# -- shop adapters (issue 5) --------------------------------------------------------------------------------
class InboundSignatureInvalid(DomainError):
    """An inbound shop webhook without a valid signature of its connection (or for no such connection)."""

    code = "signature_invalid"
    status = 401


class ShopPayloadInvalid(DomainError):
    """A shop webhook's body is not the platform's payload; `detail` names the field."""

    code = "shop_payload_invalid"
    status = 422


class ShopOrderUnknown(Conflict):
    """A refund arrived before its order was recorded: the platform should retry it later."""

    code = "shop_order_unknown"


class ShopConnectionExists(Conflict):
    code = "shop_connection_exists"


class ShopConnectionPaused(Conflict):
    """The shop connection is paused (`active: false`): deliveries are refused so that the platform retries."""

    code = "shop_connection_paused"


# -- tills and exports (issue 5) ----------------------------------------------------------------------------
class CardNotEan13(InvalidInput):
    """EAN-13 holds a card number of 12 digits (the check digit is added) or 13 digits with a valid check digit;
    `reason` (an extra) says which rule the number breaks: `length` or `check_digit`."""

    code = "card_not_ean13"


class ScanUnrecognised(InvalidInput):
    """What the till scanned or typed is none of: a card number, a card's barcode, a phone number, an email."""

    code = "scan_unrecognised"


class TillLineInvalid(InvalidInput):
    """A line of an offline batch is not a JSON object of a known type with the fields it needs."""

    code = "till_line_invalid"


class TillOrderUnknown(Conflict):
    """An offline refund names an order that is not recorded (yet): uploading the line again retries it."""

    code = "till_order_unknown"


class TillKeyReused(Conflict):
    """A line's idempotency key was first used for a line with other content."""

    code = "till_key_reused"


class TillBatchTooLarge(DomainError):
    code = "till_batch_too_large"
    status = 413


class TillBatchNotFound(NotFound):
    code = "till_batch_not_found"


class ExportRangeInvalid(InvalidInput):
    """An export's --from/--to range is not a range (or is given where the export has none)."""

    code = "export_range_invalid"


# -- card-linked earning (issue 11) -------------------------------------------------------------------------
class CardNumberRefused(InvalidInput):
    """A request carried what looks like a full payment card number (13-19 digits passing the Luhn check).
    Treue links cards by the payment provider's token only; the number is neither stored nor logged nor echoed."""

    code = "card_number_refused"


class CardTokenTaken(Conflict):
    """The payment token is linked to another member of the programme."""

    code = "card_token_taken"


class CardNotFound(NotFound):
    code = "card_not_found"


class CardFeedInvalid(InvalidInput):
    """A card-transaction feed (or one of its lines) cannot be read; `detail` names the line and field."""

    code = "card_feed_invalid"


class MerchantUnknown(InvalidInput):
    """A feed line's merchant id maps to no partner of the programme."""

    code = "merchant_unknown"


class OfferNotFound(NotFound):
    code = "offer_not_found"


class OfferExists(Conflict):
    code = "offer_exists"


class OfferUnavailable(Conflict):
    """The offer cannot be activated by this member now (ended, not started for activation, not in its audience)."""

    code = "offer_unavailable"


# -- referrals and social rewards (issue 7) -----------------------------------------------------------------


class ModerationDecided(Conflict):
    """The event's moderation was decided already (approved or rejected); a decision is final."""

    code = "moderation_decided"


class NotModerated(Conflict):
    """The event was not recorded for moderation: its points were never held."""

    code = "event_not_moderated"


# -- gamification (issue 7) ---------------------------------------------------------------------------------
class GamificationInvalid(InvalidInput):
    """A mission, streak, badge or instant-win definition is not sound; `location` names the value."""

    code = "gamification_invalid"


class MissionNotFound(NotFound):
    code = "mission_not_found"


class MissionExists(Conflict):
    code = "mission_exists"


class MissionNotOpen(Conflict):
    """The mission takes no opt-ins now: it is inactive, has ended, or the member is not in its audience."""

    code = "mission_not_open"


class StreakNotFound(NotFound):
    code = "streak_not_found"


class StreakExists(Conflict):
    code = "streak_exists"


class BadgeNotFound(NotFound):
    code = "badge_not_found"


class BadgeExists(Conflict):
    code = "badge_exists"


class InstantWinNotFound(NotFound):
    code = "instant_win_not_found"


class InstantWinExists(Conflict):
    code = "instant_win_exists"


# -- notifications (issue 8) -------------------------------------------------------------------------------
class TemplateInvalid(DomainError):
    """A notification template does not parse or does not render with the trigger's sample data."""

    code = "template_invalid"
    status = 422


class TemplateUnsafe(DomainError):
    """A notification template tries what the Jinja2 sandbox forbids (private attributes, unsafe calls)."""

    code = "template_unsafe"
    status = 422


class NotificationTokenInvalid(NotFound):
    """A confirmation or unsubscribe link that is unknown or expired."""

    code = "notification_token_invalid"


# -- segments, offers, recommendations, surveys (issue 8) ---------------------------------------------------
class SegmentNotFound(NotFound):
    code = "segment_not_found"


class SegmentExists(Conflict):
    code = "segment_exists"


class SegmentNotStatic(Conflict):
    """Members are imported into static segments only; a dynamic segment's members follow its condition."""

    code = "segment_not_static"


class SurveyNotFound(NotFound):
    code = "survey_not_found"


class SurveyExists(Conflict):
    code = "survey_exists"


class SurveyClosed(Conflict):
    code = "survey_closed"


class SurveyAnswered(Conflict):
    """The member answered this survey already (once, or once in this month/quarter/year by its `repeat`)."""

    code = "survey_answered"


# -- privacy and security (issue 10) ------------------------------------------------------------------------
class MemberErased(Conflict):
    """The member was erased (GDPR): the pseudonym stays for the ledger, but nothing new happens to it."""

    code = "member_erased"


# -- fraud controls (issue 10) ------------------------------------------------------------------------------
class VelocityCapExceeded(DomainError):
    """A redemption would go over one of the programme's velocity caps: refused (429), nothing changed. The
    problem names the cap(s) and `retry_after`, the seconds until the window ends."""

    code = "velocity_cap_exceeded"
    status = 429


class FraudHoldNotFound(NotFound):
    code = "fraud_hold_not_found"


class FraudHoldDecided(Conflict):
    """The held transaction was approved or rejected already (a decision is final)."""

    code = "fraud_hold_decided"


class FraudAlertNotFound(NotFound):
    code = "fraud_alert_not_found"
