"""Campaigns run by the day (issue 14, D-090, D-096): birthdays (生日), N days after registration (注册后 N
天) and N days without a purchase (N 天未购), run daily in each program's time zone. Who takes part is read
from a sparse index, a page per queue message, never by scanning members:

- birthdays: the index of birthdays by month and day (keys.birthdays, written when a birthday is set,
  changed or erased): the day's members, or, for a month campaign on the first of the month, the month's;
  once a year (the participation's business key is `birthday:<year>`, so a rerun, a redelivered page or a
  birthday moved to a later day that year gives nothing more). Members without a birthday are not in it.
- days after registration: the registrations index (keys.registrations, the members' 注册 entries by
  time), for the local day `days` before; once (`daysAfterRegistration`).

The hourly schedule plans each program's running daily campaigns for the program's today, a program at a
time (services/program_jobs.py), once per campaign and day (a run marker, written once the day's pages are
queued); an operator may run a campaign for a past day (a missed run), which the participations keep from
giving twice. A page delivered twice
may queue its next page twice: the participations make that cost reads, not gifts.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from pydantic import Field

from loyalty.domain.campaigns import (
    DAILY,
    BirthdayTrigger,
    CampaignInput,
    DaysAfterRegistrationTrigger,
    NoPurchaseTrigger,
    Occasion,
    birthday_days,
    daily_key,
)
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.program import ProgramConfig
from loyalty.domain.validity import CamelModel
from loyalty.observability import logger
from loyalty.services.campaigns.engine import CampaignEngine, Outcome, campaign_engine
from loyalty.services.program_jobs import JobMark, Progress, days_to_do, next_local
from loyalty.services.queues import send_all
from loyalty.services.sweeps import sweep_day
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.member_repo import tags_of
from loyalty.store.table import Item, TransactionCancelled, put

PAGE = 50  # members a queue message makes take part


@dataclass(frozen=True)
class DayPage:
    """One page of one index partition for one campaign's day: a queue message. `index` is GSI1 (birthdays:
    `low` is the day's sort key prefix, "" for the whole month) or GSI2 (registrations: the sort keys from
    `low` to `high`)."""

    tenant: str
    program: str
    campaign_id: str
    day: str  # the run's day, ISO, in the program's time zone
    index: str
    partition: str
    low: str
    high: str = ""
    start: dict[str, Any] | None = None

    def message(self) -> str:
        return json.dumps({"dayPage": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> DayPage:
        return cls(**body["dayPage"])

    def next(self, start: dict[str, Any]) -> DayPage:
        return DayPage(**{**asdict(self), "start": start})


class DayRunRequest(CamelModel):
    """An operator's run of a daily campaign for a day (a missed run): who was gifted stays gifted."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"date": "2026-12-01"}]

    date: dt.date | None = Field(default=None, description="The day to run; default today, never one to come")


class DayRunAccepted(CamelModel):
    campaign_id: str
    date: dt.date
    pages: int = Field(description="Index pages queued (one per partition that holds someone; more follow as read)")


