"""Scheduled work by program (issue 24, D-109): the hourly run's invocation queues one message, a page of
programs queues what is due, each program's work is its own invocation, and a day already done is not
planned again. At a size that would have failed before: 251 programs in 6 tenants, more than two pages (the
old planner sent 72 buckets per program from the schedule's one invocation: 18,072 messages)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from infra.local.template import REGION
from loyalty import clock
from loyalty.domain.config import KINDS
from loyalty.services.program_jobs import JobMark, Progress, next_local, program_jobs
from loyalty.settings import get_settings
from tests.support import POS, SHANGHAI, Api, load_event, order_body

TENANTS, PER_TENANT = 5, 50


def kind_of(body: dict[str, Any]) -> str:
    return next((k for k in ("programsPage", "programDue") if k in body), "bucket")


class Queue:
    """Works a queue one message per invocation (as Lambda would with batch size 1), recording each
    message's kind and the DynamoDB calls its invocation made."""

    def __init__(self, api: Api, aws: Any, function: str, queue: str) -> None:
        from loyalty.store.table import dynamodb_client

        self.function, self.url = api.functions[function], aws.ref(queue)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.calls: Counter[str] = Counter()
        dynamodb_client().meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def work(self) -> list[tuple[str, Counter[str]]]:
        done: list[tuple[str, Counter[str]]] = []
        while received := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages", []):
            (message,) = received
            self.calls = Counter()
            record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"]}
            record |= {"body": message["Body"], "attributes": {"ApproximateReceiveCount": "1"}}
            result = self.function.invoke({"Records": [{**record, "eventSource": "aws:sqs"}]})
            assert result == {"batchItemFailures": []}
            done.append((kind_of(json.loads(message["Body"])), self.calls))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return done


@pytest.fixture
def many_programs(demo) -> list[tuple[str, str]]:
    """250 programs of 5 tenants besides the demo's (PER_TENANT each), all in Shanghai's time zone."""
    from loyalty.services.config import config_service

    config, made = config_service(), []
    for t in range(TENANTS):
        for p in range(PER_TENANT):
            code = f"P{p:03d}"
            program = {"code": code, "name": f"计划 {p}", "timeZone": "Asia/Shanghai"}
            config.create(f"brand{t}", KINDS["program"], None, KINDS["program"].model.model_validate(program))
            made.append((f"brand{t}", code))
    return made


def hourly(api: Api, function: str, event: str) -> dict:
    return api.functions[function].invoke(load_event(event))


@dataclass
class Counting:
    """A job that only records which programs it ran for, and is due again at their next midnight."""

    name: str = "counting"
    ran: list[tuple[str, str]] = field(default_factory=list)

    def queue_url(self) -> str:
        return get_settings().expiry_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        self.ran.append((tenant, program_code))
        now = clock.SystemClock().now()
        return Progress(now.astimezone(SHANGHAI).date(), next_local(now, ZoneInfo("Asia/Shanghai")))


def test_an_hourly_run_over_251_programs_is_one_message_then_pages_then_each_due_program(many_programs, aws):
    from loyalty.store.table import dynamodb_client

    job, jobs = Counting(), program_jobs()
    sqs, url = boto3.client("sqs", region_name=REGION), aws.ref("ExpiryQueue")
    calls: list[str] = []
    dynamodb_client().meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    def work() -> list[tuple[str, list[str]]]:
        """Each message in its own invocation, with the DynamoDB calls it made."""
        done = []
        while received := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in received:
                calls.clear()
                body = json.loads(message["Body"])
                assert jobs.handles(job, body)
                done.append((kind_of(body), list(calls)))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return done

    assert jobs.start(job) == 1  # the schedule's invocation: one message, whatever the number of programs
    done = work()
    assert Counter(kind for kind, _ in done) == {"programsPage": 3, "programDue": 251}  # 100 + 100 + 51
    assert sorted(job.ran) == sorted([("demo", "DEMO"), *many_programs])
    # No invocation's work grows with the tenants: a page is a Query and a BatchGetItem of its marks, a
    # program its mark read and moved
    assert {tuple(c) for kind, c in done if kind == "programsPage"} == {("Query", "BatchGetItem")}
    assert {tuple(c) for kind, c in done if kind == "programDue"} == {("GetItem", "TransactWriteItems")}
    # The same hour again: the pages are read, no program is due
    job.ran.clear()
    jobs.start(job)
    assert Counter(kind for kind, _ in work()) == {"programsPage": 3} and job.ran == []
    # After the programs' midnight: each is due again, once
    clock.advance(timedelta(days=1))
    jobs.start(job)
    assert Counter(kind for kind, _ in work()) == {"programsPage": 3, "programDue": 251}
    assert len(job.ran) == 251


def test_the_expiry_schedule_runs_a_program_in_one_invocation_of_a_bounded_size(demo, api, aws):
    """A program's scheduled expiry run: its program and mark read, one probe per kind and shard (what ended
    by yesterday), its mark moved; the same the next day, with the program cached."""
    queue = Queue(api, aws, "ExpirySweepFunction", "ExpiryQueue")
    assert hourly(api, "ExpirySweepFunction", "expiry_sweep_schedule.json") == {"planned": 1}
    done = queue.work()
    assert [kind for kind, _ in done] == ["programsPage", "programDue"]
    assert done[1][1] == {"GetItem": 2, "Query": 1 + 3 * 8, "TransactWriteItems": 1}  # mark, program, probes
    clock.advance(timedelta(days=1))
    hourly(api, "ExpirySweepFunction", "expiry_sweep_schedule.json")
    done = queue.work()
    assert [kind for kind, _ in done] == ["programsPage", "programDue"]
    assert done[1][1] == {"GetItem": 1, "Query": 3 * 8, "TransactWriteItems": 1}


