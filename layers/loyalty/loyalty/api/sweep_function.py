"""The one shape of a sweep function: the hourly schedule plans every program's buckets, its queue works
them off a page at a time (partial batch failures), and operators plan one program for a day over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.resolver import build_app, http_handler
from loyalty.observability import logger
from loyalty.services.sweeps import Bucket


class Sweep(Protocol):
    def plan_all(self) -> int: ...

    def sweep(self, bucket: Bucket) -> int: ...


def sweep_handler(router: Router, service: Callable[[], Sweep]) -> Callable[[dict, LambdaContext], Any]:
    http = http_handler(build_app(router))
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> None:
        service().sweep(Bucket.from_message(record.body))

    @logger.inject_lambda_context(clear_state=True)
    def work(event: dict, context: LambdaContext) -> Any:
        if "Records" in event:
            return process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        planned = service().plan_all()
        logger.info("sweep buckets planned", extra={"buckets": planned})
        return {"planned": planned}

    def lambda_handler(event: dict, context: LambdaContext) -> Any:
        """HTTP requests go to the resolver (which sets up logging itself); the rest is the sweep's work."""
        return http(event, context) if "requestContext" in event else work(event, context)

    return lambda_handler
