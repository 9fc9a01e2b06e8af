"""moto keeps the items the local stack has not used lately packed, and answers as before
(infra/local/moto_items.py, D-086)."""

from __future__ import annotations

import tracemalloc

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from infra.local import moto_bounds, moto_items

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(moto_items, "LIVE_ITEMS", 2)  # every item but the last two used is packed
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


def test_items_not_used_lately_are_packed_and_read_back_whole(client):
    for n in range(5):
        client.put_item(TableName="t", Item=lot("m1", n))
    items = stored(client)
    assert all(isinstance(item, moto_items.PackedItem) for item in items)
    assert sum(item._attrs is None for item in items) == 3  # all but the two most recently used

    got = client.get_item(TableName="t", Key={"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0000"}})["Item"]

    assert got == lot("m1", 0)


def test_an_update_of_a_packed_item_is_kept_when_it_is_packed_again(client):
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
    for n in range(3, 6):  # the updated item is packed again
        client.put_item(TableName="t", Item=lot("m2", n))

    got = client.get_item(TableName="t", Key=key)["Item"]

    assert got["remaining"] == {"N": "90"}
    assert got["source"]["M"]["kind"] == {"S": "return"}


def test_a_cancelled_transaction_leaves_packed_items_as_they_were(client):
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
    refused = {"Put": {"TableName": "t", "Item": lot("m1", 2), "ConditionExpression": "attribute_not_exists(PK)"}}
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=[spend, refused])
    for n in range(4, 7):
        client.put_item(TableName="t", Item=lot("m2", n))

    got = client.get_item(TableName="t", Key={"PK": {"S": "MEMBER#m1"}, "SK": {"S": "LOT#0001"}})["Item"]

    assert got["remaining"] == {"N": "101"}
    assert all(isinstance(item, moto_items.PackedItem) for item in stored(client))


def test_an_index_query_finds_its_partition_among_packed_items_and_unpacks_only_those(client):
    for n in range(6):
        client.put_item(TableName="t", Item=lot(f"m{n}", n, month="2027-11" if n % 2 else "2027-12"))
    # An item moved to another index partition while packed and unpacked in between
    client.update_item(
        TableName="t",
        Key={"PK": {"S": "MEMBER#m0"}, "SK": {"S": "LOT#0000"}},
        UpdateExpression="SET GSI1PK = :m",
        ExpressionAttributeValues={":m": {"S": "EXPIRY#2027-11"}},
    )
    for n in range(6, 9):
        client.put_item(TableName="t", Item=lot(f"m{n}", n, month="2028-01"))
    packed_before = sum(item._attrs is None for item in stored(client))

    page = client.query(
        TableName="t",
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :m",
        ExpressionAttributeValues={":m": {"S": "EXPIRY#2027-11"}},
    )["Items"]

    assert sorted(item["SK"]["S"] for item in page) == ["LOT#0000", "LOT#0001", "LOT#0003", "LOT#0005"]
    unpacked = packed_before - sum(item._attrs is None for item in stored(client))
    assert unpacked <= 4  # the partition's own items (kept packed by the bound of two), never the others


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


def test_a_packed_item_takes_a_fraction_of_what_moto_holds(client, monkeypatch):
    monkeypatch.setattr(moto_bounds, "TRACKED_INSTANCES", 5)  # the dashboard's items are not the table's

    def bytes_per_item(live: int) -> float:
        monkeypatch.setattr(moto_items, "LIVE_ITEMS", live)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300):
            client.put_item(TableName="t", Item=lot(f"m{live}", n))
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return used / 300

    packed, unpacked = bytes_per_item(1), bytes_per_item(10_000)  # packing never frees the other run's

    assert packed < unpacked * 0.6, (packed, unpacked)  # measured: 1.8 KB against 3.9 KB
