"""CEL conditions: compiled once per expression text, checked when a rule is defined, run per event.

A condition is refused when it is defined if it does not parse (the error names line and column), if it
names a variable other than the allowed ones (`purchase`, `event`, `member`, `now`; line filters also
`line`), if it names a field those variables do not have (see `context`), or if a trial run against a
fully populated sample context fails for a reason other than missing data or does not yield true/false.

At run time a condition that fails (e.g. a member attribute that is not there) counts as not met; the
evaluator reports why.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cel

from treue.domain.errors import RuleInvalid
from treue.domain.rules.context import FIELDS, NESTED_FIELDS, EvalContext, flat_name, sample_context

CONDITION_VARIABLES = frozenset({"purchase", "event", "member", "now"})
LINE_VARIABLES = CONDITION_VARIABLES | {"line"}
AUDIENCE_VARIABLES = frozenset({"member"})

_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(?:Syntax error:\s*)?(.*)")
_STRING = re.compile(r"""[rR]?('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""", re.S)
_COMMENT = re.compile(r"//[^\n]*")
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_MEMBER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)")
_NESTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)")
_REFERENCE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?:\s*\.\s*([A-Za-z_]\w*)(\s*\()?)?")

# Which fields of which context variables an expression reads: {"purchase": {"total"}, "now": {"*"}}.
# "*" stands for every field. The context of an event is built with only what its rules read, because
# converting values into CEL is the costly part of an evaluation. Under "line": the fields of the purchase's
# lines that line filters read (every field once anything else reads `purchase.lines`).
Needs = dict[str, frozenset[str]]
EVERYTHING = "*"
LINE = "line"


def merge_needs(needs: Iterable[Needs]) -> Needs:
    merged: dict[str, set[str]] = {}
    for item in needs:
        for variable, fields in item.items():
            merged.setdefault(variable, set()).update(fields)
    return {variable: frozenset(fields) for variable, fields in merged.items()}


def needs_of(source: str) -> Needs:
    """The variables and fields `source` reads (a variable used other than as `variable.field`: all of it)."""
    code = _blank_literals(source)
    bound = set(_BOUND.findall(code))
    found: dict[str, set[str]] = {}
    for match in _REFERENCE.finditer(code):
        variable, member, call = match.groups()
        if variable not in CONDITION_VARIABLES:
            continue
        whole = variable in bound or member is None or call is not None
        found.setdefault(variable, set()).add(EVERYTHING if whole else member)
    if found.get("purchase", set()) & {"lines", EVERYTHING}:
        found[LINE] = {EVERYTHING}  # read other than by a line filter: its lines whole
    return {variable: frozenset(fields) for variable, fields in found.items()}


def line_fields(source: str) -> frozenset[str]:
    """The fields of `line` a line filter reads ("*": it uses `line` other than as `line.field`)."""
    code = _blank_literals(source)
    if LINE in set(_BOUND.findall(code)):
        return frozenset({EVERYTHING})
    # findall gives "" (not None) for a group that did not match
    fields = {EVERYTHING if not member or call else member
              for variable, member, call in _REFERENCE.findall(code) if variable == LINE}  # fmt: skip
    return frozenset(fields)


def flatten(source: str) -> str:
    """`source` with every `variable.field` of a context variable written as one variable `variable__field`.

    The CEL library converts each map it is given at a cost of about a microsecond per map and value, and
    looks fields up in maps slower than variables; giving it flat variables makes an evaluation several
    times cheaper. Uses of a whole variable (`member` alone, `now.size()`, a macro variable of the same
    name) are left as they are; `needs_of` marks them "*" so the context carries the whole map as well.
    Only the compiled form is flattened: errors at definition are reported against the text as written.
    """
    code = _blank_literals(source)
    bound = set(_BOUND.findall(code))
    pieces: list[str] = []
    last = 0
    for match in _REFERENCE.finditer(code):
        variable, member, call = match.groups()
        if variable not in CONDITION_VARIABLES or variable in bound or member is None or call is not None:
            continue
        pieces += [source[last : match.start(1)], flat_name(variable, member)]
        last = match.end(2)
    return "".join([*pieces, source[last:]])


def _executable(source: str) -> Any:
    """The compiled flattened form of a checked expression (the form as written if flattening broke it)."""
    try:
        return compile_expression(flatten(source))
    except ValueError:  # not expected; the unflattened form is always right, only slower
        return None


class ConditionFailed(Exception):
    """A condition could not be evaluated for this event (missing data, wrong type); it counts as not met."""


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """The compiled CEL program of an expression text (cached: each text is compiled once)."""
    return cel.compile(source)


@dataclass(frozen=True, slots=True)
class Condition:
    source: str
    program: Any = field(compare=False, repr=False)
    needs: Needs = field(default_factory=dict, compare=False, repr=False)

    def holds(self, context: EvalContext) -> bool:
        try:
            result = self.program.execute(context.cel)
        except Exception as error:  # the CEL library raises KeyError, TypeError, RuntimeError, ...
            raise ConditionFailed(_runtime_message(error)) from None
        if result is True or result is False:
            return result
        raise ConditionFailed(f"the condition gave {result!r}, not true or false")


