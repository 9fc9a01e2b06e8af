"""The expiry sweep, one function with three triggers: the hourly schedule plans every program's due
buckets, the expiry queue expires them a page at a time (partial batch failures), and operators plan one
program for a day over HTTP."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.expiry_sweep import router, service
from loyalty.observability import logger
from loyalty.services.sweeps import Bucket

app = build_app(router)
http = http_handler(app)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    service().sweep(Bucket.from_message(record.body))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "requestContext" in event:
        return http(event, context)
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    planned = service().plan_all()
    logger.info("expiry buckets planned", extra={"buckets": planned})
    return {"planned": planned}
