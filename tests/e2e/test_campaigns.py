"""Campaigns over HTTP (issue 14, done when): a welcome gift once even when the registration is retried, a
first-purchase coupon not on the second order, a budget that runs out under 30 parallel triggering orders,
exactly the budget granted, and double points on a store group for a weekend, written with the accrual and
reversed on return. On both engines: budgets are conditional writes, and a promotion grows the accrual's
transaction."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loyalty.services.campaigns.promotions import PROMOTIONS_CACHE_SECONDS
from tests.e2e.conftest import KeepAlive
from tests.e2e.test_customer_center import sale
from tests.e2e.test_local_stack import wait_for
from tests.support import with_points_budget

pytestmark = pytest.mark.e2e
NOW = datetime.now(UTC).replace(microsecond=0)


def campaign(name: str, trigger: dict | None, effects: list[dict], **more) -> dict:
    return {
        "programCode": "DEMO",
        "name": name,
        "trigger": trigger,
        "effects": effects,
        "startsAt": (NOW - timedelta(days=1)).isoformat(),
        "endsAt": (NOW + timedelta(days=30)).isoformat(),
        "costCenterCode": "marketing",
        **more,
    }


class Operators:
    def __init__(self, stack) -> None:
        keys = stack.info["apiKeys"]
        self.operator, self.approver = KeepAlive(stack.base, keys["operator"]), KeepAlive(stack.base, keys["approver"])
        self.approver_id = stack.info["apiKeyIds"]["approver"]

    def run(self, body: dict, expect: str = "running") -> str:
        status, draft = self.operator.json("POST", "/v1/admin/campaigns", with_points_budget(body))
        assert status == 201, draft
        path = f"/v1/admin/campaigns/{draft['campaignId']}"
        assert self.operator.json("POST", f"{path}/submit", {"approver": self.approver_id})[0] == 200
        status, approved = self.approver.json("POST", f"{path}/approve", {"comment": "同意"})
        assert (status, approved["status"]) == (200, expect), approved
        return str(draft["campaignId"])

    def end(self, campaign_id: str) -> dict:
        return self.operator.json("POST", f"/v1/admin/campaigns/{campaign_id}/end")[1]

    def get(self, campaign_id: str) -> dict:
        return self.operator.json("GET", f"/v1/admin/campaigns/{campaign_id}")[1]


def points(pos: KeepAlive, member_id: str) -> int:
    _, view = pos.json("GET", f"/v1/members/{member_id}")
    return next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")


def test_a_welcome_gift_is_given_once_even_when_the_registration_is_retried(stack):
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    gift = campaign(
        "新会员入会礼", {"type": "registration"}, [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}]
    )
    campaign_id = operators.run(gift)
    try:
        body = {"programCode": "DEMO", "phone": "13200132001"}
        headers = {"Idempotency-Key": f"welcome-{stack.info['engine']}"}
        first = [pos.call("POST", "/v1/members", body, headers=headers) for _ in range(3)]
        assert {status for status, _, _ in first} == {201} and len({raw for _, _, raw in first}) == 1
        member_id = json.loads(first[0][2])["id"]
        assert wait_for(lambda: points(pos, member_id), lambda p: p == 100) == 100
        view = wait_for(lambda: operators.get(campaign_id), lambda v: v["results"]["participations"] == 1)
        assert (view["results"]["participations"], view["results"]["pointsGranted"]) == (1, 100)
        _, records = pos.json("GET", f"/v1/members/{member_id}/point-records")
        assert [(r["type"], r["change"]) for r in records["items"]] == [("BEHAVIOUR_INCREASE", 100)]
    finally:
        operators.end(campaign_id)


def test_a_first_purchase_coupon_comes_with_the_first_order_and_not_the_second(stack):
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    rules = operators.operator.json("GET", "/v1/admin/coupon-rules")[1]["items"]
    rule_id = next(r["ruleId"] for r in rules if r["status"] == "listed")  # the demo's 满100减20
    campaign_id = operators.run(
        campaign("首购送券", {"type": "firstPurchase"}, [{"type": "issueCoupon", "ruleId": rule_id}])
    )
    try:
        _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13200132002"})
        engine = stack.info["engine"]
        assert pos.json("POST", "/v1/orders", sale(f"fp-1-{engine}", "120", {"id": member["id"]}))[0] == 202
        coupons = wait_for(
            lambda: pos.json("GET", f"/v1/members/{member['id']}/coupons")[1]["items"], lambda c: len(c) == 1
        )
        assert [c["ruleId"] for c in coupons] == [rule_id]
        assert pos.json("POST", "/v1/orders", sale(f"fp-2-{engine}", "120", {"id": member["id"]}))[0] == 202
        wait_for(lambda: pos.json("GET", f"/v1/orders/fp-2-{engine}")[1]["status"], lambda s: s == "accrued")
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p == 240) == 240
        assert len(pos.json("GET", f"/v1/members/{member['id']}/coupons")[1]["items"]) == 1
        _, touched = operators.operator.json("GET", f"/v1/admin/members/{member['id']}/campaigns")
        assert [(p["campaignId"], p["effects"][0]["ruleId"]) for p in touched["items"]] == [(campaign_id, rule_id)]
    finally:
        operators.end(campaign_id)


def test_a_budget_runs_out_under_30_parallel_orders_and_exactly_the_budget_is_granted(stack):
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    bonus = campaign(
        "满100送50 (前5名)",
        {"type": "purchase", "order": {"minAmount": "100"}},
        [{"type": "grantPoints", "pointGroupCode": "points", "points": 50}],
        limits={"budget": {"points": 250}},
    )
    engine = stack.info["engine"]
    members = [
        pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": f"132{engine == 'moto':01d}{n:07d}"})[1]["id"]
        for n in range(30)
    ]
    campaign_id = operators.run(bonus)
    try:

        def order(n: int) -> int:
            client = KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
            return client.json("POST", "/v1/orders", sale(f"budget-{engine}-{n}", "100", {"id": members[n]}))[0]

        with ThreadPoolExecutor(10) as pool:
            assert set(pool.map(order, range(30))) == {202}
        view = wait_for(lambda: operators.get(campaign_id), lambda v: v["status"] == "ended", seconds=90)
        assert (view["endedReason"], view["results"]["remainingPoints"]) == ("budgetSpent", 0)
        assert view["results"]["pointsGranted"] == 250 and view["results"]["participations"] == 5
        balances = wait_for(
            lambda: sorted(points(pos, m) for m in members), lambda b: sum(b) == 30 * 100 + 250, seconds=90
        )
        assert balances == [100] * 25 + [150] * 5
    finally:
        operators.end(campaign_id)


def test_double_points_on_a_store_group_for_a_weekend_come_with_the_accrual_and_go_back_on_return(stack):
    """Orders of last weekend at an offline store (a till that syncs late) get their points twice, in the
    accrual's one transaction; an online order of the weekend does not; a line returned takes back its
    share of both."""
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    shanghai = ZoneInfo("Asia/Shanghai")
    today = datetime.now(shanghai).date()
    saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
    saturday -= timedelta(days=7 if saturday + timedelta(days=2) > today else 0)
    starts = datetime.combine(saturday, datetime.min.time())
    weekend = campaign(
        "线下门店周末双倍积分",
        {"type": "purchase", "order": {"storeGroupCode": "offline"}},
        [{"type": "orderPoints", "pointGroupCode": "points", "multiplier": "2"}],
        limits={"perMember": {"count": 100}},
        startsAt=starts.isoformat(),  # the program's local time
        endsAt=(starts + timedelta(days=2)).isoformat(),
    )
    campaign_id = operators.run(weekend, expect="ended")  # its window is over: orders of it still count
    engine = stack.info["engine"]
    try:
        time.sleep(PROMOTIONS_CACHE_SECONDS + 0.5)  # the accrual function sees approved promotions this late
        _, member = pos.json(
            "POST", "/v1/members", {"programCode": "DEMO", "phone": f"1320{engine == 'moto':01d}132003"}
        )
        at = (starts + timedelta(hours=15)).replace(tzinfo=shanghai).isoformat()
        offline = sale(f"weekend-{engine}", "300", {"id": member["id"]}) | {"orderedAt": at}
        offline["lines"].append(
            {**offline["lines"][0], "lineNo": 2, "receivable": "100", "paid": "100", "pointsAmount": "100"}
        )
        online = sale(f"weekend-web-{engine}", "100", {"id": member["id"]}) | {"orderedAt": at, "storeCode": "WEB"}
        assert pos.json("POST", "/v1/orders", offline)[0] == 202 and pos.json("POST", "/v1/orders", online)[0] == 202
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p == 400 + 400 + 100) == 900
        _, records = pos.json("GET", f"/v1/members/{member['id']}/point-records?pointGroup=points")
        assert sorted((r["type"], r["change"], r.get("campaignId")) for r in records["items"]) == [
            ("TRANSACTION", 100, None),
            ("TRANSACTION", 400, None),
            ("TRANSACTION_PROMOTION", 400, campaign_id),
        ]
        returned = {
            "returnNo": f"weekend-r1-{engine}",
            "originalOrderNo": f"weekend-{engine}",
            "returnedAt": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "lines": [{"lineNo": 1, "quantity": "1"}],
        }
        assert pos.json("POST", "/v1/returns", returned)[0] == 202
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p == 300) == 300  # 300 base + 300 bonus back
        view = operators.get(campaign_id)
        assert (view["results"]["participations"], view["results"]["pointsGranted"]) == (1, 400)
    finally:
        operators.end(campaign_id)


def test_the_birthday_gift_is_given_once_a_year(stack):
    """The hourly schedule (run twice here) gifts the members born today in the program's zone; an
    operator's rerun of the day gives nothing more."""
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    gift = campaign(
        "生日礼 88 积分", {"type": "birthday"}, [{"type": "grantPoints", "pointGroupCode": "points", "points": 88}]
    )
    campaign_id = operators.run(gift)
    engine = stack.info["engine"]
    try:
        born = {"programCode": "DEMO", "phone": f"1320{engine == 'moto':01d}132004", "birthday": f"1992-{today:%m-%d}"}
        _, member = pos.json("POST", "/v1/members", born)
        for _ in range(2):  # it runs hourly: the day's run happens once
            assert stack.request("POST", "/_local/schedules/campaign-days-hourly")[0] == 200
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p == 88, 90) == 88  # four queue hops, a busy CI
        status, accepted = operators.operator.json("POST", f"/v1/admin/campaigns/{campaign_id}/day-runs", {})
        assert (status, accepted["pages"]) == (202, 1)
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p != 88, seconds=3) == 88
        view = wait_for(lambda: operators.get(campaign_id), lambda v: v["results"]["participations"] == 1)
        assert (view["results"]["participations"], view["results"]["pointsGranted"]) == (1, 88)
    finally:
        operators.end(campaign_id)


