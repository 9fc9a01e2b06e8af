"""The one shape of a sweep function: the hourly schedule starts a walk over the programs, a page of them and
then a program per queue message (services/program_jobs.py), each program's run plans its buckets, the
queue works them off a page at a time (partial batch failures), and operators plan one program for a day
over HTTP.

The HTTP part (the Powertools resolver, the route module) is imported on the first HTTP request only: the
schedule and the queue invoke the function far more often, and their cold starts need none of it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.clock import Clock
from loyalty.observability import logger
from loyalty.services.program_jobs import ProgramJob, program_jobs
from loyalty.services.sweeps import Bucket
from loyalty.store.table import Table

CACHED: list[Any] = []  # each sweep function's service, kept for the sandbox's life (tests forget them)


class Sweep(ProgramJob, Protocol):
    """A sweep is a job done a program at a time (its run plans the program's buckets) and the sweep of
    one bucket's page, over a table and with a clock."""

    table: Table
    clock: Clock

    def sweep(self, bucket: Bucket) -> int: ...


def sweep_handler(routes: str, service: Callable[[], Sweep]) -> Callable[[dict, LambdaContext], Any]:
    """`routes` names the route module of the operator's run (imported when first asked for)."""
    processor = BatchProcessor(event_type=EventType.SQS)
    service = lru_cache(maxsize=1)(service)
    jobs = lru_cache(maxsize=1)(lambda: program_jobs(service().table, service().clock))
    CACHED.extend([service, jobs])

    @lru_cache(maxsize=1)
    def http() -> Callable[[dict, LambdaContext], Any]:
        from loyalty.api.resolver import build_app, http_handler

        return http_handler(build_app(importlib.import_module(routes).router))

    def record_handler(record: SQSRecord) -> None:
        message = json.loads(record.body)
        if not jobs().handles(service(), message):
            service().sweep(Bucket.from_message(record.body))

    @logger.inject_lambda_context(clear_state=True)
    def work(event: dict, context: LambdaContext) -> Any:
        if "Records" in event:
            return process_partial_response(
                event=event, record_handler=in_tenant_scope(record_handler), processor=processor, context=context
            )
        planned = jobs().start(service())
        logger.info("sweep started", extra={"job": service().name, "messages": planned})
        return {"planned": planned}

    def lambda_handler(event: dict, context: LambdaContext) -> Any:
        """HTTP requests go to the resolver (which sets up logging itself); the rest is the sweep's work."""
        return http()(event, context) if "requestContext" in event else work(event, context)

    return lambda_handler
