"""Birthday campaigns (生日, issue 14): run daily in each program's time zone. The members born on the day (or,
for a month campaign on the first of the month, in the month) are read from a sparse index of birthdays
by month and day (keys.birthdays: written when a birthday is set, changed or erased), a page per queue
message, never by scanning members. Each takes part once a year: the participation's business key is
`birthday:<year>`, so a rerun, a redelivered page or a birthday moved to a later day that year gives
nothing more. Members without a birthday are not in the index.

The hourly schedule plans each program's running birthday campaigns for the program's today, once per
campaign and day (a run marker, written once the day's pages are queued); an operator may run a campaign
for a past day (a missed run), which the participations keep from giving twice. A page delivered twice
may queue its next page twice: the participations make that cost reads, not gifts.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from pydantic import Field

from loyalty.domain.campaigns import BirthdayTrigger, CampaignInput, Occasion, birthday_days
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.validity import CamelModel
from loyalty.observability import logger
from loyalty.services.campaigns.engine import CampaignEngine, Outcome, campaign_engine
from loyalty.services.sweeps import send_all, sweep_day
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import tags_of
from loyalty.store.table import Item, TransactionCancelled, put

PAGE = 50  # members a queue message makes take part


@dataclass(frozen=True)
class BirthdayPage:
    """One page of one day's (or month's) birthdays for one campaign: a queue message."""

    tenant: str
    program: str
    campaign_id: str
    day: str  # the run's day, ISO, in the program's time zone
    month: int
    prefix: str  # of the index's sort key: "02#" for the 2nd, "" for the whole month
    start: dict[str, Any] | None = None

    def message(self) -> str:
        return json.dumps({"birthdayPage": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BirthdayPage:
        return cls(**body["birthdayPage"])


class BirthdayRunRequest(CamelModel):
    """An operator's run of a birthday campaign for a day (a missed run): who was gifted stays gifted."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"date": "2026-12-01"}]

    date: dt.date | None = Field(default=None, description="Whose birthday it was; default today, never to come")


class BirthdayRunAccepted(CamelModel):
    campaign_id: str
    date: dt.date
    pages: int = Field(description="Pages of the index queued (one per day read; more follow as they are read)")


