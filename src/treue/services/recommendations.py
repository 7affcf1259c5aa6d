"""Recommendations (issue 8): the next best rewards and products for a member, and the product co-occurrence
table they read (recomputed by the `segments` job or on demand).

Products are counted in SQL (members who bought both items, from purchase lines) and scored with numpy (cosine;
`treue.domain.recommendations`); a member's recommendations are one grouped query over the stored pairs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain.recommendations import SCORE_SCALE, rank_rewards, similarities
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import iso

POPULAR_DAYS = 365  # redemptions counted for "popular in the member's segments"
MAX_LIMIT = 50


def recompute_products(uow: UnitOfWork, program_id: UUID, now: datetime) -> dict[str, Any]:
    """Count item co-occurrence over the programme's purchase history and replace the stored pairs."""
    with uow:
        uow.programs.get(program_id, cached=True)
        pairs = similarities(uow.segments.pair_counts(program_id))
        rows = [{"program_id": program_id, "sku": p.sku, "other_sku": p.other_sku, "members": p.members,
                 "score": p.score, "computed_at": now} for p in pairs]  # fmt: skip
        uow.segments.replace_pairs(program_id, rows)
        uow.commit()
    return {"items": sum(1 for p in pairs if p.sku == p.other_sku), "pairs": sum(1 for p in pairs if p.sku != p.other_sku),
            "computed_at": iso(now)}  # fmt: skip


def recompute_all_products(
    uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None
) -> dict[str, Any]:
    with uow_factory(read_only=True) as uow:
        programs = [program_id] if program_id else [p.id for p, _ in uow.programs.list()]
    pairs = sum(recompute_products(uow_factory(), pid, now)["pairs"] for pid in programs)
    return {"product_pairs": pairs}


def recommendations(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, *,
                    limit: int = 5) -> dict[str, Any]:  # fmt: skip
    """The member's next best rewards (affordable now or soon, popular in their segments) and products (bought
    together with what they bought, without what they just bought; the most bought items when there is no
    history to go by)."""
    limit = max(1, min(limit, MAX_LIMIT))
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        balance = uow.ledger.load_account(program_id, member_id).balance_at(now)
        rewards = [r for r in uow.rewards.all(program_id, True)
                   if (r.valid_from is None or r.valid_from <= now) and (r.valid_until is None or now < r.valid_until)
                   and (r.stock is None or r.stock > 0)]  # fmt: skip
        redeemed = uow.segments.redeemed_counts(program_id, member_id)
        rewards = [r for r in rewards if r.per_member_limit is None or redeemed.get(r.id, 0) < r.per_member_limit]
        popularity = uow.segments.reward_popularity(program_id, member_id, now - timedelta(days=POPULAR_DAYS))
        last = uow.segments.last_purchase_id(program_id, member_id)
        products = uow.segments.product_candidates(program_id, member_id, last, limit)
        basis = "bought_together"
        if not products:
            products = [(sku, 0, members) for sku, members in uow.segments.popular_products(program_id, last, limit)]
            basis = "popular"
        computed_at = uow.segments.pairs_computed_at(program_id)
    ranked = rank_rewards([{"id": r.id, "cost_points": r.cost_points, "name": r.name, "type": r.type.value}
                           for r in rewards], popularity, balance.available, balance.pending, limit)  # fmt: skip
    return {
        "member_id": str(member_id), "points": {"available": balance.available, "pending": balance.pending},
        "rewards": [{"reward_id": str(r["id"]), "name": r["name"], "type": r["type"], "cost_points": r["cost_points"],
                     "affordable": r["affordable"], "points_missing": r["points_missing"],
                     "redeemed_in_segments": r["redeemed_in_segments"], "redeemed_overall": r["redeemed_overall"]}
                    for r in ranked],
        "products": [{"sku": sku, "score": round(score / SCORE_SCALE, 6), "bought_by": members}
                     for sku, score, members in products],
        "products_basis": basis, "products_computed_at": iso(computed_at), "currency": program.currency,
    }  # fmt: skip