def test_a_batch_campaign_reaches_an_audience_of_500_once_each_through_a_pause_and_a_resume(stack):
    """500 members tagged in bulk, an audience of the tag frozen by a parallel scan through the queue, and a
    batch campaign launched by its one-time schedule a few seconds after approval: paused before the launch
    (its pages park and nothing moves), resumed, and every member granted exactly once. A pause between the
    pages of a run is tested on moto (tests/integration/test_audiences.py), where pages can be stepped."""
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    operator, engine = operators.operator, stack.info["engine"]
    assert operator.json("POST", "/v1/admin/tags", {"code": "batch500", "name": "群发测试"})[0] == 201
    phones = [f"135{engine == 'moto':01d}{n:07d}" for n in range(500)]
    ids = [pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": phone})[1]["id"] for phone in phones]
    csv = "phone\n" + "\n".join(phones) + "\n"
    _, job = operator.json("POST", "/v1/admin/member-jobs", {"action": "attachTag", "tagCode": "batch500", "csv": csv})
    wait_for(lambda: operator.json("GET", f"/v1/admin/bulk-jobs/{job['jobId']}")[1], lambda r: r["done"] == 500, 120)

    body = {"programCode": "DEMO", "name": "群发测试", "condition": {"attribute": "tags", "values": ["batch500"]}}
    status, audience = operator.json("POST", "/v1/admin/audiences", body)
    assert status == 201, audience
    path = f"/v1/admin/audiences/{audience['audienceId']}"
    assert operator.json("POST", f"{path}/enable")[0] == 202
    frozen = wait_for(lambda: operator.json("GET", path)[1], lambda a: a["status"] == "frozen", 120)
    assert (frozen["count"], frozen["snapshot"]["segmentsDone"]) == (500, 8)  # the member index's shards

    launch = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, microsecond=0) + timedelta(seconds=4)
    gift = campaign(
        "群发 10 积分",
        None,
        [{"type": "grantPoints", "pointGroupCode": "points", "points": 10}],
        kind="batch",
        audienceId=audience["audienceId"],
        launchAt=launch.isoformat(),
    )
    del gift["trigger"]
    campaign_id = operators.run(gift)
    assert operators.get(campaign_id)["run"]["status"] == "waiting"
    status, paused = operator.json("POST", f"/v1/admin/campaigns/{campaign_id}/pause")  # before its launch
    assert (status, paused["status"]) == (200, "paused")
    launched = wait_for(lambda: operators.get(campaign_id)["run"], lambda r: r["launchedAt"] is not None, 30)
    time.sleep(2)  # the launch's pages find it paused and park
    assert (launched["status"], launched["total"], operators.get(campaign_id)["run"]["done"]) == ("paused", 500, 0)
    assert points(pos, ids[0]) == 0

    status, resumed = operator.json("POST", f"/v1/admin/campaigns/{campaign_id}/resume")
    assert (status, resumed["status"]) == (200, "running")
    view = wait_for(lambda: operators.get(campaign_id), lambda v: v["status"] == "ended", 180)
    assert (view["endedReason"], view["run"]["status"], view["run"]["granted"]) == ("completed", "done", 500)
    assert (view["results"]["participations"], view["results"]["pointsGranted"]) == (500, 5000)
    granted, cursor = [], ""
    while cursor is not None:
        _, page = operator.json("GET", f"/v1/admin/campaigns/{campaign_id}/results?limit=100{cursor}")
        granted += [r["memberId"] for r in page["items"] if r["outcome"] == "granted"]
        cursor = f"&cursor={page['nextCursor']}" if page.get("nextCursor") else None
    assert len(granted) == len(set(granted)) == 500 and set(granted) == set(ids)
    assert {points(pos, member_id) for member_id in granted[::25]} == {10}
    status, headers, report = operator.call("GET", f"/v1/admin/campaigns/{campaign_id}/report")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert len(report.decode().splitlines()) == 501


