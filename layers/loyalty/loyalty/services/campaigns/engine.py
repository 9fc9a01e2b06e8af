"""Members take part in trigger campaigns: an event on the bus (MemberRegistered, OrderAccrued) finds the
approved campaigns of its program that wait for it (one index query), and each whose window, trigger and
conditions it meets is applied once per (campaign, member, triggering event).

A participation is one transaction: its marker (the once-only guard, in the member's partition), the
member's count for the campaign's period (the per-member limit is that write's condition), the budget
(active, and enough left: the condition is the write) and, when the campaign grants points, the points
engine's record, lot and balance. Coupons, tags and messages follow it, each once: a coupon is issued by
the coupon engine under a key of the participation, tags are set (setting one twice changes nothing),
and the marker keeps what each gave. A redelivered event finds the marker and only finishes what the
marker says is still to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.accrual import Catalog
from loyalty.domain.campaigns import (
    AddTag,
    CampaignInput,
    GrantPoints,
    IssueCoupon,
    Occasion,
    RemoveTag,
    SendMessage,
    member_misses,
    order_misses,
    share_by,
    triggered_by,
)
from loyalty.domain.errors import Conflict, DomainError
from loyalty.domain.ledger import RecordType
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services.campaigns import guards
from loyalty.services.campaigns.admin import SYSTEM, CampaignService, campaign_service
from loyalty.services.campaigns.audiences import in_audience
from loyalty.services.config import CatalogLoader, ProgramLoader
from loyalty.services.coupons import CouponService, coupon_service
from loyalty.services.members import MemberService, member_service
from loyalty.services.messages import sending
from loyalty.services.messages.sending import MessageRequest
from loyalty.services.redemption import ExtrasRefused, Grant, RedemptionService, redemption_service
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository, tags_of
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Table, TransactionCancelled, check, delete, put, update

INACTIVE = ("frozen", "cancelled", "erased")
MARKER, LIMIT, BUDGET = 0, 1, 2  # positions of a participation's guards in its transaction
# the campaign's result counter each follow-up effect adds to, when it was not refused
COUNTED = {"issueCoupon": "couponsIssued", "addTag": "tagsAdded", "removeTag": "tagsRemoved", "sendMessage": "messages"}


@dataclass(frozen=True)
class Outcome:
    campaign_id: str
    result: str  # granted, or why not: already, limit, budget, paused, inactive, conditions:<what>


def occasion_of_event(detail_type: str, detail: dict[str, Any]) -> Occasion | None:
    """The occasion an event on the bus is, for campaigns; None for events no campaign waits for."""
    if detail_type == "MemberRegistered":
        return Occasion("registration", "registration", datetime.fromisoformat(detail["registeredAt"]))
    if detail_type == "TierChanged" and "changedAt" in detail:
        return Occasion(
            "tierChange",
            f"tier:{detail['recordId']}",
            datetime.fromisoformat(detail["changedAt"]),
            tier_code=detail["to"],
            tier_change=detail["type"],
        )
    if detail_type == "BehaviourRecorded" and "occurredAt" in detail:
        return Occasion(
            "behaviour",
            f"behaviour:{detail['behaviourId']}",
            datetime.fromisoformat(detail["occurredAt"]),
            behaviour_type=detail["behaviourType"],
            channel=detail.get("channel"),
        )
    if detail_type == "CouponRedeemed" and "redeemedAt" in detail:
        return Occasion(
            "couponRedeemed",
            f"coupon:{detail['code']}",
            datetime.fromisoformat(detail["redeemedAt"]),
            coupon_rule_id=detail["ruleId"],
            store_code=detail.get("storeCode"),
        )
    if detail_type == "OrderAccrued":
        return Occasion(
            "order",
            f"order:{detail['orderId']}",
            datetime.fromisoformat(detail["orderedAt"]),
            first_purchase=bool(detail.get("firstPurchase")),
            amount=Decimal(detail["amount"]),
            store_code=detail.get("storeCode"),
            channel=detail.get("channel"),
            payment_methods=frozenset(detail.get("paymentMethods", [])),
            order_no=detail.get("orderNo"),
        )
    return None


@dataclass
class CampaignEngine:
    table: Table
    campaigns: CampaignService
    programs: ProgramLoader
    catalogs: CatalogLoader
    members: MemberRepository
    member_service: MemberService
    points: RedemptionService
    coupons: CouponService
    clock: Clock

    def on_event(self, tenant: str, detail_type: str, detail: dict[str, Any]) -> list[Outcome]:
        if detail_type == "CouponRedeemed" and "campaignId" in detail:
            self._count_redemption(tenant, detail["campaignId"], detail["code"], detail["orderNo"])
        if detail_type == "CouponRedemptionUndone" and "campaignId" in detail:
            self._uncount_redemption(tenant, detail["campaignId"], detail["code"], detail["orderNo"])
        if detail_type == "ReturnProcessed" and detail.get("fullyReturned") and detail.get("memberId"):
            self._take_back(tenant, detail["memberId"], detail["orderId"])
        occasion = occasion_of_event(detail_type, detail)
        if occasion is None or "programCode" not in detail:
            return []
        program = self.programs.load(tenant, detail["programCode"])
        candidates = []
        for item in self.campaigns.running(tenant, program.program.code, occasion.kind):
            campaign = CampaignInput.stored(item["campaign"])
            starts, ends = campaign.window(program.zone)
            if (
                item["status"] == "scheduled"
                and starts <= occasion.at < ends
                and triggered_by(campaign.trigger, occasion)
            ):
                candidates.append((item, campaign))
        if not candidates:
            return []
        member_id = detail["memberId"]
        items = self.members.items(tenant, member_id)
        profile = items[0]
        tags = tags_of(items)
        outcomes = []
        for item, campaign in candidates:
            outcome = self.consider(tenant, item, campaign, member_id, profile, tags, occasion, program.zone)
            logger.info("campaign considered", extra={"campaignId": outcome.campaign_id, "result": outcome.result})
            outcomes.append(outcome)
        return outcomes

    def consider(
        self,
        tenant: str,
        item: Item,
        campaign: CampaignInput,
        member_id: str,
        profile: Item,
        tags: set[str],
        occasion: Occasion,
        zone: Any,
        extra: tuple[dict, ...] = (),
    ) -> Outcome:
        """Whether the member takes part, and if so their participation; `extra` is written with it (a batch
        run's result for the member)."""
        campaign_id = item["campaignId"]
        if profile.get("status") in INACTIVE:
            return Outcome(campaign_id, "inactive")
        missed = member_misses(campaign.conditions, profile, tags)
        audience = campaign.conditions.audience_id
        if missed is None and audience and not in_audience(self.table, tenant, audience, member_id):
            missed = "audience"
        order = getattr(campaign.trigger, "order", None)
        if missed is None and order is not None:
            store_in = self._store_in(tenant, order.store_group_code, occasion)
            missed = order_misses(
                order, occasion, store_in, self._group_paid(tenant, order.product_group_code, occasion)
            )
        if missed:
            return Outcome(campaign_id, f"conditions:{missed}")
        test = bool(profile.get("testData"))
        return Outcome(campaign_id, self.participate(tenant, item, campaign, member_id, occasion, zone, extra, test))

    def _group_paid(self, tenant: str, group: str | None, occasion: Occasion) -> Decimal | None:
        """What the order's lines of a product group paid (实收), None when it has none of them (or no group
        is asked about): the order's lines and their places in the group, one read each."""
        if not group or occasion.kind != "order":
            return None
        order = self.table.get(keys.order(tenant, occasion.channel or "", occasion.order_no or ""), keys.ORDER_SK)
        lines = (order or {}).get("submission", {}).get("lines", [])
        catalog: Catalog = self.catalogs.load(tenant).catalog
        wanted = [("productGroup", group, line["sku"]) for line in lines]
        scoped, _ = self.catalogs.scoped(tenant, catalog, wanted)
        paid = [Decimal(str(line["paid"])) for line in lines if scoped.product_in(group, line["sku"])]
        return sum(paid, Decimal(0)) if paid else None

    def _store_in(self, tenant: str, group: str | None, occasion: Occasion) -> bool:
        if not group or not occasion.store_code:
            return False
        catalog: Catalog = self.catalogs.load(tenant).catalog
        scoped, _ = self.catalogs.scoped(tenant, catalog, [("storeGroup", group, occasion.store_code)])
        return scoped.store_in(group, occasion.store_code)

    def participate(
        self,
        tenant: str,
        item: Item,
        campaign: CampaignInput,
        member_id: str,
        occasion: Occasion,
        zone: Any,
        extra: tuple[dict, ...] = (),
        test: bool = False,
    ) -> str:
        """A test member's participation (`test`) is recorded as theirs, outside results, costs and budget."""
        campaign_id, now = item["campaignId"], self.clock.now()
        member_pk = keys.member(tenant, member_id)
        marker_sk = keys.participation_sk(campaign_id, occasion.key)
        grant, record_id = campaign.grant(), new_ulid()
        follow_ups = [i for i, effect in enumerate(campaign.effects) if not isinstance(effect, GrantPoints)]
        marker = {
            "PK": member_pk,
            "SK": marker_sk,
            "campaignId": campaign_id,
            "campaignName": campaign.name,
            "trigger": campaign.trigger.type if campaign.trigger else campaign.kind,
            "businessKey": occasion.key,
            "occurredAt": occasion.at.isoformat(),
            "createdAt": now.isoformat(),
            "pending": follow_ups,
            "effects": [{"type": "grantPoints", "points": grant.points, "recordId": record_id}] if grant else [],
            **({"testData": True} if test else {}),
        }
        for shard in guards.shard_order(campaign.limits.budget):  # a shard that is spent: the next
            marker["budgetShard"] = shard
            outcome = self._write(tenant, item, campaign, member_id, occasion, zone, marker, shard, extra)
            if outcome != "spent":
                break
        else:
            self._budget_spent(tenant, campaign_id)
            return "budget"
        if outcome == "already":  # this event made the member take part before: finish what is left
            done = self.table.get(member_pk, marker_sk) or marker
            self._follow_up(tenant, campaign_id, campaign, member_id, done)
            return "already"
        if outcome != "granted":
            return outcome
        self._follow_up(tenant, campaign_id, campaign, member_id, marker)
        return "granted"

    def _write(
        self,
        tenant: str,
        item: Item,
        campaign: CampaignInput,
        member_id: str,
        occasion: Occasion,
        zone: Any,
        marker: Item,
        shard: int,
        extra: tuple[dict, ...],
    ) -> str:
        """The participation's one transaction, taking from one shard of the budget: granted, or already,
        limit, paused, or spent (this shard cannot pay)."""
        grant, campaign_id = campaign.grant(), item["campaignId"]
        operations = [
            put(marker, "attribute_not_exists(PK)"),
            guards.count(marker["PK"], campaign_id, campaign.limits.per_member, occasion.at, zone),
            guards.take_budget(
                tenant,
                campaign_id,
                campaign.limits.budget,
                grant.points if grant else 0,
                occasion.amount if occasion.kind == "order" else None,
                shard,
                test=bool(marker.get("testData")),
            ),
            *extra,
        ]
        order_at = len(operations)  # the order's link, when there is one, follows
        try:
            if grant:
                linked = self._on_order(tenant, occasion, grant.points) if occasion.kind == "order" else None
                self.points.grant(
                    tenant,
                    member_id,
                    self._grant(item, campaign, occasion),
                    extra=operations,
                    record_id=marker["effects"][0]["recordId"],
                    linked=linked,
                    program_code=campaign.program_code,
                )
            else:
                self.table.transact(operations)
        except (ExtrasRefused, TransactionCancelled) as refused:
            if isinstance(refused, ExtrasRefused) and refused.failed(order_at):  # a return of the order went first
                raise Conflict("the order changed meanwhile; retry", code="CONCURRENT_UPDATE") from None
            if refused.failed(MARKER):
                return "already"
            if refused.failed(LIMIT):
                return "limit"
            if refused.failed(BUDGET):
                return "spent" if (refused.items[BUDGET] or {}).get("active", False) else "paused"
            raise
        return "granted"

    def _on_order(self, tenant: str, occasion: Occasion, points: int) -> Callable[[Item], list[dict]]:
        """The order names the campaign's record among what it earned, split over its lines by what each
        paid, so that its returns reverse the campaign's points as they reverse its own (交易促销积分).
        Guarded by the order's returns version: a return and this queue up."""
        order_pk = keys.order(tenant, occasion.channel or "", occasion.order_no or "")
        order = self.table.get(order_pk, keys.ORDER_SK) or {}
        paid = {int(line["lineNo"]): Decimal(str(line["paid"])) for line in order["submission"]["lines"]}
        shares = share_by(points, paid)
        version = order.get("returnsVersion", 0)

        def link(record: Item) -> list[dict]:
            entry = {
                k: record[k]
                for k in ("recordId", "pointGroupCode", "lotSk", "countsTowardUpgrade", "expiresAt", "change")
            }
            entry["lines"] = [{"lineNo": no, "points": share} for no, share in sorted(shares.items()) if share]
            return [
                update(
                    order_pk,
                    keys.ORDER_SK,
                    "SET earnedRecords = list_append(earnedRecords, :entry), returnsVersion = :next",
                    {":entry": [entry], ":next": version + 1, ":v": version},
                    "attribute_not_exists(returnsVersion) OR returnsVersion = :v"
                    if version == 0
                    else "returnsVersion = :v",
                )
            ]

        return link

    @staticmethod
    def _grant(item: Item, campaign: CampaignInput, occasion: Occasion) -> Grant:
        grant = campaign.grant()
        assert grant is not None  # nosec B101: called only for a campaign that grants points
        on_order = occasion.kind == "order"
        link = {"campaignId": item["campaignId"], "campaignName": campaign.name}
        return Grant(
            grant.point_group_code,
            grant.points,
            grant.validity,
            grant.counts_toward_upgrade,
            # 交易促销积分 when an order earned it; otherwise 行为增加积分 (registering is a behaviour, D-087)
            RecordType.TRANSACTION_PROMOTION if on_order else RecordType.BEHAVIOUR_INCREASE,
            {
                **link,
                "costCenterCode": campaign.cost_center_code,
                "orderId": occasion.key.removeprefix("order:") if on_order else None,
                "orderNo": occasion.order_no if on_order else None,
            },
            "PointsEarned",
            campaign.cost_center_code,
            announced=link,
        )

    def _take_back(self, tenant: str, member_id: str, order_id: str) -> None:
        """An order returned in full: the unused coupons that campaigns saying so gave for it are taken back
        (收回); the participation's effects say which, so a redelivery takes back nothing more."""
        suffix = f"#order:{order_id}"
        participations = [
            item
            for item in self.table.query_all(keys.member(tenant, member_id), "CAMPAIGN#")
            if item["SK"].endswith(suffix)
        ]
        for item in participations:
            campaign_item = self.table.get(keys.campaign(tenant, item["campaignId"]), keys.CAMPAIGN_SK)
            if campaign_item is None:
                continue
            campaign = CampaignInput.stored(campaign_item["campaign"])
            taking_back = {
                e.rule_id for e in campaign.effects if isinstance(e, IssueCoupon) and e.take_back_on_full_return
            }
            effects = [dict(e) for e in item.get("effects", [])]
            changed = False
            for effect in effects:
                due = effect.get("type") == "issueCoupon" and effect.get("ruleId") in taking_back
                if due and "code" in effect and "takenBack" not in effect:
                    effect["takenBack"] = self.coupons.revoke(tenant, effect["code"], f"order {order_id} returned")
                    changed = True
            if changed:
                with suppress(TransactionCancelled):  # a concurrent delivery recorded it first
                    self.table.transact(
                        [
                            update(
                                item["PK"],
                                item["SK"],
                                "SET effects = :effects",
                                {":effects": effects, ":before": item.get("effects", [])},
                                "effects = :before",
                            )
                        ]
                    )

    def _count_redemption(self, tenant: str, campaign_id: str, code: str, order_no: str) -> None:
        """A coupon a campaign gave was redeemed on an order: counted in its results once (a marker per
        coupon and order), unless that redemption was undone already (its events can arrive out of order)."""
        pk, sk = keys.campaign(tenant, campaign_id), f"REDEEMED#{code}#{order_no}"
        with suppress(TransactionCancelled):  # counted by an earlier delivery, or undone
            self.table.transact(
                [
                    put({"PK": pk, "SK": sk}, "attribute_not_exists(PK)"),
                    check(pk, f"UNDONE#{code}#{order_no}", "attribute_not_exists(PK)"),
                    update(pk, keys.CAMPAIGN_BUDGET_SK, "ADD couponsRedeemed :one", {":one": 1}),
                ]
            )

    def _uncount_redemption(self, tenant: str, campaign_id: str, code: str, order_no: str) -> None:
        """That redemption was rolled back or its order returned: no longer counted. The UNDONE marker stays,
        so a late or repeated CouponRedeemed of the same coupon and order counts nothing."""
        pk, sk = keys.campaign(tenant, campaign_id), f"REDEEMED#{code}#{order_no}"
        undone = put({"PK": pk, "SK": f"UNDONE#{code}#{order_no}"})
        try:
            self.table.transact(
                [
                    delete(pk, sk, "attribute_exists(PK)"),
                    update(pk, keys.CAMPAIGN_BUDGET_SK, "ADD couponsRedeemed :minus", {":minus": -1}),
                    undone,
                ]
            )
        except TransactionCancelled:  # never counted (or uncounted by an earlier delivery): only the marker
            self.table.transact([undone])

    def _budget_spent(self, tenant: str, campaign_id: str) -> None:
        """A trigger campaign out of budget ends itself, and says so in its log."""
        with suppress(DomainError):  # another participation ended it first, or an operator did
            self.campaigns.end(tenant, campaign_id, SYSTEM, reason="budgetSpent")

    # --- what follows the participation -----------------------------------------------------------------

    def _follow_up(self, tenant: str, campaign_id: str, campaign: CampaignInput, member_id: str, marker: Item) -> None:
        """Coupons, tags and messages the participation still owes, each once; the marker keeps what each
        gave and what is still to do."""
        pending = [int(i) for i in marker.get("pending", [])]
        if not pending:
            return
        effects = list(marker.get("effects", []))
        for index in pending:
            effect = campaign.effects[index]
            if isinstance(effect, IssueCoupon):
                key = RequestKey(tenant, "campaignCoupon", f"{marker['SK']}#{member_id}#{index}")
                try:
                    coupon = self.coupons.issue_for_campaign(tenant, member_id, effect.rule_id, key, campaign_id)
                    effects.append({"type": "issueCoupon", "ruleId": effect.rule_id, "code": coupon.code})
                except DomainError as refused:  # no stock, a member's limit, a delisted rule: on the record
                    effects.append({"type": "issueCoupon", "ruleId": effect.rule_id, "refused": refused.code})
            elif isinstance(effect, AddTag | RemoveTag):
                try:
                    if isinstance(effect, AddTag):
                        self.member_service.tag(tenant, member_id, effect.tag_code)
                    else:
                        self.member_service.untag(tenant, member_id, effect.tag_code)
                    effects.append({"type": effect.type, "tagCode": effect.tag_code})
                except DomainError as refused:  # the tag was deleted since the approval
                    effects.append({"type": effect.type, "tagCode": effect.tag_code, "refused": refused.code})
            elif isinstance(effect, SendMessage):  # sent once by the message sender, by this key
                request = MessageRequest(
                    tenant,
                    campaign.program_code,
                    effect.template_code,
                    member_id,
                    f"{marker['SK']}#{member_id}#{index}",  # CAMPAIGN#<id>#<trigger>#<member>#<effect>
                    {"campaignName": campaign.name},
                    {"campaignId": campaign_id},
                )
                sending.enqueue([request])
                effects.append({"type": "sendMessage", "templateCode": effect.template_code, "status": "requested"})
        operations = [
            update(
                marker["PK"],
                marker["SK"],
                "SET effects = :effects, pending = :none",
                {":effects": effects, ":none": [], ":pending": marker.get("pending", [])},
                "pending = :pending",
            )
        ]
        counts = Counter(
            COUNTED[e["type"]]
            for e in effects[len(marker.get("effects", [])) :]
            if "refused" not in e and e["type"] in COUNTED
        )
        if counts and not marker.get("testData"):  # what the follow-ups gave, by kind, in the campaign's results
            operations.append(
                update(
                    keys.campaign(tenant, campaign_id),
                    keys.campaign_budget_sk(int(marker.get("budgetShard", 0))),
                    "ADD " + ", ".join(f"{name} :{name}" for name in sorted(counts)),
                    {f":{name}": n for name, n in counts.items()},
                )
            )
        with suppress(TransactionCancelled):  # a concurrent delivery of the same event recorded them first
            self.table.transact(operations)


def campaign_engine(table: Table | None = None, clock: Clock | None = None) -> CampaignEngine:
    table = table or Table()
    clock = clock or SystemClock()
    config = ConfigRepository(table)
    return CampaignEngine(
        table,
        campaign_service(table, clock),
        ProgramLoader(config),
        CatalogLoader(config),
        MemberRepository(table),
        member_service(table, clock),
        redemption_service(table, clock),
        coupon_service(table, clock),
        clock,
    )
