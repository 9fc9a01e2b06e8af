"""The table wrapper's tenant scope (issue 12): inside a tenant's scope, a key of another tenant is refused
before DynamoDB is called; queue and stream consumers enter the scope of each record's tenant (D-126)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from loyalty.api.consumer import UnscopedMessage, in_tenant_scope, stream_records, tenant_of
from loyalty.store.table import Table, TenantIsolationError, put, tenant_scope, update


class RecordingClient:
    """Stands in for the DynamoDB client: records what would have been sent, answers empty."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, operation: str):
        def call(**request):
            self.calls.append(operation)
            return {"Items": [], "Responses": {}, "Attributes": {"n": {"N": "1"}}}

        return call


@pytest.fixture
def table() -> Table:
    return Table("loyalty", client=RecordingClient())


def test_a_key_of_another_tenant_is_refused_before_dynamodb_is_called(table):
    with tenant_scope("demo"):
        for attempt in (
            lambda: table.get("T#other#M#01H", "MEMBER"),
            lambda: table.get("T#demo2#M#01H", "MEMBER"),  # a tenant whose name starts like the caller's
            lambda: table.get_many([("T#demo#M#1", "MEMBER"), ("T#other#M#2", "MEMBER")]),
            lambda: table.query_prefix("T#other#M#01H", "REC#"),
            lambda: table.query_index("GSI2", "T#other#M#01H#COUPONS", limit=10, pk_attribute="GSI2PK"),
            lambda: table.query_index("GSI1", "PROGRAMS", limit=10),  # every tenant's programs
            lambda: table.increment("T#other#COUNTER", "COUPON_RULE#20261201", "n"),
            lambda: table.transact([update("T#demo#M#1", "MEMBER", "SET a = :a", {":a": 1}), put({"PK": "T#x#A"})]),
            lambda: table.transact([put({"PK": "T#demo#A", "SK": "A", "GSI2PK": "T#other#M#1#COUPONS"})]),
            lambda: list(table.scan("a = :a", {":a": 1}, "PK")),
        ):
            with pytest.raises(TenantIsolationError):
                attempt()
    assert table.client.calls == []


def test_the_callers_own_keys_and_the_shared_program_listing_pass(table):
    with tenant_scope("demo"):
        table.get("T#demo#M#01H", "MEMBER")
        table.query_prefix("T#demo#M#01H", "REC#")
        table.increment("T#demo#COUNTER", "COUPON_RULE#20261201", "n")
        # a program is written into the shared PROGRAMS listing; only the sweeps read it, unscoped
        table.transact([put({"PK": "T#demo#PROGRAM#DEMO", "SK": "PROGRAM", "GSI1PK": "PROGRAMS"})])
    table.query_index("GSI1", "PROGRAMS", limit=10)
    table.get("T#other#M#01H", "MEMBER")
    assert table.client.calls == ["get_item", "query", "update_item", "transact_write_items", "query", "get_item"]


def test_the_scope_ends_with_its_block_even_on_an_error(table):
    with pytest.raises(ValueError), tenant_scope("demo"):
        raise ValueError
    table.get("T#other#M#01H", "MEMBER")
    assert table.client.calls == ["get_item"]


def _sqs(body: dict) -> Any:
    return SQSRecord({"messageId": "1", "body": json.dumps(body), "attributes": {}})


@pytest.mark.parametrize(
    ("body", "tenant"),
    [
        ({"detail": {"tenant": "acme", "order": {}}, "detail-type": "OrderReceived"}, "acme"),  # a bus event
        ({"tenant": "acme", "jobId": "j", "rows": []}, "acme"),  # a bulk job's chunk
        ({"dayPage": {"tenant": "acme", "program": "DEMO"}}, "acme"),  # a wrapped page
        ({"programDue": {"job": "expiry", "tenant": "acme", "program": "DEMO"}}, "acme"),
        ({"programsPage": {"job": "expiry", "start": None}}, None),  # the walk over every program
    ],
)
def test_a_consumer_works_each_record_in_the_scope_of_the_tenant_it_names(table, body, tenant):
    seen = []

    def handler(record: SQSRecord) -> None:
        seen.append(tenant_of(body))
        table.get("T#acme#M#1", "MEMBER")
        if tenant:
            with pytest.raises(TenantIsolationError):
                table.get("T#globex#M#1", "MEMBER")

    in_tenant_scope(handler)(_sqs(body))
    assert seen == [tenant]


def test_a_message_that_names_no_tenant_is_refused_not_worked_unscoped(table):
    with pytest.raises(UnscopedMessage):
        in_tenant_scope(lambda record: table.get("T#globex#M#1", "MEMBER"))(_sqs({"orphan": {"x": 1}}))
    assert table.client.calls == []


def test_a_stream_record_is_in_the_scope_of_its_items_tenant(table):
    record = DynamoDBRecord({"dynamodb": {"Keys": {"PK": {"S": "T#acme#OUTBOX#01"}, "SK": {"S": "EVENT"}}}})

    def handler(_: DynamoDBRecord) -> None:
        with pytest.raises(TenantIsolationError):
            table.get("T#globex#M#1", "MEMBER")

    in_tenant_scope(handler, stream_records)(record)
