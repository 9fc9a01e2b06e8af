"""Campaigns as operators handle them: drafts, approval by a named approver, pause, resume, end, the log
and what a campaign gave.

Approval makes the campaign findable by the events it waits for (GSI2 of the campaign item, one small
partition per program and kind of event) and creates its budget item: what is left to give, whether it
is active, and what it gave. A participation's own write takes from the budget on condition that it is
active and enough is left, so a pause or an end stops it at once and a budget is never overspent.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from loyalty.clock import Clock, SystemClock
from loyalty.domain.campaigns import (
    DAILY,
    LIVE,
    BehaviourTrigger,
    CampaignInput,
    CampaignStatus,
    CouponRedeemedTrigger,
    GrantPoints,
    IssueCoupon,
    OrderPoints,
    RegistrationTrigger,
    SendMessage,
    TierChangeTrigger,
)
from loyalty.domain.config import KINDS, Ref, changed_refs, distinct_refs
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.validity import View
from loyalty.services import approval
from loyalty.services.approval import Approvable, Decision, LogEntryDraft, Submission
from loyalty.services.campaigns import guards
from loyalty.services.campaigns.audiences import named_audience
from loyalty.services.config import ProgramLoader
from loyalty.services.program_jobs import due_now
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository, count_ref
from loyalty.store.member_repo import MemberRepository
from loyalty.store.table import (
    Item,
    Table,
    TransactionCancelled,
    check,
    delete,
    put,
    update,
)

SYSTEM = "system"  # who ends a campaign whose budget ran out, or a batch run that reached every member
ENDED_BECAUSE = {"budgetSpent": "the budget is spent", "completed": "every member of the audience was reached"}


class CampaignResults(View):
    """What the campaign gave so far (from its budget item)."""

    participations: int = 0
    points_granted: int = 0
    coupons_issued: int = 0
    coupons_redeemed: int = Field(default=0, description="of the coupons it gave, redeemed (核销) so far")
    tags_added: int = 0
    tags_removed: int = 0
    messages: int = Field(default=0, description="messages it sent (recorded intents until issue 15's sender)")
    orders: int = Field(default=0, description="orders that made a member take part (purchase triggers)")
    sales: Decimal = Field(default=Decimal("0.00"), description="what those orders paid (实收), yuan")
    remaining_points: int | None = Field(default=None, description="of the points budget; none = unlimited")
    remaining_count: int | None = Field(default=None, description="of the participations budget")
    test_participations: int = Field(default=0, description="of test members: in none of the figures above (D-131)")
    test_points: int = Field(default=0, description="given to test members, outside the budget and the costs")

    @field_validator("sales")
    @classmethod
    def _yuan(cls, value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.01"))  # DynamoDB keeps 300.00 as 300


class BatchProgress(View):
    """A batch campaign's run (from its budget item): how far it got and how each member ended."""

    status: Literal["waiting", "running", "paused", "done", "ended"] = Field(
        description="waiting for its launch; done: every member reached; ended: stopped before"
    )
    launched_at: datetime | None = None
    total: int | None = Field(default=None, description="members in the audience's frozen list")
    granted: int = 0
    skipped: int = 0
    failed: int = 0
    done: int = Field(default=0, description="members with a result")
    skipped_by: dict[str, int] = Field(default_factory=dict, description="why: limit, optedOut, frozen, budget...")
    failed_by: dict[str, int] = Field(default_factory=dict)


def batch_progress(status: str, budget: Item) -> BatchProgress:
    counts = {
        outcome: {k.removeprefix(f"{outcome}_"): int(v) for k, v in budget.items() if k.startswith(f"{outcome}_")}
        for outcome in ("skipped", "failed")
    }
    granted, skipped, failed = (
        int(budget.get("participations", 0)),
        int(budget.get("skipped", 0)),
        int(budget.get("failed", 0)),
    )
    if not budget.get("launchedAt"):
        state = "waiting" if status != "ended" else "ended"
    elif status == "ended":
        state = "done" if budget.get("shardsDone", 0) >= keys.AUDIENCE_SHARDS else "ended"
    else:
        state = "paused" if status == "paused" else "running"
    return BatchProgress(
        status=state,  # type: ignore[arg-type]
        launched_at=budget.get("launchedAt"),
        total=budget.get("audienceCount"),
        granted=granted,
        skipped=skipped,
        failed=failed,
        done=granted + skipped + failed,
        skipped_by=counts["skipped"],
        failed_by=counts["failed"],
    )


