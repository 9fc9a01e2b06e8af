"""The one shape of a sweep function: the hourly schedule plans every program's buckets, its queue works
them off a page at a time (partial batch failures), and operators plan one program for a day over HTTP.

The HTTP part (the Powertools resolver, the route module) is imported on the first HTTP request only: the
schedule and the queue invoke the function far more often, and their cold starts need none of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger
from loyalty.services.sweeps import Bucket

CACHED: list[Any] = []  # each sweep function's service, kept for the sandbox's life (tests forget them)


class Sweep(Protocol):
    def plan_all(self) -> int: ...

    def sweep(self, bucket: Bucket) -> int: ...


def sweep_handler(routes: str, service: Callable[[], Sweep]) -> Callable[[dict, LambdaContext], Any]:
    """`routes` names the route module of the operator's run (imported when first asked for)."""
    processor = BatchProcessor(event_type=EventType.SQS)
    service = lru_cache(maxsize=1)(service)
    CACHED.append(service)

    @lru_cache(maxsize=1)
    def http() -> Callable[[dict, LambdaContext], Any]:
        from loyalty.api.resolver import build_app, http_handler

        return http_handler(build_app(importlib.import_module(routes).router))

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
        return http()(event, context) if "requestContext" in event else work(event, context)

    return lambda_handler
