"""Coupon-issue queue -> batch issuance. Each message is a chunk of an operator's CSV job; rows done before
are skipped, so a redelivery issues nothing twice. A chunk that keeps failing is parked in the DLQ."""

import json
from functools import lru_cache

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.observability import logger
from loyalty.services.coupon_batches import CouponBatchService, coupon_batch_service

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def service() -> CouponBatchService:
    return coupon_batch_service()


def record_handler(record: SQSRecord) -> None:
    done = service().work(json.loads(record.body))
    logger.info("coupon chunk issued", extra={"rows": done})


scoped_records = in_tenant_scope(record_handler)  # each record in its tenant's scope (D-126)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=scoped_records, processor=processor, context=context)
