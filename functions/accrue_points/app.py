"""Order queue -> accrual. Each message is an OrderReceived event (EventBridge -> SQS); a failed one is
reported alone, retried after the visibility timeout, and parked in the order DLQ after maxReceiveCount.
Operators review the orders accrual held (the daily points ceiling) over HTTP, here too.

The HTTP part (the Powertools resolver, the route module) is imported on the first HTTP request only: the
queue invokes this function far more often, and its cold start needs none of it.
"""

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.observability import logger, metrics
from loyalty.services.accrual import AccrualService, accrual_service

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def service() -> AccrualService:
    return accrual_service()


@lru_cache(maxsize=1)
def http() -> Any:
    from loyalty.api.resolver import build_app, http_handler
    from loyalty.api.routes.accrue_points import router

    return http_handler(build_app(router))


def record_handler(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]
    service().accrue(detail["tenant"], detail["order"])


scoped_records = in_tenant_scope(record_handler)  # each record in its tenant's scope (D-126)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def accrue(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=scoped_records, processor=processor, context=context)


def lambda_handler(event: dict, context: LambdaContext) -> Any:
    """HTTP requests (held orders) go to the resolver, which sets up logging itself; the rest is the queue."""
    return http()(event, context) if "requestContext" in event else accrue(event, context)
