"""A replay split by member and combined gives exactly what one replay of everything gives: caps per member,
campaign budgets running out part-way (across members and within one event), refunds taking back a share, and
anonymous purchases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treue.domain.money import Money
from treue.domain.purchases import Channel, Purchase
from treue.domain.rules.definitions import RuleSet
from treue.domain.simulation import MemberFacts, Replay, shardable

from .test_rules_fixtures import campaign, fixed, line, program, rule

START = datetime(2026, 3, 1, tzinfo=UTC)
MEMBERS = [uuid.UUID(int=n) for n in range(1, 7)]

EFFECTS = st.sampled_from([
    fixed(25), fixed(7), {"type": "points_per_amount", "points": 1, "per": "3.00"},
    {"type": "multiplier", "factor": "1.5"}, {"type": "points_per_item", "points": 4, "lines": 'line.category == "a"'},
])  # fmt: skip
CAPS = st.sampled_from([None, {"points": 60, "per": "week"}, {"awards": 2, "per": "lifetime"}])


@st.composite
def rule_sets(draw: Any) -> RuleSet:
    def limits(cap: dict[str, Any] | None) -> dict[str, Any]:
        return {"limits": {"per_member": [cap]}} if cap else {}

    plain = [rule(f"r{i}", *draw(st.lists(EFFECTS, min_size=1, max_size=2)), **limits(draw(CAPS)),
                  **({"mode": "exclusive", "group": "g", "priority": i} if draw(st.booleans()) else {}))
             for i in range(draw(st.integers(0, 2)))]  # fmt: skip
    campaigns = []
    for c in range(draw(st.integers(1, 2))):
        rules: list[dict[str, Any]] = [
            {"id": f"c{c}r{i}", "trigger": "purchase", "effects": draw(st.lists(EFFECTS, min_size=1, max_size=2)),
             **limits(draw(CAPS))}
            for i in range(draw(st.integers(1, 2)))
        ]  # fmt: skip
        if draw(st.booleans()):
            rules.append(
                {"id": f"c{c}review", "trigger": "review.created", "effects": [fixed(draw(st.integers(1, 40)))]}
            )
        campaigns.append(campaign({
            "id": f"camp{c}", "starts": "2026-03-03", "ends": "2026-03-20", "status": "active", "rules": rules,
            "budget": draw(st.integers(0, 600)), **limits(draw(CAPS)),
        }))  # fmt: skip
    return RuleSet(plain, campaigns)


@st.composite
def streams(draw: Any) -> list[tuple[str, Any]]:
    """Purchases (with what was refunded of them) and review events in time order, several at the same time."""
    items: list[tuple[datetime, int, uuid.UUID, str, Any]] = []
    for _ in range(draw(st.integers(1, 40))):
        at = START + timedelta(hours=draw(st.integers(0, 24 * 25)))
        who = draw(st.sampled_from([*MEMBERS, None]))
        if who is not None and draw(st.integers(0, 4)) == 0:
            event_id = uuid.UUID(int=draw(st.integers(1, 2**64)))
            items.append((at, 1, event_id, "event", (who, event_id, at)))
            continue
        cents = draw(st.integers(100, 30_000))
        bought = Purchase(uuid.UUID(int=draw(st.integers(1, 2**64))), who, "default", None, Channel.STORE,
                          f"o-{uuid.uuid4()}", at, Money(cents, "EUR"),
                          (line("X", draw(st.integers(1, 3)), f"{cents // 100 + 1}.00", draw(st.sampled_from(["a", "b"]))),))  # fmt: skip
        refunded = draw(st.sampled_from([0, 0, 0, cents // 3, cents]))
        items.append((at, 0, bought.id, "purchase", (bought, refunded)))
    items.sort(key=lambda item: item[:3])
    return [(kind, item) for *_, kind, item in items]


def feed(replay: Replay, stream: list[tuple[str, Any]], facts: dict[uuid.UUID, MemberFacts]) -> None:
    for kind, item in stream:
        if kind == "purchase":
            bought, refunded = item
            replay.purchase(bought, facts.get(bought.member_id) if bought.member_id else None, refunded)
        else:
            who, event_id, at = item
            replay.event("review.created", at, who, facts.get(who), {}, event_id)


def shard_of(kind: str, item: Any, shards: int) -> int:
    who = item[0].member_id if kind == "purchase" else item[0]
    return 0 if who is None else who.int % shards


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), streams(), st.integers(1, 3))
def test_a_replay_split_by_member_and_combined_equals_one_replay(rules, stream, shards):
    prog = program()
    facts = {m: MemberFacts(purchase_count=m.int % 3, spend_minor=1000 * m.int) for m in MEMBERS}
    whole = Replay(prog, rules)
    feed(whole, stream, facts)
    parts = []
    for index in range(shards):
        part = Replay(prog, rules, defer_budgets=True)
        feed(part, [(k, i) for k, i in stream if shard_of(k, i, shards) == index], facts)
        parts.append(part.part())
    combined = Replay.combined(prog, rules, parts)

    assert combined.report(top=100) == whole.report(top=100)
    assert combined.member_points() == whole.member_points()
    assert combined.budgets == whole.budgets
    passed_on = Replay.combined(prog, rules, [whole.part()])  # one replay in order, handed over as a part
    assert (passed_on.report(top=100), passed_on.budgets) == (whole.report(top=100), whole.budgets)
    assert all(combined.budgets.get(c.id, 0) <= (c.budget_points or 0) for c in rules.campaigns)


def test_a_budget_shared_by_two_members_runs_out_in_the_order_of_their_purchases():
    rules = RuleSet([], [campaign({"id": "spring", "starts": "2026-03-01", "ends": "2026-04-01", "status": "active",
                                   "budget": 60, "rules": [{"id": "bonus", "trigger": "purchase",
                                                            "effects": [fixed(25)]}]})])  # fmt: skip
    anna, ben = MEMBERS[0], MEMBERS[1]

    def bought(who: uuid.UUID, hour: int, refunded: int = 0) -> tuple[str, Any]:
        return "purchase", (Purchase(uuid.uuid4(), who, "default", None, Channel.STORE, f"o-{uuid.uuid4()}",
                                     START + timedelta(days=3, hours=hour), Money(1000, "EUR")), refunded)  # fmt: skip

    stream = [bought(anna, 1), bought(ben, 2), bought(anna, 3, refunded=500), bought(ben, 4)]
    parts = []
    for who in (anna, ben):
        part = Replay(program(), rules, defer_budgets=True)
        feed(part, [(k, i) for k, i in stream if i[0].member_id == who], {})
        parts.append(part.part())
    combined = Replay.combined(program(), rules, parts)

    # 25 + 25 + 10 (the budget's last 10, to Anna's third purchase, half refunded) + 0: Ben's second gets nothing.
    assert combined.by_rule == {"base": 40, "bonus": 60}
    assert combined.member_points() == {anna: 10 + 25 + (10 + 10) - 10, ben: 10 + 25 + 10}
    assert combined.budgets == {"spring": 60}
    assert shardable(rules)


def test_a_budgeted_rule_in_an_exclusive_group_keeps_the_replay_whole():
    budgeted = {"id": "spring", "starts": "2026-03-01", "ends": "2026-04-01", "status": "active", "budget": 60,
                "rules": [{"id": "bonus", "trigger": "purchase", "mode": "exclusive", "group": "g",
                           "effects": [fixed(25)]}]}  # fmt: skip
    assert not shardable(RuleSet([], [campaign(budgeted)]))
    assert shardable(RuleSet([rule("x", fixed(1), mode="exclusive", group="g")], [campaign({**budgeted, "rules": [
        {"id": "bonus", "trigger": "purchase", "effects": [fixed(25)]}]})]))  # fmt: skip
