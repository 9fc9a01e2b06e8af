"""Returns: POST /v1/returns stores one and announces it; the return queue (fed by ReturnReceivedRule)
processes it once its order has accrued (until then it waits on the order, whose accrual announces it
again: D-115)."""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.process_return import router, service
from loyalty.observability import logger

app = build_app(router)
http = http_handler(app)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    detail = json.loads(record.body)["detail"]
    service().process(detail["tenant"], detail["return"])


scoped_records = in_tenant_scope(record_handler)  # each record in its tenant's scope (D-126)


def lambda_handler(event: dict, context: LambdaContext) -> dict:
    """HTTP requests go to the resolver (which sets up logging itself); queue batches are processed here."""
    return http(event, context) if "requestContext" in event else work(event, context)


@logger.inject_lambda_context(clear_state=True)
def work(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=scoped_records, processor=processor, context=context)
