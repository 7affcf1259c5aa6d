"""Earning rules: what a purchase or event earns, and why (every result carries its explanation).

base.py         the programme's base rule (points per amount or per item)
definitions.py  rules, versions, triggers, campaigns, rule sets - read from plain data, validated
context.py      the facts of an event and the CEL context built from them (documents its variables)
conditions.py   CEL conditions and line filters: compiled once per text, checked when defined
effects.py      what a rule does: points strategies, grants and hooks
limits.py       caps per member and period, campaign budgets, the usage snapshot and its deltas
schedules.py    cron-like schedules in the programme's timezone
evaluator.py    evaluate(): one event against the rules in force, deterministic and pure
outcome.py      contributions and the earn outcome, ready to post
spec.py         reading definitions with the location of every value
"""
