"""Points for the order itself (交易促销积分, issue 14, D-088): the purchase campaigns whose effect is
orderPoints (double points, points per yuan on a product group, a fixed bonus over a threshold) are applied
by the accrual, in its one transaction, so that the member sees base and promotion points together and a
return reverses both, line by line, as it reverses the base points.

Which campaigns wait for the accruals of a program is kept for a few seconds (one query of a small GSI2
partition per PROMOTIONS_CACHE_SECONDS and warm function), so an order that no promotion matches costs
nothing more, and an approved promotion applies to the orders accrued a few seconds later.
One that some do costs one batch read: the member's count for each campaign's period, what the member got
of its per-member cap, and its budget, so that a campaign the member has used up, a paused one or one out of
budget is left out before the write instead of cancelling it. The write's conditions are the values read:
a concurrent participation cancels the accrual's transaction, and the accrual is retried and reads again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.domain.accrual import Catalog, Earning
from loyalty.domain.campaigns import (
    CampaignInput,
    FirstPurchaseTrigger,
    Occasion,
    OrderConditions,
    OrderPoints,
    capped,
    limit_period,
    member_misses,
    order_misses,
    share_by,
)
from loyalty.domain.orders import OrderSubmission
from loyalty.domain.program import ProgramConfig
from loyalty.services.campaigns import guards
from loyalty.services.campaigns.admin import running_campaigns
from loyalty.store import keys
from loyalty.store.table import Item, Table, put, update

PROMOTIONS_CACHE_SECONDS = 5.0  # how stale the list may be; a pause applies at once (the budget's guard)
MAX_PER_ORDER = 3  # promotions one order takes part in (the oldest campaigns first): its transaction stays small


@dataclass(frozen=True)
class Promotion:
    campaign_id: str
    campaign: CampaignInput
    effect: OrderPoints


@dataclass(frozen=True)
class PromotionPoints:
    """What one promotion gives one order: its points, their shares over the order's lines, and the writes
    that guard them (the member's participation, counts and the campaign's budget)."""

    promotion: Promotion
    points: int
    shares: dict[int, int]
    guards: list[dict]


class PromotionLoader:
    """The approved promotions of a program, kept for a few seconds."""

    def __init__(self, table: Table, ttl_seconds: float = PROMOTIONS_CACHE_SECONDS) -> None:
        self.table = table
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, list[Promotion]]] = {}

    def load(self, tenant: str, program_code: str) -> list[Promotion]:
        key = (tenant, program_code)
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        promotions = []
        for item in running_campaigns(self.table, tenant, program_code, "accrual"):
            if item["status"] != "scheduled":  # paused: its budget item says so at once, this in a while
                continue
            campaign = CampaignInput.stored(item["campaign"])
            effect = campaign.promotion()
            if effect is not None:
                promotions.append(Promotion(item["campaignId"], campaign, effect))
        self._cache[key] = (time.monotonic(), promotions)
        return promotions


@dataclass
class Promotions:
    table: Table
    loader: PromotionLoader
    budget_spent: Callable[[str, str], None]  # ends a campaign whose budget cannot pay an order's points

    def open_for(self, tenant: str, program: ProgramConfig, ordered_at: datetime) -> list[Promotion]:
        """The promotions whose window holds the order's time (no read while the cache is warm)."""
        promotions = self.loader.load(tenant, program.program.code)
        return [p for p in promotions if _within(p.campaign, program, ordered_at)]

    @staticmethod
    def groups(promotions: Iterable[Promotion]) -> tuple[list[str], list[str]]:
        """The store and product groups the promotions' conditions name: the accrual reads the order's place
        in them with the point rules' (one batch read)."""
        stores, products = [], []
        for promotion in promotions:
            if store_group := _conditions(promotion).store_group_code:
                stores.append(store_group)
            if promotion.effect.product_group_code:
                products.append(promotion.effect.product_group_code)
        return stores, products

    def points_for(
        self,
        tenant: str,
        program: ProgramConfig,
        promotions: list[Promotion],
        order: dict[str, Any],
        submission: OrderSubmission,
        occasion: Occasion,
        profile: Item,
        tags: set[str],
        catalog: Catalog,
        found: list[Earning],
    ) -> list[PromotionPoints]:
        """What each promotion the order (`occasion`, from order_occasion) and member meet gives the order,
        with the writes guarding it."""
        matched = [
            p
            for p in promotions
            if (not isinstance(p.campaign.trigger, FirstPurchaseTrigger) or occasion.first_purchase)
            and member_misses(p.campaign.conditions, profile, tags) is None
            and order_misses(_conditions(p), occasion, _store_in(catalog, p, submission)) is None
        ][:MAX_PER_ORDER]
        if not matched:
            return []
        member_pk = keys.member(tenant, order["memberId"])
        wanted = {p.campaign_id: _guard_keys(tenant, member_pk, p, occasion.at, program) for p in matched}
        audiences = {  # a promotion for an audience's members: the member's place in its list, in the same read
            p.campaign_id: (
                keys.audience_members(tenant, aid, keys.audience_shard(order["memberId"])),
                order["memberId"],
            )
            for p in matched
            if (aid := p.campaign.conditions.audience_id)
        }
        got = self.table.get_many([k for ks in wanted.values() for k in (*ks[:2], *ks[2])] + list(audiences.values()))
        given = []
        for promotion in matched:
            if promotion.campaign_id in audiences and audiences[promotion.campaign_id] not in got:
                continue  # not in the audience
            limit_key, cap_key, budget_keys = wanted[promotion.campaign_id]
            shards = [(n, got[key]) for n, key in enumerate(budget_keys) if key in got]
            if not shards or not shards[0][1].get("active", False):
                continue  # paused (or ended) since the program's promotions were read
            if int(got.get(limit_key, {}).get("n", 0)) >= promotion.campaign.limits.per_member.count:
                continue
            so_far = int(got.get(cap_key, {}).get("points", 0))
            points, weights = _bonus(promotion.effect, submission, catalog, found)
            points = capped(points, promotion.effect, so_far)
            if points <= 0:
                continue
            limits = promotion.campaign.limits.budget
            able = [
                n
                for n, budget in shards
                if (limits.points is None or int(budget["remainingPoints"]) >= points)
                and (limits.count is None or int(budget["remainingCount"]) >= 1)
            ]
            if not able:  # no shard can pay this order's points
                self.budget_spent(tenant, promotion.campaign_id)
                continue
            # B311: spreading load over the shards, not a secret
            shard = random.choice(able)  # noqa: S311  # nosec B311
            writes = [
                guards.count(
                    member_pk, promotion.campaign_id, promotion.campaign.limits.per_member, occasion.at, program.zone
                ),
                guards.take_budget(
                    tenant, promotion.campaign_id, limits, points, occasion.amount, shard, bool(profile.get("testData"))
                ),
            ]
            if promotion.effect.max_per_member is not None:
                writes.append(_add_to_cap(member_pk, cap_key[1], points, so_far))
            given.append(PromotionPoints(promotion, points, share_by(points, weights), writes))
        return given


