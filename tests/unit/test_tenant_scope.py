"""The table wrapper's tenant scope (issue 12): inside a tenant's scope, a key of another tenant is refused
before DynamoDB is called; outside one (queues, sweeps, the reconciliation) nothing is checked."""

from __future__ import annotations

import pytest

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
