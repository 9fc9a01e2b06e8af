"""Audiences and batch campaigns (issue 14): a condition tree previewed and frozen by a parallel scan fanned
through the campaign queue, and a batch campaign run to the frozen list page by page, each member once, with
a result per member, pause and resume between pages, a CSV report and a one-time launch schedule; over the
template's handlers on moto, the queues run by the local stack's pollers."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import boto3
import pytest

from infra.local.scheduler import OneTimeSchedules
from infra.local.template import REGION
from loyalty.store import keys
from loyalty.store.table import Table
from tests.integration.test_campaigns import points, register
from tests.integration.test_coupons import APPROVER
from tests.support import OPERATOR, SHANGHAI, Api, http_event, with_points_budget

NOW = datetime.now(SHANGHAI).replace(microsecond=0)
BASE_TIER = {"code": "base", "name": "普通会员", "order": 1, "base": True, "validity": {"type": "none"}}
GOLD_OR_TAGGED = {
    "programCode": "DEMO",
    "name": "金卡或高净值",
    "condition": {
        "all": [
            {"any": [{"attribute": "tier", "values": ["gold"]}, {"attribute": "tags", "values": ["high-value"]}]},
            {"not": {"attribute": "status", "values": ["cancelled"]}},
        ]
    },
}


def batch_campaign(audience_id: str, **more) -> dict:
    return {
        "programCode": "DEMO",
        "name": "金卡回馈 100 积分",
        "kind": "batch",
        "audienceId": audience_id,
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}],
        "startsAt": (NOW - timedelta(days=1)).isoformat(),
        "endsAt": (NOW + timedelta(days=30)).isoformat(),
        "costCenterCode": "marketing",
        **more,
    }


def tag(api: Api, member_id: str, code: str = "high-value") -> None:
    assert api.call("PUT", f"/v1/admin/members/{member_id}/tags/{code}", OPERATOR)[0] in (200, 201, 204)


def frozen_audience(api: Api, pipeline, body: dict) -> dict:
    status, draft = api.call("POST", "/v1/admin/audiences", OPERATOR, body=body)
    assert status == 201, draft
    path = f"/v1/admin/audiences/{draft['audienceId']}"
    status, enabling = api.call("POST", f"{path}/enable", OPERATOR)
    assert (status, enabling["status"]) == (202, "freezing"), enabling
    pipeline.drain()
    _, audience = api.call("GET", path, OPERATOR)
    assert audience["status"] == "frozen", audience
    return audience


def approved(api: Api, body: dict) -> str:
    status, draft = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(body))
    assert status == 201, draft
    path = f"/v1/admin/campaigns/{draft['campaignId']}"
    assert api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})[0] == 200
    status, view = api.call("POST", f"{path}/approve", APPROVER, body={"comment": "同意"})
    assert status == 200, view
    return str(draft["campaignId"])


def campaign(api: Api, campaign_id: str) -> dict:
    return api.call("GET", f"/v1/admin/campaigns/{campaign_id}", OPERATOR)[1]


def test_a_preview_reads_its_tenant_s_members_only_however_many_another_tenant_has(demo, api, pipeline):
    """Issue 24: a preview scanned the whole table (every tenant's items). It reads the shards of its tenant's
    member index and each of those members once: 2 members here, 300 in another tenant."""
    from loyalty.domain.config import KINDS
    from loyalty.domain.members import Registration
    from loyalty.services.config import config_service
    from loyalty.services.members import member_service
    from loyalty.store.table import dynamodb_client

    program = KINDS["program"].model.model_validate({"code": "BIG", "name": "大品牌", "timeZone": "Asia/Shanghai"})
    config_service().create("bigbrand", KINDS["program"], None, program)
    config_service().create("bigbrand", KINDS["tier"], "BIG", KINDS["tier"].model.model_validate(BASE_TIER))
    members = member_service()
    for n in range(300):
        members.register(
            "bigbrand", "POS", Registration.model_validate({"programCode": "BIG", "phone": f"1390000{n:04d}"})
        )
    mine = [register(api, f"1370000000{i}") for i in range(2)]
    tag(api, mine[0])
    status, draft = api.call("POST", "/v1/admin/audiences", OPERATOR, body=GOLD_OR_TAGGED)
    assert status == 201, draft
    pipeline.drain()  # the registrations' events, before counting
    calls: list[str] = []
    dynamodb_client().meta.events.register(
        "before-call.dynamodb.*",
        lambda model, params, **_: calls.append(model.name) if model.name in ("Query", "Scan") else None,
    )
    api.call("POST", f"/v1/admin/audiences/{draft['audienceId']}/previews", OPERATOR)
    pipeline.drain()
    _, previewed = api.call("GET", f"/v1/admin/audiences/{draft['audienceId']}", OPERATOR)
    preview = previewed["preview"]
    assert (preview["membersScanned"], preview["matched"], preview["sample"]) == (2, 1, [mine[0]])
    assert "Scan" not in calls
    assert calls.count("Query") <= 8 + 2 + 2  # the 8 shards, the 2 members, the program read once or twice


def test_a_preview_counts_and_names_who_the_tree_finds_and_enabling_freezes_them(demo, api, pipeline):
    tagged = [register(api, f"1370000000{i}") for i in range(3)]
    others = [register(api, f"1370000001{i}") for i in range(4)]
    for member_id in tagged:
        tag(api, member_id)
    status, draft = api.call("POST", "/v1/admin/audiences", OPERATOR, body=GOLD_OR_TAGGED)
    assert (status, draft["status"]) == (201, "draft")
    path = f"/v1/admin/audiences/{draft['audienceId']}"

    status, started = api.call("POST", f"{path}/previews", OPERATOR)
    assert (status, started["preview"]["status"]) == (202, "running")
    pipeline.drain()
    _, previewed = api.call("GET", path, OPERATOR)
    preview = previewed["preview"]
    assert (preview["status"], preview["matched"], preview["membersScanned"]) == ("done", 3, 7)
    assert sorted(preview["sample"]) == sorted(tagged)
    assert preview["segmentsDone"] == preview["segments"] == 8  # the shards of the tenant's member index
    assert previewed["status"] == "draft" and previewed["count"] is None  # a preview freezes nothing

    assert api.call("POST", f"{path}/enable", OPERATOR)[0] == 202
    pipeline.drain()
    tag(api, others[0])  # after the snapshot: the frozen list does not change
    _, frozen = api.call("GET", path, OPERATOR)
    assert (frozen["status"], frozen["count"], frozen["snapshot"]["matched"]) == ("frozen", 3, 3)
    assert frozen["frozenAt"] is not None

    status, problem = api.call("PUT", path, OPERATOR, body=GOLD_OR_TAGGED)
    assert (status, problem["code"], problem["audienceStatus"]) == (409, "AUDIENCE_STATUS", "frozen")
    status, problem = api.call("POST", f"{path}/enable", OPERATOR)
    assert (status, problem["code"]) == (409, "AUDIENCE_STATUS")
    status, copy = api.call("POST", f"{path}/copy", OPERATOR)
    assert (status, copy["status"], copy["audience"]["name"]) == (201, "draft", "金卡或高净值 (副本)")
    assert copy["audience"]["condition"]["all"][1] == GOLD_OR_TAGGED["condition"]["all"][1]


def test_an_audience_excluding_another_and_reading_behaviour(demo, api, pipeline):
    vip = register(api, "13700000020")
    tag(api, vip)
    plain = register(api, "13700000021")
    first = frozen_audience(api, pipeline, {**GOLD_OR_TAGGED, "name": "高净值"})
    rest = {
        "programCode": "DEMO",
        "name": "除高净值外, 30 天内未购",
        "condition": {
            "all": [
                {"not": {"attribute": "audience", "audienceId": first["audienceId"]}},
                {"not": {"attribute": "orders", "window": {"lastDays": 30}}},
            ]
        },
    }
    second = frozen_audience(api, pipeline, rest)
    assert second["count"] == 1
    shard = keys.audience_members("demo", second["audienceId"], keys.audience_shard(plain))
    listed = [a["audienceId"] for a in api.call("GET", "/v1/admin/audiences", OPERATOR)[1]["items"]]
    assert listed[-2:] == [first["audienceId"], second["audienceId"]]  # after the demo's own draft
    assert shard.endswith(str(keys.audience_shard(plain)))
    assert vip != plain


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"attribute": "tier", "values": ["PLATINUM"]}, "condition/values/0"),
        ({"all": [{"attribute": "tags", "values": ["no-such-tag"]}]}, "condition/all/0/values/0"),
        ({"not": {"attribute": "points", "pointGroupCode": "stars", "min": 1}}, "condition/not/pointGroupCode"),
        ({"attribute": "audience", "audienceId": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "condition/audienceId"),
    ],
)
def test_an_audience_naming_what_does_not_exist_is_refused_with_a_pointer(demo, api, condition, field):
    status, problem = api.call(
        "POST", "/v1/admin/audiences", OPERATOR, body={"programCode": "DEMO", "name": "x", "condition": condition}
    )
    assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_REFERENCE", f"/{field}")


def test_a_batch_campaign_reaches_each_member_of_its_audience_once(demo, api, pipeline):
    members = [register(api, f"1370000003{i}") for i in range(6)]
    for member_id in members:
        tag(api, member_id)
    frozen_member, opted_out = members[4], members[5]
    audience = frozen_audience(api, pipeline, GOLD_OR_TAGGED)
    api.call("POST", f"/v1/admin/members/{frozen_member}/freeze", OPERATOR, body={"reason": "风控"})
    status, _ = api.call(
        "PATCH", f"/v1/admin/members/{opted_out}", OPERATOR, body={"marketingOptIn": False}, headers={"if-match": '"1"'}
    )
    assert status == 200

    campaign_id = approved(api, batch_campaign(audience["audienceId"]))
    pipeline.drain()

    view = campaign(api, campaign_id)
    assert (view["status"], view["endedReason"]) == ("ended", "completed")
    run = view["run"]
    assert (run["status"], run["total"], run["granted"], run["skipped"], run["done"]) == ("done", 6, 4, 2, 6)
    assert run["skippedBy"] == {"frozen": 1, "optedOut": 1}
    assert [points(api, m) for m in members[:4]] == [100] * 4
    assert view["results"]["pointsGranted"] == 400

    _, page = api.call("GET", f"/v1/admin/campaigns/{campaign_id}/results", OPERATOR, query={"limit": "100"})
    outcomes = {r["memberId"]: (r["outcome"], r.get("reason")) for r in page["items"]}
    assert outcomes[frozen_member] == ("skipped", "frozen") and outcomes[opted_out] == ("skipped", "optedOut")
    assert [outcomes[m] for m in members[:4]] == [("granted", None)] * 4
    report_path = f"/v1/admin/campaigns/{campaign_id}/report"
    answer = api.function_for("GET", report_path).invoke(http_event("GET", report_path, principal=OPERATOR))
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer["body"])))
    assert len(rows) == 6 and {(r["memberId"], r["outcome"], r["reason"]) for r in rows} >= {
        (frozen_member, "skipped", "frozen"),
        (members[0], "granted", ""),
    }

    # an operator's launch after it completed, and a redelivered page, change nothing
    status, problem = api.call("POST", f"/v1/admin/campaigns/{campaign_id}/launch", OPERATOR)
    assert (status, problem["code"]) == (409, "CAMPAIGN_STATUS")
    from loyalty.services.campaigns.batch import BatchPage, batch_runs

    assert batch_runs().run_page(BatchPage("demo", campaign_id, keys.audience_shard(members[0]))) == 0
    assert [points(api, m) for m in members[:4]] == [100] * 4


def test_a_paused_batch_run_parks_its_pages_and_resumes_where_it_stopped(demo, api, pipeline):
    members = [register(api, f"137000004{i:02d}") for i in range(30)]
    for member_id in members:
        tag(api, member_id)
    audience = frozen_audience(api, pipeline, GOLD_OR_TAGGED)
    campaign_id = approved(api, batch_campaign(audience["audienceId"]))
    path = f"/v1/admin/campaigns/{campaign_id}"
    assert api.call("POST", f"{path}/pause", OPERATOR)[1]["status"] == "paused"
    pipeline.drain()
    view = campaign(api, campaign_id)
    assert (view["run"]["status"], view["run"]["done"]) == ("paused", 0)
    assert sum(points(api, m) for m in members) == 0

    _, resumed = api.call("POST", f"{path}/resume", OPERATOR)
    assert resumed["status"] == "running"
    pipeline.drain()
    view = campaign(api, campaign_id)
    assert (view["run"]["status"], view["run"]["granted"], view["status"]) == ("done", 30, "ended")
    assert [points(api, m) for m in members] == [100] * 30


def test_a_scheduled_launch_is_a_one_time_schedule_that_starts_the_run(demo, api, pipeline):
    member_id = register(api, "13700000050")
    tag(api, member_id)
    audience = frozen_audience(api, pipeline, GOLD_OR_TAGGED)
    launch = (NOW + timedelta(hours=2)).replace(tzinfo=None)  # the program's local time
    campaign_id = approved(api, batch_campaign(audience["audienceId"], launchAt=launch.isoformat()))
    assert campaign(api, campaign_id)["run"]["status"] == "waiting"
    scheduler = boto3.client("scheduler", region_name=REGION)
    (summary,) = scheduler.list_schedules(NamePrefix="launch-")["Schedules"]
    schedule = scheduler.get_schedule(Name=summary["Name"])
    assert schedule["ScheduleExpression"] == f"at({launch.isoformat()})"
    assert schedule["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert schedule["ActionAfterCompletion"] == "DELETE" and schedule["Target"]["Arn"].endswith("CampaignEventQueue")

    one_time = OneTimeSchedules(scheduler, boto3.client("sqs", region_name=REGION))
    assert one_time.fire_due(datetime.now(SHANGHAI)) == 0  # not yet
    pipeline.drain()
    assert points(api, member_id) == 0
    assert one_time.fire_due(datetime.now(SHANGHAI) + timedelta(hours=3)) == 1
    pipeline.drain()
    assert points(api, member_id) == 100
    assert scheduler.list_schedules(NamePrefix="launch-")["Schedules"] == []


def test_a_batch_campaign_names_a_frozen_audience_of_its_program(demo, api, pipeline):
    status, draft = api.call("POST", "/v1/admin/audiences", OPERATOR, body=GOLD_OR_TAGGED)
    body = batch_campaign(draft["audienceId"])
    status, created = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(body))
    assert status == 201, created  # a draft may name an audience still being built
    path = f"/v1/admin/campaigns/{created['campaignId']}"
    api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})
    status, problem = api.call("POST", f"{path}/approve", APPROVER, body={"comment": "同意"})
    assert (status, problem["code"], problem["field"]) == (409, "AUDIENCE_NOT_FROZEN", "/audienceId")
    unknown = batch_campaign("01JAAAAAAAAAAAAAAAAAAAAAAA")
    status, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(unknown))
    assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_REFERENCE", "/audienceId")
    both = {**body, "trigger": {"type": "registration"}}
    status, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(both))
    assert (status, [e["field"] for e in problem["errors"]]) == (422, ["/audienceId"])


def test_a_pause_between_pages_stops_the_run_and_a_resume_finishes_it_each_member_once(
    demo, api, pipeline, monkeypatch
):
    from loyalty.services.campaigns import batch

    monkeypatch.setattr(batch, "PAGE", 2)  # pages of 2: each shard's run is several pages
    members = [register(api, f"137000006{i:02d}") for i in range(40)]
    for member_id in members:
        tag(api, member_id)
    audience = frozen_audience(api, pipeline, GOLD_OR_TAGGED)
    campaign_id = approved(api, batch_campaign(audience["audienceId"]))
    campaign_queue = next(p for p in pipeline.pollers if getattr(p, "queue_url", "").endswith("CampaignEventQueue"))
    assert campaign_queue.poll_once() == 8  # the first page of each shard, each sending its next
    path = f"/v1/admin/campaigns/{campaign_id}"
    assert api.call("POST", f"{path}/pause", OPERATOR)[1]["status"] == "paused"
    pipeline.drain()
    run = campaign(api, campaign_id)["run"]
    assert run["status"] == "paused" and 8 <= run["done"] < 40
    parked = [i for i in pipeline_items(campaign_id) if i["SK"].startswith("BATCH_PARKED#")]
    assert 1 <= len(parked) <= 8
    assert sum(points(api, m) for m in members) == 100 * run["done"]

    api.call("POST", f"{path}/resume", OPERATOR)
    pipeline.drain()
    view = campaign(api, campaign_id)
    assert (view["status"], view["run"]["status"], view["run"]["granted"]) == ("ended", "done", 40)
    assert [points(api, m) for m in members] == [100] * 40
    assert [i for i in pipeline_items(campaign_id) if i["SK"].startswith("BATCH_PARKED#")] == []


def pipeline_items(campaign_id: str) -> list[dict]:
    from loyalty.store.table import Table

    return Table().query_all(keys.campaign("demo", campaign_id))


@pytest.mark.parametrize(
    ("sample", "failed"),
    [("campaigns_audience_scan.json", 0), ("campaigns_batch_page.json", 0), ("campaigns_batch_launch.json", 1)],
)
def test_the_sample_messages_of_scans_pages_and_launches_are_handled(demo, api, sample, failed):
    """events/: what the campaign queue carries besides the bus's events. A page of an audience or run that
    is gone (a deleted draft audience) is done with; a launch of a campaign that does not exist is reported,
    so that it ends in the dead-letter queue, not nowhere."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    from tests.support import load_event

    if failed:  # a batch of one that failed whole: the invocation fails, and SQS delivers it again
        with pytest.raises(BatchProcessingError, match="1 individual errors"):
            api.functions["CampaignsFunction"].invoke(load_event(sample))
        return
    assert api.functions["CampaignsFunction"].invoke(load_event(sample)) == {"batchItemFailures": []}


def test_audiences_are_listed_a_page_at_a_time_oldest_first(demo, api):
    created = [
        api.call("POST", "/v1/admin/audiences", OPERATOR, body={**GOLD_OR_TAGGED, "name": f"群组 {n}"})[1]["audienceId"]
        for n in range(2)
    ]
    seen, cursor = [], None
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        status, page = api.call("GET", "/v1/admin/audiences", OPERATOR, query=query)
        assert status == 200 and len(page["items"]) <= 1
        seen += [a["audienceId"] for a in page["items"]]
        if not (cursor := page.get("nextCursor")):
            break
    assert seen[-2:] == created and len(seen) == 3  # the demo's draft first
    status, problem = api.call("GET", "/v1/admin/campaigns", OPERATOR, query={"cursor": cursor or "eyJzayI6IjAxIn0"})
    assert (status, problem["code"]) == (422, "INVALID_CURSOR")  # an audience's cursor is not a campaign's


def test_a_window_past_the_bounds_is_refused_and_a_stored_one_fails_its_run_not_the_queue(aws, demo, api, pipeline):
    """Issue 25: a window ending 9999-12-31 was accepted, then crashed every scan into the dead-letter queue and
    left the audience freezing for good. Now it is 422 at its field; one stored before the bound fails its
    run with the reason, and the operator returns the audience to draft (or deletes it)."""
    register(api, "13700000300")
    far = {"not": {"attribute": "orders", "window": {"from": "2026-01-01", "to": "9999-12-31"}}}
    body = {**GOLD_OR_TAGGED, "condition": {"all": [GOLD_OR_TAGGED["condition"]["all"][0], far]}}
    status, problem = api.call("POST", "/v1/admin/audiences", OPERATOR, body=body)
    assert status == 422 and problem["errors"][0]["field"].endswith("/window/to"), problem
    status, draft = api.call("POST", "/v1/admin/audiences", OPERATOR, body=GOLD_OR_TAGGED)
    path = f"/v1/admin/audiences/{draft['audienceId']}"
    table = Table()
    item = table.get(keys.audience("demo", draft["audienceId"]), keys.AUDIENCE_SK)
    item["audience"]["condition"]["all"][1] = far
    table.put_many([item])  # as stored before the bound: enabling it is refused, not a 500
    status, problem = api.call("POST", f"{path}/enable", OPERATOR)
    assert (status, problem["code"]) == (422, "AUDIENCE_INVALID"), problem
    # stored so while it was being frozen: its scan fails the run, not into the dead-letter queue
    item["audience"]["condition"]["all"][1] = GOLD_OR_TAGGED["condition"]["all"][1]
    table.put_many([item])
    assert api.call("POST", f"{path}/enable", OPERATOR)[0] == 202
    freezing = table.get(keys.audience("demo", draft["audienceId"]), keys.AUDIENCE_SK)
    freezing["audience"]["condition"]["all"][1] = far
    table.put_many([freezing])
    pipeline.drain()

    _, failed = api.call("GET", path, OPERATOR)
    assert (failed["status"], (failed.get("snapshot") or {}).get("status")) == ("failed", "failed"), failed
    assert "9999" in failed["snapshot"]["failure"] or "date" in failed["snapshot"]["failure"]
    sqs = boto3.client("sqs", region_name=REGION)
    dead = aws.physical["CampaignEventDeadLetterQueue"]["Ref"]
    assert sqs.receive_message(QueueUrl=dead).get("Messages", []) == []
    status, drafted = api.call("POST", f"{path}/draft", OPERATOR)
    assert (status, drafted["status"]) == (200, "draft")
    assert api.call("POST", f"{path}/draft", OPERATOR)[1]["code"] == "AUDIENCE_STATUS"  # a draft already
    assert api.call("PUT", path, OPERATOR, body=GOLD_OR_TAGGED)[0] == 200  # editable again
    assert api.call("DELETE", path, OPERATOR)[0] == 204