@dataclass(frozen=True, slots=True)
class LineFilter:
    """A condition over `line`, run for every line of the purchase in one CEL call."""

    source: str
    program: Any = field(compare=False, repr=False)
    needs: Needs = field(default_factory=dict, compare=False, repr=False)

    def eligible(self, context: EvalContext) -> list[bool]:
        try:
            result = self.program.execute(context.cel)
        except Exception as error:
            raise ConditionFailed(_runtime_message(error)) from None
        if not isinstance(result, list) or not all(isinstance(x, bool) for x in result):
            raise ConditionFailed("the line filter did not give true or false for every line")
        return result


def _runtime_message(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no value for {error.args[0]!r}" if error.args else "a value is missing"
    message = str(error).split("\n", 1)[0]
    first, dot, _ = message.partition(". ")  # the library adds hints after the first sentence
    return first + dot.strip() if len(message) > 120 else message


def condition(source: str, location: str, allowed: frozenset[str] = CONDITION_VARIABLES) -> Condition:
    """Compile and check a condition; refuse it with its location and position if it is not sound."""
    program = _checked(source, location, allowed, expect_bool=True)
    flat = _executable(source)
    return Condition(source, flat or program, needs_of(source) if flat else _whole(source))


def line_filter(source: str, location: str) -> LineFilter:
    _checked(source, location, LINE_VARIABLES, expect_bool=True)
    # Wrapped so that a single CEL call answers for every line; the newline ends a trailing comment.
    wrapped = f"purchase.lines.map(line, (\n{source}\n))"
    flat = _executable(wrapped)
    reads = needs_of(source) if flat else _whole(wrapped)
    needs = merge_needs([reads, {"purchase": frozenset({"lines"}), LINE: line_fields(source)}])
    return LineFilter(source, flat or compile_expression(wrapped), needs)


def _whole(source: str) -> Needs:
    """Every variable `source` reads, whole (for an expression run as written, not flattened)."""
    return {variable: frozenset({EVERYTHING}) for variable in needs_of(source)}


def _checked(source: str, location: str, allowed: frozenset[str], *, expect_bool: bool) -> Any:
    if not isinstance(source, str) or not source.strip():
        raise RuleInvalid(f"{location}: an expression is required", location=location)
    try:
        program = compile_expression(source)
    except ValueError as error:
        raise _syntax_error(source, location, str(error)) from None
    _check_names(source, location, allowed, program.variables())
    _trial(source, location, program, expect_bool)
    return program


def _syntax_error(source: str, location: str, message: str) -> RuleInvalid:
    found = _POSITION.search(message)
    if found is None:
        return RuleInvalid(f"{location}: {source!r} is not a valid CEL expression: {message}",
                           location=location, expression=source)  # fmt: skip
    line, column, what = int(found.group(1)), int(found.group(2)), found.group(3).strip()
    return RuleInvalid(
        f"{location}: syntax error at line {line}, column {column}: {what}",
        location=location, line=line, column=column, expression=source,
    )  # fmt: skip


def _blank_literals(source: str) -> str:
    """The source with string literals and comments replaced by spaces (positions are kept)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return _COMMENT.sub(blank, _STRING.sub(blank, source))


def _position(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _refuse_at(source: str, location: str, offset: int, detail: str) -> RuleInvalid:
    line, column = _position(source, offset)
    return RuleInvalid(f"{location}: {detail} (line {line}, column {column})",
                       location=location, line=line, column=column, expression=source)  # fmt: skip


def _check_names(source: str, location: str, allowed: frozenset[str], variables: Iterable[str]) -> None:
    code = _blank_literals(source)
    bound = set(_BOUND.findall(code))
    for name in sorted(set(variables) - allowed - bound):
        found = re.search(rf"(?<![\w.]){re.escape(name)}\b", code)
        offset = found.start() if found else 0
        names = ", ".join(sorted(allowed))
        raise _refuse_at(source, location, offset, f"unknown variable {name!r} (only {names} are defined)")
    for found in _MEMBER.finditer(code):
        variable, member = found.group(1), found.group(2)
        if variable in allowed and variable not in bound and member not in FIELDS[variable]:
            if code[found.end() :].lstrip().startswith("("):
                continue  # a method call such as now.date.startsWith(...) is not a field
            fields = ", ".join(sorted(FIELDS[variable]))
            raise _refuse_at(source, location, found.start(2), f"{variable} has no field {member!r} ({fields})")
    for found in _NESTED.finditer(code):
        variable, member, inner = found.groups()
        known = NESTED_FIELDS.get((variable, member))
        if variable in allowed and variable not in bound and known is not None and inner not in known:
            if code[found.end() :].lstrip().startswith("("):
                continue
            fields = ", ".join(sorted(known))
            raise _refuse_at(source, location, found.start(3),
                             f"{variable}.{member} has no field {inner!r} ({fields})")  # fmt: skip


def _trial(source: str, location: str, program: Any, expect_bool: bool) -> None:
    try:
        result = program.execute(sample_context())
    except (KeyError, ZeroDivisionError, OverflowError, ValueError):
        return  # depends on the data (an attribute that the sample does not have, a zero divisor...)
    except Exception as error:
        raise RuleInvalid(f"{location}: {_runtime_message(error)}", location=location, expression=source) from None
    if expect_bool and not isinstance(result, bool):
        raise RuleInvalid(f"{location}: the expression gives {type(result).__name__}, not true or false",
                          location=location, expression=source)  # fmt: skip
