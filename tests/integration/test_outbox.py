"""Domain events through the outbox: written with their change, published from the stream, never lost."""

from __future__ import annotations

import json

import boto3

from infra.local.pollers import StreamPoller, matches
from infra.local.template import REGION
from tests.support import POS, TEMPLATE, load_event

REGISTRATION = {"programCode": "DEMO", "phone": "13800138000", "name": "张三"}


def test_a_refused_change_announces_nothing(demo, api, captured_events):
    assert api.call("POST", "/v1/members", POS, body=REGISTRATION)[0] == 201
    assert api.call("POST", "/v1/members", POS, body=REGISTRATION)[0] == 409
    assert [e["detail-type"] for e in captured_events.drain()] == ["MemberRegistered"]


def test_erasure_is_announced_so_downstream_systems_erase_too(demo, api, captured_events):
    _, member = api.call("POST", "/v1/members", POS, body=REGISTRATION)
    api.call("DELETE", f"/v1/members/{member['id']}/personal-data", POS)
    api.call("DELETE", f"/v1/members/{member['id']}/personal-data", POS)  # a repeat announces nothing more
    published = captured_events.drain()
    assert [e["detail-type"] for e in published] == ["MemberRegistered", "MemberPersonalDataErased"]
    assert published[1]["detail"]["memberId"] == member["id"]
    assert "13800138000" not in json.dumps(published)  # events carry ids, not personal data


def test_the_sample_stream_event_is_published(aws, api, captured_events):
    response = api.functions["PublishEventsFunction"].invoke(load_event("publish_events.json"))
    assert response == {"batchItemFailures": []}
    [published] = captured_events.drain()
    assert published["detail"]["eventId"] == "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def test_an_entry_the_bus_refuses_is_retried_then_parked_in_the_dead_letter_queue(demo, api, aws):
    api.call("POST", "/v1/members", POS, body=REGISTRATION)
    events = boto3.client("events", region_name=REGION)
    events.delete_event_bus(Name=aws.ref("LoyaltyBus"))  # every put now fails
    [source] = [s for spec in TEMPLATE.functions() for s in spec.streams]
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = aws.ref("EventsDeadLetterQueue")
    poller = StreamPoller(
        source,
        api.functions[source.function],
        boto3.client("dynamodbstreams", region_name=REGION),
        aws.physical[source.table]["StreamArn"],
        sqs,
        dlq,
    )
    poller.poll_once()
    [parked] = sqs.receive_message(QueueUrl=dlq).get("Messages", [])
    info = json.loads(parked["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 1


def test_the_stream_filter_lets_only_outbox_inserts_through():
    [pattern] = [json.loads(p) for spec in TEMPLATE.functions() for s in spec.streams for p in s.filters]
    outbox = {"eventName": "INSERT", "dynamodb": {"Keys": {"PK": {"S": "T#t#OUTBOX#1"}, "SK": {"S": "EVENT"}}}}
    assert matches(pattern, outbox)
    assert not matches(pattern, {**outbox, "eventName": "REMOVE"})
    assert not matches(pattern, {"eventName": "INSERT", "dynamodb": {"Keys": {"SK": {"S": "MEMBER"}}}})
    assert matches({"a": [{"prefix": "T#"}]}, {"a": "T#x"}) and not matches({"a": [{"prefix": "T#"}]}, {"a": "x"})
