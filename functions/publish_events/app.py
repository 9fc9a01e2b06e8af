"""Table stream -> EventBridge: publish each new outbox entry. A failed entry is reported alone and
retried by the stream; after the template's retries it goes to the events dead-letter queue."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope, stream_records
from loyalty.observability import logger
from loyalty.services.events import publish_stored

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    publish_stored(record.dynamodb.new_image)  # type: ignore[union-attr]


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event,
        record_handler=in_tenant_scope(record_handler, stream_records),
        processor=processor,
        context=context,
    )
