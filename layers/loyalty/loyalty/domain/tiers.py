"""Tier evaluation (会员升级服务): which tier does a member's accumulator reach?"""

from __future__ import annotations

from loyalty.domain.config import Tier
from loyalty.domain.program import ProgramConfig


def upgrade_target(program: ProgramConfig, current_tier: str, qualifying: dict[str, int]) -> Tier | None:
    """The highest tier above the current one whose rule's lower bound the accumulator of the rule's point
    group reaches (skipping tiers is allowed), or None. Bounds are [lower, upper): upper matters only for
    downgrades (§5.2), an upgrade needs the lower bound alone."""
    current = program.tiers[current_tier].order if current_tier in program.tiers else 0
    reached = [
        program.tiers[rule.tier_code]
        for rule in program.tier_rules.values()
        if rule.tier_code in program.tiers and qualifying.get(rule.point_group_code, 0) >= rule.lower_bound
    ]
    best = max(reached, key=lambda tier: tier.order, default=None)
    return best if best is not None and best.order > current else None


def retention_outcome(program: ProgramConfig, current_tier: str, qualifying: dict[str, int]) -> tuple[str, Tier]:
    """When a tier's validity ends (会员降级服务): keep it (RETENTION, 保级) if the accumulator reaches a
    lower bound of the tier's own rules; otherwise drop (DOWNGRADE, 降级) to the highest lower tier whose
    lower bound it reaches, the base tier at least."""
    current = program.tiers[current_tier]
    own = [rule for rule in program.tier_rules.values() if rule.tier_code == current_tier]
    if any(qualifying.get(rule.point_group_code, 0) >= rule.lower_bound for rule in own):
        return "RETENTION", current
    reached = [
        program.tiers[rule.tier_code]
        for rule in program.tier_rules.values()
        if rule.tier_code in program.tiers
        and program.tiers[rule.tier_code].order < current.order
        and qualifying.get(rule.point_group_code, 0) >= rule.lower_bound
    ]
    return "DOWNGRADE", max(reached, key=lambda tier: tier.order, default=program.base_tier())
