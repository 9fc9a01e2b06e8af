"""The nightly reconciliation (对账) and its operator command: every member's ledger and every coupon
rule's stock checked against their own items (domain/reconciliation.py). It reads and reports; it never
writes, so a difference is for a person to look at, with the items as they were.

One pass over the table (a filtered, projected Scan) lists the members and rules and counts each rule's
coupons; then each member's partition is read whole (one paged Query) and each rule's shards in one
BatchGetItem. A member that differs is read again before it is reported, so a write that landed between
two pages of the first read is not taken for a fault.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.reconciliation import Difference, member_differences, rule_differences
from loyalty.observability import logger
from loyalty.store import keys
from loyalty.store.table import Table


@dataclass
class Report:
    started_at: str
    members: int = 0
    rules: int = 0
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "startedAt": self.started_at,
            "members": self.members,
            "rules": self.rules,
            "differences": [difference.as_dict() for difference in self.differences],
        }


@dataclass(frozen=True)
class _Census:
    members: list[tuple[str, str]]  # (tenant, member id)
    rules: list[tuple[str, str]]  # (tenant, rule id)
    coupons: Counter[tuple[str, str]]  # (tenant, rule id) -> coupons that exist


@dataclass
class Reconciler:
    table: Table
    clock: Clock

    def run(self, tenant: str | None = None, segment: int = 0, segments: int = 1) -> Report:
        """Check one segment of the table (all of it by default), for one tenant or all."""
        report = Report(started_at=self.clock.now().isoformat())
        census = self._census(tenant, segment, segments)
        for member_tenant, member_id in census.members:
            report.differences += self.member(member_tenant, member_id)
        for rule_tenant, rule_id in census.rules:
            report.differences += self.rule(rule_tenant, rule_id, census.coupons[(rule_tenant, rule_id)])
        report.members, report.rules = len(census.members), len(census.rules)
        for difference in report.differences:
            logger.warning("reconciliation difference", extra={"difference": difference.as_dict()})
        logger.info("reconciled", extra={k: v for k, v in report.as_dict().items() if k != "differences"})
        return report

    def member(self, tenant: str, member_id: str) -> list[Difference]:
        pk = keys.member(tenant, member_id)
        found = member_differences(tenant, member_id, self.table.query_all(pk))
        if found:  # read again: only a difference that stays is reported
            found = member_differences(tenant, member_id, self.table.query_all(pk))
        return found

    def rule(self, tenant: str, rule_id: str, coupons: int) -> list[Difference]:
        rule = self.table.get(keys.coupon_rule(tenant, rule_id), keys.RULE_SK)
        if rule is None:
            return []
        shard_keys = [(keys.coupon_stock(tenant, rule_id, s), keys.STOCK_SK) for s in range(rule.get("shards", 0))]
        shards = list(self.table.get_many(shard_keys).values()) if shard_keys else []
        return rule_differences(tenant, rule, shards, coupons)

    def _census(self, tenant: str | None, segment: int, segments: int) -> _Census:
        prefix = f"T#{tenant}#" if tenant else "T#"
        census = _Census([], [], Counter())
        items = self.table.scan(
            "begins_with(PK, :prefix) AND SK IN (:member, :rule, :coupon)",
            {":prefix": prefix, ":member": keys.MEMBER_SK, ":rule": keys.RULE_SK, ":coupon": keys.COUPON_SK},
            "PK, SK, ruleId",
            segment=segment,
            segments=segments,
        )
        for item in items:
            owner, kind, name = _parts(item["PK"])
            if item["SK"] == keys.MEMBER_SK and kind == "M":
                census.members.append((owner, name))
            elif item["SK"] == keys.RULE_SK and kind == "COUPON_RULE":
                census.rules.append((owner, name))
            elif item["SK"] == keys.COUPON_SK and kind == "COUPON":
                census.coupons[(owner, item["ruleId"])] += 1
        return census


def _parts(pk: str) -> tuple[str, str, str]:
    """`T#<tenant>#<KIND>#<id>` as (tenant, kind, id); tenant ids and codes hold no '#'."""
    _, tenant, kind, rest = (pk.split("#", 3) + ["", ""])[:4]
    return tenant, kind, rest


def reconciler(table: Table | None = None, clock: Clock | None = None) -> Reconciler:
    return Reconciler(table or Table(), clock or SystemClock())
