"""Idempotency-Key handling for POSTs with effects, by Powertools idempotency, stored in the one table.

A request retried with the same key gets the first answer; the same key with a different body is refused.
Records live under the tenant's own partition key, so they obey the tenant prefix like everything else.
A failed call leaves no record, so it can be retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.requests import RequestKey, request_key
from loyalty.store.table import dynamodb_client

CONFIG = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="payload",
    expires_after_seconds=get_settings().idempotency_ttl_seconds,
    use_local_cache=False,
)
_layers: dict[str, DynamoDBPersistenceLayer] = {}


def _layer(tenant: str) -> DynamoDBPersistenceLayer:
    if tenant not in _layers:
        _layers[tenant] = DynamoDBPersistenceLayer(
            table_name=get_settings().table_name,
            key_attr="PK",
            sort_key_attr="SK",
            static_pk_value=keys.idempotency(tenant),
            expiry_attr="expiration",
            boto3_client=dynamodb_client(),
        )
    return _layers[tenant]


def run_once(
    tenant: str, operation: str, key: str | None, payload: Any, command: Callable[[RequestKey | None], dict]
) -> dict:
    """Run `command` once per (tenant, operation, key); without a key, just run it. The command gets the
    key as a RequestKey, to write beside its effect where the effect has no business key of its own
    (store/requests.py): that covers a call that failed after its write, whose Powertools record is gone."""
    request = request_key(tenant, operation, key, payload)
    if request is None:
        return command(None)

    @idempotent_function(
        data_keyword_argument="request", persistence_store=_layer(tenant), config=CONFIG, key_prefix=operation
    )
    def execute(request: dict) -> dict:
        return command(marker)

    marker = request
    return execute(request={"key": key, "payload": payload})