@dataclass
class BirthdayRuns:
    engine: CampaignEngine
    config: ConfigRepository

    def plan_all(self) -> int:
        """The hourly schedule: every program's running birthday campaigns, for its today, once a day."""
        return sum(self.plan(tenant, program) for tenant, program in self.config.all_programs())

    def run_for(self, tenant: str, campaign_id: str, request: BirthdayRunRequest) -> BirthdayRunAccepted:
        """An operator's run: a running birthday campaign (409 otherwise), for a day not to come."""
        view = self.engine.campaigns.get(tenant, campaign_id)
        if not isinstance(view.campaign.trigger, BirthdayTrigger):
            raise Conflict(
                f"campaign {campaign_id} is triggered by {view.campaign.trigger.type}, not a birthday",
                code="NOT_A_BIRTHDAY_CAMPAIGN",
                field="campaignId",
            )
        if view.status != "running":
            raise Conflict(f"the campaign is {view.status}", code="CAMPAIGN_STATUS", campaignStatus=view.status)
        program = self.engine.programs.load(tenant, view.campaign.program_code)
        day = sweep_day(request.date, self.engine.clock.now().astimezone(program.zone).date())
        pages = self.plan(tenant, view.campaign.program_code, day, campaign_id)
        return BirthdayRunAccepted(campaign_id=campaign_id, date=day, pages=pages)

    def plan(self, tenant: str, program_code: str, day: date | None = None, campaign_id: str | None = None) -> int:
        """Queue the pages of `day`'s birthdays (default: today, once per campaign and day; a day given is
        an operator's rerun) for one campaign or every running one of the program; returns how many."""
        program = self.engine.programs.load(tenant, program_code)
        scheduled = day is None
        day = day or self.engine.clock.now().astimezone(program.zone).date()
        found, _ = self.engine.table.query_index(
            "GSI2", keys.campaigns_on(tenant, program_code, "birthday"), limit=100, pk_attribute="GSI2PK"
        )
        pages: list[BirthdayPage] = []
        runs: list[Item] = []
        for item in found:
            if campaign_id is not None and item["campaignId"] != campaign_id:
                continue
            campaign = CampaignInput.model_validate(item["campaign"])
            trigger = campaign.trigger
            if item["status"] != "scheduled" or not isinstance(trigger, BirthdayTrigger):
                continue
            if not _open_on(campaign, day, program.zone):
                continue
            if scheduled:
                run = _run_marker(item, day)
                if self.engine.table.get(run["PK"], run["SK"], consistent=False) is not None:
                    continue  # an earlier hour ran this day
                runs.append(run)
            days = birthday_days(trigger, day) or []
            pages += [BirthdayPage(tenant, program_code, item["campaignId"], day.isoformat(), m, p) for m, p in days]
        send_all(get_settings().campaign_queue_url, [page.message() for page in pages])
        for run in runs:  # marked once its pages are queued: a failure before this is retried by the schedule
            with suppress(TransactionCancelled):
                self.engine.table.transact([put(run, "attribute_not_exists(PK)")])
        logger.info("birthday pages planned", extra={"program": program_code, "day": str(day), "pages": len(pages)})
        return len(pages)

    def run_page(self, page: BirthdayPage) -> list[Outcome]:
        """Make one page of the day's members take part; queue the next page, if there is one."""
        engine = self.engine
        program = engine.programs.load(page.tenant, page.program)
        item = engine.table.get(keys.campaign(page.tenant, page.campaign_id), keys.CAMPAIGN_SK)
        if item is None:
            return []
        campaign = CampaignInput.model_validate(item["campaign"])
        day = date.fromisoformat(page.day)
        entries, more = engine.table.query_index(
            "GSI1",
            keys.birthdays(page.tenant, page.program, page.month),
            limit=PAGE,
            start=page.start,
            sk_prefix=("GSI1SK", page.prefix) if page.prefix else None,
        )
        at = max(datetime.combine(day, time(0), program.zone), campaign.window(program.zone)[0])
        occasion = Occasion("birthday", f"birthday:{day.year}", at)
        outcomes = [self._member(page, item, campaign, entry, occasion, program.zone) for entry in entries]
        if more:
            next_page = BirthdayPage(
                page.tenant, page.program, page.campaign_id, page.day, page.month, page.prefix, more
            )
            send_all(get_settings().campaign_queue_url, [next_page.message()])
        return outcomes

    def _member(
        self, page: BirthdayPage, item: Item, campaign: CampaignInput, entry: Item, occasion: Occasion, zone: Any
    ) -> Outcome:
        member_id = entry["memberId"]
        try:
            items = self.engine.members.items(page.tenant, member_id)
        except NotFound:  # the member went (an index entry outlived it)
            return Outcome(item["campaignId"], "inactive")
        outcome = self.engine.consider(page.tenant, item, campaign, member_id, items[0], tags_of(items), occasion, zone)
        logger.info("campaign considered", extra={"campaignId": outcome.campaign_id, "result": outcome.result})
        return outcome


def _run_marker(item: Item, day: date) -> Item:
    """That the schedule ran a campaign's day (it runs hourly): kept 400 days."""
    return {
        "PK": item["PK"],
        "SK": f"BIRTHDAY_RUN#{day.isoformat()}",
        "expiration": int(datetime.combine(day + timedelta(days=400), time(0)).timestamp()),
    }


def _open_on(campaign: CampaignInput, day: date, zone: Any) -> bool:
    starts, ends = campaign.window(zone)
    day_start = datetime.combine(day, time(0), zone)
    return starts < day_start + timedelta(days=1) and ends > day_start


def birthday_runs(engine: CampaignEngine | None = None) -> BirthdayRuns:
    engine = engine or campaign_engine()
    return BirthdayRuns(engine, ConfigRepository(engine.table))
