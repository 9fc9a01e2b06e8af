"""Order queue -> accrual. Each message is an OrderReceived event (EventBridge -> SQS); a failed one is
reported alone, retried after the visibility timeout, and parked in the order DLQ after maxReceiveCount."""

import json
from functools import lru_cache

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger
from loyalty.services.accrual import AccrualService, accrual_service

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def service() -> AccrualService:
    return accrual_service()


def record_handler(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]
    service().accrue(detail["tenant"], detail["order"])


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
