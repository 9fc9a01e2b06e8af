"""Migrations of stored items (D-112): on every deploy CloudFormation's MigrationsOnDeploy resource asks this
function to start the pending ones (it answers at once; the walk goes on through the migration queue, a page
per message); the queue's pages bring items forward; `{"action": "status"}` or `{"action": "start"}` invoked
directly (python -m infra.migrate) tells or starts them."""

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger
from loyalty.services.migrations.deploy import answer_cloudformation
from loyalty.services.migrations.runner import MigrationPage, MigrationRunner, migration_runner

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def runner() -> MigrationRunner:
    return migration_runner()


def record_handler(record: SQSRecord) -> None:
    runner().run_page(MigrationPage.from_body(json.loads(record.body)))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> Any:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    if "RequestType" in event:  # CloudFormation's custom resource, on each deploy
        return answer_cloudformation(event, context, runner().start_pending)
    if event.get("action") == "start":
        return {"running": runner().start_pending(), "migrations": runner().status()}
    return {"migrations": runner().status()}
