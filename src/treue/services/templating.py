"""Notification templates rendered by Jinja2 in an immutable sandbox: subject and text without escaping, HTML
autoescaped. The engine is an adapter; what a template is and which data it gets are in
`treue.domain.notifications`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from treue.domain.errors import TemplateInvalid, TemplateUnsafe
from treue.domain.notifications import MAX_TEMPLATE, Rendered, Template, text_to_html


class _Lenient(Undefined):
    """A missing variable renders empty when a message is sent (a template must never lose a message)."""


def _env(autoescape: bool, strict: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined if strict else _Lenient,
                                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)  # fmt: skip
    env.filters["points"] = _points
    return env


def _points(value: Any) -> str:
    try:
        return f"{int(value):,}".replace(",", ".")
    except (TypeError, ValueError):
        return str(value)


_ENVS = {(a, s): _env(a, s) for a in (False, True) for s in (False, True)}


def render(template: Template, data: Mapping[str, Any], *, strict: bool = False) -> Rendered:
    """Render subject and text (no escaping) and HTML (autoescaped) in the sandbox. With `strict`, an unknown
    variable is an error (used to check a template against sample data before it is saved).

    Raises TemplateUnsafe for code the sandbox refuses, TemplateInvalid for any other template error."""
    for part in (template.subject, template.text, template.html or ""):
        if len(part) > MAX_TEMPLATE:
            raise TemplateInvalid(f"a template part is at most {MAX_TEMPLATE} characters")
    plain, escaped = _ENVS[(False, strict)], _ENVS[(True, strict)]
    try:
        subject = " ".join(plain.from_string(template.subject).render(data).split())
        text = plain.from_string(template.text).render(data).strip() + "\n"
        body = escaped.from_string(template.html).render(data) if template.html else None
    except SecurityError as error:
        raise TemplateUnsafe(f"the template does something the sandbox forbids: {error}") from None
    except TemplateError as error:
        raise TemplateInvalid(f"the template cannot be rendered: {error}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        raise TemplateInvalid(f"the template fails on the data: {error!r}") from None
    return Rendered(subject[:300], text, body if body is not None else text_to_html(text))
