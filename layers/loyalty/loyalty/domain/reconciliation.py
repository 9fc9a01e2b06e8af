"""Reconciliation (对账): what a member's ledger and a coupon rule's stock must satisfy, checked over the
items themselves. Pure: the service reads the items, these functions say what does not add up.

A member, per point group:
    account cumulative / available / expired = the formulas over its records (domain/ledger.py)
    account available = open lots' remaining - debt, with debt >= 0 and every open lot > 0
A coupon rule, once approved (its stock lives in shards):
    total stock = remaining + issued (summed over the shards), every shard's remaining >= 0
    issued = the number of coupons of the rule that exist
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from loyalty.domain.ledger import RecordType, balances

Item = dict[str, Any]


@dataclass(frozen=True)
class Difference:
    """One thing that does not add up: `subject` is a member id (with `group`) or a coupon rule id."""

    tenant: str
    subject: str
    check: str  # a stable name, e.g. "available=records" or "stock=remaining+issued"
    expected: int
    found: int
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def member_differences(tenant: str, member_id: str, items: list[Item]) -> list[Difference]:
    """Every difference in one member's partition (profile, accounts, records, lots)."""
    accounts: dict[str, Item] = {}
    records: dict[str, list[tuple[RecordType, int, bool]]] = defaultdict(list)
    lots: dict[str, list[int]] = defaultdict(list)
    for item in items:
        sort_key = item["SK"]
        if sort_key.startswith("MEMBER#ACCOUNT#"):
            accounts[item["pointGroupCode"]] = item
        elif sort_key.startswith("REC#"):
            records[item["pointGroupCode"]].append(
                (RecordType(item["type"]), int(item["change"]), bool(item["countsTowardUpgrade"]))
            )
        elif sort_key.startswith("LOT#"):
            lots[item["pointGroupCode"]].append(int(item["remaining"]))

    found: list[Difference] = []

    def differ(check: str, expected: int, actual: int, group: str) -> None:
        if expected != actual:
            found.append(Difference(tenant, member_id, check, expected, actual, group))

    for group in sorted(set(accounts) | set(records) | set(lots)):
        account = accounts.get(group, {})
        formulas = balances(records[group])
        differ("cumulative=records", formulas.cumulative, int(account.get("cumulative", 0)), group)
        differ("available=records", formulas.available, int(account.get("available", 0)), group)
        differ("expired=records", formulas.expired, int(account.get("expired", 0)), group)
        debt = int(account.get("debt", 0))
        differ("available=lots-debt", sum(lots[group]) - debt, int(account.get("available", 0)), group)
        if debt < 0:
            differ("debt>=0", 0, debt, group)
        for remaining in lots[group]:
            if remaining <= 0:
                differ("lot>0", 1, remaining, group)
    return found


def rule_differences(tenant: str, rule: Item, shards: list[Item], coupons: int) -> list[Difference]:
    """Every difference in one coupon rule's stock; `coupons` is how many of its coupons exist."""
    rule_id = rule["ruleId"]
    if not rule.get("shards"):  # not approved yet: no stock has moved
        return [Difference(tenant, rule_id, "issued=coupons", 0, coupons)] if coupons else []
    found: list[Difference] = []
    if len(shards) != rule["shards"]:
        found.append(Difference(tenant, rule_id, "shards", int(rule["shards"]), len(shards)))
    remaining = sum(int(shard["remaining"]) for shard in shards)
    issued = sum(int(shard["issued"]) for shard in shards)
    if int(rule["totalStock"]) != remaining + issued:
        found.append(Difference(tenant, rule_id, "stock=remaining+issued", int(rule["totalStock"]), remaining + issued))
    if issued != coupons:
        found.append(Difference(tenant, rule_id, "issued=coupons", issued, coupons))
    found += [
        Difference(tenant, rule_id, "shard>=0", 0, int(shard["remaining"]))
        for shard in shards
        if int(shard["remaining"]) < 0
    ]
    return found