@dataclass
class DailyRuns:
    engine: CampaignEngine

    name = "campaignDays"

    def queue_url(self) -> str:
        return get_settings().campaign_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        """The schedule's run for one program (services/program_jobs.py): the days after its mark through
        today, each once per campaign (a clock moved ahead catches up the days between); then the campaigns
        whose window has ended leave the index of running ones."""
        program, now = self.engine.programs.load(tenant, program_code), self.engine.clock.now()
        today = now.astimezone(program.zone).date()
        # today again when it was done: a campaign approved since runs today (the run markers keep each once)
        since = replace(mark, through=min(mark.through, today - timedelta(days=1))) if mark.through else mark
        days, more = days_to_do(since, today, today)
        for day in days:
            self.plan(tenant, program_code, day, marked=True)
        if days and not more:
            self.engine.campaigns.retire_ended(tenant, program_code)
        return Progress(days[-1] if days else mark.through, now if more else next_local(now, program.zone), more)

    def run_for(self, tenant: str, campaign_id: str, request: DayRunRequest) -> DayRunAccepted:
        """An operator's run: a running daily campaign (409 otherwise), for a day not to come."""
        view = self.engine.campaigns.get(tenant, campaign_id)
        if not isinstance(view.campaign.trigger, DAILY):
            raise Conflict(
                f"campaign {campaign_id} is not run by the day ({view.campaign.kind})",
                code="NOT_A_DAILY_CAMPAIGN",
                field="campaignId",
            )
        if view.status != "running":
            raise Conflict(f"the campaign is {view.status}", code="CAMPAIGN_STATUS", campaignStatus=view.status)
        program = self.engine.programs.load(tenant, view.campaign.program_code)
        day = sweep_day(request.date, self.engine.clock.now().astimezone(program.zone).date())
        pages = self.plan(tenant, view.campaign.program_code, day, campaign_id)
        return DayRunAccepted(campaign_id=campaign_id, date=day, pages=pages)

    def plan(
        self, tenant: str, program_code: str, day: date, campaign_id: str | None = None, marked: bool = False
    ) -> int:
        """Queue the index pages of `day` for one campaign or every running daily one of the program; returns
        how many. `marked`: the schedule's run, once per campaign and day (an operator's rerun is not)."""
        program = self.engine.programs.load(tenant, program_code)
        pages: list[DayPage] = []
        runs: list[Item] = []
        for item in self.engine.campaigns.running(tenant, program_code, "daily"):
            if campaign_id is not None and item["campaignId"] != campaign_id:
                continue
            campaign = CampaignInput.stored(item["campaign"])
            if item["status"] != "scheduled" or not _open_on(campaign, day, program):
                continue
            if marked:
                run = _run_marker(item, day)
                if self.engine.table.get(run["PK"], run["SK"], consistent=False) is not None:
                    continue  # an earlier hour ran this day
                runs.append(run)
            pages += _pages(tenant, program, item["campaignId"], campaign, day)
        pages = [page for page in pages if self._entries(page, limit=1)[0]]  # a message only for what holds someone
        send_all(get_settings().campaign_queue_url, [page.message() for page in pages])
        for run in runs:  # marked once its pages are queued: a failure before this is retried by the schedule
            with suppress(TransactionCancelled):
                self.engine.table.transact([put(run, "attribute_not_exists(PK)")])
        logger.info("day pages planned", extra={"program": program_code, "day": str(day), "pages": len(pages)})
        return len(pages)

    def run_page(self, page: DayPage) -> list[Outcome]:
        """Make one page of the day's members take part; queue the next page, if there is one."""
        engine = self.engine
        program = engine.programs.load(page.tenant, page.program)
        item = engine.table.get(keys.campaign(page.tenant, page.campaign_id), keys.CAMPAIGN_SK)
        if item is None:
            return []
        campaign = CampaignInput.stored(item["campaign"])
        day = date.fromisoformat(page.day)
        entries, more = self._entries(page, PAGE)
        at = max(datetime.combine(day, time(0), program.zone), campaign.window(program.zone)[0])
        trigger = campaign.trigger
        assert isinstance(trigger, DAILY)  # nosec B101: only daily campaigns plan day pages
        occasion = Occasion(trigger.type, daily_key(trigger, day), at)
        outcomes = [self._member(page, item, campaign, entry, occasion, program) for entry in entries]
        if more:
            send_all(get_settings().campaign_queue_url, [page.next(more).message()])
        return outcomes

    def _entries(self, page: DayPage, limit: int) -> tuple[list[Item], dict[str, Any] | None]:
        """One page of the page's index partition (a birthday day or month, a registrations range)."""
        table = self.engine.table
        if page.index == "GSI1":
            prefix = ("GSI1SK", page.low) if page.low else None
            return table.query_index("GSI1", page.partition, limit=limit, start=page.start, sk_prefix=prefix)
        between = ("GSI2SK", page.low, page.high)
        return table.query_index(
            "GSI2", page.partition, limit=limit, start=page.start, pk_attribute="GSI2PK", sk_between=between
        )

    def _member(
        self,
        page: DayPage,
        item: Item,
        campaign: CampaignInput,
        entry: Item,
        occasion: Occasion,
        program: ProgramConfig,
    ) -> Outcome:
        member_id = entry["memberId"]
        try:
            items = self.engine.members.items(page.tenant, member_id)
        except NotFound:  # the member went (an index entry outlived it)
            return Outcome(item["campaignId"], "inactive")
        profile = items[0]
        if profile.get("programCode") != page.program:  # the registrations index is the tenant's
            return Outcome(item["campaignId"], "conditions:program")
        outcome = self.engine.consider(
            page.tenant, item, campaign, member_id, profile, tags_of(items), occasion, program.zone
        )
        logger.info("campaign considered", extra={"campaignId": outcome.campaign_id, "result": outcome.result})
        return outcome


def _pages(tenant: str, program: ProgramConfig, campaign_id: str, campaign: CampaignInput, day: date) -> list[DayPage]:
    """The index partitions a campaign's day reads, a first page each."""
    code, trigger, iso = program.program.code, campaign.trigger, day.isoformat()
    if isinstance(trigger, BirthdayTrigger):
        return [
            DayPage(tenant, code, campaign_id, iso, "GSI1", keys.birthdays(tenant, code, month), prefix)
            for month, prefix in birthday_days(trigger, day) or []
        ]
    if isinstance(trigger, NoPurchaseTrigger):  # the 8 shards of the day of their last purchase
        last = (day - timedelta(days=trigger.days)).isoformat()
        return [
            DayPage(tenant, code, campaign_id, iso, "GSI1", keys.last_purchases(tenant, code, last, shard), "")
            for shard in range(keys.EXPIRY_SHARDS)
        ]
    assert isinstance(trigger, DaysAfterRegistrationTrigger)  # nosec B101: the daily triggers are these three
    registered = day - timedelta(days=trigger.days)
    starts = datetime.combine(registered, time(0), program.zone).astimezone(UTC)
    ends = datetime.combine(registered + timedelta(days=1), time(0), program.zone).astimezone(UTC) - timedelta(
        microseconds=1
    )
    months = sorted({starts.strftime("%Y-%m"), ends.strftime("%Y-%m")})  # a local day may span two UTC months
    low, high = keys.stamp(starts), keys.stamp(ends) + "~"  # "~" sorts after the member id that follows
    return [DayPage(tenant, code, campaign_id, iso, "GSI2", keys.registrations(tenant, m), low, high) for m in months]


def _run_marker(item: Item, day: date) -> Item:
    """That the schedule ran a campaign's day (it runs hourly): kept 400 days."""
    return {
        "PK": item["PK"],
        "SK": f"DAY_RUN#{day.isoformat()}",
        "expiration": int(datetime.combine(day + timedelta(days=400), time(0)).timestamp()),
    }


def _open_on(campaign: CampaignInput, day: date, program: ProgramConfig) -> bool:
    starts, ends = campaign.window(program.zone)
    day_start = datetime.combine(day, time(0), program.zone)
    return starts < day_start + timedelta(days=1) and ends > day_start


def daily_runs(engine: CampaignEngine | None = None) -> DailyRuns:
    engine = engine or campaign_engine()
    return DailyRuns(engine)
