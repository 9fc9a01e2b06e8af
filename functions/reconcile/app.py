"""The nightly reconciliation (D-116): the schedule starts a walk over the programs (a page of them, then a
program per message, services/program_jobs.py); a program's run queues the first page of each shard of its
tenant's member index; a page reconciles its members and counts their coupons by rule; the last page checks
the program's coupon rules. Differences are logged and counted in the ReconciliationDifferences metric, which
has an alarm. It writes nothing but its own run state."""

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api.consumer import in_tenant_scope
from loyalty.observability import logger, metrics
from loyalty.services.program_jobs import ProgramJobs, program_jobs
from loyalty.services.reconciliation import NightlyReconciliation, ReconcilePage, nightly_reconciliation

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def nightly() -> NightlyReconciliation:
    return nightly_reconciliation()


@lru_cache(maxsize=1)
def jobs() -> ProgramJobs:
    return program_jobs(nightly().table, nightly().clock)


def record_handler(record: SQSRecord) -> None:
    message = json.loads(record.body)
    if jobs().handles(nightly(), message):
        return
    differences = nightly().page(ReconcilePage.from_body(message))
    metrics.add_metric(name="ReconciliationDifferences", unit=MetricUnit.Count, value=len(differences))


scoped_records = in_tenant_scope(record_handler)  # each record in its tenant's scope (D-126)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> Any:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=scoped_records, processor=processor, context=context
        )
    return {"planned": jobs().start(nightly())}
