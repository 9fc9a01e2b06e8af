"""The writes that guard a participation, shared by trigger campaigns (engine.py) and the points for an
order given in its accrual (promotions.py): the member's count for the campaign's period, with the limit as
its condition, and the campaign's budget, active and with enough left as its condition. A budget may be
split over shards (D-098): a participation takes from one, and what the campaign gave is their sum."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.domain.campaigns import Budget, PerMemberLimit, limit_period
from loyalty.domain.coupons import split
from loyalty.store import keys
from loyalty.store.table import Item, update


def shard_order(budget: Budget) -> list[int]:
    """The budget's shards in the order a participation tries them: at random, so that thousands at once
    spread over them, and every one, so that the last points of any shard are given."""
    # B311: spreading load, not a secret
    return random.sample(range(budget.shards), budget.shards)  # nosec B311


def budget_items(campaign_item: Item, budget: Budget) -> list[Item]:
    """A newly approved campaign's budget: shard 0 (also its run's progress) and the others, the limits split
    over them as coupon stock is."""
    points = split(budget.points, budget.shards) if budget.points is not None else None
    count = split(budget.count, budget.shards) if budget.count is not None else None
    return [
        {
            "PK": campaign_item["PK"],
            "SK": keys.campaign_budget_sk(shard),
            "campaignId": campaign_item["campaignId"],
            "active": True,
            "participations": 0,
            "pointsGranted": 0,
            "couponsIssued": 0,
            **({"remainingPoints": points[shard]} if points is not None else {}),
            **({"remainingCount": count[shard]} if count is not None else {}),
        }
        for shard in range(budget.shards)
    ]


def merged(shards: list[Item]) -> Item:
    """What the campaign gave, summed over its budget's shards (remaining, counts, skips); the rest is shard
    0's (active, its run's launch and progress)."""
    total = dict(shards[0]) if shards else {}
    for other in shards[1:]:
        for name, value in other.items():
            if isinstance(value, int | Decimal) and not isinstance(value, bool) and name != "shardsDone":
                total[name] = total.get(name, 0) + value
    return total


def count(member_pk: str, campaign_id: str, limit: PerMemberLimit, at: datetime, zone: Any) -> dict:
    """One more participation of the member in the period of `at` (program zone), while under the limit."""
    label, ends = limit_period(limit, at, zone)
    values: dict[str, Any] = {":one": 1, ":limit": limit.count}
    expression = "ADD n :one"
    if ends is not None:  # a period's count is gone a day after the period
        expression += " SET expiration = :ttl"
        values[":ttl"] = int((ends + timedelta(days=1)).timestamp())
    return update(
        member_pk,
        keys.participation_limit_sk(campaign_id, label),
        expression,
        values,
        "attribute_not_exists(n) OR n < :limit",
    )


def take_budget(
    tenant: str,
    campaign_id: str,
    budget: Budget,
    points: int,
    sale: Decimal | None = None,
    shard: int = 0,
    test: bool = False,
) -> dict:
    """One participation and its `points` out of one shard of the budget, while the campaign is active (not
    paused); a participation an order triggered counts the order and what it paid (`sale`) in the campaign's
    results. A test member's (`test`) is counted apart and draws nothing from the budget (D-131)."""
    if test:
        return update(
            keys.campaign(tenant, campaign_id),
            keys.campaign_budget_sk(shard),
            "ADD testParticipations :one, testPoints :points",
            {":one": 1, ":points": points, ":active": True},
            "active = :active",
        )
    values: dict[str, Any] = {":one": 1, ":active": True}
    sets, adds, conditions = [], ["participations :one"], ["active = :active"]
    if points:
        values[":points"] = points
        adds.append("pointsGranted :points")
    if sale is not None:
        values[":sale"] = sale
        adds += ["orders :one", "sales :sale"]
    if budget.points is not None:
        sets.append("remainingPoints = remainingPoints - :points")
        conditions.append("remainingPoints >= :points")
    if budget.count is not None:
        sets.append("remainingCount = remainingCount - :one")
        conditions.append("remainingCount >= :one")
    expression = (f"SET {', '.join(sets)} " if sets else "") + f"ADD {', '.join(adds)}"
    return update(
        keys.campaign(tenant, campaign_id), keys.campaign_budget_sk(shard), expression, values, " AND ".join(conditions)
    )
