"""Accrual (accrue_points): an order's points, lots, records, balances and tier, in one transaction.

Reads: the member's summary (profile and accounts, one query); the program and catalog come from a short
cache. Writes: one transaction whose first entry moves the order from received to accrued, so a
redelivered or duplicated message adds nothing. The accumulators it read are guarded, so a concurrent
accrual for the same member makes this one retry rather than decide on stale numbers.

The program's daily points ceilings are conditional counters in the same transaction (the member's points
from orders that day, and the channel's, D-129): an order that would pass either is held for an operator's
review instead (status held, a metric, an OrderHeld event); a released order accrues past them and still
counts.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from loyalty.clock import Clock, SystemClock
from loyalty.domain.accrual import Catalog, Earning, categorised, earnings, needs_categories
from loyalty.domain.config import ORDERS, SPEND, PointRule, Tier, TierRule
from loyalty.domain.errors import DomainError
from loyalty.domain.ledger import BalanceDelta, RecordType, delta
from loyalty.domain.members import inactive_member
from loyalty.domain.orders import OrderSubmission
from loyalty.domain.program import ProgramConfig
from loyalty.domain.tiers import reached_rule, upgrade_target
from loyalty.domain.validity import Validity, end_of_validity
from loyalty.ids import new_ulid
from loyalty.observability import logger, metrics
from loyalty.services import events, timeline
from loyalty.services.campaigns.promotions import (
    Promotion,
    PromotionLoader,
    PromotionPoints,
    Promotions,
    order_occasion,
    participation,
)
from loyalty.services.config import CatalogLoader, ProgramLoader
from loyalty.services.orders import ACCRUED, HELD, RECEIVED
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import (
    AccountChange,
    Conflict,
    LedgerRepository,
    LedgerWrite,
    ProfileMetrics,
    TierChange,
)
from loyalty.store.member_repo import MemberRepository, accounts_by_group, tags_of
from loyalty.store.table import Item, Table, TransactionCancelled, put, update

DAILY_POINTS_CEILING = "DAILY_POINTS_CEILING"  # the held reason
CHANNEL_DAILY_POINTS_CEILING = "CHANNEL_DAILY_POINTS_CEILING"  # the channel's day passed its ceiling (D-129)
REVIEWED = ", reviewedAt = :now, reviewedBy = :by, reviewNote = :note, reviewKey = :key REMOVE GSI1PK, GSI1SK"


class RetryLater(Exception):
    """Something this accrual read changed meanwhile; the message is retried and re-read."""


@dataclass(frozen=True)
class Release:
    """An operator's release of a held order: it accrues past the daily ceiling, on the record."""

    by: str  # the operator's key id
    note: str | None
    request_key: str | None = None  # the Idempotency-Key's digest: its retry gets this answer again


