"""Checkout use cases (issue 4): preview, reserve (a hold), capture, release."""

from __future__ import annotations
