"""Queue and stream consumers work each record inside the tenant scope its message names (D-126), as an HTTP
request works inside its caller's: a key of another tenant built by a bug is refused before it reaches the
table. Only the walks over every program or the whole table (a page of programs, a migration's page) run
unscoped; a message that names no tenant and is no such walk is refused (to the dead-letter queue)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from loyalty.store.table import tenant_scope

PLATFORM_WIDE = ("programsPage", "migrationPage")  # walks over every program, or the whole table

R = TypeVar("R")


class UnscopedMessage(ValueError):
    """A message that names no tenant: a defect of its sender, not to be worked unscoped."""


def tenant_of(message: dict[str, Any]) -> str | None:
    """The tenant a message is about: its own `tenant`, or that of the one body it wraps (`detail` of a bus
    event, `dayPage`, `messageRequest`, ...); None when it names none."""
    if isinstance(message.get("tenant"), str):
        return str(message["tenant"])
    for value in message.values():
        if isinstance(value, dict) and isinstance(value.get("tenant"), str):
            return str(value["tenant"])
    return None


def _sqs_message(record: SQSRecord) -> dict[str, Any]:
    message = json.loads(record.body)
    return message if isinstance(message, dict) else {}


def _stream_message(record: DynamoDBRecord) -> dict[str, Any]:
    """A stream record's item key: `T#<tenant>#...` names its tenant."""
    pk = str(((record.dynamodb.keys if record.dynamodb else None) or {}).get("PK", ""))
    return {"tenant": pk.split("#")[1]} if pk.startswith("T#") else {}


def in_tenant_scope(
    handler: Callable[[R], None], message: Callable[[Any], dict[str, Any]] = _sqs_message
) -> Callable[[R], None]:
    """`handler` run per record inside the scope of the record's tenant (SQS records by default; pass
    `stream_records` for a table stream's)."""
    read = message

    def scoped(record: R) -> None:
        body = read(record)
        tenant = tenant_of(body)
        if tenant is None and not any(walk in body for walk in PLATFORM_WIDE):
            raise UnscopedMessage("a message that names no tenant")
        with tenant_scope(tenant) if tenant else nullcontext():
            handler(record)

    return scoped


stream_records: Callable[[Any], dict[str, Any]] = _stream_message
