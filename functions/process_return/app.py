"""Returns: POST /v1/returns stores one and announces it; the return queue (fed by ReturnReceivedRule)
processes it once its order has accrued (until then the message fails and is retried)."""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.process_return import router, service
from loyalty.observability import logger

app = build_app(router)
http = http_handler(app)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]
    service().process(detail["tenant"], detail["return"])


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "requestContext" in event:
        return http(event, context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