@dataclass
class AccrualService:
    ledger: LedgerRepository
    members: MemberRepository
    programs: ProgramLoader
    catalogs: CatalogLoader
    promotions: Promotions
    clock: Clock

    def accrue(self, tenant: str, order: dict[str, Any], release: Release | None = None) -> bool:
        """Apply an OrderReceived order (or release a held one); False when it had been applied (or held)
        before: nothing written. An order that would pass the daily ceiling is held, not accrued."""
        submission = OrderSubmission.stored(order["submission"])
        program = self.programs.load(tenant, submission.program_code)
        promotions = self.promotions.open_for(tenant, program, submission.ordered_at)
        submission, catalog = self._scoped(tenant, submission, program.point_rules.values(), promotions)
        found = earnings(submission, order["tierCode"], program.point_rules.values(), catalog)
        now = self.clock.now()
        points: dict[str, int] = defaultdict(int)
        for earning in found:
            points[earning.point_group] += earning.points
        ceiling = None if release else program.program.daily_points_ceiling
        if ceiling is not None and any(p > ceiling for p in points.values()):
            return self._hold(tenant, order, dict(points), now, DAILY_POINTS_CEILING)
        items = self.members.items(tenant, order["memberId"])
        profile, accounts = items[0], accounts_by_group(items)
        write = LedgerWrite(tenant, order["memberId"], count_order=True, member_active=True)
        counter = len(write.extra)
        if points:
            write.extra.append(_daily_count(tenant, order["memberId"], now, program, points, ceiling))
        channel_ceiling = None if release else program.program.channel_daily_points_ceiling
        channel_counter = len(write.extra)
        if points:
            write.extra.append(_channel_count(tenant, order, now, program, points, channel_ceiling))
        occasion = order_occasion(order, submission, profile)
        amount = occasion.amount  # 实收: spend metrics and measures
        member_rules = any(rule.condition != "points" for rule in program.tier_rules.values())
        write.profile, activities = _purchase(
            tenant, order, submission, profile, amount, dict(points), member_rules, program
        )
        write.extra += activities
        totals: dict[str, BalanceDelta] = defaultdict(BalanceDelta)
        payoffs: dict[str, int] = defaultdict(int)
        earned_at = submission.ordered_at
        given = (
            self.promotions.points_for(
                tenant, program, promotions, order, submission, occasion, profile, tags_of(items), catalog, found
            )
            if promotions
            else []
        )

        def credit(record: Item, lot: Item, kind: RecordType, counts_toward_upgrade: bool, **announced: Any) -> None:
            group, points = record["pointGroupCode"], record["change"]
            owed = accounts.get(group, {}).get("debt", 0) - payoffs[group]
            payoff = min(max(owed, 0), points)  # later earnings pay off debt first (issue 3)
            payoffs[group] += payoff
            write.records.append(record)
            if payoff < points:
                write.lots.append({**lot, "remaining": points - payoff})
            totals[group] += delta(kind, points, counts_toward_upgrade)
            detail = {
                "memberId": order["memberId"],
                "orderId": order["orderId"],
                "recordId": record["recordId"],
                "pointGroupCode": group,
                "points": points,
                "expiresAt": record["expiresAt"],
                **announced,
            }
            write.outbox.append(events.outbox_entry(tenant, events.DomainEvent("PointsEarned", detail), now))

        for earning in found:
            record, lot = _earning_items(tenant, earning, order, earned_at, program, now)
            credit(record, lot, RecordType.TRANSACTION, earning.rule.counts_toward_upgrade)
        member_pk = keys.member(tenant, order["memberId"])
        for bonus in given:
            record, lot = _promotion_items(tenant, bonus, order, earned_at, program, now)
            campaign = bonus.promotion
            credit(
                record,
                lot,
                RecordType.TRANSACTION_PROMOTION,
                campaign.effect.counts_toward_upgrade,
                campaignId=campaign.campaign_id,
                campaignName=campaign.campaign.name,
            )
            write.extra += [participation(member_pk, bonus, order, earned_at, record["recordId"], now), *bonus.guards]
        settle(write, tenant, program, profile, accounts, totals, payoffs, now, purchase=amount)
        write.outbox.append(
            events.outbox_entry(
                tenant,
                events.DomainEvent(
                    "OrderAccrued",
                    {
                        "memberId": order["memberId"],
                        "orderId": order["orderId"],
                        "orderNo": order["orderNo"],
                        "channel": order["channel"],
                        "points": {g: t.available for g, t in totals.items()},
                        # what campaigns triggered by a purchase read (services/campaigns/engine.py)
                        "programCode": submission.program_code,
                        "storeCode": submission.store_code,
                        "orderedAt": submission.ordered_at.isoformat(),
                        "amount": str(amount),
                        "paymentMethods": sorted(occasion.payment_methods),
                        "firstPurchase": occasion.first_purchase,
                    },
                ),
                now,
            )
        )
        reviewed = (
            {":by": release.by, ":note": release.note or "", ":key": release.request_key or "", ":from": HELD}
            if release
            else {":from": RECEIVED}
        )
        waiting, waited = _waiting_returns(tenant, order, now)
        write.outbox += waiting
        write.guard = update(
            keys.order(tenant, order["channel"], order["orderNo"]),
            keys.ORDER_SK,
            "SET #status = :accrued, accruedAt = :now, earned = :earned, earnedRecords = :records"
            + (REVIEWED if release else "")
            + (" REMOVE waitingReturns" if waiting else ""),
            {
                **reviewed,
                **waited,
                ":accrued": ACCRUED,
                ":now": now.isoformat(),
                ":earned": [
                    *({"pointGroupCode": e.point_group, "points": e.points, "ruleCode": e.rule.code} for e in found),
                    *(
                        {"pointGroupCode": b.promotion.effect.point_group_code, "points": b.points}
                        | {"campaignId": b.promotion.campaign_id}
                        for b in given
                    ),
                ],
                ":records": [
                    {
                        k: r[k]
                        for k in (
                            "recordId",
                            "pointGroupCode",
                            "lotSk",
                            "lines",
                            "countsTowardUpgrade",
                            "expiresAt",
                            "change",
                        )
                    }
                    for r in write.records
                ],
            },
            "#status = :from AND "
            + ("size(waitingReturns) = :waiting" if waiting else "attribute_not_exists(waitingReturns)"),
            {"#status": "status"},
        )
        try:
            self.ledger.write(write)
        except Conflict as conflict:
            seen = conflict.guarded or {}
            if conflict.already_applied and seen.get("status") == reviewed[":from"]:
                # a return arrived first and waits for this accrual: announced again in its transaction
                return self.accrue(tenant, {**order, "waitingReturns": seen.get("waitingReturns", [])}, release)
            if conflict.already_applied:
                logger.info("order already accrued or held", extra={"order_id": order["orderId"]})
                return False
            if conflict.inactive:  # frozen or cancelled meanwhile: no earning; an operator decides later
                if release:
                    raise inactive_member(conflict.inactive) from None
                return self._hold(tenant, order, dict(points), now, f"MEMBER_{conflict.inactive.upper()}")
            if ceiling is not None and points and counter in conflict.failed_extras:
                return self._hold(tenant, order, dict(points), now, DAILY_POINTS_CEILING)
            if channel_ceiling is not None and points and channel_counter in conflict.failed_extras:
                return self._hold(tenant, order, dict(points), now, CHANNEL_DAILY_POINTS_CEILING)
            raise RetryLater(f"member {order['memberId']} changed while accruing {order['orderId']}") from None
        return True

    def _scoped(
        self, tenant: str, submission: OrderSubmission, rules: Iterable[PointRule], promotions: list[Promotion]
    ) -> tuple[OrderSubmission, Catalog]:
        """The catalog with what this order's scope checks need: its products' categories when a rule is
        scoped by category (D-047) and its store's and products' places in the groups rules and promotions
        name (D-084), in one batch read, made only when a rule or promotion needs it."""
        catalog = self.catalogs.load(tenant).catalog
        rules = list(rules)
        skus = [line.sku for line in submission.lines]
        store_groups, product_groups = Promotions.groups(promotions)
        wanted = catalog.lookups(
            submission.store_code,
            skus,
            [r.store_scope.store_group_code for r in rules if r.store_scope.store_group_code] + store_groups,
            [r.product_scope.product_group_code for r in rules if r.product_scope.product_group_code] + product_groups,
        )
        categories = needs_categories(rules)
        if not (wanted or categories):
            return submission, catalog
        catalog, found = self.catalogs.scoped(tenant, catalog, wanted, skus if categories else None)
        return (categorised(submission, found) if categories else submission), catalog

    def _hold(self, tenant: str, order: dict[str, Any], points: dict[str, int], now: datetime, reason: str) -> bool:
        """Park a received order for review: held with its reason (the daily ceiling, or a member frozen or
        cancelled after the order came in) and would-be points, listed for operators (GSI1), announced
        (OrderHeld) and counted (the OrdersHeld metric). False if it was not received."""
        held_at = now.isoformat()
        try:
            self.ledger.table.transact(
                [
                    update(
                        keys.order(tenant, order["channel"], order["orderNo"]),
                        keys.ORDER_SK,
                        "SET #status = :held, heldReason = :reason, heldAt = :at, heldPoints = :points, "
                        "GSI1PK = :index, GSI1SK = :sort",
                        {
                            ":held": HELD,
                            ":received": RECEIVED,
                            ":reason": reason,
                            ":at": held_at,
                            ":points": points,
                            ":index": keys.held_orders(tenant),
                            ":sort": keys.held_order_sk(held_at, order["channel"], order["orderNo"]),
                        },
                        "#status = :received",
                        {"#status": "status"},
                    ),
                    events.outbox_entry(
                        tenant,
                        events.DomainEvent(
                            "OrderHeld",
                            {
                                "memberId": order["memberId"],
                                "orderId": order["orderId"],
                                "orderNo": order["orderNo"],
                                "channel": order["channel"],
                                "reason": reason,
                                "points": points,
                            },
                        ),
                        now,
                    ),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False
            raise
        metrics.add_metric(name="OrdersHeld", unit=MetricUnit.Count, value=1)
        logger.warning("order held for review", extra={"order_id": order["orderId"], "points": points})
        return True


def _purchase(
    tenant: str,
    order: dict[str, Any],
    submission: OrderSubmission,
    profile: Item,
    amount: Decimal,
    points: dict[str, int],
    uses_member_measures: bool,
    program: ProgramConfig,
) -> tuple[ProfileMetrics, list[dict]]:
    """The order in the member's spend metrics and tier measures (guarded by the first and last purchase
    times read, so two accruals at once cannot both move them, and by the tier measures when a spend or
    orders rule decided on them), on the timeline (购买, and 首购 for the first order), and, when it moves
    the last purchase to a later day, in the last-purchase index ("no purchase for N days", D-096)."""
    at = submission.ordered_at.astimezone(UTC).isoformat()
    first, last = profile.get("firstPurchaseAt"), profile.get("lastPurchaseAt")
    condition = (
        "firstPurchaseAt = :mFirst AND lastPurchaseAt = :mLast" if first else "attribute_not_exists(firstPurchaseAt)"
    )
    values: dict[str, Any] = {":mFirst": first, ":mLast": last} if first else {}
    if uses_member_measures:
        guard, guarded = measures_guard(profile)
        condition, values = f"{condition} AND {guard}", {**values, **guarded}
    metrics = ProfileMetrics(
        adds={"grossSpend": amount, "tierSpend": amount, "tierOrders": 1},
        sets={"firstPurchaseAt": min(first or at, at), "lastPurchaseAt": max(last or at, at)},
        condition=condition,
        values=values,
    )
    details = {"storeCode": submission.store_code, "orderNo": order["orderNo"], "amount": amount, "points": points}
    kinds = (
        [timeline.PURCHASE] if first or profile.get("orderCount", 0) else [timeline.FIRST_PURCHASE, timeline.PURCHASE]
    )
    entries = [
        timeline.activity(tenant, order["memberId"], kind, order["channel"], submission.ordered_at, **details)
        for kind in kinds
    ]
    latest = max(last or at, at)
    local = datetime.fromisoformat(latest).astimezone(program.zone).date().isoformat()
    if not last or local != datetime.fromisoformat(last).astimezone(program.zone).date().isoformat():
        entries.append(put(keys.last_purchase_entry(tenant, program.program.code, order["memberId"], local)))
    return metrics, entries


def _daily_count(
    tenant: str, member_id: str, now: datetime, program: ProgramConfig, points: dict[str, int], ceiling: int | None
) -> dict:
    """Add the order's points to the member's count for the day, within the daily ceiling."""
    day = now.astimezone(program.zone).date()
    return _day_count(
        keys.member(tenant, member_id), keys.daily_earning_sk(day.isoformat()), day, program, points, ceiling
    )


def _channel_count(
    tenant: str,
    order: dict[str, Any],
    now: datetime,
    program: ProgramConfig,
    points: dict[str, int],
    ceiling: int | None,
) -> dict:
    """Add the order's points to its channel's count for the day, on one of the day's shards (by order id),
    each holding its share of the ceiling: a shard that would pass its share holds the order (D-129)."""
    day = now.astimezone(program.zone).date()
    shard = int(hashlib.sha256(order["orderId"].encode()).hexdigest(), 16) % keys.CHANNEL_EARNING_SHARDS
    share = None if ceiling is None else -(-ceiling // keys.CHANNEL_EARNING_SHARDS)  # rounded up: they add up
    pk = keys.channel_earning(tenant, program.program.code, order["channel"], day.isoformat())
    return _day_count(pk, keys.channel_earning_sk(shard), day, program, points, share)


def _day_count(
    pk: str, sk: str, day: date, program: ProgramConfig, points: dict[str, int], ceiling: int | None
) -> dict:
    """Add points to one day's count item, one attribute per point group; with a ceiling, only if every
    group stays within it. The count expires (TTL) two days later."""
    expires = int(datetime.combine(day + timedelta(days=2), datetime.min.time(), program.zone).timestamp())
    names = {f"#g{i}": group for i, group in enumerate(points)}
    values: dict[str, Any] = {f":p{i}": total for i, total in enumerate(points.values())} | {":ttl": expires}
    added = ", ".join(f"#g{i} :p{i}" for i in range(len(points)))
    condition = None
    if ceiling is not None:
        values |= {f":r{i}": ceiling - total for i, total in enumerate(points.values())}
        condition = " AND ".join(f"(attribute_not_exists(#g{i}) OR #g{i} <= :r{i})" for i in range(len(points)))
    return update(pk, sk, f"ADD {added} SET expiration = :ttl", values, condition, names)


@dataclass(frozen=True)
class EarnedPoints:
    """Points an order earns in one group, by a point rule or by a promotion, with what their record says."""

    point_group: str
    points: int
    validity: Validity
    cost_center_code: str
    counts_toward_upgrade: bool
    kind: RecordType
    lines: list[dict[str, int]]  # the points of each line, for returns
    names: dict[str, str]  # on the record and the lot (the campaign)
    record_only: dict[str, str] = field(default_factory=dict)  # on the record alone (the rule)


def _promotion_items(
    tenant: str,
    bonus: PromotionPoints,
    order: dict[str, Any],
    earned_at: datetime,
    program: ProgramConfig,
    now: datetime,
) -> tuple[Item, Item]:
    """A promotion's record (交易促销积分) and lot: its points shared over the order's lines, so that a
    return of some lines reverses their part, as for the order's own points."""
    promotion, effect = bonus.promotion, bonus.promotion.effect
    return _order_points(
        tenant,
        order,
        earned_at,
        program,
        now,
        EarnedPoints(
            effect.point_group_code,
            bonus.points,
            effect.validity,
            promotion.campaign.cost_center_code,
            effect.counts_toward_upgrade,
            RecordType.TRANSACTION_PROMOTION,
            [{"lineNo": no, "points": points} for no, points in sorted(bonus.shares.items()) if points],
            {"campaignId": promotion.campaign_id, "campaignName": promotion.campaign.name},
        ),
    )


def _earning_items(
    tenant: str, earning: Earning, order: dict[str, Any], earned_at: datetime, program: ProgramConfig, now: datetime
) -> tuple[Item, Item]:
    """The earning record (交易积分) and its open lot."""
    rule = earning.rule
    return _order_points(
        tenant,
        order,
        earned_at,
        program,
        now,
        EarnedPoints(
            earning.point_group,
            earning.points,
            rule.validity,
            rule.cost_center_code,
            rule.counts_toward_upgrade,
            RecordType.TRANSACTION,
            [{"lineNo": line.line_no, "points": line.points} for line in earning.lines],
            {},
            {"ruleCode": rule.code},
        ),
    )


def _waiting_returns(tenant: str, order: dict[str, Any], now: datetime) -> tuple[list[dict], dict[str, Any]]:
    """The returns that arrived before the order accrued (services/returns.py): announced again with the
    accrual (ReturnReceived in its outbox), so each is applied seconds after it, not a queue redelivery
    later; and the guard's value that the order still holds exactly those."""
    waiting = order.get("waitingReturns", [])
    announced = [events.outbox_entry(tenant, events.DomainEvent("ReturnReceived", {"return": r}), now) for r in waiting]
    return announced, ({":waiting": len(waiting)} if waiting else {})


def _order_points(
    tenant: str, order: dict[str, Any], earned_at: datetime, program: ProgramConfig, now: datetime, earned: EarnedPoints
) -> tuple[Item, Item]:
    """The record and its open lot; the lot's sort key is its FIFO position."""
    record_id = new_ulid()
    expires = end_of_validity(earned.validity, earned_at, program.zone)
    assert expires is not None  # point rules and promotions always expire
    lot_sk = keys.lot_sk(earned.point_group, expires, earned_at, record_id)
    common = {
        "recordId": record_id,
        "pointGroupCode": earned.point_group,
        "costCenterCode": earned.cost_center_code,
        "countsTowardUpgrade": earned.counts_toward_upgrade,
        "orderId": order["orderId"],
        "orderNo": order["orderNo"],
        "channel": order["channel"],
        **earned.names,
        "effectiveAt": earned_at.isoformat(),
        "expiresAt": expires.isoformat(),
    }
    record = {
        **common,
        "type": earned.kind.value,
        "change": earned.points,
        **earned.record_only,
        "lines": earned.lines,
        "lotSk": lot_sk,
        "createdAt": now.isoformat(),
    }
    lot = {
        **common,
        "SK": lot_sk,
        "points": earned.points,
        "remaining": earned.points,
        **keys.lot_index(tenant, program.program.code, order["memberId"], expires, lot_sk),
    }
    return record, lot


def settle(
    write: LedgerWrite,
    tenant: str,
    program: ProgramConfig,
    profile: Item,
    accounts: dict[str, Item],
    totals: dict[str, BalanceDelta],
    payoffs: dict[str, int],
    now: datetime,
    purchase: Decimal | None = None,
) -> None:
    """Add the account changes of new earnings to `write`, and the upgrade they reach (会员升级服务), by
    points or by the member's spend and orders in the tier's period (with this `purchase`'s amount, if
    one). Accumulators a decision read are guarded, and so is a debt the earnings pay off."""
    qualifying: dict[str, int | Decimal] = {g: a.get("qualifying", 0) for g, a in accounts.items()}
    for group, total in totals.items():
        qualifying[group] = qualifying.get(group, 0) + total.qualifying
    spend, orders = tier_measures(profile)
    qualifying[SPEND], qualifying[ORDERS] = spend + (purchase or 0), orders + (1 if purchase is not None else 0)
    target = upgrade_target(program, profile["tier"]["code"], qualifying)
    tier_groups = {rule.measure for rule in program.tier_rules.values() if rule.condition == "points"}
    for group, total in totals.items():
        guarded = group in tier_groups and total.qualifying != 0
        seen = accounts[group].get("qualifying", 0) if guarded and group in accounts else (-1 if guarded else None)
        name = program.group_name(group)
        owed = accounts.get(group, {}).get("debt", 0)
        write.accounts.append(
            AccountChange(
                group,
                name,
                total.cumulative,
                total.available,
                total.expired,
                total.qualifying,
                seen,
                debt=-payoffs.get(group, 0),
                seen_debt=owed if payoffs.get(group) else None,
            )
        )
    if target:
        write.tier = tier_change(
            tenant, profile, target, "UPGRADE", program, now, reached_rule(program, target.code, qualifying)
        )
        write.outbox.append(
            events.outbox_entry(
                tenant,
                events.DomainEvent(
                    "TierChanged",
                    {
                        "memberId": profile["memberId"],
                        "from": profile["tier"]["code"],
                        "to": target.code,
                        "type": "upgrade",
                        "recordId": write.tier.new_record["recordId"],
                        "programCode": program.program.code,  # what tier-change campaigns read
                        "changedAt": now.isoformat(),
                    },
                ),
                now,
            )
        )


def tier_measures(profile: Item) -> tuple[Decimal, int]:
    """The member's spend and accrued orders since the current tier began (保级判断消费金额 / 次数)."""
    return Decimal(str(profile.get("tierSpend", 0))), int(profile.get("tierOrders", 0))


def measures_guard(profile: Item) -> tuple[str, dict[str, Any]]:
    """The condition that the tier measures are still what a decision read (absent counts as 0)."""
    spend, orders = tier_measures(profile)
    condition = (
        "(attribute_not_exists(tierSpend) OR tierSpend = :mSpend)"
        " AND (attribute_not_exists(tierOrders) OR tierOrders = :mOrders)"
    )
    return condition, {":mSpend": spend, ":mOrders": orders}


def tier_change(
    tenant: str,
    profile: Item,
    tier: Tier,
    kind: str,
    program: ProgramConfig,
    now: datetime,
    rule: TierRule | None = None,
    manual: dict[str, str] | None = None,
    validity: Validity | None = None,
) -> TierChange:
    """A new tier record of `kind` (UPGRADE, RETENTION, DOWNGRADE) starting now, replacing the current one;
    it names the tier rule that decided it, if one did, or the operator and reason of a `manual` change
    (变动类型 手动), whose `validity` may differ from the tier's."""
    until = end_of_validity(validity or tier.validity, now, program.zone)
    record = {
        "code": tier.code,
        "name": tier.name,
        "recordId": new_ulid(),
        "type": kind,
        "validFrom": now.isoformat(),
        "validUntil": until.isoformat() if until else None,
        "change": "manual" if manual else "automatic",
        "fromCode": profile["tier"]["code"],
        "tierRuleCode": rule.code if rule else None,
        "createdAt": now.isoformat(),
        **(manual or {}),
    }
    return TierChange(
        profile["tier"]["recordId"],
        {k: v for k, v in record.items() if v is not None},
        keys.tier_index(tenant, program.program.code, profile["memberId"], until),
    )


def accrual_service(table: Table | None = None, clock: Clock | None = None) -> AccrualService:
    table = table or Table()
    config = ConfigRepository(table)
    clock = clock or SystemClock()

    def budget_spent(tenant: str, campaign_id: str) -> None:
        """A promotion out of budget ends itself, and says so in its log (rare: imported when it happens)."""
        from loyalty.services.campaigns.admin import SYSTEM, campaign_service

        with suppress(DomainError):  # another accrual ended it first, or an operator did
            campaign_service(table, clock).end(tenant, campaign_id, SYSTEM, reason="budgetSpent")

    return AccrualService(
        LedgerRepository(table),
        MemberRepository(table),
        ProgramLoader(config),
        CatalogLoader(config),
        Promotions(table, PromotionLoader(table), budget_spent),
        clock,
    )
