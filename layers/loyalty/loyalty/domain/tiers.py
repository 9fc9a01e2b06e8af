"""Tier evaluation (会员升级服务): which tier do a member's measures reach? The measures are keyed by what
rules measure (TierRule.measure): each point group's qualifying points, and the member's spend and
orders within the tier's period (config.SPEND, config.ORDERS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

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
    """Where a member stands on one measure that tier rules read: a point group's accumulator (保级累计积分),
    or the spend or accrued orders of the tier's period; the next tier up and what it still needs, and what
    keeps the current tier at its end."""

    condition: Literal["points", "spend", "orders"]
    point_group_code: str | None
    qualifying: int
    next_tier: Tier | None
    next_tier_needs: int | None
    retention_target: int | None
    retention_needs: int | None


def progress(program: ProgramConfig, current_tier: str, measures: Mapping[str, int]) -> list[Progress]:
    """One entry per measure that tier rules read (spec §5.1-5.2): each point group's, then spend, then
    orders. The next tier is the lowest tier above the current one that rules on this measure reach; the
    retention target is the lowest bound among the current tier's own rules on it (none for the base tier,
    which never ends). Spend comes in whole yuan, as the bounds are (rounded down: 299.50 of 300 needs 1)."""
    current = program.tiers[current_tier].order if current_tier in program.tiers else 0
    counted = [r for r in program.tier_rules.values() if r.tier_code in program.tiers]
    order = {"points": 0, "spend": 1, "orders": 2}
    entries = []
    for measure in sorted({r.measure for r in counted}, key=lambda m: (order[_condition(counted, m)], m)):
        have = measures.get(measure, 0)
        rules = [r for r in counted if r.measure == measure]
        above = [r for r in rules if program.tiers[r.tier_code].order > current]
        nearest = min(above, key=lambda r: (program.tiers[r.tier_code].order, r.lower_bound), default=None)
        own = [r.lower_bound for r in rules if r.tier_code == current_tier]
        keep = min(own) if own else None
        condition = rules[0].condition
        entries.append(
            Progress(
                condition=condition,
                point_group_code=measure if condition == "points" else None,
                qualifying=have,
                next_tier=program.tiers[nearest.tier_code] if nearest else None,
                next_tier_needs=_missing(nearest.lower_bound, have) if nearest else None,
                retention_target=keep,
                retention_needs=_missing(keep, have) if keep is not None else None,
            )
        )
    return entries


def _condition(rules: list[TierRule], measure: str) -> str:
    return next(r.condition for r in rules if r.measure == measure)


def _missing(bound: int, have: int) -> int:
    return max(0, bound - have)
