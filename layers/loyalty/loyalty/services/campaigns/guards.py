"""The writes that guard a participation, shared by trigger campaigns (engine.py) and the points for an
order given in its accrual (promotions.py): the member's count for the campaign's period, with the limit as
its condition, and the campaign's budget, active and with enough left as its condition."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.domain.campaigns import Budget, PerMemberLimit, limit_period
from loyalty.store import keys
from loyalty.store.table import update


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


def take_budget(tenant: str, campaign_id: str, budget: Budget, points: int, sale: Decimal | None = None) -> dict:
    """One participation and its `points` out of the budget, while the campaign is active (not paused); a
    participation an order triggered counts the order and what it paid (`sale`) in the campaign's results."""
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
        keys.campaign(tenant, campaign_id), keys.CAMPAIGN_BUDGET_SK, expression, values, " AND ".join(conditions)
    )