class CostCenterTotals(View):
    """What the approved campaigns of one cost center gave (营销费用 by 成本中心)."""

    cost_center_code: str
    campaigns: int = 0
    participations: int = 0
    points_granted: int = 0
    coupons_issued: int = 0
    coupons_redeemed: int = 0
    orders: int = 0
    sales: Decimal = Decimal("0.00")


class CampaignView(Approvable):
    campaign_id: str
    status: CampaignStatus = Field(description="running = approved and within its window; ended also past it")
    ended_reason: Literal["operator", "budgetSpent", "window", "completed"] | None = None
    version: int
    created_at: datetime
    created_by: str
    campaign: CampaignInput
    results: CampaignResults | None = Field(default=None, description="once approved")
    run: BatchProgress | None = Field(default=None, description="a batch campaign's run, once approved")


class CampaignPage(View):
    items: list[CampaignView]
    next_cursor: str | None = None


class ParticipationView(View):
    """A member's part in a campaign for one triggering event, and what each effect gave."""

    campaign_id: str
    campaign_name: str
    trigger: str
    business_key: str = Field(description="the triggering event: registration, or order:<orderId>")
    occurred_at: datetime
    created_at: datetime
    effects: list[dict[str, Any]]
    pending: list[int] = Field(default_factory=list, description="effects still being applied")


class ParticipationPage(View):
    items: list[ParticipationView]
    next_cursor: str | None = None


class CampaignLogEntry(View):
    at: datetime
    by: str
    action: Literal["submitted", "approved", "rejected", "paused", "resumed", "ended"]
    comment: str | None = None


class CampaignLogPage(View):
    items: list[CampaignLogEntry]
    next_cursor: str | None = None


OCCASIONS = ("registration", "order", "accrual", "daily", "batch", "tierChange", "behaviour", "couponRedeemed")


def occasion_of(campaign: CampaignInput) -> str:
    """What a campaign waits for: a registration, an accrued order, or (points for the order itself) the
    accrual of an order, which applies it in its own transaction (services/campaigns/promotions.py)."""
    if campaign.promotion() is not None:
        return "accrual"
    if campaign.trigger is None:
        return "batch"  # run to its audience by services/campaigns/batch.py, never by an event
    if isinstance(campaign.trigger, DAILY):
        return "daily"  # the daily run reads one partition for every time-based campaign of the program
    if isinstance(campaign.trigger, TierChangeTrigger | BehaviourTrigger | CouponRedeemedTrigger):
        return campaign.trigger.type
    return "registration" if isinstance(campaign.trigger, RegistrationTrigger) else "order"


def running_campaigns(table: Table, tenant: str, program_code: str, occasion: str) -> list[Item]:
    """The campaigns of a program that an occasion (occasion_of) may trigger: the index holds the approved
    campaigns not paused, ended or past their window (the daily run takes those out, D-110), read to its end."""
    found: list[Item] = []
    start = None
    while True:
        items, start = table.query_index(
            "GSI2", keys.campaigns_on(tenant, program_code, occasion), limit=100, start=start, pk_attribute="GSI2PK"
        )
        found += items
        if not start:
            return found


def effective_status(item: Item, now: datetime, zone: Any) -> tuple[CampaignStatus, str | None]:
    """The status an operator sees: an approved campaign runs within its window and has ended after it."""
    status, reason = item["status"], item.get("endedReason")
    if status in LIVE:
        starts, ends = CampaignInput.stored(item["campaign"]).window(zone)
        if now >= ends:
            return "ended", "window"
        if status == "scheduled" and now >= starts:
            return "running", None
    return status, reason


