"""Coupon rules (优惠券规则) and their life: draft -> submitted to a named approver -> listed, or rejected
back to draft; listed <-> delisted; copy; delete while draft; 增发 (more stock) while listed.

Every step is one conditional transaction on the rule's status (and version), with its log entry, so two
operators acting at once cannot both win. Approval creates the stock shards (keys.STOCK_SHARDS items, each
its own partition key) that claims draw from; whether a rule is listed is also kept on its shards, so a
claim's own write refuses a delisted rule without reading the rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import Ref, changed_refs, distinct_refs
from loyalty.domain.coupons import CouponRuleInput, Totals, roi, split
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.validity import CamelModel, View
from loyalty.services import approval
from loyalty.services.approval import Approvable, Decision, LogEntryDraft, Submission
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository, count_ref
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Table, TransactionCancelled, delete, put, update

RuleStatus = Literal["draft", "pending", "listed", "delisted"]
RULE_CACHE_SECONDS = 30.0
STATS = ("issued", "claimers", "used", "users", "newCustomers", "returningCustomers")
MONEY_STATS = ("orderTotal", "discountTotal")


class Restock(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"quantity": 500, "reason": "活动追加"}]
    quantity: int = Field(ge=1, le=10_000_000, description="增发优惠券(张)")
    cost: Decimal = Field(default=Decimal(0), ge=0, max_digits=14, decimal_places=2, description="增发成本费用(元)")
    reason: str = Field(min_length=1, max_length=500, description="增发理由")


class RuleView(Approvable):
    rule_id: str
    status: RuleStatus
    total_stock: int
    version: int
    created_at: datetime
    created_by: str
    rule: CouponRuleInput


class RulePage(View):
    items: list[RuleView]
    next_cursor: str | None = None


class LogEntry(View):
    at: datetime
    by: str
    action: Literal["submitted", "approved", "rejected", "listed", "delisted", "restocked"]
    comment: str | None = None
    quantity: int | None = None
    cost: Decimal | None = None


class LogPage(View):
    items: list[LogEntry]
    next_cursor: str | None = None


class Dashboard(View):
    """数据分析 (§9.2), summed over the rule's stock shards; never a scan of coupons."""

    rule_id: str
    total_stock: int
    remaining: int
    issued: int
    claimers: int = Field(description="领取人数: members who claimed at least one")
    used: int
    users: int = Field(description="使用人数: members who used at least one")
    roi: Decimal | None = Field(description="Paid amount of orders using the coupon / coupon value given")
    new_customers: int = Field(description="新客数: uses on the member's first purchase")
    returning_customers: int = Field(description="老客数: uses on a later purchase")
    order_total: Decimal = Field(description="订单总金额: what orders using it paid")
    discount_total: Decimal


