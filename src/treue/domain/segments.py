"""Segments: groups of members, dynamic (a CEL condition over member facts) or static (an imported list).

A dynamic segment's condition is CEL over one variable, `member`, compiled by the rules engine's compiler
(`treue.domain.rules.conditions`: compiled once per text, `member.x` flattened into variables, only the fields it
reads converted). The member facts are computed in SQL for the whole programme at once (`treue.store.segments`):

    member
      id              string
      tier            string  tier code in force, or ""
      attributes      map     custom attributes; use has(member.attributes.x)
      locale          string  "de" | "en"
      enrolled_at     string  local date "YYYY-MM-DD"
      days_enrolled   int     whole local days since enrolment
      birthday        string  "YYYY-MM-DD", or ""
      points          int     points balance (available and pending)
      recency_days    int     whole days since the last purchase; null without purchases
      frequency       int     purchases (not wholly refunded)
      monetary        int     spend net of refunds, minor units (50.00 EUR -> 5000)
      r, f, m         int     RFM scores 1-5: quintiles within the programme (5: most recent, most frequent,
                              highest spend); ties share the lower score; members without purchases score 1
      rfm             string  the three scores, "545"
      churn_risk      double  1 - probability alive from the CLV model (`treue analytics clv --store`, job `clv`);
                              null until the model scored the member
      clv             int     expected CLV in minor units from the same model; null when unknown

A condition that fails for a member (a null compared, an attribute that is not there) counts as not met.
Examples: `member.r >= 4 && member.f >= 4` (champions), `member.recency_days > 90 && member.m >= 4` (big spenders
slipping away), `member.churn_risk > 0.7`, `member.tier == "gold" || member.clv >= 50000`.

The RFM quintile of a member with value v among n members is 1 + floor(5 * (members with a smaller value) / n);
recency ranks by the time of the last purchase (members without one lowest).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import cel

from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.rules.conditions import EVERYTHING, compile_expression, flatten, needs_of
from treue.domain.rules.context import flat_name
from treue.domain.texts import localized

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FIELDS = ("code", "kind", "name", "description", "condition")
FACTS = frozenset({"id", "tier", "attributes", "locale", "enrolled_at", "days_enrolled", "birthday", "points",
                   "recency_days", "frequency", "monetary", "r", "f", "m", "rfm", "churn_risk", "clv"})  # fmt: skip
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_STRING = re.compile(r"""('(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""")
SAMPLE: Mapping[str, Any] = {
    "id": "member", "tier": "gold", "attributes": {}, "locale": "de", "enrolled_at": "2025-01-05",
    "days_enrolled": 365, "birthday": "1990-01-05", "points": 100, "recency_days": 10, "frequency": 3,
    "monetary": 12000, "r": 5, "f": 4, "m": 3, "rfm": "543", "churn_risk": 0.25, "clv": 20000,
}  # fmt: skip


class SegmentKind(enum.StrEnum):
    DYNAMIC = "dynamic"
    STATIC = "static"


def check_code(code: Any) -> str:
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidInput("code must be 1-64 lower-case letters, digits, '_' or '-'", field="code")
    return code


def quintile(smaller: int, count: int) -> int:
    """The 1-5 score of a value that `smaller` of `count` values lie below (ties share the lower score)."""
    if count <= 0 or not 0 <= smaller < count:
        raise ValueError("0 <= smaller < count")
    return 1 + (5 * smaller) // count


@dataclass(frozen=True, slots=True)
class SegmentCondition:
    """A compiled segment condition: which member facts it reads, and whether it holds for a member."""

    source: str
    program: Any
    fields: frozenset[str]  # member facts read; "*" when `member` is used whole

    def holds(self, facts: Mapping[str, Any]) -> bool:
        """Does the condition hold for a member's facts? A condition that fails counts as not met."""
        context = cel.Context()
        if EVERYTHING in self.fields:
            context.update({"member": dict(facts)})
        context.update({flat_name("member", f): facts.get(f) for f in self.fields if f != EVERYTHING})
        try:
            return self.program.execute(context) is True
        except Exception:  # the CEL library raises KeyError, TypeError, RuntimeError, ...
            return False


def segment_condition(source: Any) -> SegmentCondition:
    """Compile and check a segment condition; refuse it (`rule_invalid`, location `condition`) if it does not
    parse, names another variable than `member` or a fact that does not exist, or does not give true/false."""
    if not isinstance(source, str) or not source.strip() or len(source) > 4000:
        raise RuleInvalid("condition: a CEL expression of up to 4000 characters is required", location="condition")
    try:
        program = compile_expression(source)
    except ValueError as error:
        message = str(error).split("\n", 1)[0]
        raise RuleInvalid(f"condition: {source!r} is not a valid CEL expression: {message}", location="condition",
                          expression=source) from None  # fmt: skip
    code = _STRING.sub(lambda m: " " * len(m.group(0)), source)
    bound = set(_BOUND.findall(code))
    unknown = sorted(set(program.variables()) - {"member"} - bound)
    if unknown:
        raise RuleInvalid(f"condition: unknown variable {unknown[0]!r} (only member is defined)",
                          location="condition", expression=source)  # fmt: skip
    fields = needs_of(source).get("member", frozenset())
    odd = sorted(fields - FACTS - {EVERYTHING})
    if odd:
        raise RuleInvalid(f"condition: member has no field {odd[0]!r} ({', '.join(sorted(FACTS))})",
                          location="condition", expression=source)  # fmt: skip
    try:
        result = program.execute(_sample())
    except (KeyError, ZeroDivisionError, OverflowError, ValueError):
        result = False  # depends on the data
    except Exception as error:
        raise RuleInvalid(f"condition: {str(error).split(chr(10), 1)[0]}", location="condition",
                          expression=source) from None  # fmt: skip
    if not isinstance(result, bool):
        raise RuleInvalid(f"condition: the expression gives {type(result).__name__}, not true or false",
                          location="condition", expression=source)  # fmt: skip
    try:
        flat = compile_expression(flatten(source))
    except ValueError:  # not expected: the form as written is always right, only slower
        return SegmentCondition(source, program, frozenset({EVERYTHING}))
    return SegmentCondition(source, flat, fields or frozenset())


def _sample() -> Any:
    context = cel.Context()
    context.update({"member": dict(SAMPLE)})
    return context


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    code: str
    kind: SegmentKind
    name: dict[str, str]
    description: dict[str, str]
    condition: SegmentCondition | None


def parse_segment(data: Mapping[str, Any]) -> SegmentSpec:
    """A segment from plain data: `{"code": "vip", "name": "VIP", "condition": "member.m >= 5"}` (dynamic, the
    default when a condition is given) or `{"code": "press", "name": "Press", "kind": "static"}`."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown segment fields: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    given = data.get("kind") or (SegmentKind.DYNAMIC if data.get("condition") is not None else SegmentKind.STATIC)
    try:
        kind = SegmentKind(given)
    except ValueError:
        raise InvalidInput("kind must be dynamic or static", field="kind") from None
    if kind is SegmentKind.STATIC and data.get("condition") is not None:
        raise InvalidInput("a static segment has no condition (its members are imported)", field="condition")
    condition = segment_condition(data.get("condition")) if kind is SegmentKind.DYNAMIC else None
    return SegmentSpec(check_code(data.get("code")), kind, localized(data.get("name"), "name", required=True),
                       localized(data.get("description"), "description"), condition)  # fmt: skip


def member_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    """The CEL facts of a member from the store's row (see the module docstring): r/f/m and rfm from the scores."""
    facts = {name: row.get(name) for name in FACTS if name != "rfm"}
    facts["tier"] = facts["tier"] or ""
    facts["attributes"] = dict(row.get("attributes") or {})
    facts["birthday"] = facts["birthday"] or ""
    facts["rfm"] = f"{row['r']}{row['f']}{row['m']}"
    return facts


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole days (24 hours) from `earlier` to `later`, never negative."""
    return max((later - earlier) // timedelta(days=1), 0)
