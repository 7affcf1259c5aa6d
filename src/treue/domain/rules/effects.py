"""What a rule does when it applies: small strategy classes that return value objects.

Point effects compute integer points with the programme's rounding policy and say whether their points
are pending and for how long. Grants (a reward or a coupon) and hooks (cashback, tier credit, mission
progress, badge) carry no points; later parts of the engine act on them.

Definition format (one object per effect, `type` names the strategy):

    {"type": "points_per_amount", "points": 1, "per": "1.00", "lines": "line.category == 'coffee'",
     "exclude_skus": ["GIFTCARD"], "pending": "14D"}
    {"type": "points_per_item", "points": 5, "lines": "...", "exclude_skus": [...], "pending": "0D"}
    {"type": "fixed_points", "points": 100}
    {"type": "multiplier", "factor": "2"}        # on the programme's base points: x2 adds the base once more
    {"type": "grant_reward", "reward": "free-coffee", "quantity": 1}
    {"type": "grant_coupon", "coupon": "WELCOME10", "quantity": 1}
    {"type": "cashback_percent", "percent": "2.5", "lines": "...", "exclude_skus": [...]}
    {"type": "tier_credit", "points": 100}
    {"type": "mission_progress", "mission": "coffee-week", "steps": 1}
    {"type": "badge", "badge": "first-review"}

Eligible amount: the amount of the lines that pass the `lines` filter and are not excluded, reduced in
proportion when the lines add up to more than the total paid (an order discount). A purchase sent without
lines counts its whole total when there is no `lines` filter, and nothing when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, Protocol

from treue.domain.durations import Duration, parse_duration
from treue.domain.errors import InvalidInput
from treue.domain.money import Money, Rounding, divide
from treue.domain.purchases import Purchase, PurchaseLine
from treue.domain.rules.conditions import LineFilter, line_filter
from treue.domain.rules.context import EvalContext
from treue.domain.rules.spec import Spec, decimal_text, refuse

MAX_POINTS = 10**9


@dataclass(frozen=True, slots=True)
class Grant:
    """A reward or coupon to issue to the member."""

    kind: str  # "reward" | "coupon"
    code: str
    quantity: int = 1
    rule: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class Cashback:
    amount: Money
    percent: str
    rule: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class TierCredit:
    points: int
    rule: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class MissionProgress:
    mission: str
    steps: int = 1
    rule: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class BadgeAward:
    badge: str
    rule: str = ""
    version: int = 0


Hook = Cashback | TierCredit | MissionProgress | BadgeAward


@dataclass(frozen=True, slots=True)
class EffectInput:
    """What an effect may look at: the event's purchase (if any), its CEL context, the base points."""

    context: EvalContext
    purchase: Purchase | None
    base_points: int
    rounding: Rounding
    explain: bool = True  # False: points only, no sentence or details (the simulator reads none of them)