def participation(
    member_pk: str,
    promotion: PromotionPoints,
    order: dict[str, Any],
    ordered_at: datetime,
    record_id: str,
    now: datetime,
) -> dict:
    """The member's participation, as the campaigns' participations list shows it (the order's own guard
    makes it once: an accrual is applied once)."""
    campaign = promotion.promotion.campaign
    business_key = f"order:{order['orderId']}"
    return put(
        {
            "PK": member_pk,
            "SK": keys.participation_sk(promotion.promotion.campaign_id, business_key),
            "campaignId": promotion.promotion.campaign_id,
            "campaignName": campaign.name,
            "trigger": campaign.trigger.type if campaign.trigger else campaign.kind,
            "businessKey": business_key,
            "occurredAt": ordered_at.isoformat(),
            "createdAt": now.isoformat(),
            "pending": [],
            "effects": [{"type": "orderPoints", "points": promotion.points, "recordId": record_id}],
        }
    )


def _within(campaign: CampaignInput, program: ProgramConfig, at: datetime) -> bool:
    starts, ends = campaign.window(program.zone)
    return starts <= at < ends


def order_occasion(order: dict[str, Any], submission: OrderSubmission, profile: Item) -> Occasion:
    """The order being accrued, as campaigns' conditions read it: the accrual's promotions, and (through
    OrderAccrued) the purchase campaigns after it. First purchase: the member has no accrued order yet."""
    return Occasion(
        "order",
        f"order:{order['orderId']}",
        submission.ordered_at,
        first_purchase=not (profile.get("firstPurchaseAt") or profile.get("orderCount", 0)),
        amount=sum((line.paid for line in submission.lines), Decimal(0)),
        store_code=submission.store_code,
        channel=order["channel"],
        payment_methods=frozenset(p.method_code for p in submission.payments),
        order_no=order["orderNo"],
    )


def _conditions(promotion: Promotion) -> OrderConditions:
    conditions = getattr(promotion.campaign.trigger, "order", None)  # a purchase trigger's: checked on input
    return conditions if isinstance(conditions, OrderConditions) else OrderConditions()


def _store_in(catalog: Catalog, promotion: Promotion, submission: OrderSubmission) -> bool:
    code = _conditions(promotion).store_group_code
    return bool(code) and catalog.store_in(code or "", submission.store_code)


def _bonus(
    effect: OrderPoints, submission: OrderSubmission, catalog: Catalog, found: list[Earning]
) -> tuple[int, dict[int, Decimal]]:
    base: dict[int, int] = {}
    for earning in found:
        if earning.point_group == effect.point_group_code:
            for line in earning.lines:
                base[line.line_no] = base.get(line.line_no, 0) + line.points
    paid = {line.line_no: line.paid for line in submission.lines}
    group = effect.product_group_code
    in_group = {line.line_no for line in submission.lines if catalog.product_in(group, line.sku)} if group else None
    return effect.bonus(base, paid, in_group)


def _guard_keys(
    tenant: str, member_pk: str, promotion: Promotion, at: datetime, program: ProgramConfig
) -> tuple[tuple[str, str], tuple[str, str], list[tuple[str, str]]]:
    """The member's count and cap for the campaign, and every shard of its budget (read in the same batch:
    an order takes from one that can pay it)."""
    label, _ = limit_period(promotion.campaign.limits.per_member, at, program.zone)
    campaign_id = promotion.campaign_id
    return (
        (member_pk, keys.participation_limit_sk(campaign_id, label)),
        (member_pk, keys.participation_limit_sk(campaign_id, "points")),
        [
            (keys.campaign(tenant, campaign_id), keys.campaign_budget_sk(shard))
            for shard in range(promotion.campaign.limits.budget.shards)
        ],
    )


def _add_to_cap(member_pk: str, sk: str, points: int, seen: int) -> dict:
    """The member's points from the campaign so far, still what was read (the cap was decided on it)."""
    return update(
        member_pk,
        sk,
        "ADD points :points",
        {":points": points, ":seen": seen},
        "attribute_not_exists(points) OR points = :seen" if seen == 0 else "points = :seen",
    )
