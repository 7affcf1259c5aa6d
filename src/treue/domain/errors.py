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
