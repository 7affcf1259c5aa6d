"""Earning rules: what a purchase or event earns, and why (every result carries its explanation)."""