def test_only_buckets_that_hold_something_are_queued_and_the_lot_expires(demo, api, aws, pipeline):
    """300 points earned yesterday, then a year and a day on the clock: the first run after their expiry
    queues their bucket alone (of the 24 it looks at) and the sweep expires them."""
    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    assert api.call("POST", "/v1/orders", POS, body=order_body("old", 300, days_ago=1))[0] == 202
    pipeline.drain()
    queue = Queue(api, aws, "ExpirySweepFunction", "ExpiryQueue")
    hourly(api, "ExpirySweepFunction", "expiry_sweep_schedule.json")
    queue.work()
    clock.advance(timedelta(days=364))  # earned yesterday, valid 365 days: its last day is today
    hourly(api, "ExpirySweepFunction", "expiry_sweep_schedule.json")
    assert "bucket" not in [kind for kind, _ in queue.work()]
    clock.advance(timedelta(days=1))
    hourly(api, "ExpirySweepFunction", "expiry_sweep_schedule.json")
    assert Counter(kind for kind, _ in queue.work()) == {"programsPage": 1, "programDue": 1, "bucket": 1}
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    points = next(a for a in view["accounts"] if a["pointGroupCode"] == "points")
    assert (points["available"], points["expired"]) == (0, 300)
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "EXPIRY"})
    assert [r["change"] for r in records["items"] if r["pointGroupCode"] == "points"] == [-300]


def test_after_a_clock_moved_weeks_ahead_one_run_reads_what_every_missed_day_left(demo, api, aws):
    """Three weeks with no run (the clock moved on): the program's one run looks at each shard once, through
    yesterday, and its mark says so and when it is due next."""
    from loyalty.store import keys
    from loyalty.store.table import Table

    queue = Queue(api, aws, "TierSweepFunction", "TierQueue")
    hourly(api, "TierSweepFunction", "tier_sweep.json")
    queue.work()
    clock.advance(timedelta(days=20))
    hourly(api, "TierSweepFunction", "tier_sweep.json")
    done = queue.work()
    assert [kind for kind, _ in done] == ["programsPage", "programDue"]
    assert done[1][1]["Query"] == 8  # a probe per shard, whatever the days missed
    mark = Table().get(keys.program_jobs("demo", "DEMO"), "tiers")
    yesterday = (clock.SystemClock().now().astimezone(SHANGHAI) - timedelta(days=1)).date()
    assert mark is not None and mark["through"] == yesterday.isoformat()
    due = datetime.fromisoformat(mark["nextDueAt"]).astimezone(SHANGHAI)
    assert (due.date(), due.hour, due.minute) == (yesterday + timedelta(days=2), 0, 0)  # the next midnight


def test_held_marketing_goes_out_when_the_program_s_release_time_comes_and_not_before(demo, api, aws):
    """The release job (every 5 minutes) is due for a program only when a hold's time has come: the hold
    lists its time on the program's mark (D-109)."""
    from loyalty.services.messages.sending import MessageRequest, message_service
    from loyalty.store import keys
    from loyalty.store.table import Table
    from tests.integration.test_messages import PROMO, Outbox, approved, member, records, switch_on

    outbox = Outbox()
    approved(api, PROMO)
    switch_on(api, quietHours={"start": "21:00:00", "end": "09:00:00"})
    member_id = member(api, "13900139008", opted_in=True)
    evening = next_local(clock.SystemClock().now(), ZoneInfo("Asia/Shanghai"), time(22, 30))
    clock.move_to(evening)
    request = MessageRequest("demo", "DEMO", "promo", member_id, "test#quiet", {"campaignName": "会员日"})
    assert message_service().deliver(request) == "held"
    queue = Queue(api, aws, "MessagesFunction", "MessageQueue")

    def every_five_minutes() -> list[str]:
        hourly(api, "MessagesFunction", "messages_schedule.json")
        return [kind for kind, _ in queue.work()]

    every_five_minutes()  # the program's first run of each job (nothing due): its marks are written
    clock.move_to(evening.replace(hour=23))
    assert every_five_minutes() == ["programsPage", "programsPage"]  # the release and daily jobs: nothing due
    assert outbox.of("sms") == []
    clock.move_to((evening + timedelta(days=1)).replace(hour=9, minute=1))
    assert "programDue" in every_five_minutes()
    assert len(outbox.of("sms")) == 1 and records(api, member_id)[0]["status"] == "sent"
    mark = Table().get(keys.program_jobs("demo", "DEMO"), "release")
    assert mark is not None and len(mark["waiting"]) == 1  # kept five minutes, for a hold the index showed late
    clock.advance(timedelta(minutes=6))
    every_five_minutes()
    mark = Table().get(keys.program_jobs("demo", "DEMO"), "release")
    assert mark is not None and "waiting" not in mark and len(outbox.of("sms")) == 1
