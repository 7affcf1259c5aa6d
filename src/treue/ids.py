"""Identifiers: time-ordered UUIDs (v7 layout) for rows, secrets-based codes for people."""

from __future__ import annotations

import os
import secrets
import time
import uuid


def new_id() -> uuid.UUID:
    """UUIDv7: 48-bit millisecond timestamp + random bits; index-friendly and unguessable enough for ids."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return uuid.UUID(int=value)


def random_digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def random_choice(alphabet: str) -> str:
    return secrets.choice(alphabet)
