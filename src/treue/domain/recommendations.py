"""Recommendations: the next best rewards for a member, and products bought together (item-to-item).

Products: members who bought item i and item j are counted in the database (`treue.store.segments.pair_counts`);
here the counts become cosine similarities, `both / sqrt(bought i * bought j)`, with numpy, keeping each item's
closest neighbours. A member's candidates are scored by summing the similarities to everything they bought; the
items of their last purchase are left out (they just bought them). Without history: the most bought items.

Rewards: a reward is affordable `now` (cost <= available points) or `soon` (cost <= available + pending points,
or at most 20 % of its cost missing); ranked by how many members of the member's segments redeemed it lately,
then by all members, then the dearest affordable first.

Quality is measured offline by `hit_rate`: the share of members for whom a recommendation is among the items of a
purchase held out from the history the recommender saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NEIGHBOURS = 50  # similar items kept per item
SOON_PERCENT_MISSING = 20  # "soon": at most this per cent of the cost is missing
SCORE_SCALE = 1_000_000  # similarities are kept in millionths (exact in the database, ordered without ties of rounding)


@dataclass(frozen=True, slots=True)
class Pair:
    sku: str
    other_sku: str
    members: int  # members who bought both (sku == other_sku: who bought it)
    score: int  # cosine similarity in millionths (for sku == other_sku: the members count)


def similarities(counts: Iterable[tuple[str, str, int]], neighbours: int = NEIGHBOURS) -> list[Pair]:
    """Cosine similarities from co-occurrence counts (the diagonal gives each item's count), each item's
    `neighbours` most similar items (ties by sku), plus the diagonal rows (popularity)."""
    rows = [(a, b, n) for a, b, n in counts if n > 0]
    skus = sorted({a for a, _, _ in rows} | {b for _, b, _ in rows})
    index = {sku: i for i, sku in enumerate(skus)}
    size = len(skus)
    if size == 0:
        return []
    matrix = np.zeros((size, size), dtype=np.float64)
    for a, b, n in rows:
        matrix[index[a], index[b]] = n
    bought = np.diag(matrix).copy()
    bought[bought == 0] = 1.0
    cosine = matrix / np.sqrt(np.outer(bought, bought))
    np.fill_diagonal(cosine, 0.0)
    out = [Pair(sku, sku, int(matrix[i, i]), int(matrix[i, i])) for i, sku in enumerate(skus) if matrix[i, i] > 0]
    for i, sku in enumerate(skus):
        row = cosine[i]
        order = sorted((j for j in np.flatnonzero(row > 0)), key=lambda j: (-row[j], skus[j]))[:neighbours]
        out.extend(Pair(sku, skus[j], int(matrix[i, j]), int(np.rint(row[j] * SCORE_SCALE))) for j in order)
    return out


def affordability(cost: int, available: int, pending: int) -> str | None:
    """Affordable "now", "soon" or None (out of reach for now)."""
    if cost <= available:
        return "now"
    if cost <= available + pending or (cost - available) * 100 <= cost * SOON_PERCENT_MISSING:
        return "soon"
    return None


def rank_rewards(rewards: Sequence[Mapping[str, Any]], popularity: Mapping[Any, tuple[int, int]], available: int,
                 pending: int, limit: int) -> list[dict[str, Any]]:  # fmt: skip
    """The rewards (dicts with `id` and `cost_points`) affordable now or soon, best first: affordable now before
    soon, then popular in the member's segments, popular overall, dearest (now) or closest (soon)."""
    found = []
    for reward in rewards:
        cost = int(reward["cost_points"])
        when = affordability(cost, available, pending)
        if when is None:
            continue
        in_segments, overall = popularity.get(reward["id"], (0, 0))
        found.append({**reward, "affordable": when, "points_missing": max(cost - available, 0),
                      "redeemed_in_segments": in_segments, "redeemed_overall": overall})  # fmt: skip
    found.sort(key=lambda r: (r["affordable"] != "now", -r["redeemed_in_segments"], -r["redeemed_overall"],
                              -r["cost_points"] if r["affordable"] == "now" else r["points_missing"], str(r["id"])))  # fmt: skip
    return found[:limit]


def hit_rate(recommended: Mapping[Any, Sequence[str]], held_out: Mapping[Any, Iterable[str]]) -> float:
    """The share of members (of `held_out`) with at least one recommended item among their held-out items."""
    if not held_out:
        return 0.0
    hits = sum(1 for member, items in held_out.items() if set(recommended.get(member, ())) & set(items))
    return hits / len(held_out)
