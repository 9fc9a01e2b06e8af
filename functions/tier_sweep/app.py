"""The tier sweep: the hourly schedule plans every program's buckets of members whose tier ended; the
tier queue reviews them a page at a time (partial batch failures)."""

from functools import lru_cache

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger
from loyalty.services.sweeps import Bucket
from loyalty.services.tier_sweep import TierSweepService, tier_sweep_service

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def service() -> TierSweepService:
    return tier_sweep_service()


def record_handler(record: SQSRecord) -> None:
    service().sweep(Bucket.from_message(record.body))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    planned = service().plan_all()
    logger.info("tier buckets planned", extra={"buckets": planned})
    return {"planned": planned}