def test_an_upgrade_and_a_check_in_make_members_take_part_over_http(stack):
    """Tier-change and behaviour triggers end to end: an order that lifts a member into gold gives the
    upgrade gift; two check-ins on one day give the check-in bonus once (its limit is per day)."""
    operators, pos = Operators(stack), KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    engine = stack.info["engine"]
    upgrade = campaign(
        "升级金卡礼",
        {"type": "tierChange", "toTierCodes": ["gold"]},
        [{"type": "grantPoints", "pointGroupCode": "points", "points": 200}],
    )
    check_in = campaign(
        "签到加赠",
        {"type": "behaviour", "behaviourTypes": ["checkIn"]},
        [{"type": "grantPoints", "pointGroupCode": "points", "points": 5}],
        limits={"perMember": {"count": 1, "period": "day"}},
    )
    ids = [operators.run(upgrade), operators.run(check_in)]
    try:
        phone = f"1360{engine == 'moto':01d}136001"
        _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": phone})
        assert pos.json("POST", "/v1/orders", sale(f"upgrade-{engine}", "1000", {"id": member["id"]}))[0] == 202
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p == 1000 + 200) == 1200
        assert pos.json("GET", f"/v1/members/{member['id']}")[1]["tier"]["code"] == "gold"
        for n in range(2):
            body = {"behaviourType": "checkIn", "behaviourId": f"ci-{engine}-{n}", "occurredAt": NOW.isoformat()}
            assert pos.json("POST", f"/v1/members/{member['id']}/behaviours", body)[0] in (200, 201)
        assert wait_for(lambda: points(pos, member["id"]), lambda p: p == 1200 + 10 + 5) == 1215
        time.sleep(1)  # the second check-in's campaign event has been handled too: nothing more
        assert points(pos, member["id"]) == 1215
    finally:
        for campaign_id in ids:
            operators.end(campaign_id)
