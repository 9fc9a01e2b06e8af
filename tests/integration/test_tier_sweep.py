"""The tier sweep (issue 3, item 6): kept (保级) or lowered (降级) when a tier ends; accumulators reset."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3

from loyalty.clock import FixedClock
from loyalty.services.program_jobs import program_jobs
from loyalty.services.sweeps import Bucket
from loyalty.services.tier_sweep import tier_sweep_service
from tests.support import POS, Api, load_event

SHANGHAI = timezone(timedelta(hours=8))


def run_sweep(aws, at: datetime) -> int:
    """Plan and work off the tier queue as of `at` (the handlers run on the real clock)."""
    service = tier_sweep_service(clock=FixedClock(at))
    jobs = program_jobs(service.table, service.clock)
    jobs.start(service)  # the schedule: pages of programs, then each due program, through the queue
    sqs, url, changed = boto3.client("sqs", region_name="us-east-1"), aws.ref("TierQueue"), 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            if not jobs.handles(service, json.loads(message["Body"])):
                changed += service.sweep(Bucket.from_message(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return changed


def tier_of(api: Api, member_id: str) -> tuple[str, str, str | None]:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    return view["tier"]["code"], view["tier"]["type"], view["tier"]["validUntil"]


def qualifying(member_id: str) -> int:
    from loyalty.store.member_repo import MemberRepository
    from loyalty.store.table import Table

    items = MemberRepository(Table()).items("demo", member_id)
    return next(i for i in items if i["SK"].endswith("#points"))["qualifying"]


def test_a_gold_member_keeps_gold_then_drops_to_base_a_year_without_points(demo, api, pipeline, aws, captured_events):
    # Given a member upgraded to gold by 1000 qualifying points today
    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": "1000", "paid": "1000", "pointsAmount": "1000"}
    api.call(
        "POST",
        "/v1/orders",
        POS,
        body={
            "programCode": "DEMO",
            "orderNo": "g1",
            "member": {"id": member["id"]},
            "storeCode": "SH001",
            "orderedAt": now.isoformat(),
            "lines": [line],
        },
    )
    pipeline.drain()
    code, kind, until = tier_of(api, member["id"])
    assert (code, kind) == ("gold", "upgrade") and until is not None
    # Nothing is due before the tier ends
    assert run_sweep(aws, now + timedelta(days=100)) == 0
    # When the 365-day validity has ended: 1000 >= gold's lower bound 1000 -> kept, new period, accumulator 0
    ended = datetime.fromisoformat(until) + timedelta(hours=2)
    assert run_sweep(aws, ended) == 1
    code, kind, next_until = tier_of(api, member["id"])
    assert (code, kind) == ("gold", "retention") and next_until > until
    assert qualifying(member["id"]) == 0
    assert run_sweep(aws, ended) == 0  # a rerun finds nothing due
    # A year later with no points: dropped to the highest tier reached, base at least; base never ends
    assert run_sweep(aws, datetime.fromisoformat(next_until) + timedelta(hours=2)) == 1
    assert tier_of(api, member["id"]) == ("base", "downgrade", None)
    changes = [
        (e["detail"]["type"], e["detail"]["to"]) for e in captured_events.drain() if e["detail-type"] == "TierChanged"
    ]
    assert changes == [("upgrade", "gold"), ("retention", "gold"), ("downgrade", "base")]
    # Exactly one valid tier record, and the history reads base, upgrade, retention, downgrade
    status, history = api.call("GET", f"/v1/members/{member['id']}/tiers", POS)
    assert status == 200
    assert [(r["type"], r["code"], r["status"], r.get("tierRuleCode")) for r in history["items"]] == [
        ("BASE", "base", "invalid", None),
        ("UPGRADE", "gold", "invalid", "gold"),  # reached by the rule 金卡会员条件 (code gold, 1000)
        ("RETENTION", "gold", "invalid", "gold"),
        ("DOWNGRADE", "base", "valid", None),  # the base tier needs no rule
    ]


def test_the_scheduled_event_starts_a_walk_over_the_programs_through_the_queue(demo, api, aws):
    """The schedule's invocation queues the first page of programs and nothing else (D-109)."""
    response = api.functions["TierSweepFunction"].invoke(load_event("tier_sweep.json"))
    assert response == {"planned": 1}
    (message,) = boto3.client("sqs", region_name="us-east-1").receive_message(
        QueueUrl=aws.ref("TierQueue"), MaxNumberOfMessages=10
    )["Messages"]
    assert json.loads(message["Body"]) == {"programsPage": {"job": "tiers", "start": None}}


def test_an_operator_runs_the_tier_sweep_for_a_day(demo, api, aws, pipeline, monkeypatch):
    """POST .../tier-sweeps with a date plans that day's buckets, as the expiry sweep's route does."""
    import loyalty.api.routes.tier_sweep as route
    from tests.support import OPERATOR

    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": "1000", "paid": "1000", "pointsAmount": "1000"}
    order = {"programCode": "DEMO", "orderNo": "g1", "member": {"id": member["id"]}, "storeCode": "SH001"}
    api.call("POST", "/v1/orders", POS, body={**order, "orderedAt": now.isoformat(), "lines": [line]})
    pipeline.drain()
    until = datetime.fromisoformat(tier_of(api, member["id"])[2])
    later = until + timedelta(days=5)  # the operator catches up five days after the tier ended
    service = tier_sweep_service(clock=FixedClock(later))
    monkeypatch.setattr(route, "service", lambda: service)
    path = "/v1/admin/programs/DEMO/tier-sweeps"
    tomorrow = (later.astimezone(SHANGHAI) + timedelta(days=1)).date().isoformat()
    status, problem = api.call("POST", path, OPERATOR, body={"date": tomorrow})
    assert (status, problem["code"], problem["field"]) == (422, "FUTURE_DATE", "/date")
    assert api.call("POST", path, POS, body={})[0] == 403
    day = (until.astimezone(SHANGHAI) + timedelta(days=1)).date().isoformat()  # the schedule's run that day
    status, accepted = api.call("POST", path, OPERATOR, body={"date": day})
    assert (status, accepted) == (202, {"programCode": "DEMO", "buckets": 8})  # a bucket per shard
    sqs, url, changed = boto3.client("sqs", region_name="us-east-1"), aws.ref("TierQueue"), 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            changed += service.sweep(Bucket.from_message(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert changed == 1 and tier_of(api, member["id"])[:2] == ("gold", "retention")  # 1000 keeps gold
