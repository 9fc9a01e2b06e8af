"""How far a member is from the next tier and from keeping the current one (spec social-hub §5.1-5.2),
on the demo program: silver 300, gold 1000, platinum 5000 qualifying points in 积分."""

from __future__ import annotations

from infra.local.seed import PROGRAM_STRUCTURE
from loyalty.domain.config import Program
from loyalty.domain.program import ProgramConfig
from loyalty.domain.tiers import progress

PROGRAM = ProgramConfig.from_items(Program(code="DEMO", name="品牌会员计划"), False, PROGRAM_STRUCTURE)


def summary(tier: str, qualifying: dict[str, int]) -> list[tuple]:
    return [
        (p.point_group_code, p.qualifying, p.next_tier.code if p.next_tier else None, p.next_tier_needs,
         p.retention_target, p.retention_needs)
        for p in progress(PROGRAM, tier, qualifying)
    ]  # fmt: skip


def test_a_silver_member_with_700_is_300_points_from_gold_and_keeps_silver():
    assert summary("silver", {"points": 700}) == [("points", 700, "gold", 300, 300, 0)]


def test_a_new_member_needs_300_for_silver_and_has_nothing_to_keep():
    assert summary("base", {}) == [("points", 0, "silver", 300, None, None)]


def test_a_gold_member_below_its_bound_needs_points_to_keep_gold():
    assert summary("gold", {"points": 400}) == [("points", 400, "platinum", 4600, 1000, 600)]


def test_the_top_tier_has_no_next_tier():
    assert summary("platinum", {"points": 5200}) == [("points", 5200, None, None, 5000, 0)]


def test_only_point_groups_that_tier_rules_count_are_shown():
    assert [p.point_group_code for p in progress(PROGRAM, "base", {"points": 1, "growth": 9})] == ["points"]


def test_spend_and_order_rules_show_their_own_progress_after_the_point_groups():
    from loyalty.domain.config import ORDERS, SPEND, TierRule

    rules = [
        (
            "tierRule",
            {"code": "silver-spend", "name": "s", "tierCode": "silver", "condition": "spend", "lowerBound": 300},
        ),
        ("tierRule", {"code": "gold-visits", "name": "v", "tierCode": "gold", "condition": "orders", "lowerBound": 5}),
    ]
    program = ProgramConfig.from_items(Program(code="DEMO", name="品牌会员计划"), False, PROGRAM_STRUCTURE + rules)
    assert all(isinstance(r, TierRule) for r in program.tier_rules.values())
    found = progress(program, "base", {"points": 100, SPEND: 299, ORDERS: 2})  # 299.50 yuan, rounded down
    assert [(p.condition, p.point_group_code, p.qualifying, p.next_tier.code, p.next_tier_needs) for p in found] == [
        ("points", "points", 100, "silver", 200),
        ("spend", None, 299, "silver", 1),
        ("orders", None, 2, "gold", 3),
    ]
