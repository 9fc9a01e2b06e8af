"""Spending points first in, first out (积分关系): earliest expiry first, then earliest earned (§8.4).

Lots whose expiry has passed are not spendable even before the expiry sweep closes them, so a point is
either spent or expired, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty.domain.errors import Conflict

MAX_LOTS_PER_SPEND = 90  # one transaction holds every lot drawn (DynamoDB: 100 items); docs/decisions.md D-024


@dataclass(frozen=True)
class OpenLot:
    sort_key: str  # the lot's FIFO position (keys.lot_sk)
    record_id: str
    remaining: int
    expires_at: datetime
    effective_at: datetime


@dataclass(frozen=True)
class Draw:
    lot: OpenLot
    points: int

    @property
    def empties_lot(self) -> bool:
        return self.points == self.lot.remaining


def plan_draw(lots: list[OpenLot], points: int, now: datetime, max_lots: int = MAX_LOTS_PER_SPEND) -> list[Draw]:
    """Which lots pay `points`, and how much from each. Raises 409 INSUFFICIENT_POINTS when the
    spendable lots do not cover it, SPEND_TOO_FRAGMENTED when it needs more than `max_lots` lots."""
    if points <= 0:
        raise ValueError("spend a positive number of points")
    spendable = sorted(
        (lot for lot in lots if lot.remaining > 0 and lot.expires_at >= now),
        key=lambda lot: (lot.expires_at, lot.effective_at, lot.record_id),
    )
    draws, left = [], points
    for lot in spendable:
        if left == 0:
            break
        take = min(lot.remaining, left)
        draws.append(Draw(lot, take))
        left -= take
    if left:
        available = points - left
        raise Conflict(
            f"{points} points asked, {available} spendable",
            code="INSUFFICIENT_POINTS",
            field="points",
            spendable=available,
        )
    if len(draws) > max_lots:
        raise Conflict(
            f"this spend would draw from {len(draws)} lots; at most {max_lots} at once",
            code="SPEND_TOO_FRAGMENTED",
            field="points",
        )
    return draws
