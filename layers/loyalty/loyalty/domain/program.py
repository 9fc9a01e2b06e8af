"""A loaded program: everything a use case needs to decide, in memory, with no further reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from loyalty.domain.config import KINDS, BehaviourRule, CostCenter, PointGroup, PointRule, Program, Tier, TierRule
from loyalty.domain.errors import Conflict


@dataclass(frozen=True)
class ProgramConfig:
    program: Program
    has_members: bool = False
    tiers: dict[str, Tier] = field(default_factory=dict)
    tier_rules: dict[str, TierRule] = field(default_factory=dict)
    point_groups: dict[str, PointGroup] = field(default_factory=dict)
    cost_centers: dict[str, CostCenter] = field(default_factory=dict)
    point_rules: dict[str, PointRule] = field(default_factory=dict)
    behaviour_rules: dict[str, BehaviourRule] = field(default_factory=dict)

    @classmethod
    def from_items(cls, program: Program, has_members: bool, items: list[tuple[str, dict[str, Any]]]) -> ProgramConfig:
        buckets: dict[str, dict[str, Any]] = {
            "tier": {},
            "tierRule": {},
            "pointGroup": {},
            "costCenter": {},
            "pointRule": {},
            "behaviourRule": {},
        }
        for kind_name, data in items:
            if kind_name in buckets:
                item = KINDS[kind_name].model.model_validate(data)
                buckets[kind_name][item.code] = item
        return cls(
            program,
            has_members,
            buckets["tier"],
            buckets["tierRule"],
            buckets["pointGroup"],
            buckets["costCenter"],
            buckets["pointRule"],
            buckets["behaviourRule"],
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.program.time_zone)

    def group_name(self, code: str) -> str:
        """The point group's name (积分, 成长值), or its code if it has been removed since."""
        group = self.point_groups.get(code)
        return group.name if group else code

    def base_tier(self) -> Tier:
        """The tier every member starts in; a program without one cannot enrol anybody yet."""
        base = [tier for tier in self.tiers.values() if tier.base]
        if not base:
            raise Conflict(f"program {self.program.code!r} has no base tier yet", code="PROGRAM_NOT_READY")
        return base[0]
