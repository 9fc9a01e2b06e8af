"""What the local stack's moto keeps stays bounded, and behaves as before (infra/local/moto_bounds.py, D-046)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodbstreams.models import dynamodbstreams_backends

from infra.local import moto_bounds

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def table():
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def put(pk: str, n: int) -> dict:
    return {"Put": {"TableName": "t", "Item": {"PK": {"S": pk}, "SK": {"S": "A"}, "n": {"N": str(n)}}}}


def stream_records(client) -> list[dict]:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]


def test_a_cancelled_transaction_restores_its_items_and_stream_without_copying_the_table(table):
    table.transact_write_items(TransactItems=[put("a", 1)])
    moto_table = dynamodb_backends[ACCOUNT][REGION].tables["t"]
    update = {
        "Update": {
            "TableName": "t",
            "Key": {"PK": {"S": "a"}, "SK": {"S": "A"}},
            "UpdateExpression": "SET n = :two",
            "ExpressionAttributeValues": {":two": {"N": "2"}},
        }
    }
    refused = {**put("c", 3)["Put"], "ConditionExpression": "attribute_exists(PK)"}
    with pytest.raises(table.exceptions.TransactionCanceledException):
        table.transact_write_items(TransactItems=[update, put("b", 2), {"Put": refused}])
    assert dynamodb_backends[ACCOUNT][REGION].tables["t"] is moto_table  # rolled back in place, not swapped
    items = table.scan(TableName="t")["Items"]
    assert [(i["PK"]["S"], i["n"]["N"]) for i in items] == [("a", "1")]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["PK"]["S"]) for r in stream_records(table)] == [("INSERT", "a")]
    table.transact_write_items(TransactItems=[put("d", 4)])  # and the stream goes on after it
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in stream_records(table)] == ["a", "d"]


def test_model_instances_are_tracked_for_the_dashboard_only_up_to_a_bound(table):
    for n in range(3 * moto_bounds.TRACKED_INSTANCES):
        table.put_item(TableName="t", Item={"PK": {"S": f"p{n}"}, "SK": {"S": "A"}})
    assert len(Item.instances_tracked) <= 2 * moto_bounds.TRACKED_INSTANCES  # moto: 3,000 and growing


def test_a_stream_keeps_its_newest_records_with_their_sequence_numbers(table, monkeypatch):
    monkeypatch.setattr(moto_bounds, "STREAM_MAX_RECORDS", 5)
    for n in range(12):
        table.put_item(TableName="t", Item={"PK": {"S": f"p{n}"}, "SK": {"S": "A"}})
    records = stream_records(table)
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in records] == ["p7", "p8", "p9", "p10", "p11"]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == list(range(numbers[0], numbers[0] + 5)) and records[-1]["dynamodb"]["NewImage"]["PK"] == {
        "S": "p11"
    }


def test_shard_iterators_expire_instead_of_piling_up(table, monkeypatch):
    class Clock:  # a minute passes with every look at the clock
        now = 0.0

        def monotonic(self) -> float:
            self.now += 60
            return self.now

    monkeypatch.setattr(moto_bounds, "time", Clock())
    table.put_item(TableName="t", Item={"PK": {"S": "p"}, "SK": {"S": "A"}})
    for _ in range(50):
        assert len(stream_records(table)) == 1
    assert len(dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators) <= 10  # moto: 100, one per call


def test_a_table_query_reads_its_partition_in_order(table):
    for pk, sk in [("m1", "b"), ("m2", "a"), ("m1", "a"), ("m1", "c")]:
        table.put_item(TableName="t", Item={"PK": {"S": pk}, "SK": {"S": sk}})
    found = table.query(TableName="t", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "m1"}})
    assert [i["SK"]["S"] for i in found["Items"]] == ["a", "b", "c"]
    assert table.scan(TableName="t")["Count"] == 4


def test_no_more_than_a_bound_of_shard_iterators_is_kept_however_young(table, monkeypatch):
    monkeypatch.setattr(moto_bounds, "ITERATORS_KEPT", 5)
    table.put_item(TableName="t", Item={"PK": {"S": "p"}, "SK": {"S": "A"}})
    for _ in range(20):  # each reads with a fresh iterator and leaves the next one behind
        assert len(stream_records(table)) == 1
    assert len(dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators) <= 6  # moto: 40
