"""Reliability tests (issue 10): concurrency, overdraft, idempotency over HTTP, crashes, backups.

Figures are written as JSON to test-output/reliability/ (and copied by hand into docs/reliability.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

OUT = Path(__file__).resolve().parents[2] / "test-output" / "reliability"


def record_figure(name: str, figure: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(figure, indent=2, sort_keys=True, default=str))
    print(f"\n{name}: {json.dumps(figure, sort_keys=True, default=str)}")


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("PostgreSQL only: SQLite serialises every writer (BEGIN IMMEDIATE), so there is no race to test")
