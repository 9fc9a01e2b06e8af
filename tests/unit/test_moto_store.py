"""moto keeps the local stack's items in SQLite, outside Python's heap, and answers as before
(infra/local/moto_store.py, D-089)."""

from __future__ import annotations

import tracemalloc

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from infra.local import moto_bounds, moto_store

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(moto_store, "LIVE_ITEMS", 2)  # every item but the last two used is decoded again
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        keys = ("PK", "SK", "GSI1PK", "GSI1SK")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in keys],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GSI1",
                    "KeySchema": [
                        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def lot(member: str, n: int, month: str = "2027-12") -> dict:
    return {
        "PK": {"S": f"MEMBER#{member}"},
        "SK": {"S": f"LOT#{n:04d}"},
        "GSI1PK": {"S": f"EXPIRY#{month}"},
        "GSI1SK": {"S": f"{month}-31#{member}#{n:04d}"},
        "remaining": {"N": str(100 + n)},
        "source": {"M": {"kind": {"S": "order"}, "lines": {"L": [{"N": "1"}, {"S": "x"}]}}},
        "tags": {"SS": ["a", "b"]},
        "frozen": {"BOOL": False},
        "note": {"NULL": True},
        "blob": {"B": b"\x00\x01"},
    }


def stored(client) -> list:
    table = dynamodb_backends[ACCOUNT][REGION].tables["t"]
    return [item for partition in table.items.values() for item in partition.values()]


def live() -> int:
    return len(moto_store.store().live)


def test_items_are_stored_and_read_back_whole(client):
    for n in range(5):
        client.put_item(TableName="t", Item=lot("m1", n))
    assert isinstance(dynamodb_backends[ACCOUNT][REGION].tables["t"].items, moto_store.StoredItems)
    assert live() <= 2  # the others are only in SQLite

    got = client.get_item(TableName="t", Key={"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0000"}})["Item"]

    assert got == lot("m1", 0)
    assert len(stored(client)) == 5


def test_an_update_is_stored_though_moto_makes_it_in_place(client):
    for n in range(3):
        client.put_item(TableName="t", Item=lot("m1", n))
    key = {"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0000"}}
    client.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET remaining = remaining - :ten, #s.kind = :k",
        ConditionExpression="remaining >= :ten",
        ExpressionAttributeNames={"#s": "source"},
        ExpressionAttributeValues={":ten": {"N": "10"}, ":k": {"S": "return"}},
    )
    for n in range(3, 6):  # the updated item's object is no longer kept
        client.put_item(TableName="t", Item=lot("m2", n))

    got = client.get_item(TableName="t", Key=key)["Item"]

    assert got["remaining"] == {"N": "90"}
    assert got["source"]["M"]["kind"] == {"S": "return"}


def test_an_update_that_creates_the_item_is_stored(client):
    key = {"PK": {"S": "MEMBER#m9"}, "SK": {"S": "COUNT"}}
    for _ in range(2):
        client.update_item(
            TableName="t", Key=key, UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}}
        )
    for n in range(3):
        client.put_item(TableName="t", Item=lot("m2", n))

    assert client.get_item(TableName="t", Key=key)["Item"]["n"] == {"N": "2"}


def test_a_cancelled_transaction_leaves_items_as_they_were(client):
    for n in range(4):
        client.put_item(TableName="t", Item=lot("m1", n))
    spend = {
        "Update": {
            "TableName": "t",
            "Key": {"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0001"}},
            "UpdateExpression": "SET remaining = :zero",
            "ExpressionAttributeValues": {":zero": {"N": "0"}},
        }
    }
    new = {"Put": {"TableName": "t", "Item": lot("m3", 1)}}
    refused = {"Put": {"TableName": "t", "Item": lot("m1", 2), "ConditionExpression": "attribute_not_exists(PK)"}}
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=[spend, new, refused])
    for n in range(4, 7):
        client.put_item(TableName="t", Item=lot("m2", n))

    got = client.get_item(TableName="t", Key={"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0001"}})["Item"]

    assert got["remaining"] == {"N": "101"}
    assert "Item" not in client.get_item(TableName="t", Key={"PK": {"S": "MEMBER#m3"}, "SK": {"S": "LOT#0001"}})


def test_an_index_query_reads_only_its_partition(client):
    for n in range(6):
        client.put_item(TableName="t", Item=lot(f"m{n}", n, month="2027-11" if n % 2 else "2027-12"))
    # An item moved to another index partition by an update
    client.update_item(
        TableName="t",
        Key={"PK": {"S": "MEMBER#m0"}, "SK": {"S": "LOT#0000"}},
        UpdateExpression="SET GSI1PK = :m",
        ExpressionAttributeValues={":m": {"S": "EXPIRY#2027-11"}},
    )
    for n in range(6, 9):
        client.put_item(TableName="t", Item=lot(f"m{n}", n, month="2028-01"))
    table = dynamodb_backends[ACCOUNT][REGION].tables["t"]

    page = client.query(
        TableName="t",
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :m",
        ExpressionAttributeValues={":m": {"S": "EXPIRY#2027-11"}},
    )["Items"]

    assert sorted(item["SK"]["S"] for item in page) == ["LOT#0000", "LOT#0001", "LOT#0003", "LOT#0005"]
    from moto.dynamodb.models.dynamo_type import DynamoType

    assert len(table.items.indexed("GSI1PK", DynamoType({"S": "EXPIRY#2027-11"}))) == 4  # what the query read


def test_a_deleted_item_is_gone_from_table_and_index(client):
    for n in range(4):
        client.put_item(TableName="t", Item=lot("m1", n))
    client.delete_item(TableName="t", Key={"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0000"}})
    for n in range(4, 7):
        client.put_item(TableName="t", Item=lot("m2", n, month="2028-01"))

    page = client.query(
        TableName="t",
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :m",
        ExpressionAttributeValues={":m": {"S": "EXPIRY#2027-12"}},
    )["Items"]
    scanned = client.scan(TableName="t")["Items"]

    assert [item["SK"]["S"] for item in page] == ["LOT#0001", "LOT#0002", "LOT#0003"]
    assert len(scanned) == 6
    assert client.describe_table(TableName="t")["Table"]["ItemCount"] == 6


def test_a_table_without_a_range_key_is_stored_too(client):
    client.create_table(
        TableName="h",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(4):
        client.put_item(TableName="h", Item={"id": {"S": f"k{n}"}, "v": {"N": str(n)}})
    client.delete_item(TableName="h", Key={"id": {"S": "k0"}})
    client.put_item(
        TableName="h", Item={"id": {"S": "k1"}, "v": {"N": "9"}}, ConditionExpression="attribute_exists(id)"
    )

    assert client.get_item(TableName="h", Key={"id": {"S": "k1"}})["Item"]["v"] == {"N": "9"}
    assert sorted(i["id"]["S"] for i in client.scan(TableName="h")["Items"]) == ["k1", "k2", "k3"]


def test_the_data_does_not_grow_pythons_heap(client, monkeypatch):
    monkeypatch.setattr(moto_bounds, "TRACKED_INSTANCES", 5)  # the dashboard's items are not the table's
    monkeypatch.setattr(moto_store, "LIVE_ITEMS", 10)
    for n in range(50):  # warm: SQLite's page cache, moto's parsers
        client.put_item(TableName="t", Item=lot("warm", n))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(1_000):
        client.put_item(TableName="t", Item=lot(f"m{n}", n))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    assert used / 1_000 < 800, used / 1_000  # bytes per put kept by Python (measured 330); moto held 3.9 KB
