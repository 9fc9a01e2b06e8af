"""Adding a function, route, queue or schedule to a template is all the local stack needs (issue 2, item 3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.e2e.conftest import Stack, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-fixture")]
FIXTURE = Path(__file__).parent / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def fixture_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("fixture"), "--template", str(FIXTURE), "--no-seed")


def client(stack: Stack, service: str):
    return boto3.client(
        service,
        endpoint_url=stack.info["emulatorEndpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def records(stack: Stack, kind: str) -> list[str]:
    items = client(stack, "dynamodb").query(
        TableName="Records", KeyConditionExpression="PK = :k", ExpressionAttributeValues={":k": {"S": kind}}
    )["Items"]
    return [item["value"]["S"] for item in items]


def wait_for(condition, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def test_routes_are_served_with_their_authorizer_and_path_parameters(fixture_stack):
    status, body = fixture_stack.request("GET", "/things/42", headers={"authorization": "let-me-in"})
    assert status == 200 and body == {"route": "GET /things/{id}", "id": "42", "caller": {"who": "tester"}}
    assert fixture_stack.request("GET", "/things/42", headers={"authorization": "no"})[0] == 403
    assert fixture_stack.request("GET", "/things/42")[0] == 401
    assert fixture_stack.request("POST", "/open/7")[1]["id"] == "7"  # Auth: NONE
    assert fixture_stack.request("DELETE", "/things/42", headers={"authorization": "let-me-in"})[0] == 404


def test_queues_are_polled_with_partial_failures_and_redrive_to_the_dead_letter_queue(fixture_stack):
    sqs = client(fixture_stack, "sqs")
    queues = fixture_stack.info["queues"]
    for body in ("one", "poison", "two"):
        sqs.send_message(QueueUrl=queues["Work"], MessageBody=body)
    assert wait_for(lambda: sorted(records(fixture_stack, "sqs")) == ["one", "two"])
    # The poison message failed alone; after maxReceiveCount = 2 receives it sits in the DLQ
    dead = wait_for(lambda: sqs.receive_message(QueueUrl=queues["WorkDlq"]).get("Messages"))
    assert [m["Body"] for m in dead] == ["poison"]
    assert sorted(records(fixture_stack, "sqs")) == ["one", "two"]  # and the good ones ran once


def test_schedules_are_listed_and_can_be_run_now(fixture_stack):
    assert fixture_stack.info["schedules"] == ["nightly-tick"]
    status, answer = fixture_stack.request("POST", "/_local/schedules/nightly-tick")
    assert status == 200 and answer["result"] == {"ticked": True}
    assert records(fixture_stack, "schedule") == ["Scheduled Event"]
    assert fixture_stack.request("POST", "/_local/schedules/nope")[0] == 404
