"""Fixtures: a fresh moto account per test with the resources of template.yaml, and the demo tenant."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    POWERTOOLS_SERVICE_NAME="loyalty",
    POWERTOOLS_METRICS_NAMESPACE="Loyalty",
    POWERTOOLS_LOG_LEVEL="INFO",
)


from infra.local import moto_bounds
from infra.local.template import REGION, Resolver
from tests.support import TEMPLATE, Api, emulated_account, operator_keys_on_record

moto_bounds.install()  # the moto the local stack runs on (D-046)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `--dist loadgroup` a test with an `xdist_group` mark must carry its group in its id, or xdist
    deals it to any worker and each worker starts every engine's stacks (D-118). A pytest that xdist cannot
    group this way (9.2 with xdist 3.8: its issue 1386) fails here instead of running twice as long."""
    if getattr(session.config.option, "loadgroup", False):
        lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if lost:
            raise pytest.UsageError(f"--dist loadgroup did not group {len(lost)} tests, e.g. {lost[0]}")


@pytest.fixture
def aws() -> Iterator[Resolver]:
    with emulated_account() as resolver:
        yield resolver


_seeded: tuple[dict[str, str], list[dict[str, Any]]] | None = None  # the demo's keys and items, per worker


@pytest.fixture
def demo(aws: Resolver) -> dict[str, str]:
    """The demo tenant of the local stack (spec social-hub §4.2, §4.3, §8.1 samples); returns its API keys.
    Seeded once per test worker (1.3 s), then its items written into each test's fresh table (a few batch
    writes): the seed writes DynamoDB items only, so the two give every test the same tenant."""
    global _seeded
    client, table = boto3.client("dynamodb", region_name=REGION), aws.physical["LoyaltyTable"]["Ref"]
    if _seeded is None:
        from infra.local.seed import seed_demo_tenant

        issued = seed_demo_tenant()[0]
        for tenant in ("demo", "other"):
            operator_keys_on_record(tenant)
        pages = client.get_paginator("scan").paginate(TableName=table)
        _seeded = issued, [item for page in pages for item in page["Items"]]
        return issued
    issued, items = _seeded
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return issued


@pytest.fixture
def api(aws: Resolver) -> Api:
    return Api()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the functions log, formatted as in CloudWatch (the Powertools JSON lines)."""
    from loyalty.observability import logger

    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    yield output
    logger._logger.removeHandler(handler)


class Pipeline:
    """Runs the asynchronous paths to the end, with the local stack's own pollers: outbox -> bus ->
    order queue -> accrual, until nothing moves."""

    def __init__(self, resolver: Resolver, api: Api) -> None:
        from infra.local.pollers import QueuePoller, StreamPoller

        sqs = boto3.client("sqs", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        self.pollers: list[Any] = []
        for spec in TEMPLATE.functions():
            for stream in spec.streams:
                self.pollers.append(
                    StreamPoller(
                        stream, api.functions[spec.logical_id], streams, resolver.physical[stream.table]["StreamArn"]
                    )
                )
            for queue in spec.queues:
                physical = resolver.physical[queue.queue]
                self.pollers.append(
                    QueuePoller(queue, api.functions[spec.logical_id], sqs, physical["Ref"], physical["Arn"])
                )

    def drain(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            if not sum(poller.poll_once() for poller in self.pollers):
                return
        raise AssertionError("the pipeline did not settle")


@pytest.fixture
def pipeline(aws: Resolver, api: Api) -> Pipeline:
    return Pipeline(aws, api)


class CapturedEvents:
    """Everything published to the loyalty bus, through a catch-all rule into a queue (moto delivers it).
    `drain` first runs the pipeline, so what the outbox holds has been published."""

    def __init__(self, resolver: Resolver, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        self.url = self.sqs.create_queue(QueueName="captured-events")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = resolver.ref("LoyaltyBus")
        events.put_rule(Name="capture-all", EventBusName=bus, EventPattern=json.dumps({"source": ["loyalty"]}))
        events.put_targets(Rule="capture-all", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def drain(self) -> list[dict[str, Any]]:
        self.pipeline.drain()
        found: list[dict[str, Any]] = []
        while received := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            found += [json.loads(message["Body"]) for message in received]
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
            )
        return found


@pytest.fixture
def captured_events(aws: Resolver, pipeline: Pipeline) -> CapturedEvents:
    return CapturedEvents(aws, pipeline)
