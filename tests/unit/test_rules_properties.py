"""Properties of the evaluator over generated rule sets, purchases and limit states: it is deterministic,
never yields negative points, never lets an award exceed a cap or a campaign budget, and gives the same
points, awards, usage and budgets without explanations (as the simulator evaluates) as with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treue.domain.rules.context import EventFacts
from treue.domain.rules.definitions import RuleSet
from treue.domain.rules.evaluator import evaluate, usage_keys
from treue.domain.rules.limits import LimitState, Scope, Usage

from .test_rules_fixtures import campaign, line, member, program, purchase, rule, run

EFFECTS = st.one_of(
    st.builds(lambda p: {"type": "fixed_points", "points": p}, st.integers(1, 200)),
    st.builds(
        lambda p, per: {"type": "points_per_amount", "points": p, "per": per},
        st.integers(1, 5),
        st.sampled_from(["1.00", "2.50", "0.01"]),
    ),
    st.builds(lambda p: {"type": "points_per_item", "points": p, "lines": 'line.category == "a"'}, st.integers(1, 9)),
    st.builds(lambda f: {"type": "multiplier", "factor": f}, st.sampled_from(["1.5", "2", "3", "1.01"])),
    st.just({"type": "grant_reward", "reward": "mug"}),
)
CAPS = st.one_of(
    st.none(),
    st.builds(lambda p, per: {"points": p, "per": per}, st.integers(1, 300), st.sampled_from(["day", "month"])),
    st.builds(lambda a, per: {"awards": a, "per": per}, st.integers(1, 3), st.sampled_from(["week", "lifetime"])),
)


@st.composite
def rule_sets(draw: Any) -> tuple[RuleSet, dict[str, dict[str, Any]], int | None]:
    count = draw(st.integers(1, 6))
    priorities = draw(st.permutations(range(count)))
    in_campaign = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    caps: dict[str, dict[str, Any]] = {}
    plain, campaign_rules = [], []
    for index in range(count):
        data: dict[str, Any] = {
            "id": f"r{index}", "trigger": "purchase", "priority": priorities[index],
            "effects": draw(st.lists(EFFECTS, min_size=1, max_size=3)),
        }  # fmt: skip
        if draw(st.booleans()):
            data.update(mode="exclusive", group=draw(st.sampled_from(["g1", "g2"])))
        cap = draw(CAPS)
        if cap is not None:
            data["limits"] = {"per_member": [cap]}
            caps[data["id"]] = cap
        if draw(st.booleans()):
            data["condition"] = draw(st.sampled_from(["purchase.total >= 1000", "now.weekday == 6",
                                                      'member.tier == "gold"', "purchase.item_count > 2"]))  # fmt: skip
        (campaign_rules if in_campaign[index] else plain).append(data)
    budget = draw(st.one_of(st.none(), st.integers(0, 500)))
    campaigns = []
    if campaign_rules:
        campaign_cap = draw(CAPS)
        data = {"id": "camp", "starts": "2026-01-01", "ends": "2027-01-01", "status": "active",
                "rules": campaign_rules, "budget": budget}  # fmt: skip
        if campaign_cap is not None:
            data["limits"] = {"per_member": [campaign_cap]}
            caps["camp"] = campaign_cap
        campaigns.append(campaign(data))
    rules = [rule(d.pop("id"), *d.pop("effects"), **d) for d in plain]
    return RuleSet(rules, campaigns), caps, budget if campaign_rules else None


purchases = st.builds(
    lambda cents, quantity, category, minutes: purchase(
        f"{cents // 100}.{cents % 100:02d}",
        line("X", quantity, f"{cents // 100 + 1}.00", category),
        at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
    ),
    st.integers(0, 50_000), st.integers(1, 5), st.sampled_from(["a", "b", None]), st.integers(0, 365 * 24 * 60),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), purchases, st.sampled_from(["gold", None]), st.data())
def test_evaluation_is_deterministic_non_negative_and_within_limits(generated, bought, tier, data):
    rules, caps, budget = generated
    keys = usage_keys(rules, "purchase", bought.occurred_at, program())
    usage = {}
    for key in keys:
        cap = caps[key.owner]
        limit = cap.get("points", cap.get("awards"))
        used = data.draw(st.integers(0, limit + 2))
        usage[key] = Usage(points=used, awards=used) if "awards" in cap else Usage(points=used, awards=0)
    spent = data.draw(st.integers(0, (budget or 0) + 50))
    state = LimitState(usage, {"camp": spent})

    first = run(rules, bought, who=member(tier), state=state)
    assert first == run(rules, bought, who=member(tier), state=state)
    lean = evaluate(EventFacts.of_purchase(bought, member(tier)), rules, state, program(), explain=False)
    assert [(c.rule, c.points, c.campaign) for c in lean.outcome.contributions] == [
        (c.rule, c.points, c.campaign) for c in first.outcome.contributions]  # fmt: skip
    assert [(a.rule, a.points, a.grants, a.capped_from) for a in lean.awards] == [
        (a.rule, a.points, a.grants, a.capped_from) for a in first.awards]  # fmt: skip
    assert (lean.usage, lean.budgets, lean.skipped) == (first.usage, first.budgets, first.skipped)

    assert all(c.points >= 0 for c in first.outcome.contributions)
    assert all(a.points >= 0 for a in first.awards)
    assert first.points == sum(c.points for c in first.outcome.contributions)

    for delta in first.usage:
        assert delta.key in keys  # the caller loaded every key that the evaluation used
        before = usage[delta.key]
        cap = caps[delta.key.owner]
        if "points" in cap:
            assert delta.points <= max(cap["points"] - before.points, 0)
        else:
            assert before.awards + delta.awards <= cap["awards"]
        scope_points = sum(a.points for a in first.awards
                           if (a.rule if delta.key.scope is Scope.RULE else a.campaign) == delta.key.owner)  # fmt: skip
        assert delta.points == scope_points
    for spent_now in first.budgets:
        assert budget is not None and spent_now.points <= max(budget - spent, 0)

    exclusive_groups = [a.rule for a in first.awards if a.rule in _exclusive(rules)]
    groups = [_exclusive(rules)[r] for r in exclusive_groups]
    assert len(groups) == len(set(groups))  # at most one award per exclusive group


def _exclusive(rules: RuleSet) -> dict[str, str]:
    return {rule.id: rule.latest.group for rule, _ in rules.entries("purchase")
            if rule.latest.exclusive and rule.latest.group}  # fmt: skip
