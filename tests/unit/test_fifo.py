"""FIFO spending (§8.4, behaviours 39-40)."""

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.domain.errors import Conflict
from loyalty.domain.fifo import MAX_LOTS_PER_SPEND, OpenLot, plan_draw

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def lot(name: str, remaining: int, expires_in_days: int, earned_days_ago: int = 10) -> OpenLot:
    return OpenLot(
        f"LOT#{name}", name, remaining, NOW + timedelta(days=expires_in_days), NOW - timedelta(days=earned_days_ago)
    )


def plan(lots, points):
    return [(d.lot.record_id, d.points, d.empties_lot) for d in plan_draw(lots, points, NOW)]


def test_earliest_expiry_first_then_earliest_earned():
    lots = [lot("late", 100, 300), lot("soon-new", 50, 30, earned_days_ago=1), lot("soon-old", 50, 30, 200)]
    assert plan(lots, 120) == [("soon-old", 50, True), ("soon-new", 50, True), ("late", 20, False)]


def test_an_exact_spend_empties_only_what_it_needs():
    assert plan([lot("a", 500, 10), lot("b", 500, 20)], 500) == [("a", 500, True)]


def test_expired_lots_are_not_spendable_before_the_sweep():
    lots = [lot("expired", 1000, -1), lot("valid", 100, 5)]
    assert plan(lots, 100) == [("valid", 100, True)]
    with pytest.raises(Conflict) as refused:
        plan(lots, 101)
    assert refused.value.code == "INSUFFICIENT_POINTS" and refused.value.extra["spendable"] == 100


def test_a_lot_expiring_today_is_still_spendable():
    today = OpenLot("LOT#t", "t", 10, NOW, NOW - timedelta(days=1))
    assert plan([today], 10) == [("t", 10, True)]


def test_nothing_to_spend_and_non_positive_spends_are_refused():
    with pytest.raises(Conflict):
        plan([], 1)
    with pytest.raises(ValueError):
        plan([lot("a", 5, 5)], 0)


def test_a_spend_over_too_many_lots_is_refused_whole():
    lots = [lot(f"l{i:03d}", 1, 10 + i) for i in range(MAX_LOTS_PER_SPEND + 1)]
    assert len(plan(lots, MAX_LOTS_PER_SPEND)) == MAX_LOTS_PER_SPEND
    with pytest.raises(Conflict) as refused:
        plan(lots, MAX_LOTS_PER_SPEND + 1)
    assert refused.value.code == "SPEND_TOO_FRAGMENTED"
