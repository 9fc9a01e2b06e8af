"""Batch campaigns (群体营销活动, social-hub §10.4): a campaign to a frozen audience, run once, at its launch
time (定时, through a one-time EventBridge Scheduler schedule) or at once when approved (实时).

The run reads the audience's list shard by shard, a page of members per queue message, the shards in
parallel. Each member takes part through the campaign engine, as a trigger would make them (business key
`batch`: once per campaign and member), and ends with one result: granted (written in the participation's
own transaction), or skipped (limit, opted out of marketing, frozen or cancelled, a condition, the budget)
or failed, each written once with its count. A page delivered twice gives nothing twice: the
participations and results are conditional, and a page's marker keeps it from being read again.

Pausing stops the run between members: a page that finds the campaign paused parks itself (one item per
shard), and resuming sends the parked pages again. When every shard's last page is done the campaign ends
itself (`completed`).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import boto3
from pydantic import Field

from loyalty.csv_export import csv_text
from loyalty.domain.campaigns import CampaignInput, Occasion
from loyalty.domain.errors import Conflict, DomainError, NotFound
from loyalty.domain.validity import View
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services.campaigns.admin import SYSTEM, CampaignView, effective_status
from loyalty.services.campaigns.audiences import AudienceService, audience_service
from loyalty.services.campaigns.engine import CampaignEngine, campaign_engine
from loyalty.services.queues import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.member_repo import tags_of
from loyalty.store.table import Item, TransactionCancelled, check, delete, put, update

PAGE = 50  # members a page makes take part
INACTIVE = ("frozen", "cancelled", "erased")


@dataclass(frozen=True)
class BatchPage:
    """One page of one shard of a batch campaign's audience: a queue message."""

    tenant: str
    campaign_id: str
    shard: int
    page: int = 0
    cursor: str | None = None

    def message(self) -> str:
        return json.dumps({"batchPage": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BatchPage:
        return cls(**body["batchPage"])


def launch_message(tenant: str, campaign_id: str) -> str:
    return json.dumps({"batchLaunch": {"tenant": tenant, "campaignId": campaign_id}})


class BatchResult(View):
    """A member's outcome in the run."""

    member_id: str
    outcome: Literal["granted", "skipped", "failed"]
    reason: str | None = Field(
        default=None, description="why skipped or failed: limit, optedOut, frozen, cancelled, budget, conditions:<what>"
    )
    at: datetime


class BatchResultPage(View):
    items: list[BatchResult]
    next_cursor: str | None = None


class LaunchSchedules:
    """EventBridge Scheduler's one-time schedules (`at(...)`), each sending a launch to the campaign queue
    and deleting itself after; the local stack fires them too."""

    @staticmethod
    @lru_cache(maxsize=1)
    def _client() -> Any:
        return boto3.client("scheduler")

    def at(self, name: str, moment: datetime, zone: ZoneInfo, message: str) -> None:
        settings = get_settings()
        local = moment.astimezone(zone).replace(tzinfo=None)
        try:
            self._client().create_schedule(
                Name=name,
                ScheduleExpression=f"at({local.isoformat(timespec='seconds')})",
                ScheduleExpressionTimezone=zone.key,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": settings.campaign_queue_arn, "RoleArn": settings.launch_role_arn, "Input": message},
                ActionAfterCompletion="DELETE",
                Description="A batch campaign's launch",
            )
        except self._client().exceptions.ConflictException:
            logger.info("launch already scheduled", extra={"schedule": name})


@dataclass
class BatchRuns:
    engine: CampaignEngine
    audiences: AudienceService
    schedules: LaunchSchedules

    # --- launching ------------------------------------------------------------------------------------

    def on_approved(self, tenant: str, view: CampaignView) -> None:
        """Run at once (its launch time has come) or schedule the launch."""
        campaign = view.campaign
        if campaign.kind != "batch":
            return
        zone = self.engine.programs.load(tenant, campaign.program_code).zone
        launch = campaign.launched(zone)
        if launch <= self.engine.clock.now():
            self.launch(tenant, view.campaign_id)
            return
        self.schedules.at(
            schedule_name(tenant, view.campaign_id), launch, zone, launch_message(tenant, view.campaign_id)
        )

    def launch(self, tenant: str, campaign_id: str, *, strict: bool = False) -> CampaignView:
        """Start the run: the first page of every shard. Again (a second schedule firing, an operator's
        launch after it) starts nothing new: a page done before is not read again. `strict`: an operator's
        call, answered 409 when the campaign cannot run now."""
        campaigns = self.engine.campaigns
        item = campaigns.item(tenant, campaign_id)
        campaign = CampaignInput.stored(item["campaign"])
        if campaign.kind != "batch":
            raise Conflict(
                f"campaign {campaign_id} is a {campaign.kind} campaign, not one run to an audience",
                code="NOT_A_BATCH_CAMPAIGN",
            )
        zone = self.engine.programs.load(tenant, campaign.program_code).zone
        status, _ = effective_status(item, self.engine.clock.now(), zone)
        if status not in ("running", "paused"):
            if strict:
                raise Conflict(f"the campaign is {status}", code="CAMPAIGN_STATUS", campaignStatus=status)
            logger.info("launch of a campaign that cannot run", extra={"campaignId": campaign_id, "status": status})
            return campaigns.get(tenant, campaign_id)
        audience = self.audiences.frozen(tenant, str(campaign.audience_id), campaign.program_code, "audienceId")
        pages = [BatchPage(tenant, campaign_id, shard) for shard in range(keys.AUDIENCE_SHARDS)]
        send_all(get_settings().campaign_queue_url, [page.message() for page in pages])
        self.engine.table.transact(
            [
                update(
                    item["PK"],
                    keys.CAMPAIGN_BUDGET_SK,
                    "SET launchedAt = if_not_exists(launchedAt, :now), audienceCount = :count",
                    {":now": self.engine.clock.now().isoformat(), ":count": audience["count"]},
                )
            ]
        )
        logger.info("batch launched", extra={"campaignId": campaign_id, "members": audience["count"]})
        return campaigns.get(tenant, campaign_id)

    # --- pages ----------------------------------------------------------------------------------------

    def run_page(self, page: BatchPage, parked_once: bool = False) -> int:
        """Make one page of the audience take part; returns how many were granted now."""
        engine = self.engine
        pk = keys.campaign(page.tenant, page.campaign_id)
        marker = engine.table.get(pk, keys.batch_page_sk(page.shard, page.page))
        if marker is not None:
            if marker.get("last"):
                self._complete(page)
            return 0
        item = engine.table.get(pk, keys.CAMPAIGN_SK)
        if item is None:
            return 0
        campaign = CampaignInput.stored(item["campaign"])
        zone = engine.programs.load(page.tenant, campaign.program_code).zone
        status, _ = effective_status(item, engine.clock.now(), zone)
        if status == "paused":
            return self._park(page, parked_once)
        if status != "running":  # ended: by an operator, its budget or its window; the run stops here
            return 0
        budget = engine.table.get(pk, keys.CAMPAIGN_BUDGET_SK) or {}
        at = datetime.fromisoformat(budget.get("launchedAt") or engine.clock.now().isoformat())
        occasion = Occasion("batch", "batch", at)
        shard = keys.audience_members(page.tenant, str(campaign.audience_id), page.shard)
        found = engine.table.query_prefix(shard, "", limit=PAGE, cursor=page.cursor)
        granted = 0
        for entry in found.items:
            outcome = self._member(page.tenant, item, campaign, entry["memberId"], occasion, zone)
            if outcome == "paused":  # paused or ended between two members
                status, _ = effective_status(engine.table.get(pk, keys.CAMPAIGN_SK) or item, engine.clock.now(), zone)
                return granted + (self._park(page, parked_once) if status == "paused" else 0)
            granted += outcome == "granted"
        last = found.next_cursor is None
        if not last:
            next_page = BatchPage(page.tenant, page.campaign_id, page.shard, page.page + 1, found.next_cursor)
            send_all(get_settings().campaign_queue_url, [next_page.message()])
        operations = [
            put({"PK": pk, "SK": keys.batch_page_sk(page.shard, page.page), "last": last}, "attribute_not_exists(PK)")
        ]
        if last:
            operations.append(update(pk, keys.CAMPAIGN_BUDGET_SK, "ADD shardsDone :one", {":one": 1}))
        with suppress(TransactionCancelled):  # another delivery of the page recorded it
            engine.table.transact(operations)
        if last:
            self._complete(page)
        return granted

    def _member(
        self, tenant: str, item: Item, campaign: CampaignInput, member_id: str, occasion: Occasion, zone: ZoneInfo
    ) -> str:
        campaign_id, shards = item["campaignId"], campaign.limits.budget.shards
        try:
            summary = self.engine.members.items(tenant, member_id)
        except NotFound:
            return self._record(tenant, campaign_id, member_id, "skipped", "gone", shards)
        profile = summary[0]
        if profile.get("status") in INACTIVE:
            return self._record(tenant, campaign_id, member_id, "skipped", str(profile["status"]), shards)
        if profile.get("marketingOptIn") is False:  # said no to marketing (D-094)
            return self._record(tenant, campaign_id, member_id, "skipped", "optedOut", shards)
        result = put(self._result(tenant, campaign_id, member_id, "granted", None), "attribute_not_exists(PK)")
        try:
            outcome = self.engine.consider(
                tenant, item, campaign, member_id, profile, tags_of(summary), occasion, zone, (result,)
            ).result
        except DomainError as refused:
            if refused.code == "CONCURRENT_UPDATE":
                raise  # the page is retried; what was done stays done
            return self._record(tenant, campaign_id, member_id, "failed", refused.code, shards)
        if outcome in ("granted", "already", "paused"):
            return outcome
        return self._record(tenant, campaign_id, member_id, "skipped", outcome, shards)

    def _result(self, tenant: str, campaign_id: str, member_id: str, outcome: str, reason: str | None) -> Item:
        return {
            "PK": keys.campaign(tenant, campaign_id),
            "SK": keys.batch_result_sk(member_id),
            "memberId": member_id,
            "outcome": outcome,
            **({"reason": reason} if reason else {}),
            "at": self.engine.clock.now().isoformat(),
        }

    def _record(self, tenant: str, campaign_id: str, member_id: str, outcome: str, reason: str, shards: int = 1) -> str:
        """A skip or failure, once, with its count (on a shard of the campaign's budget, beside what it gave:
        the campaign's view sums them)."""
        with suppress(TransactionCancelled):  # recorded by an earlier delivery
            self.engine.table.transact(
                [
                    put(self._result(tenant, campaign_id, member_id, outcome, reason), "attribute_not_exists(PK)"),
                    update(
                        keys.campaign(tenant, campaign_id),
                        keys.campaign_budget_sk(keys.audience_shard(member_id) % shards),
                        "ADD #outcome :one, #reason :one",
                        {":one": 1},
                        names={"#outcome": outcome, "#reason": f"{outcome}_{reason}"},
                    ),
                ]
            )
        return outcome

    def _park(self, page: BatchPage, parked_once: bool) -> int:
        """Leave the page until the campaign is resumed, on condition that it is still paused; resumed
        meanwhile: run it now."""
        pk = keys.campaign(page.tenant, page.campaign_id)
        try:
            self.engine.table.transact(
                [
                    check(pk, keys.CAMPAIGN_SK, "#status = :paused", {":paused": "paused"}, {"#status": "status"}),
                    put({"PK": pk, "SK": keys.parked_page_sk(page.shard), "page": asdict(page), "parkId": new_ulid()}),
                ]
            )
        except TransactionCancelled:
            if parked_once:
                raise
            return self.run_page(page, parked_once=True)
        logger.info("batch page parked", extra={"campaignId": page.campaign_id, "shard": page.shard})
        return 0

    def resume(self, tenant: str, campaign_id: str, by: str) -> CampaignView:
        """Resume the campaign, then send the pages its run parked while it was paused."""
        view = self.engine.campaigns.resume(tenant, campaign_id, by)
        pk = keys.campaign(tenant, campaign_id)
        parked = self.engine.table.query_prefix(pk, "BATCH_PARKED#", consistent=True).items
        send_all(get_settings().campaign_queue_url, [BatchPage(**p["page"]).message() for p in parked])
        for item in parked:  # sent, then let go; a page parked again meanwhile (a new pause) stays
            with suppress(TransactionCancelled):
                self.engine.table.transact([delete(pk, item["SK"], "parkId = :id", {":id": item["parkId"]})])
        return view

    def _complete(self, page: BatchPage) -> None:
        """Every shard's last page done: the campaign ends itself (completed)."""
        budget = self.engine.table.get(keys.campaign(page.tenant, page.campaign_id), keys.CAMPAIGN_BUDGET_SK) or {}
        if budget.get("shardsDone", 0) < keys.AUDIENCE_SHARDS:
            return
        with suppress(DomainError):  # ended already (by this, another shard, its budget or an operator)
            self.engine.campaigns.end(page.tenant, page.campaign_id, SYSTEM, reason="completed")

    # --- reading --------------------------------------------------------------------------------------

    def results(self, tenant: str, campaign_id: str, limit: int, cursor: str | None) -> BatchResultPage:
        self.engine.campaigns.item(tenant, campaign_id)
        found = self.engine.table.query_prefix(
            keys.campaign(tenant, campaign_id), "RESULT#", limit=limit, cursor=cursor
        )
        return BatchResultPage(
            items=[BatchResult.model_validate(i) for i in found.items], next_cursor=found.next_cursor
        )

    def report_csv(self, tenant: str, campaign_id: str, limit: int, cursor: str | None) -> tuple[str, str | None]:
        """The run report as CSV (memberId, outcome, reason, at), a page of rows per call."""
        page = self.results(tenant, campaign_id, limit, cursor)
        rows = ([row.member_id, row.outcome, row.reason, row.at.isoformat()] for row in page.items)
        return csv_text(["memberId", "outcome", "reason", "at"], rows), page.next_cursor


def schedule_name(tenant: str, campaign_id: str) -> str:
    """At most 64 of [0-9A-Za-z_.-]: the campaign, and the tenant as a digest."""
    return f"launch-{campaign_id}-{hashlib.sha256(tenant.encode()).hexdigest()[:16]}"


def batch_runs(engine: CampaignEngine | None = None) -> BatchRuns:
    engine = engine or campaign_engine()
    return BatchRuns(engine, audience_service(engine.table, engine.clock), LaunchSchedules())
