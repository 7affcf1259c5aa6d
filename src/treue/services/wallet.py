"""Cashback wallet use cases (issue 4): a per-member money account in the same ledger."""

from __future__ import annotations
