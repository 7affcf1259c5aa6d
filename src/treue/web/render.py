"""Jinja2 environments (one per language, so a request never changes shared state) and the page renderer."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from treue.web import i18n

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = language
    env.globals["languages"] = i18n.LANGUAGES
    env.filters["points"] = lambda value: i18n.number(int(value or 0), language)
    env.filters["money"] = lambda minor, currency: i18n.money(int(minor), currency, language)
    env.filters["amount"] = lambda text, currency: i18n.decimal_money(text, currency, language)
    env.filters["when"] = lambda value, tz="UTC": i18n.when(value, tz, language)
    env.filters["day"] = lambda value, tz="UTC": i18n.day(value, tz, language)
    env.filters["percent"] = lambda rate: i18n.percent(rate, language)
    return env


def render(request: Request, template: str, language: str, status: int = 200, **context: Any) -> HTMLResponse:
    page = environment(language).get_template(template)
    html = page.render(request=request, path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Cache-Control"] = "no-store"  # pages show personal data
    return response
