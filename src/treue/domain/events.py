"""Domain events: facts in the past tense, written to the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # e.g. "points.earned", "reward.redeemed"
    payload: dict[str, Any] = field(default_factory=dict)


PROGRAM_CREATED = "program.created"
MEMBER_ENROLLED = "member.enrolled"
MEMBER_UPDATED = "member.updated"
PURCHASE_RECORDED = "purchase.recorded"
POINTS_EARNED = "points.earned"
PURCHASE_REFUNDED = "purchase.refunded"
POINTS_REVERSED = "points.reversed"
REWARD_REDEEMED = "reward.redeemed"
REDEMPTION_CANCELLED = "redemption.cancelled"
COUPON_CONSUMED = "coupon.consumed"
POINTS_ADJUSTED = "points.adjusted"
POINTS_TRANSFERRED = "points.transferred"
POINTS_EXPIRED = "points.expired"
EVENT_RECORDED = "event.recorded"  # a custom event (review.created, ...) was stored
# What rules grant beside points; the parts of the engine that act on them subscribe to the outbox.
REWARD_GRANTED = "reward.granted"
COUPON_GRANTED = "coupon.granted"
CASHBACK_EARNED = "cashback.earned"
TIER_CREDITED = "tier.credited"
MISSION_PROGRESSED = "mission.progressed"
BADGE_AWARDED = "badge.awarded"
RULE_HOOK = "rule.hook"  # a hook without a topic of its own
# Paid premium club (issue 4): the membership's life, its payments and the recurring perks it grants.
CLUB_JOINED = "club.joined"
CLUB_RENEWED = "club.renewed"  # a succeeded payment paid the next billing period
CLUB_PAYMENT_FAILED = "club.payment_failed"
CLUB_PAST_DUE = "club.past_due"  # a period ended unpaid; the grace period runs
CLUB_CANCELLED = "club.cancelled"  # immediately, or scheduled for the end of the paid period
CLUB_EXPIRED = "club.expired"  # the grace period ended unpaid
CLUB_PERK_GRANTED = "club.perk_granted"  # bonus points or a voucher for a paid period
# Tiers (issue 4): a member's tier went up or down (earned, reviewed or manually assigned), and the notice that
# the next review would lower it.
TIER_UPGRADED = "tier.upgraded"
TIER_DOWNGRADED = "tier.downgraded"
TIER_WILL_DOWNGRADE = "tier.will_downgrade"
# Tills and exports (issue 5): an offline till's batch was applied (its summary: lines, applied, replayed, conflicts)
TILL_BATCH_PROCESSED = "till.batch_processed"
# Card-linked earning (issue 11)
CARD_LINKED = "card.linked"
CARD_UNLINKED = "card.unlinked"
CARD_FEED_IMPORTED = "card.feed_imported"
OFFER_CREATED = "offer.created"
OFFER_ACTIVATED = "offer.activated"
OFFER_USED = "offer.used"
# Referrals and social rewards (issue 7)
REFERRAL_PENDING = "referral.pending"  # a new member enrolled with a code; the referral waits for its condition
REFERRAL_REJECTED = "referral.rejected"  # the fraud screen refused it (payload: reason); the member is enrolled
REFERRAL_COMPLETED = "referral.completed"  # the referee qualified; rules triggered by it reward either or both
REFERRAL_EXPIRED = "referral.expired"  # the window passed before the referee qualified
REFERRAL_REVERSED = "referral.reversed"  # the qualifying purchase was refunded in the return window
EVENT_APPROVED = "event.approved"  # a moderated event's points became available
EVENT_REJECTED = "event.rejected"  # a moderated event's points were voided
# Gamification (issue 7)
MISSION_OPTED_IN = "mission.opted_in"
MISSION_COMPLETED = "mission.completed"
MISSION_COMPLETION_REVERSED = "mission.completion_reversed"  # a refund took the member below the goal again
STREAK_EXTENDED = "streak.extended"
STREAK_BROKEN = "streak.broken"  # noticed when the member's next qualifying event starts a new streak
STREAK_MILESTONE_REACHED = "streak.milestone_reached"
STREAK_MILESTONE_REVERSED = "streak.milestone_reversed"
INSTANT_WIN_DRAWN = "instant_win.drawn"  # every draw, won or not (the audit trail is in the draws table)
INSTANT_WIN_WON = "instant_win.won"
# Notifications (issue 8)
NOTIFICATION_PUSH = "notification.push"  # a push notification for the merchant's provider (via webhooks)
# Segments, offers, recommendations, surveys (issue 8)
SEGMENT_CREATED = "segment.created"
SEGMENT_REFRESHED = "segment.refreshed"  # payload: segment, members, added, removed (only when it changed)
SURVEY_ANSWERED = "survey.answered"  # also the custom event that rules and the NPS KPI read (attribute `nps`)
# Privacy and security (issue 10)
MEMBER_ERASED = "member.erased"  # payload: member_id, erased_at, source, points forfeited (no personal data)

# Fraud controls (issue 10)
FRAUD_TRANSACTION_HELD = "fraud.transaction_held"  # an earn went over a velocity cap: its points are held
FRAUD_TRANSACTION_APPROVED = "fraud.transaction_approved"  # staff released the held points
FRAUD_TRANSACTION_REJECTED = "fraud.transaction_rejected"  # staff rejected them: the points were reversed
FRAUD_ALERT_RAISED = "fraud.alert_raised"  # the scan found an anomaly (once per kind, subject and day)