@dataclass
class CouponRuleService:
    table: Table
    clock: Clock

    # --- drafts ---------------------------------------------------------------------------------------

    def create(self, tenant: str, rule: CouponRuleInput, by: str) -> RuleView:
        """A draft with the next rule number of the day (yyyyMMdd + 5 digits, §9.1)."""
        now = self.clock.now()
        day = now.strftime("%Y%m%d")
        for _ in range(3):
            sequence = self._next_number(tenant, day)
            rule_id = f"{day}{sequence:05d}"
            item = {
                "PK": keys.coupon_rule(tenant, rule_id),
                "SK": keys.RULE_SK,
                "ruleId": rule_id,
                "status": "draft",
                "approvalStatus": "none",
                "totalStock": rule.total_stock,
                "version": 1,
                "createdAt": now.isoformat(),
                "createdBy": by,
                "rule": _data(rule),
                "GSI1PK": keys.coupon_rules_index(tenant),
                "GSI1SK": rule_id,
            }
            refs = list(distinct_refs(_refs(rule)).values())
            try:
                self.table.transact(
                    [
                        put(item, "attribute_not_exists(PK)"),
                        *[count_ref(tenant, rule.program_code, r, +1) for r in refs],
                    ]
                )
            except TransactionCancelled as cancelled:
                if cancelled.failed(0):
                    continue  # the number was taken meanwhile: take the next
                ConfigRepository.raise_for_refs(cancelled, 1, refs)
                raise
            return _view(item)
        raise Conflict("could not number the rule; retry", code="CONCURRENT_UPDATE")

    def replace(self, tenant: str, rule_id: str, rule: CouponRuleInput) -> RuleView:
        current = self._item(tenant, rule_id)
        old, new = CouponRuleInput.stored(current["rule"]), rule
        added, removed = changed_refs(_refs(old), _refs(new))
        item = {**current, "rule": _data(rule), "totalStock": rule.total_stock, "version": current["version"] + 1}
        operations = [
            put(
                item,
                "#status = :draft AND version = :v",
                {":draft": "draft", ":v": current["version"]},
                {"#status": "status"},
            )
        ]
        operations += [count_ref(tenant, new.program_code, ref, +1) for ref in added]
        operations += [count_ref(tenant, old.program_code, ref, -1) for ref in removed]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise self._not_draft(cancelled.items[0]) from None
            ConfigRepository.raise_for_refs(cancelled, 1, added)
            raise
        return _view(item)

    def copy(self, tenant: str, rule_id: str, by: str) -> RuleView:
        """复制: a new draft with the same terms."""
        source = CouponRuleInput.stored(self._item(tenant, rule_id)["rule"])
        return self.create(tenant, source.model_copy(update={"name": source.name[:95] + " (副本)"}), by)

    def delete(self, tenant: str, rule_id: str) -> None:
        current = self._item(tenant, rule_id)
        rule = CouponRuleInput.stored(current["rule"])
        operations = [
            delete(
                current["PK"],
                keys.RULE_SK,
                "#status = :draft AND version = :v",
                {":draft": "draft", ":v": current["version"]},
                {"#status": "status"},
            )
        ]
        operations += [count_ref(tenant, rule.program_code, r, -1) for r in distinct_refs(_refs(rule)).values()]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            raise self._not_draft(cancelled.items[0]) from None

    # --- approval -------------------------------------------------------------------------------------

    def submit(self, tenant: str, rule_id: str, submission: Submission, by: str) -> RuleView:
        return self._step(tenant, rule_id, **approval.submitting(self.table, tenant, submission, by).as_step())

    def approve(self, tenant: str, rule_id: str, decision: Decision, by: str) -> RuleView:
        """审批通过: the rule is listed and its stock shards are created, in the same transaction."""
        current = self._item(tenant, rule_id)
        shards = min(keys.STOCK_SHARDS, current["totalStock"])
        move = approval.approving(current, decision, by, "listed", ", shards = :shards", {":shards": shards})
        stock = [
            put(
                {
                    "PK": keys.coupon_stock(tenant, rule_id, shard),
                    "SK": keys.STOCK_SK,
                    "ruleId": rule_id,
                    "shard": shard,
                    "listed": True,
                    "remaining": share,
                    **{name: 0 for name in STATS},
                    **{name: Decimal(0) for name in MONEY_STATS},
                },
                "attribute_not_exists(PK)",
            )
            for shard, share in enumerate(split(current["totalStock"], shards))
        ]
        return self._step(tenant, rule_id, **move.as_step(), extra=stock)

    def reject(self, tenant: str, rule_id: str, decision: Decision, by: str) -> RuleView:
        return self._step(
            tenant, rule_id, **approval.rejecting(self._item(tenant, rule_id), decision, by, "rule").as_step()
        )

    def set_listed(self, tenant: str, rule_id: str, listed: bool, by: str) -> RuleView:
        """上架 / 下架: the rule and every shard change together, so claims see it at once."""
        current = self._item(tenant, rule_id)
        shards = [
            update(keys.coupon_stock(tenant, rule_id, s), keys.STOCK_SK, "SET listed = :listed", {":listed": listed})
            for s in range(current.get("shards", 0))
        ]
        return self._step(
            tenant,
            rule_id,
            "delisted" if listed else "listed",
            "SET #status = :new",
            {":new": "listed" if listed else "delisted"},
            LogEntryDraft("listed" if listed else "delisted", by),
            extra=shards,
        )

    def restock(self, tenant: str, rule_id: str, restock: Restock, by: str, key: RequestKey | None = None) -> RuleView:
        """增发: more stock for a listed rule, spread over its shards, logged with quantity, cost and reason.
        With an Idempotency-Key, a retry after a lost answer adds nothing more."""
        current = self._item(tenant, rule_id)
        shards = current.get("shards", 0)
        more = (
            [
                update(
                    keys.coupon_stock(tenant, rule_id, s), keys.STOCK_SK, "SET remaining = remaining + :n", {":n": n}
                )
                for s, n in enumerate(split(restock.quantity, shards))
                if n
            ]
            if shards
            else []
        )
        marker = [key.marker(ruleId=rule_id)] if key else []
        try:
            return self._step(
                tenant,
                rule_id,
                "listed",
                "SET totalStock = totalStock + :quantity",
                {":quantity": restock.quantity},
                LogEntryDraft("restocked", by, restock.reason, restock.quantity, restock.cost),
                extra=more + marker,
            )
        except TransactionCancelled as cancelled:
            if key and cancelled.failed(2 + len(more)):
                key.first_effect(self.table)  # the same body, or 422
                return self.get(tenant, rule_id)
            raise

    # --- reads ----------------------------------------------------------------------------------------

    def get(self, tenant: str, rule_id: str) -> RuleView:
        return _view(self._item(tenant, rule_id))

    def list_page(self, tenant: str, limit: int, cursor: str | None) -> RulePage:
        """The tenant's coupon rules, oldest first (by id), a page at a time."""
        page = self.table.index_page("GSI1", keys.coupon_rules_index(tenant), limit, cursor)
        return RulePage(items=[_view(item) for item in page.items], next_cursor=page.next_cursor)

    def log(self, tenant: str, rule_id: str, limit: int = 100, cursor: str | None = None) -> LogPage:
        self._item(tenant, rule_id)
        page = approval.log_page(self.table, keys.coupon_rule(tenant, rule_id), limit, cursor)
        return LogPage(items=[LogEntry.model_validate(item) for item in page.items], next_cursor=page.next_cursor)

    def dashboard(self, tenant: str, rule_id: str) -> Dashboard:
        rule = self._item(tenant, rule_id)
        shards = self.table.get_many(
            [(keys.coupon_stock(tenant, rule_id, s), keys.STOCK_SK) for s in range(rule.get("shards", 0))],
            consistent=False,
        )
        totals = sum((_totals(item) for item in shards.values()), Totals())
        remaining = totals.remaining if rule.get("shards") else rule["totalStock"]
        return Dashboard(
            rule_id=rule_id,
            total_stock=rule["totalStock"],
            remaining=remaining,
            issued=totals.issued,
            claimers=totals.claimers,
            used=totals.used,
            users=totals.users,
            roi=roi(totals),
            new_customers=totals.new_customers,
            returning_customers=totals.returning_customers,
            order_total=totals.order_total,
            discount_total=totals.discount_total,
        )

    # --- helpers --------------------------------------------------------------------------------------

    def _item(self, tenant: str, rule_id: str) -> Item:
        item = self.table.get(keys.coupon_rule(tenant, rule_id), keys.RULE_SK)
        if item is None:
            raise NotFound(f"no coupon rule {rule_id!r}", code="COUPON_RULE_NOT_FOUND")
        return item

    def _next_number(self, tenant: str, day: str) -> int:
        return self.table.increment(keys.counter(tenant), f"COUPON_RULE#{day}", "n")

    def _step(
        self,
        tenant: str,
        rule_id: str,
        expected: str,
        expression: str,
        values: dict[str, Any],
        entry: LogEntryDraft,
        extra: list[dict] | None = None,
        approver: str | None = None,
    ) -> RuleView:
        def refused(found: Item) -> Conflict:
            if expected == "listed":  # a step only a listed rule takes: the code claims and issues give too
                return Conflict(
                    f"the rule is {found['status']}, not listed", code="RULE_NOT_LISTED", ruleStatus=found["status"]
                )
            return Conflict(
                f"the rule is {found['status']}, not {expected}", code="RULE_STATUS", ruleStatus=found["status"]
            )

        approval.step(
            self.table,
            self.clock.now(),
            (keys.coupon_rule(tenant, rule_id), keys.RULE_SK),
            expected,
            expression,
            values,
            entry,
            refused,
            lambda: NotFound(f"no coupon rule {rule_id!r}", code="COUPON_RULE_NOT_FOUND"),
            extra,
            approver,
        )
        return self.get(tenant, rule_id)

    @staticmethod
    def _not_draft(found: Item | None) -> DomainErrorType:
        if found is None:
            return NotFound("no such coupon rule", code="COUPON_RULE_NOT_FOUND")
        return Conflict(
            f"the rule is {found['status']}: only drafts can be changed or deleted",
            code="RULE_STATUS",
            ruleStatus=found["status"],
        )


