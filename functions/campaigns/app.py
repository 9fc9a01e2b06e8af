"""Campaigns: operators' HTTP routes (loyalty.api.routes.campaigns and .audiences); the campaign queue, where
an event from the bus (MemberRegistered, OrderAccrued) makes members take part in the trigger campaigns it
meets, once per campaign and event, a page of a day's index (birthdays, registrations) makes them take part
in a campaign run by the day, a page of an audience's scan is counted (and frozen), a page of a batch run
makes its members take part, a launch (from a one-time schedule) starts one, and a page of programs or one
program of the campaign-days job is worked; and the hourly schedule, which starts that job: each program's
day pages are planned once a day. A failed
message is reported alone, retried after the visibility timeout, and parked in the DLQ after maxReceiveCount.

The HTTP part is imported on the first HTTP request only: the queue invokes this function far more often.
"""

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.observability import logger, metrics
from loyalty.services.campaigns.audiences import ScanPage
from loyalty.services.campaigns.batch import BatchPage, BatchRuns, batch_runs
from loyalty.services.campaigns.daily import DailyRuns, DayPage, daily_runs
from loyalty.services.campaigns.engine import CampaignEngine, campaign_engine
from loyalty.services.program_jobs import ProgramJobs, program_jobs

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def engine() -> CampaignEngine:
    return campaign_engine()


@lru_cache(maxsize=1)
def daily() -> DailyRuns:
    return daily_runs(engine())


@lru_cache(maxsize=1)
def jobs() -> ProgramJobs:
    return program_jobs(engine().table, engine().clock)


@lru_cache(maxsize=1)
def http() -> Any:
    from loyalty.api.resolver import build_app, http_handler
    from loyalty.api.routes.audiences import router as audiences
    from loyalty.api.routes.campaigns import router as campaigns

    return http_handler(build_app(campaigns, audiences))


@lru_cache(maxsize=1)
def batch() -> BatchRuns:
    return batch_runs(engine())


def record_handler(record: SQSRecord) -> None:
    message = json.loads(record.body)
    if "dayPage" in message:
        daily().run_page(DayPage.from_body(message))
        return
    if "audienceScan" in message:
        batch().audiences.scan_page(ScanPage.from_body(message))
        return
    if "batchPage" in message:
        batch().run_page(BatchPage.from_body(message))
        return
    if jobs().handles(daily(), message):
        return
    if "batchLaunch" in message:
        launch = message["batchLaunch"]
        batch().launch(launch["tenant"], launch["campaignId"])
        return
    detail = message["detail"]
    engine().on_event(detail["tenant"], message["detail-type"], detail)


scoped_records = in_tenant_scope(record_handler)  # each record in its tenant's scope (D-126)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def on_events(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=scoped_records, processor=processor, context=context)


@logger.inject_lambda_context(clear_state=True)
def on_schedule(event: dict, context: LambdaContext) -> dict:
    planned = jobs().start(daily())
    logger.info("campaign days started", extra={"messages": planned})
    return {"planned": planned}


def lambda_handler(event: dict, context: LambdaContext) -> Any:
    """HTTP requests go to the resolver, which sets up logging itself; then the queue; then the schedule."""
    if "requestContext" in event:
        return http()(event, context)
    return on_events(event, context) if "Records" in event else on_schedule(event, context)