@dataclass
class CampaignService:
    table: Table
    programs: ProgramLoader
    clock: Clock

    # --- drafts ---------------------------------------------------------------------------------------

    def create(self, tenant: str, campaign: CampaignInput, by: str) -> CampaignView:
        """A draft numbered HD + yyyyMM + 4 digits (the spec's 活动编码)."""
        self._check_effects(tenant, campaign)
        now = self.clock.now()
        month = now.strftime("%Y%m")
        for _ in range(3):
            campaign_id = f"HD{month}{self.table.increment(keys.counter(tenant), f'CAMPAIGN#{month}', 'n'):04d}"
            item = {
                "PK": keys.campaign(tenant, campaign_id),
                "SK": keys.CAMPAIGN_SK,
                "campaignId": campaign_id,
                "status": "draft",
                "approvalStatus": "none",
                "version": 1,
                "createdAt": now.isoformat(),
                "createdBy": by,
                "campaign": _data(campaign),
                "GSI1PK": keys.campaigns_index(tenant),
                "GSI1SK": campaign_id,
            }
            refs = list(distinct_refs(_refs(campaign)).values())
            try:
                self.table.transact(
                    [
                        put(item, "attribute_not_exists(PK)"),
                        *self._tag_checks(tenant, campaign),
                        *[count_ref(tenant, campaign.program_code, r, +1) for r in refs],
                    ]
                )
            except TransactionCancelled as cancelled:
                if cancelled.failed(0):
                    continue
                self._raise_for_tags(cancelled, 1, campaign)
                ConfigRepository.raise_for_refs(cancelled, 1 + len(self._tags(campaign)), refs)
                raise
            return self._view(tenant, item)
        raise Conflict("could not number the campaign; retry", code="CONCURRENT_UPDATE")

    def replace(self, tenant: str, campaign_id: str, campaign: CampaignInput) -> CampaignView:
        current = self._item(tenant, campaign_id)
        old = CampaignInput.stored(current["campaign"])
        if campaign.program_code != old.program_code:
            raise InvalidInput("a campaign stays in its program", code="CAMPAIGN_PROGRAM_CHANGED", field="programCode")
        self._check_effects(tenant, campaign)
        added, removed = changed_refs(_refs(old), _refs(campaign))
        item = {**current, "campaign": _data(campaign), "version": current["version"] + 1}
        tag_checks = self._tag_checks(tenant, campaign)
        operations = [
            put(item, "#status = :draft AND version = :v", {":draft": "draft", ":v": current["version"]}, _STATUS),
            *tag_checks,
            *[count_ref(tenant, campaign.program_code, ref, +1) for ref in added],
            *[count_ref(tenant, old.program_code, ref, -1) for ref in removed],
        ]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise _not_draft(cancelled.items[0]) from None
            self._raise_for_tags(cancelled, 1, campaign)
            ConfigRepository.raise_for_refs(cancelled, 1 + len(tag_checks), added)
            raise
        return self._view(tenant, item)

    def copy(self, tenant: str, campaign_id: str, by: str) -> CampaignView:
        """复制: a new draft with the same terms."""
        source = CampaignInput.stored(self._item(tenant, campaign_id)["campaign"])
        return self.create(tenant, source.model_copy(update={"name": source.name[:95] + " (副本)"}), by)

    def delete(self, tenant: str, campaign_id: str) -> None:
        current = self._item(tenant, campaign_id)
        campaign = CampaignInput.stored(current["campaign"])
        operations = [
            delete(
                current["PK"],
                keys.CAMPAIGN_SK,
                "#status = :draft AND version = :v",
                {":draft": "draft", ":v": current["version"]},
                _STATUS,
            ),
            *[count_ref(tenant, campaign.program_code, r, -1) for r in distinct_refs(_refs(campaign)).values()],
        ]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            raise _not_draft(cancelled.items[0]) from None

    # --- approval and running ---------------------------------------------------------------------------

    def submit(self, tenant: str, campaign_id: str, submission: Submission, by: str) -> CampaignView:
        return self._step(tenant, campaign_id, **approval.submitting(self.table, tenant, submission, by).as_step())

    def approve(self, tenant: str, campaign_id: str, decision: Decision, by: str) -> CampaignView:
        """审批通过: scheduled (running from its start), findable by its events, with its budget item."""
        current = self._item(tenant, campaign_id)
        campaign = CampaignInput.stored(current["campaign"])
        on = keys.campaigns_on(tenant, campaign.program_code, occasion_of(campaign))
        move = approval.approving(
            current, decision, by, "scheduled", ", GSI2PK = :on, GSI2SK = :id", {":on": on, ":id": campaign_id}
        )
        self._check_effects(tenant, campaign, approving=True)  # a coupon rule delisted since the draft was written
        budget = guards.budget_items(current, campaign.limits.budget)
        extra = [put(item, "attribute_not_exists(PK)") for item in budget] + self._today(tenant, campaign)
        return self._step(tenant, campaign_id, **move.as_step(), extra=extra)

    def _today(self, tenant: str, campaign: CampaignInput) -> list[dict]:
        """A campaign run by the day runs today too: its program's campaign-days job is due at the next run."""
        if occasion_of(campaign) != "daily":
            return []
        return [due_now(tenant, campaign.program_code, "campaignDays", self.clock.now())]

    def reject(self, tenant: str, campaign_id: str, decision: Decision, by: str) -> CampaignView:
        current = self._item(tenant, campaign_id)
        return self._step(tenant, campaign_id, **approval.rejecting(current, decision, by, "campaign").as_step())

    def pause(self, tenant: str, campaign_id: str, by: str) -> CampaignView:
        """紧急暂停: no member takes part until it is resumed; it leaves the index of running campaigns."""
        return self._step(
            tenant,
            campaign_id,
            "scheduled",
            "SET #status = :paused REMOVE GSI2PK, GSI2SK",
            {":paused": "paused"},
            LogEntryDraft("paused", by),
            active=False,
            window_open=True,
        )

    def resume(self, tenant: str, campaign_id: str, by: str) -> CampaignView:
        """Running again, and findable by its events again."""
        return self._step(
            tenant,
            campaign_id,
            "paused",
            "SET #status = :scheduled",
            {":scheduled": "scheduled"},
            LogEntryDraft("resumed", by),
            active=True,
            window_open=True,
            relist=True,
        )

    def end(self, tenant: str, campaign_id: str, by: str, reason: str = "operator") -> CampaignView:
        """结束: for good; what it gave stays the members'."""
        return self._step(
            tenant,
            campaign_id,
            list(LIVE),
            "SET #status = :ended, endedReason = :reason REMOVE GSI2PK, GSI2SK",
            {":ended": "ended", ":reason": reason},
            LogEntryDraft("ended", by, ENDED_BECAUSE.get(reason)),
            active=False,
        )

    def running(self, tenant: str, program_code: str, occasion: str) -> list[Item]:
        return running_campaigns(self.table, tenant, program_code, occasion)

    def retire_ended(self, tenant: str, program_code: str) -> int:
        """Campaigns whose window has ended leave the index of running campaigns (the daily run, D-110): an
        event's query stays the size of what runs, however many campaigns a program had over the years.
        Each leaves on condition that it is still as read, so a pause or an end meanwhile is kept."""
        zone, now, retired = self.programs.load(tenant, program_code).zone, self.clock.now(), 0
        for occasion in OCCASIONS:
            for item in self.running(tenant, program_code, occasion):
                if now < CampaignInput.stored(item["campaign"]).window(zone)[1]:
                    continue
                with suppress(TransactionCancelled):
                    self.table.transact(
                        [
                            update(
                                item["PK"],
                                keys.CAMPAIGN_SK,
                                "REMOVE GSI2PK, GSI2SK",
                                {":v": item["version"]},
                                "version = :v",
                            )
                        ]
                    )
                    retired += 1
        return retired

    # --- reading --------------------------------------------------------------------------------------

    def get(self, tenant: str, campaign_id: str) -> CampaignView:
        return self._view(tenant, self._item(tenant, campaign_id))

    def list_page(self, tenant: str, limit: int, cursor: str | None) -> CampaignPage:
        """The tenant's campaigns, oldest first (by number), without their results."""
        items, next_cursor = self.table.listing(
            keys.campaigns_index(tenant),
            lambda id_: (keys.campaign(tenant, id_), keys.CAMPAIGN_SK),
            limit,
            cursor,
            "HD",
        )
        return CampaignPage(
            items=[self._view(tenant, item, with_results=False) for item in items], next_cursor=next_cursor
        )

    def costs(self, tenant: str, program_code: str | None = None) -> list[CostCenterTotals]:
        """Every approved campaign's results summed by its cost center (of one program, if named): the
        campaigns' listing a page at a time, and each one's budget (one read; its shards in one batch)."""
        totals: dict[str, CostCenterTotals] = {}
        start = None
        while True:
            items, start = self.table.query_index("GSI1", keys.campaigns_index(tenant), limit=100, start=start)
            approved = [
                i
                for i in items
                if i["approvalStatus"] == "approved" and program_code in (None, i["campaign"]["programCode"])
            ]
            budgets = self.budgets(approved)
            for item in approved:
                results = CampaignResults.model_validate(budgets[item["campaignId"]])
                code = item["campaign"]["costCenterCode"]
                total = totals.setdefault(code, CostCenterTotals(cost_center_code=code))
                total.campaigns += 1
                total.participations += results.participations
                total.points_granted += results.points_granted
                total.coupons_issued += results.coupons_issued
                total.coupons_redeemed += results.coupons_redeemed
                total.orders += results.orders
                total.sales += results.sales
            if not start:
                return sorted(totals.values(), key=lambda t: t.cost_center_code)

    def participations(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> ParticipationPage:
        """营销活动 that touched a member: one entry per campaign and triggering event, with what it gave."""
        MemberRepository(self.table).profile(tenant, member_id)  # 404 for another tenant's, as every member route
        page = self.table.query_prefix(keys.member(tenant, member_id), "CAMPAIGN#", limit=limit, cursor=cursor)
        return ParticipationPage(
            items=[ParticipationView.model_validate(item) for item in page.items], next_cursor=page.next_cursor
        )

    def log(self, tenant: str, campaign_id: str, limit: int = 100, cursor: str | None = None) -> CampaignLogPage:
        self._item(tenant, campaign_id)
        page = approval.log_page(self.table, keys.campaign(tenant, campaign_id), limit, cursor)
        items = [CampaignLogEntry.model_validate(item) for item in page.items]
        return CampaignLogPage(items=items, next_cursor=page.next_cursor)

    # --- helpers --------------------------------------------------------------------------------------

    def item(self, tenant: str, campaign_id: str) -> Item:
        """The stored campaign (404 CAMPAIGN_NOT_FOUND), for the batch run and the day runs."""
        return self._item(tenant, campaign_id)

    def _item(self, tenant: str, campaign_id: str) -> Item:
        item = self.table.get(keys.campaign(tenant, campaign_id), keys.CAMPAIGN_SK)
        if item is None:
            raise NotFound(f"no campaign {campaign_id!r}", code="CAMPAIGN_NOT_FOUND")
        return item

    def _effective(self, tenant: str, item: Item) -> tuple[CampaignStatus, str | None]:
        zone = self.programs.load(tenant, item["campaign"]["programCode"]).zone
        return effective_status(item, self.clock.now(), zone)

    def _view(self, tenant: str, item: Item, with_results: bool = True) -> CampaignView:
        status, reason = self._effective(tenant, item)
        results = run = None
        if with_results and item["approvalStatus"] == "approved":
            budget = self.budget(item)
            results = CampaignResults.model_validate(budget)
            if item["campaign"].get("kind") == "batch":
                run = batch_progress(status, budget)
        view = {**item, "status": status, "endedReason": reason, "results": results, "run": run}
        return CampaignView.model_validate(view)

    def _step(
        self,
        tenant: str,
        campaign_id: str,
        expected: str | list[str],
        expression: str,
        values: dict[str, Any],
        entry: LogEntryDraft,
        extra: list[dict] | None = None,
        approver: str | None = None,
        window_open: bool = False,
        active: bool | None = None,
        relist: bool = False,
    ) -> CampaignView:
        """`active`: every shard of the budget set so with the step (pause, resume, end), read with the
        campaign once; `relist`: the campaign goes back in the index of running campaigns (resume)."""
        if window_open or active is not None:
            current = self._item(tenant, campaign_id)
            if relist:
                campaign = CampaignInput.stored(current["campaign"])
                expression += ", GSI2PK = :on, GSI2SK = :id"
                values = {**values, ":on": keys.campaigns_on(tenant, campaign.program_code, occasion_of(campaign))}
                values[":id"] = campaign_id
                extra = [*(extra or []), *self._today(tenant, campaign)]
            # pausing or resuming what has ended by its window changes nothing: say so
            if window_open and self._effective(tenant, current)[0] == "ended":
                raise Conflict("the campaign has ended", code="CAMPAIGN_STATUS", campaignStatus="ended")
            if active is not None:
                extra = [*(extra or []), *self._activate(current, active)]
        approval.step(
            self.table,
            self.clock.now(),
            (keys.campaign(tenant, campaign_id), keys.CAMPAIGN_SK),
            expected,
            expression,
            values,
            entry,
            lambda found: Conflict(
                f"the campaign is {found['status']}", code="CAMPAIGN_STATUS", campaignStatus=found["status"]
            ),
            lambda: NotFound(f"no campaign {campaign_id!r}", code="CAMPAIGN_NOT_FOUND"),
            extra,
            approver,
        )
        return self.get(tenant, campaign_id)

    @staticmethod
    def _activate(item: Item, active: bool) -> list[dict]:
        """Every shard of the budget active (or not): a participation's guard on any of them sees it."""
        shards = CampaignInput.stored(item["campaign"]).limits.budget.shards
        return [
            update(item["PK"], keys.campaign_budget_sk(shard), "SET active = :active", {":active": active})
            for shard in range(shards)
        ]

    def budget(self, item: Item) -> Item:
        """An approved campaign's budget, its shards summed (guards.merged)."""
        return self.budgets([item])[item["campaignId"]]

    def budgets(self, items: list[Item]) -> dict[str, Item]:
        """The budgets of approved campaigns by campaign id, their shards summed; 100 items per read."""
        wanted = {
            i["campaignId"]: [
                (i["PK"], keys.campaign_budget_sk(shard))
                for shard in range(CampaignInput.stored(i["campaign"]).limits.budget.shards)
            ]
            for i in items
        }
        every = [key for shard_keys in wanted.values() for key in shard_keys]
        found: dict[tuple[str, str], Item] = {}
        if len(every) == 1:  # one campaign of one shard: a GetItem
            item = self.table.get(*every[0], consistent=False)
            found = {every[0]: item} if item else {}
            every = []
        for start in range(0, len(every), 100):
            found.update(self.table.get_many(every[start : start + 100], consistent=False))
        return {campaign: guards.merged([found[k] for k in ks if k in found]) for campaign, ks in wanted.items()}

    def _check_effects(self, tenant: str, campaign: CampaignInput, approving: bool = False) -> None:
        """Each coupon effect names a listed rule of the program that campaigns may issue (活动发券); the
        audience a campaign names (a batch campaign's, or a condition) is of the program, and frozen to be
        approved; a redeemed-coupon trigger's rules are the program's; a message's template is the program's,
        and usable (business, or an approved marketing one) to be approved."""
        program = self.programs.load(tenant, campaign.program_code)
        for index, rule_id in enumerate(getattr(campaign.trigger, "rule_ids", [])):
            rule = self.table.get(keys.coupon_rule(tenant, rule_id), keys.RULE_SK, consistent=False)
            if rule is None or rule["rule"]["programCode"] != campaign.program_code:
                raise InvalidInput(
                    f"no coupon rule {rule_id!r} in this program",
                    code="UNKNOWN_REFERENCE",
                    field=f"trigger/ruleIds/{index}",
                )
        if campaign.audience_id is not None:
            named_audience(
                self.table, tenant, campaign.audience_id, campaign.program_code, "audienceId", frozen=approving
            )
        if campaign.conditions.audience_id is not None:
            audience, field = campaign.conditions.audience_id, "conditions/audienceId"
            named_audience(self.table, tenant, audience, campaign.program_code, field, frozen=approving)
        for index, effect in enumerate(campaign.effects):
            field = f"effects/{index}"
            if isinstance(effect, IssueCoupon):
                rule = self.table.get(keys.coupon_rule(tenant, effect.rule_id), keys.RULE_SK, consistent=False)
                if rule is None or rule["rule"]["programCode"] != campaign.program_code:
                    raise InvalidInput(
                        f"no coupon rule {effect.rule_id!r} in this program",
                        code="UNKNOWN_REFERENCE",
                        field=f"{field}/ruleId",
                    )
                if rule["status"] != "listed":
                    raise Conflict(
                        f"coupon rule {effect.rule_id} is {rule['status']}, not listed",
                        code="RULE_NOT_LISTED",
                        field=f"{field}/ruleId",
                    )
                if not rule["rule"].get("campaignIssue", True):
                    raise Conflict(
                        f"coupon rule {effect.rule_id} is not issued by campaigns (活动发券 is off)",
                        code="NOT_ISSUABLE",
                        field=f"{field}/ruleId",
                    )
            elif isinstance(effect, SendMessage):
                template = self.table.get(
                    keys.message_template(tenant, campaign.program_code, effect.template_code),
                    keys.TEMPLATE_SK,
                    consistent=False,
                )
                if template is None:
                    raise InvalidInput(
                        f"no message template {effect.template_code!r} in this program",
                        code="UNKNOWN_REFERENCE",
                        field=f"{field}/templateCode",
                    )
                if approving and template["status"] not in ("active", "approved"):
                    raise Conflict(
                        f"message template {effect.template_code} is {template['status']}, not approved",
                        code="TEMPLATE_STATUS",
                        field=f"{field}/templateCode",
                        templateStatus=template["status"],
                    )
            elif isinstance(effect, GrantPoints | OrderPoints) and effect.point_group_code not in program.point_groups:
                raise InvalidInput(
                    f"no point group {effect.point_group_code!r} in program {program.program.code}",
                    code="UNKNOWN_REFERENCE",
                    field=f"{field}/pointGroupCode",
                )

    @staticmethod
    def _tags(campaign: CampaignInput) -> dict[str, str]:
        """Each tag the campaign names, once, with the field that first names it."""
        named = [(code, f"conditions/tagCodes/{i}") for i, code in enumerate(campaign.conditions.tag_codes)]
        named += [
            (e.tag_code, f"effects/{i}/tagCode") for i, e in enumerate(campaign.effects) if hasattr(e, "tag_code")
        ]
        tags: dict[str, str] = {}
        for code, field in named:
            tags.setdefault(code, field)
        return tags

    def _tag_checks(self, tenant: str, campaign: CampaignInput) -> list[dict]:
        """Tags are checked, not counted: a tag's references are the members who hold it."""
        kind = KINDS["tag"]
        return [
            check(*ConfigRepository.location(tenant, kind, code, campaign.program_code), "attribute_exists(PK)")
            for code in self._tags(campaign)
        ]

    def _raise_for_tags(self, cancelled: TransactionCancelled, offset: int, campaign: CampaignInput) -> None:
        for index, field in enumerate(self._tags(campaign).values()):
            if cancelled.failed(offset + index):
                raise InvalidInput("no such tag", code="UNKNOWN_REFERENCE", field=field)


_STATUS = {"#status": "status"}


def _not_draft(found: Item | None) -> Exception:
    if found is None:
        return NotFound("no such campaign", code="CAMPAIGN_NOT_FOUND")
    return Conflict(
        f"the campaign is {found['status']}: only drafts can be changed or deleted",
        code="CAMPAIGN_STATUS",
        campaignStatus=found["status"],
    )


def _refs(campaign: CampaignInput) -> list[Ref]:
    refs = [Ref("costCenter", campaign.cost_center_code, "costCenterCode")]
    conditions = campaign.conditions
    refs += [Ref("tier", code, f"conditions/tierCodes/{i}") for i, code in enumerate(conditions.tier_codes)]
    refs += [
        Ref("store", code, f"conditions/registrationStoreCodes/{i}")
        for i, code in enumerate(conditions.registration_store_codes)
    ]
    refs += [
        Ref("tier", code, f"trigger/toTierCodes/{i}")
        for i, code in enumerate(getattr(campaign.trigger, "to_tier_codes", []))
    ]
    order = getattr(campaign.trigger, "order", None)
    if order is not None and order.store_group_code:
        refs.append(Ref("storeGroup", order.store_group_code, "trigger/order/storeGroupCode", must_be_enabled=True))
    if order is not None and order.product_group_code:
        field = "trigger/order/productGroupCode"
        refs.append(Ref("productGroup", order.product_group_code, field, must_be_enabled=True))
    refs += [
        Ref("productGroup", effect.product_group_code, f"effects/{i}/productGroupCode", must_be_enabled=True)
        for i, effect in enumerate(campaign.effects)
        if isinstance(effect, OrderPoints) and effect.product_group_code
    ]
    return refs


def _data(campaign: CampaignInput) -> dict[str, Any]:
    return campaign.model_dump(mode="json", by_alias=True, exclude_none=True)


def campaign_service(table: Table | None = None, clock: Clock | None = None) -> CampaignService:
    table = table or Table()
    return CampaignService(table, ProgramLoader(ConfigRepository(table)), clock or SystemClock())
