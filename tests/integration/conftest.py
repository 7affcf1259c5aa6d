"""Fixtures for the integration tests (the database fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def postgres_only(backend: str) -> None:
    """Races need PostgreSQL: SQLite serialises every writer with BEGIN IMMEDIATE."""
    if backend == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); the races exist on PostgreSQL only")
