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


def lambda_handler(event: dict, context: LambdaContext) -> dict:
    """HTTP requests go to the resolver (which sets up logging itself); the rest is the sweep's work."""
    return http(event, context) if "requestContext" in event else work(event, context)


@logger.inject_lambda_context(clear_state=True)
def work(event: dict, context: LambdaContext) -> dict:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    planned = service().plan_all()
    logger.info("expiry buckets planned", extra={"buckets": planned})
    return {"planned": planned}
