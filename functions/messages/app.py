"""Messages: operators' HTTP routes (loyalty.api.routes.messages: templates, settings, send records); the
message queue, where a request (a campaign's message) is delivered once by its business key, an event from the
bus (OrderAccrued, CouponIssued, TierChanged) becomes the notification its program switched on, and a
member's erasure takes their bodies and recipients away, and a page of a day index (points or coupons that
expire soon, birthdays) becomes its members' requests, and a page of programs or one program of the release
and daily-notification jobs is worked; and the schedule, every 5 minutes, which starts those two jobs: held
marketing goes back to the queue once quiet hours end, and each program's daily notifications are planned
once a day.
A provider's "try later" puts the request back with a backoff (30 s, doubling, at most 15 minutes); after the
queue's maxReceiveCount it waits in the DLQ.

The HTTP part is imported on the first HTTP request only: the queue invokes this function far more often.
"""

import json
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.observability import logger, metrics
from loyalty.services.messages.daily import DailyNotifications, NotificationPage
from loyalty.services.messages.notifications import Notifier
from loyalty.services.messages.records import MessageRecords, message_records
from loyalty.services.messages.senders import TryLater, retry_delay
from loyalty.services.messages.sending import HeldRelease, MessageRequest, MessageService, message_service
from loyalty.services.program_jobs import ProgramJobs, program_jobs
from loyalty.settings import get_settings

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def messages() -> MessageService:
    return message_service()


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    return Notifier(messages())


@lru_cache(maxsize=1)
def daily() -> DailyNotifications:
    return DailyNotifications(messages())


@lru_cache(maxsize=1)
def release() -> HeldRelease:
    return HeldRelease(messages())


@lru_cache(maxsize=1)
def jobs() -> ProgramJobs:
    return program_jobs(messages().table, messages().clock)


@lru_cache(maxsize=1)
def records() -> MessageRecords:
    return message_records()


@lru_cache(maxsize=1)
def http() -> Any:
    from loyalty.api.resolver import build_app, http_handler
    from loyalty.api.routes.messages import router

    return http_handler(build_app(router))


def record_handler(record: SQSRecord) -> None:
    message = json.loads(record.body)
    try:
        if "messageRequest" in message:
            messages().deliver(MessageRequest.from_body(message))
            return
        if "notificationPage" in message:
            daily().run_page(NotificationPage.from_body(message))
            return
        if jobs().handles(release(), message) or jobs().handles(daily(), message):
            return
        detail, detail_type = message["detail"], message["detail-type"]
        if detail_type == "MemberPersonalDataErased":
            records().erase(detail["tenant"], detail["memberId"])
            return
        notifier().send(detail["tenant"], detail_type, detail)
    except TryLater as later:
        boto3.client("sqs").change_message_visibility(
            QueueUrl=get_settings().message_queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=retry_delay(int(record.attributes.approximate_receive_count or 1)),
        )
        logger.warning("message to try later", extra={"reason": later.reason})
        raise


scoped_records = in_tenant_scope(record_handler)  # each record in its tenant's scope (D-126)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def on_queue(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=scoped_records, processor=processor, context=context)


@logger.inject_lambda_context(clear_state=True)
def on_schedule(event: dict, context: LambdaContext) -> dict:
    """Both jobs walk the programs through the queue (services/program_jobs.py): a message each, here."""
    planned = jobs().start(release()) + jobs().start(daily())
    logger.info("release and daily notifications started", extra={"messages": planned})
    return {"planned": planned}


def lambda_handler(event: dict, context: LambdaContext) -> Any:
    """HTTP requests go to the resolver, which sets up logging itself; then the queue; then the schedule."""
    if "requestContext" in event:
        return http()(event, context)
    return on_queue(event, context) if "Records" in event else on_schedule(event, context)
