"""Campaigns: operators' HTTP routes (loyalty.api.routes.campaigns), and the campaign event queue
(MemberRegistered, OrderAccrued from the bus), where each event makes members take part in the trigger
campaigns it meets, once per campaign and event. A failed message is reported alone, retried after the
visibility timeout, and parked in the DLQ after maxReceiveCount.

The HTTP part is imported on the first HTTP request only: the queue invokes this function far more often.
"""

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.services.campaigns.engine import CampaignEngine, campaign_engine

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def engine() -> CampaignEngine:
    return campaign_engine()


@lru_cache(maxsize=1)
def http() -> Any:
    from loyalty.api.resolver import build_app, http_handler
    from loyalty.api.routes.campaigns import router

    return http_handler(build_app(router))


def record_handler(record: SQSRecord) -> None:
    event = json.loads(record.body)
    detail = event["detail"]
    engine().on_event(detail["tenant"], event["detail-type"], detail)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def on_events(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def lambda_handler(event: dict, context: LambdaContext) -> Any:
    """HTTP requests go to the resolver, which sets up logging itself; the rest is the queue."""
    return http()(event, context) if "requestContext" in event else on_events(event, context)
