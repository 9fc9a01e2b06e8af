"""Faults (issue 5, reliability item 2): throttling, transaction conflicts, timeouts before a call and
timeouts after a committed write, at random points of the store layer, and queue consumers that crash after
their work but before the message is deleted. The same scenario run with and without faults must end in
the same state, reconciled, with nothing parked in a dead-letter queue.

Clients behave as the API asks: a 5xx or a 409 CONCURRENT_UPDATE is sent again with the same
Idempotency-Key. Queues redeliver at once (visibility timeout 0) so the test needs no waiting.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from infra.local.template import REGION
from infra.redrive import redrive
from loyalty.store import table as table_module
from tests.conftest import Pipeline
from tests.support import OPERATOR, POS, SHANGHAI, TEMPLATE, Api, emulated_account, forget_answers, order_body

WRITES = {"transact_write_items", "put_item", "update_item", "delete_item"}
CALLS = WRITES | {"get_item", "query", "batch_get_item", "scan"}


class FaultyClient:
    """The DynamoDB client with faults: before a call (throttled, a transaction conflict, a connect timeout)
    nothing happens; after a write (a read timeout) the write has happened but the caller cannot know."""

    def __init__(self, client: Any, chance: random.Random, rate: float) -> None:
        self._client, self._chance, self._rate = client, chance, rate
        self.injected: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name not in CALLS:
            return call

        def faulty(**request: Any) -> Any:
            if self._chance.random() < self._rate:
                raise self._before(name, request)
            response = call(**request)
            if name in WRITES and self._chance.random() < self._rate:
                self.injected["timeout after commit"] += 1
                raise ReadTimeoutError(endpoint_url="https://dynamodb")
            return response

        return faulty

    def _before(self, name: str, request: dict[str, Any]) -> Exception:
        kinds = ["throttled", "connect timeout"] + (["conflict"] if name == "transact_write_items" else [])
        kind = "conflict" if "conflict" in kinds and not self.injected["conflict"] else self._chance.choice(kinds)
        self.injected[kind] += 1
        if kind == "connect timeout":
            return ConnectTimeoutError(endpoint_url="https://dynamodb")
        code = {"throttled": "ThrottlingException", "conflict": "TransactionCanceledException"}[kind]
        error: dict[str, Any] = {"Error": {"Code": code, "Message": kind}}
        if kind == "conflict":
            error["CancellationReasons"] = [{"Code": "TransactionConflict"}] * len(request["TransactItems"])
        return ClientError(error, name)


@contextmanager
def stack(faults: FaultyClient | None) -> Iterator[tuple[Api, Pipeline]]:
    """A fresh moto account with the template's resources and the demo tenant; queues redeliver at once."""
    with emulated_account() as resolver:
        from infra.local.seed import seed_demo_tenant

        seed_demo_tenant()
        sqs = boto3.client("sqs", region_name=REGION)
        for url in sqs.list_queues()["QueueUrls"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
        api = Api()
        pipeline = Pipeline(resolver, api)
        real = table_module.dynamodb_client
        if faults:
            faults._client = real()
            table_module.Table.client = property(lambda self: self._client or faults)  # type: ignore[method-assign]
            for poller in pipeline.pollers:
                if hasattr(poller, "sqs"):
                    poller.sqs = CrashBeforeAck(poller.sqs, faults)
        try:
            yield api, pipeline
        finally:
            table_module.Table.client = property(lambda self: self._client or real())  # type: ignore[method-assign]


class CrashBeforeAck:
    """A queue consumer that sometimes dies after its work, before deleting the messages it did."""

    def __init__(self, sqs: Any, faults: FaultyClient) -> None:
        self._sqs, self._faults = sqs, faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def delete_message_batch(self, **request: Any) -> Any:
        first = not self._faults.injected["crash before ack"]  # every run loses at least one acknowledgement
        if self._faults._rate and (first or self._faults._chance.random() < self._faults._rate * 4):
            self._faults.injected["crash before ack"] += 1
            return {"Successful": [], "Failed": []}
        return self._sqs.delete_message_batch(**request)


def call(api: Api, method: str, path: str, principal: dict, body: Any = None, key: str | None = None) -> tuple:
    """A well-behaved client: a 5xx or CONCURRENT_UPDATE is sent again, with the same Idempotency-Key."""
    for _ in range(40):
        headers = {"Idempotency-Key": key} if key else None
        status, answer = api.call(method, path, principal, body=body, headers=headers)
        retry = status >= 500 or (status == 409 and answer.get("code") in ("CONCURRENT_UPDATE", "REQUEST_IN_PROGRESS"))
        if not retry:
            return status, answer
    raise AssertionError(f"{method} {path} kept failing: {status} {answer}")


def scenario(api: Api, pipeline: Pipeline) -> tuple[list[str], str]:
    """Members register, buy, spend, return, claim and use coupons; returns the members and the rule."""
    members = []
    for n in range(3):
        body = {"programCode": "DEMO", "phone": f"1390000000{n}"}
        status, member = call(api, "POST", "/v1/members", POS, body, key=f"register-{n}")
        assert status == 201, member
        members.append(member["id"])
    for n in range(3):
        for number, amount in ((f"O{n}A", 300 + 100 * n), (f"O{n}B", 1200)):
            body = order_body(number, amount, member={"phone": f"1390000000{n}"})
            assert call(api, "POST", "/v1/orders", POS, body, key=number)[0] in (200, 202)  # 200: a repeat
    pipeline.drain()
    for n, member in enumerate(members):
        spend = {"pointGroupCode": "points", "points": 100 + n, "purpose": "gift"}
        for attempt in range(2):
            status, spent = call(
                api, "POST", f"/v1/members/{member}/redemptions", POS, spend, key=f"spend-{n}-{attempt}"
            )
            assert status == 201, spent
    returned_at = datetime.now(SHANGHAI).replace(microsecond=0).isoformat()
    back = {"returnNo": "R0", "originalOrderNo": "O0B", "returnedAt": returned_at, "wholeOrder": True}
    assert call(api, "POST", "/v1/returns", POS, back, key="R0")[0] in (200, 202)
    rules = call(api, "GET", "/v1/admin/coupon-rules", OPERATOR)[1]["items"]
    rule = rules[0]["ruleId"]
    codes = []
    for n, member in enumerate(members):
        status, coupon = call(api, "POST", f"/v1/members/{member}/coupons", POS, {"ruleId": rule}, key=f"claim-{n}")
        assert status == 201, coupon
        codes.append(coupon["code"])
    use = {"codes": [codes[1]], "orderNo": "O1B", "storeCode": "SH001", "orderAmount": "1200"}
    assert (
        call(api, "POST", "/v1/coupons/redemptions", POS, use, key="use-1")[0] == 201
    )  # a replay answers as the first
    pipeline.drain()
    return members, rule


def summary(api: Api, members: list[str], rule: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for n, member in enumerate(members):
        _, view = call(api, "GET", f"/v1/members/{member}", POS)
        accounts = {a["pointGroupCode"]: (a["cumulative"], a["available"], a["expired"]) for a in view["accounts"]}
        _, records = call(api, "GET", f"/v1/members/{member}/point-records", POS)
        coupons = call(api, "GET", f"/v1/members/{member}/coupons", POS)[1]["items"]
        kinds = Counter((r["type"], r["pointGroupCode"]) for r in records["items"])
        state[f"member {n}"] = (view["tier"]["code"], accounts, dict(kinds), sorted(c["status"] for c in coupons))
    _, board = call(api, "GET", f"/v1/admin/coupon-rules/{rule}/dashboard", OPERATOR)
    state["coupons"] = {k: board[k] for k in ("remaining", "issued", "claimers", "used", "discountTotal")}
    return state


def redrive_until_settled(pipeline: Pipeline) -> int:
    """What an operator does once the faults are over: move dead letters back (infra.redrive), let them run."""
    sqs = boto3.client("sqs", region_name=REGION)
    moved_in_all = 0
    for _ in range(5):
        pipeline.drain()
        moved = sum(
            redrive(sqs, url)
            for url in sqs.list_queues()["QueueUrls"]
            if url.endswith("DeadLetterQueue") and sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls")
        )
        moved_in_all += moved
        if not moved:
            return moved_in_all
    raise AssertionError("dead letters keep coming back")


@pytest.mark.parametrize("seed", [7, 2026])
def test_every_operation_ends_exactly_once_under_injected_faults(seed):
    from loyalty.services.reconciliation import reconciler

    with stack(None) as (api, pipeline):
        expected = summary(api, *scenario(api, pipeline))
    faults = FaultyClient(None, random.Random(seed), rate=0.15)
    with stack(faults) as (api, pipeline):
        found = scenario(api, pipeline)
        faults._rate = 0
        redriven = redrive_until_settled(pipeline)
        found = summary(api, *found)
        report = reconciler().run()
        redriven = redrive_until_settled(pipeline)
    assert sum(faults.injected.values()) >= 20 and len(faults.injected) == 5, faults.injected
    assert found == expected
    assert (report.members, report.differences) == (3, [])
    print(f"faults injected {dict(faults.injected)}; messages redriven from dead-letter queues: {redriven}")


def test_a_message_that_keeps_failing_reaches_the_dead_letter_queue_and_the_command_moves_it_back():
    policy = TEMPLATE.of_type("AWS::SQS::Queue")["OrderQueue"]["Properties"]["RedrivePolicy"]
    with stack(None) as (api, pipeline):
        sqs = boto3.client("sqs", region_name=REGION)
        queue, dead = (sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in ("OrderQueue", "OrderDeadLetterQueue"))
        accrual = api.functions["AccruePointsFunction"]
        received = []
        real_invoke = accrual.invoke
        accrual.invoke = lambda event: received.append(len(event["Records"])) or real_invoke(event)  # type: ignore[method-assign]
        poison = '{"detail": {"tenant": "demo", "order": {"orderNo": "no such order"}}}'
        sqs.send_message(QueueUrl=queue, MessageBody=poison)
        pipeline.drain()
        assert len(received) == policy["maxReceiveCount"] == 5
        moved = redrive(sqs, dead)
        (back,) = sqs.receive_message(QueueUrl=queue)["Messages"]
        left = sqs.receive_message(QueueUrl=dead).get("Messages", [])
    assert (moved, back["Body"], left) == (1, poison, [])


def test_a_retry_after_a_lost_answer_gets_the_first_member_and_another_body_is_refused(demo, api):
    """The answer of a registration was lost and Powertools' record with it (the call raised after the
    commit); the marker written with the member answers the retry."""
    body = {"programCode": "DEMO", "phone": "13900000009"}
    headers = {"Idempotency-Key": "lost-answer"}
    status, first = api.call("POST", "/v1/members", POS, body=body, headers=headers)
    assert (status, forget_answers("demo")) == (201, 1)
    status, again = api.call("POST", "/v1/members", POS, body=body, headers=headers)
    assert (status, again["id"], forget_answers("demo")) == (201, first["id"], 1)
    status, refused = api.call("POST", "/v1/members", POS, body={**body, "name": "张三"}, headers=headers)
    assert (status, refused["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_a_spend_and_a_claim_whose_answers_were_lost_happen_once(demo, api, pipeline):
    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    assert api.call("POST", "/v1/orders", POS, body=order_body("L1", 500))[0] == 202
    pipeline.drain()
    spend = {"pointGroupCode": "points", "points": 120, "purpose": "gift"}
    path, headers = f"/v1/members/{member['id']}/redemptions", {"Idempotency-Key": "spend-once"}
    spent = []
    for _ in range(2):  # each time, the answer is lost: Powertools' record goes, as when a call raised
        forget_answers("demo")
        spent.append(api.call("POST", path, POS, body=spend, headers=headers)[1]["id"])
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    available = next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")
    assert (spent[0] == spent[1], available) == (True, 500 - 120)
    rules = api.call("GET", "/v1/admin/coupon-rules", OPERATOR)[1]["items"]
    claim = (f"/v1/members/{member['id']}/coupons", {"ruleId": rules[0]["ruleId"]}, {"Idempotency-Key": "claim-once"})
    codes = []
    for _ in range(2):
        forget_answers("demo")
        codes.append(api.call("POST", claim[0], POS, body=claim[1], headers=claim[2])[1]["code"])
    _, board = api.call("GET", f"/v1/admin/coupon-rules/{rules[0]['ruleId']}/dashboard", OPERATOR)
    assert (codes[0] == codes[1], board["issued"]) == (True, 1)
