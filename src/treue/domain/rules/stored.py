"""A programme's rule set rebuilt from what storage keeps: each rule's versions and each campaign's settings.

Storage keeps plain data - a rule's definitions with the instant each version is valid from, a campaign's
definition without its rules (those are stored as rules that name their campaign) - and this module turns it
back into a `RuleSet`, refusing (or, for a live rule set, skipping and reporting) what no longer reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from treue.domain.errors import RuleInvalid
from treue.domain.rules.definitions import Campaign, Rule, RuleSet, parse_campaign, rule_from_versions

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a campaign read without its rules needs no valid_from


@dataclass(frozen=True, slots=True)
class StoredRule:
    id: str
    campaign: str | None
    versions: Sequence[tuple[datetime, Mapping[str, Any]]]  # (valid_from, definition), oldest first


@dataclass(frozen=True, slots=True)
class StoredCampaign:
    id: str
    definition: Mapping[str, Any]  # as parse_campaign reads it, without "rules"


def campaign_of(stored: StoredCampaign, rules: Iterable[Rule], *, timezone: str, currency: str) -> Campaign:
    definition = {**stored.definition, "rules": []}
    campaign = parse_campaign(definition, timezone=timezone, currency=currency, valid_from=_EPOCH)
    return replace(campaign, rules=tuple(rules))


def build_rule_set(rules: Iterable[StoredRule], campaigns: Iterable[StoredCampaign], *, timezone: str, currency: str,
                   on_invalid: Callable[[str, RuleInvalid], None] | None = None) -> RuleSet:  # fmt: skip
    """The rule set of stored rules and campaigns. Without `on_invalid` a definition that does not read raises
    `RuleInvalid`; with it, the rule (or campaign) is left out and reported, so that one broken definition
    cannot stop every purchase of the programme."""
    by_campaign: dict[str | None, list[Rule]] = {}
    for stored in rules:
        try:
            rule = rule_from_versions(stored.id, stored.versions, currency=currency, campaign=stored.campaign)
        except RuleInvalid as error:
            if on_invalid is None:
                raise RuleInvalid(f"rule {stored.id}: {error.detail}", **error.extra) from None
            on_invalid(stored.id, error)
            continue
        by_campaign.setdefault(stored.campaign, []).append(rule)
    built: list[Campaign] = []
    for stored_campaign in campaigns:
        try:
            built.append(campaign_of(stored_campaign, by_campaign.get(stored_campaign.id, ()), timezone=timezone,
                                     currency=currency))  # fmt: skip
        except RuleInvalid as error:
            if on_invalid is None:
                raise RuleInvalid(f"campaign {stored_campaign.id}: {error.detail}", **error.extra) from None
            on_invalid(stored_campaign.id, error)
    programme_rules = by_campaign.get(None, [])
    while True:
        try:
            return RuleSet(programme_rules, built)
        except RuleInvalid as error:
            # Rules that no longer fit together (e.g. the programme's timezone moved campaign windows so that
            # two exclusive rules overlap): leave out the second one named, report it, try again.
            named = error.extra.get("rules") or []
            if on_invalid is None or len(named) < 2:
                raise
            on_invalid(named[1], error)
            programme_rules = [r for r in programme_rules if r.id != named[1]]
            built = [replace(c, rules=tuple(r for r in c.rules if r.id != named[1])) for c in built]