DomainErrorType = NotFound | Conflict


class RuleLoader:
    """A listed rule's terms do not change (edits are for drafts), so claims may keep them briefly; whether it
    is still listed is checked by the claim's write on the stock shard, not here."""

    def __init__(self, table: Table, ttl_seconds: float = RULE_CACHE_SECONDS) -> None:
        self.table = table
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, Item]] = {}

    def load(self, tenant: str, rule_id: str) -> Item:
        cached = self._cache.get((tenant, rule_id))
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        item = self.table.get(keys.coupon_rule(tenant, rule_id), keys.RULE_SK, consistent=False)
        if item is None:
            raise NotFound(f"no coupon rule {rule_id!r}", code="COUPON_RULE_NOT_FOUND", field="ruleId")
        if item["status"] in ("listed", "delisted"):  # drafts may still change: never kept
            self._cache[(tenant, rule_id)] = (time.monotonic(), item)
        return item


def _refs(rule: CouponRuleInput) -> list[Ref]:
    refs = [Ref("costCenter", rule.cost_center_code, "costCenterCode")]
    if rule.store_group_code:
        refs.append(Ref("storeGroup", rule.store_group_code, "storeGroupCode", must_be_enabled=True))
    if rule.product_group_code:
        refs.append(Ref("productGroup", rule.product_group_code, "productGroupCode", must_be_enabled=True))
    if rule.exchange_product_code:
        refs.append(Ref("product", rule.exchange_product_code, "exchangeProductCode"))
    if rule.points_group_code:
        refs.append(Ref("pointGroup", rule.points_group_code, "pointsGroupCode"))
    return refs


def _data(rule: CouponRuleInput) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)


def _totals(item: Item) -> Totals:
    return Totals(
        remaining=item["remaining"],
        issued=item["issued"],
        claimers=item["claimers"],
        used=item["used"],
        users=item["users"],
        new_customers=item["newCustomers"],
        returning_customers=item["returningCustomers"],
        order_total=Decimal(item["orderTotal"]),
        discount_total=Decimal(item["discountTotal"]),
    )


def _view(item: Item) -> RuleView:
    return RuleView.model_validate(item)


def coupon_rule_service(table: Table | None = None, clock: Clock | None = None) -> CouponRuleService:
    return CouponRuleService(table or Table(), clock or SystemClock())