@dataclass(slots=True)  # made per effect per event; not frozen because that costs 4x (nothing changes one)
class EffectResult:
    points: int = 0
    why: str = ""
    base: int | None = None
    multiplier: str | None = None
    pending: Duration | None = None
    grants: tuple[Grant, ...] = ()
    hooks: tuple[Hook, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class Effect(Protocol):
    kind: ClassVar[str]
    needs_purchase: ClassVar[bool]

    def apply(self, given: EffectInput) -> EffectResult: ...


@dataclass(frozen=True, slots=True)
class LineSelection:
    """Which lines of a purchase an effect counts: those passing `filter`, minus excluded SKUs."""

    filter: LineFilter | None = None
    exclude_skus: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return self.filter is None and not self.exclude_skus

    def chosen(self, given: EffectInput) -> list[int] | None:
        """Indices of the lines counted; None: every line (no filter, nothing excluded)."""
        purchase = given.purchase
        if purchase is None:
            return []
        if self.everything:
            return None
        passing = self.filter.eligible(given.context) if self.filter else [True] * len(purchase.lines)
        return [index for index, (line, ok) in enumerate(zip(purchase.lines, passing, strict=True))
                if ok and line.sku not in self.exclude_skus]  # fmt: skip

    def lines(self, given: EffectInput, chosen: list[int] | None) -> list[PurchaseLine]:
        purchase = given.purchase
        if purchase is None:
            return []
        return list(purchase.lines) if chosen is None else [purchase.lines[i] for i in chosen]

    def amount(self, given: EffectInput, chosen: list[int] | None) -> int:
        """The eligible amount paid, in minor units, of the `chosen` lines."""
        purchase = given.purchase
        if purchase is None:
            return 0
        if not purchase.lines:
            return purchase.total.minor if self.filter is None else 0
        if chosen is None:
            return purchase.total.minor
        line_total = sum(line.amount_minor for line in purchase.lines)
        gross = sum(purchase.lines[i].amount_minor for i in chosen)
        if gross == line_total:
            return purchase.total.minor
        return divide(gross * purchase.total.minor, line_total, given.rounding)

    @staticmethod
    def details(chosen: list[int] | None, **found: object) -> dict[str, object]:
        """Effect details, with the lines counted when not every line was (for the line-by-line preview)."""
        return found if chosen is None else {**found, "lines": chosen}

    def describe(self) -> str:
        parts = []
        if self.filter is not None:
            parts.append(f"lines where {self.filter.source}")
        if self.exclude_skus:
            parts.append(f"excluding {', '.join(sorted(self.exclude_skus))}")
        return f" ({'; '.join(parts)})" if parts else ""


@dataclass(frozen=True, slots=True)
class PointsPerAmount:
    kind: ClassVar[str] = "points_per_amount"
    needs_purchase: ClassVar[bool] = True
    points: int
    per: Money
    lines: LineSelection = LineSelection()
    pending: Duration | None = None

    def apply(self, given: EffectInput) -> EffectResult:
        chosen = self.lines.chosen(given)
        amount = self.lines.amount(given, chosen)
        points = divide(amount * self.points, self.per.minor, given.rounding)
        if not given.explain:
            return EffectResult(points, pending=self.pending)
        spent = Money(amount, self.per.currency)
        why = f"{self.points} point(s) per {self.per} on {spent}{self.lines.describe()}"
        details = self.lines.details(chosen, eligible_amount=spent.format())
        return EffectResult(points, why, pending=self.pending, details=details)


@dataclass(frozen=True, slots=True)
class PointsPerItem:
    kind: ClassVar[str] = "points_per_item"
    needs_purchase: ClassVar[bool] = True
    points: int
    lines: LineSelection = LineSelection()
    pending: Duration | None = None

    def apply(self, given: EffectInput) -> EffectResult:
        chosen = self.lines.chosen(given)
        items = sum(line.quantity for line in self.lines.lines(given, chosen))
        if not given.explain:
            return EffectResult(items * self.points, pending=self.pending)
        why = f"{self.points} point(s) per item x {items} item(s){self.lines.describe()}"
        details = self.lines.details(chosen, items=items)
        return EffectResult(items * self.points, why, pending=self.pending, details=details)


@dataclass(frozen=True, slots=True)
class FixedPoints:
    kind: ClassVar[str] = "fixed_points"
    needs_purchase: ClassVar[bool] = False
    points: int
    pending: Duration | None = None

    def apply(self, given: EffectInput) -> EffectResult:
        if not given.explain:
            return EffectResult(self.points, pending=self.pending)
        return EffectResult(self.points, f"{self.points} bonus point(s)", pending=self.pending)


@dataclass(frozen=True, slots=True)
class Multiplier:
    """Multiplies the programme's base points: the award is the extra, base x (factor - 1).

    Several multipliers add up on the same base (x2 and x3 give base + base + 2 x base), they do not
    compound; put them in one exclusive group to let only the best apply.
    """

    kind: ClassVar[str] = "multiplier"
    needs_purchase: ClassVar[bool] = True
    factor: Fraction
    pending: Duration | None = None

    def apply(self, given: EffectInput) -> EffectResult:
        extra = self.factor - 1
        points = divide(given.base_points * extra.numerator, extra.denominator, given.rounding)
        if not given.explain:
            return EffectResult(points, pending=self.pending)
        text = decimal_text(self.factor)
        why = f"x{text} on {given.base_points} base point(s): +{points}"
        return EffectResult(points, why, base=given.base_points, multiplier=text, pending=self.pending)


@dataclass(frozen=True, slots=True)
class GrantReward:
    kind: ClassVar[str] = "grant_reward"
    needs_purchase: ClassVar[bool] = False
    grant_kind: str
    code: str
    quantity: int = 1

    def apply(self, given: EffectInput) -> EffectResult:
        grant = Grant(self.grant_kind, self.code, self.quantity)
        return EffectResult(why=f"grants {self.grant_kind} {self.code} x{self.quantity}", grants=(grant,))


@dataclass(frozen=True, slots=True)
class CashbackPercent:
    kind: ClassVar[str] = "cashback_percent"
    needs_purchase: ClassVar[bool] = True
    percent: Fraction
    currency: str
    lines: LineSelection = LineSelection()

    def apply(self, given: EffectInput) -> EffectResult:
        amount = self.lines.amount(given, self.lines.chosen(given))
        share = self.percent / 100
        cashback = Money(divide(amount * share.numerator, share.denominator, given.rounding), self.currency)
        text = decimal_text(self.percent)
        why = f"{text}% cashback on {Money(amount, self.currency)}{self.lines.describe()}: {cashback}"
        return EffectResult(why=why, hooks=(Cashback(cashback, text),))


@dataclass(frozen=True, slots=True)
class TierCreditEffect:
    kind: ClassVar[str] = "tier_credit"
    needs_purchase: ClassVar[bool] = False
    points: int

    def apply(self, given: EffectInput) -> EffectResult:
        return EffectResult(why=f"{self.points} tier credit(s)", hooks=(TierCredit(self.points),))


@dataclass(frozen=True, slots=True)
class MissionProgressEffect:
    kind: ClassVar[str] = "mission_progress"
    needs_purchase: ClassVar[bool] = False
    mission: str
    steps: int = 1

    def apply(self, given: EffectInput) -> EffectResult:
        hook = MissionProgress(self.mission, self.steps)
        return EffectResult(why=f"{self.steps} step(s) towards mission {self.mission}", hooks=(hook,))


@dataclass(frozen=True, slots=True)
class BadgeEffect:
    kind: ClassVar[str] = "badge"
    needs_purchase: ClassVar[bool] = False
    badge: str

    def apply(self, given: EffectInput) -> EffectResult:
        return EffectResult(why=f"badge {self.badge}", hooks=(BadgeAward(self.badge),))


EFFECT_TYPES: tuple[str, ...] = (
    "points_per_amount", "points_per_item", "fixed_points", "multiplier", "grant_reward", "grant_coupon",
    "cashback_percent", "tier_credit", "mission_progress", "badge",
)  # fmt: skip


def parse_effect(spec: Spec, currency: str, *, purchase: bool) -> Effect:
    """One effect from its definition; `purchase` says whether the rule is triggered by a purchase."""
    kind = spec.text("type")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise refuse(spec.at("type"), f"unknown effect {kind!r} (one of {', '.join(EFFECT_TYPES)})")
    effect: Effect = parser(spec, currency)
    if effect.needs_purchase and not purchase:
        raise refuse(spec.at("type"), f"a {kind} effect needs a rule triggered by a purchase")
    return effect


def _points(spec: Spec, key: str = "points") -> int:
    value: int = spec.integer(key, minimum=1, maximum=MAX_POINTS)
    return value


def _pending(spec: Spec) -> Duration | None:
    if not spec.has("pending"):
        return None
    try:
        return parse_duration(spec.raw("pending"))
    except InvalidInput as error:
        raise refuse(spec.at("pending"), error.detail) from None


def _lines(spec: Spec) -> LineSelection:
    filter_ = line_filter(spec.text("lines"), spec.at("lines")) if spec.has("lines") else None
    return LineSelection(filter_, frozenset(spec.strings("exclude_skus")))


def _code(spec: Spec, key: str) -> str:
    value: str = spec.text(key)
    return value


def _per_amount(spec: Spec, currency: str) -> Effect:
    spec.only("type", "points", "per", "lines", "exclude_skus", "pending")
    per_text = spec.raw("per", "1")
    try:
        per = Money.parse(per_text, currency)
    except InvalidInput as error:
        raise refuse(spec.at("per"), error.detail) from None
    if per.minor <= 0:
        raise refuse(spec.at("per"), 'must be a positive amount such as "1.00"')
    return PointsPerAmount(_points(spec), per, _lines(spec), _pending(spec))


def _per_item(spec: Spec, currency: str) -> Effect:
    spec.only("type", "points", "lines", "exclude_skus", "pending")
    return PointsPerItem(_points(spec), _lines(spec), _pending(spec))


def _fixed(spec: Spec, currency: str) -> Effect:
    spec.only("type", "points", "pending")
    return FixedPoints(_points(spec), _pending(spec))


def _multiplier(spec: Spec, currency: str) -> Effect:
    spec.only("type", "factor", "pending")
    factor: Fraction = spec.decimal("factor")
    if factor <= 1 or factor > 100:
        raise refuse(spec.at("factor"), "must be greater than 1 and at most 100 (a factor below 1 would take points)")
    return Multiplier(factor, _pending(spec))


def _grant(kind: str) -> Any:
    def parse(spec: Spec, currency: str) -> Effect:
        spec.only("type", kind, "quantity")
        quantity: int = spec.integer("quantity", 1, minimum=1, maximum=1000)
        return GrantReward(kind, _code(spec, kind), quantity)

    return parse


def _cashback(spec: Spec, currency: str) -> Effect:
    spec.only("type", "percent", "lines", "exclude_skus")
    percent: Fraction = spec.decimal("percent")
    if not 0 < percent <= 100:
        raise refuse(spec.at("percent"), "must be more than 0 and at most 100")
    return CashbackPercent(percent, currency, _lines(spec))


def _tier_credit(spec: Spec, currency: str) -> Effect:
    spec.only("type", "points")
    return TierCreditEffect(_points(spec))


def _mission(spec: Spec, currency: str) -> Effect:
    spec.only("type", "mission", "steps")
    steps: int = spec.integer("steps", 1, minimum=1, maximum=10**6)
    return MissionProgressEffect(_code(spec, "mission"), steps)


def _badge(spec: Spec, currency: str) -> Effect:
    spec.only("type", "badge")
    return BadgeEffect(_code(spec, "badge"))


_PARSERS: dict[str, Any] = {
    "points_per_amount": _per_amount, "points_per_item": _per_item, "fixed_points": _fixed,
    "multiplier": _multiplier, "grant_reward": _grant("reward"), "grant_coupon": _grant("coupon"),
    "cashback_percent": _cashback, "tier_credit": _tier_credit, "mission_progress": _mission, "badge": _badge,
}  # fmt: skip
