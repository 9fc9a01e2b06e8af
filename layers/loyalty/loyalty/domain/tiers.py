"""Tier evaluation (会员升级服务): which tier do a member's measures reach? The measures are keyed by what
rules measure (TierRule.measure): each point group's qualifying points, and the member's spend and
orders within the tier's period (config.SPEND, config.ORDERS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from loyalty.domain.config import Tier, TierRule
from loyalty.domain.program import ProgramConfig


def upgrade_target(program: ProgramConfig, current_tier: str, qualifying: Mapping[str, int | Decimal]) -> Tier | None:
    """The highest tier above the current one whose rule's lower bound the accumulator of the rule's point
    group reaches (skipping tiers is allowed), or None. Bounds are [lower, upper): upper matters only for
    downgrades (§5.2), an upgrade needs the lower bound alone."""
    current = program.tiers[current_tier].order if current_tier in program.tiers else 0
    reached = [
        program.tiers[rule.tier_code]
        for rule in program.tier_rules.values()
        if rule.tier_code in program.tiers and qualifying.get(rule.measure, 0) >= rule.lower_bound
    ]
    best = max(reached, key=lambda tier: tier.order, default=None)
    return best if best is not None and best.order > current else None


def retention_outcome(
    program: ProgramConfig, current_tier: str, qualifying: Mapping[str, int | Decimal]
) -> tuple[str, Tier]:
    """When a tier's validity ends (会员降级服务): keep it (RETENTION, 保级) if the accumulator reaches a
    lower bound of the tier's own rules; otherwise drop (DOWNGRADE, 降级) to the highest lower tier whose
    lower bound it reaches, the base tier at least."""
    current = program.tiers[current_tier]
    own = [rule for rule in program.tier_rules.values() if rule.tier_code == current_tier]
    if any(qualifying.get(rule.measure, 0) >= rule.lower_bound for rule in own):
        return "RETENTION", current
    reached = [
        program.tiers[rule.tier_code]
        for rule in program.tier_rules.values()
        if rule.tier_code in program.tiers
        and program.tiers[rule.tier_code].order < current.order
        and qualifying.get(rule.measure, 0) >= rule.lower_bound
    ]
    return "DOWNGRADE", max(reached, key=lambda tier: tier.order, default=program.base_tier())


def reached_rule(program: ProgramConfig, tier_code: str, qualifying: Mapping[str, int | Decimal]) -> TierRule | None:
    """The rule of `tier_code` whose lower bound the accumulator reaches (the one that put or kept the member
    there), the lowest bound first; None for a tier reached by no rule (the base tier, a manual change)."""
    reached = [
        rule
        for rule in program.tier_rules.values()
        if rule.tier_code == tier_code and qualifying.get(rule.measure, 0) >= rule.lower_bound
    ]
    return min(reached, key=lambda rule: (rule.lower_bound, rule.code), default=None)


@dataclass(frozen=True)
class Progress:
    """Where a member stands in one point group that has tier rules: its accumulator (保级累计积分), the
    next tier up and the points it still needs, and the points that keep the current tier at its end."""

    point_group_code: str
    qualifying: int
    next_tier: Tier | None
    next_tier_needs: int | None
    retention_target: int | None
    retention_needs: int | None


def progress(program: ProgramConfig, current_tier: str, qualifying: dict[str, int]) -> list[Progress]:
    """One entry per point group that tier rules count (spec §5.1-5.2). The next tier is the lowest tier
    above the current one that this group's rules reach; the retention target is the lowest bound among
    the current tier's own rules in this group (none for the base tier, which never ends)."""
    current = program.tiers[current_tier].order if current_tier in program.tiers else 0
    points_rules = [r for r in program.tier_rules.values() if r.condition == "points" and r.tier_code in program.tiers]
    groups = sorted({rule.measure for rule in points_rules})
    entries = []
    for group in groups:
        have = qualifying.get(group, 0)
        rules = [r for r in points_rules if r.measure == group]
        above = [r for r in rules if program.tiers[r.tier_code].order > current]
        nearest = min(above, key=lambda r: (program.tiers[r.tier_code].order, r.lower_bound), default=None)
        own = [r.lower_bound for r in rules if r.tier_code == current_tier]
        keep = min(own) if own else None
        entries.append(
            Progress(
                point_group_code=group,
                qualifying=have,
                next_tier=program.tiers[nearest.tier_code] if nearest else None,
                next_tier_needs=max(0, nearest.lower_bound - have) if nearest else None,
                retention_target=keep,
                retention_needs=max(0, keep - have) if keep is not None else None,
            )
        )
    return entries
