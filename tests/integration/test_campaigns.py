"""Trigger campaigns (issue 14): drafts and approval, a welcome gift on registration, a first-purchase
coupon, purchase conditions, per-member limits and a budget that ends the campaign; over the template's
handlers on moto, with the bus and queues run by the local stack's pollers."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta

import pytest

from tests.integration.test_coupons import APPROVER, listed_rule
from tests.support import OPERATOR, POS, SHANGHAI, Api, load_event, order_body, with_points_budget

NOW = datetime.now(SHANGHAI).replace(microsecond=0)
WELCOME = {
    "programCode": "DEMO",
    "name": "新会员入会礼",
    "trigger": {"type": "registration"},
    "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}],
    "startsAt": (NOW - timedelta(days=1)).isoformat(),
    "endsAt": (NOW + timedelta(days=30)).isoformat(),
    "costCenterCode": "marketing",
}


def running(api: Api, campaign: dict, expect: str = "running") -> str:
    status, draft = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(campaign))
    assert status == 201, draft
    campaign_id = draft["campaignId"]
    path = f"/v1/admin/campaigns/{campaign_id}"
    assert api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})[0] == 200
    status, approved = api.call("POST", f"{path}/approve", APPROVER, body={"comment": "同意"})
    assert status == 200 and approved["status"] == expect, approved
    return campaign_id


def register(api: Api, phone: str) -> str:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": phone})
    assert status == 201, member
    return member["id"]


def points(api: Api, member_id: str) -> int:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    return next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")


def results(api: Api, campaign_id: str) -> dict:
    status, view = api.call("GET", f"/v1/admin/campaigns/{campaign_id}", OPERATOR)
    assert status == 200, view
    return view


def test_a_campaign_goes_through_its_named_approver_and_every_step_is_logged(demo, api):
    status, draft = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(WELCOME))
    assert status == 201 and draft["status"] == "draft" and draft["campaignId"].startswith(f"HD{NOW:%Y%m}")
    path = f"/v1/admin/campaigns/{draft['campaignId']}"
    status, problem = api.call("POST", f"{path}/submit", OPERATOR, body={"approver": OPERATOR["keyId"]})
    assert (status, problem["code"]) == (422, "SELF_APPROVAL")
    api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})
    status, problem = api.call("POST", f"{path}/approve", OPERATOR, body={})
    assert (status, problem["code"]) == (403, "NOT_THE_APPROVER")
    status, problem = api.call("PUT", path, OPERATOR, body=with_points_budget(WELCOME))
    assert (status, problem["code"], problem["campaignStatus"]) == (409, "CAMPAIGN_STATUS", "pending")
    status, problem = api.call("POST", f"{path}/reject", APPROVER, body={})
    assert (status, problem["code"]) == (422, "COMMENT_REQUIRED")
    _, rejected = api.call("POST", f"{path}/reject", APPROVER, body={"comment": "预算太高"})
    assert (rejected["status"], rejected["approvalStatus"]) == ("draft", "rejected")
    assert api.call("PUT", path, OPERATOR, body=with_points_budget({**WELCOME, "name": "入会礼 100 积分"}))[0] == 200
    api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})
    _, approved = api.call("POST", f"{path}/approve", APPROVER, body={"comment": "同意"})
    assert approved["status"] == "running" and approved["results"]["participations"] == 0
    assert api.call("POST", f"{path}/pause", OPERATOR)[1]["status"] == "paused"
    assert api.call("POST", f"{path}/resume", OPERATOR)[1]["status"] == "running"
    _, ended = api.call("POST", f"{path}/end", OPERATOR)
    assert (ended["status"], ended["endedReason"]) == ("ended", "operator")
    status, problem = api.call("POST", f"{path}/resume", OPERATOR)
    assert (status, problem["code"]) == (409, "CAMPAIGN_STATUS")
    log = api.call("GET", f"{path}/log", OPERATOR)[1]["items"]
    assert [e["action"] for e in log] == [
        "submitted", "rejected", "submitted", "approved", "paused", "resumed", "ended",
    ]  # fmt: skip
    _, listed = api.call("GET", "/v1/admin/campaigns", OPERATOR, query={"limit": "1"})
    assert [c["campaignId"] for c in listed["items"]] == [draft["campaignId"]]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"costCenterCode": "nowhere"}, 422, "UNKNOWN_REFERENCE", "costCenterCode"),
        ({"conditions": {"tagCodes": ["no-such-tag"]}}, 422, "UNKNOWN_REFERENCE", "conditions/tagCodes/0"),
        ({"conditions": {"tierCodes": ["PLATINUM"]}}, 422, "UNKNOWN_REFERENCE", "conditions/tierCodes/0"),
        (
            {"effects": [{"type": "grantPoints", "pointGroupCode": "stars", "points": 1}]},
            422,
            "UNKNOWN_REFERENCE",
            "effects/0/pointGroupCode",
        ),
        (
            {"effects": [{"type": "issueCoupon", "ruleId": "2099010100001"}]},
            422,
            "UNKNOWN_REFERENCE",
            "effects/0/ruleId",
        ),
        ({"endsAt": (NOW - timedelta(days=2)).isoformat()}, 422, "VALIDATION_FAILED", "endsAt"),
        ({"trigger": {"type": "lottery"}}, 422, "VALIDATION_FAILED", "trigger"),
    ],
)
def test_bad_references_and_shapes_are_refused_with_a_pointer(demo, api, change, status, code, field):
    answer, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget({**WELCOME, **change}))
    assert (answer, problem["code"]) == (status, code), problem
    pointers = [problem.get("field", "")] + [e.get("field", "") for e in problem.get("errors", [])]
    assert any(p.lstrip("/").startswith(field) for p in pointers if p), problem


def test_an_effect_on_a_coupon_rule_that_is_not_listed_is_409(demo, api):
    from tests.integration.test_coupons import RULE

    _, draft_rule = api.call("POST", "/v1/admin/coupon-rules", OPERATOR, body=RULE)
    body = {**WELCOME, "effects": [{"type": "issueCoupon", "ruleId": draft_rule["ruleId"]}]}
    status, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(body))
    assert (status, problem["code"], problem["field"]) == (409, "RULE_NOT_LISTED", "/effects/0/ruleId")


def test_a_welcome_gift_is_given_once_even_when_the_registration_event_comes_again(
    demo, api, pipeline, captured_events
):
    campaign_id = running(api, {**WELCOME, "limits": {"budget": {"points": 1000}}})
    member_id = register(api, "13800138001")
    events = captured_events.drain()
    assert points(api, member_id) == 100
    _, records = api.call("GET", f"/v1/members/{member_id}/point-records", POS)
    (gift,) = records["items"]
    assert (gift["type"], gift["change"], gift["costCenterCode"]) == ("BEHAVIOUR_INCREASE", 100, "marketing")
    assert (gift["campaignId"], gift["campaignName"]) == (campaign_id, "新会员入会礼")
    registered = next(e for e in events if e["detail-type"] == "MemberRegistered")
    message = {"Records": [{"messageId": "m-1", "body": json.dumps(registered), "attributes": {}}]}
    for _ in range(3):  # the queue delivers it again
        answer = api.functions["CampaignsFunction"].invoke(copy.deepcopy(message))
        assert answer == {"batchItemFailures": []}
    assert points(api, member_id) == 100
    view = results(api, campaign_id)["results"]
    assert (view["participations"], view["pointsGranted"], view["remainingPoints"]) == (1, 100, 900)
    _, touched = api.call("GET", f"/v1/admin/members/{member_id}/campaigns", OPERATOR)
    (part,) = touched["items"]
    assert (part["campaignId"], part["businessKey"], part["effects"][0]["points"]) == (campaign_id, "registration", 100)
    assert part["effects"][0]["recordId"] == gift["id"]  # the participation names the record it made


def test_a_first_purchase_coupon_comes_with_the_first_order_only(demo, api, pipeline):
    rule_id = listed_rule(api)
    first_purchase = {
        **WELCOME,
        "name": "首购送券",
        "trigger": {"type": "firstPurchase"},
        "effects": [{"type": "issueCoupon", "ruleId": rule_id}, {"type": "addTag", "tagCode": "newcomer"}],
    }
    campaign_id = running(api, first_purchase)
    member_id = register(api, "13800138000")
    assert api.call("POST", "/v1/orders", POS, body=order_body("o-1", 300))[0] == 202
    pipeline.drain()
    assert api.call("POST", "/v1/orders", POS, body=order_body("o-2", 300))[0] == 202
    pipeline.drain()
    coupons = api.call("GET", f"/v1/members/{member_id}/coupons", POS)[1]["items"]
    assert [c["ruleId"] for c in coupons] == [rule_id]
    _, member = api.call("GET", f"/v1/members/{member_id}", POS)
    assert [t["code"] for t in member["tags"]] == ["newcomer"]
    _, touched = api.call("GET", f"/v1/admin/members/{member_id}/campaigns", OPERATOR)
    (part,) = touched["items"]
    assert part["effects"][0] == {"type": "issueCoupon", "ruleId": rule_id, "code": coupons[0]["code"]}
    assert part["pending"] == [] and results(api, campaign_id)["results"]["couponsIssued"] == 1


def test_purchase_conditions_and_a_daily_limit_decide_who_gets_the_bonus(demo, api, pipeline):
    bonus = {
        **WELCOME,
        "name": "满300送50",
        "trigger": {"type": "purchase", "order": {"minAmount": "300", "storeGroupCode": "offline"}},
        "limits": {"perMember": {"count": 1, "period": "day"}},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 50}],
    }
    campaign_id = running(api, bonus)
    member_id = register(api, "13800138000")
    for number, amount in (("o-1", 200), ("o-2", 300), ("o-3", 400)):  # one day: 200 is short, 400 the 2nd
        assert api.call("POST", "/v1/orders", POS, body=order_body(number, amount, days_ago=0))[0] == 202
    pipeline.drain()
    _, records = api.call("GET", f"/v1/members/{member_id}/point-records", POS, query={"pointGroup": "points"})
    promotions = [r for r in records["items"] if r["type"] == "TRANSACTION_PROMOTION"]
    assert [r["change"] for r in promotions] == [50]
    assert points(api, member_id) == 200 + 300 + 400 + 50
    view = results(api, campaign_id)["results"]  # the order that made the member take part, and its sale
    assert (view["participations"], view["orders"], view["sales"]) == (1, 1, "300.00")


def test_a_budget_that_runs_out_ends_the_campaign_and_says_so(demo, api, pipeline):
    campaign_id = running(api, {**WELCOME, "limits": {"budget": {"count": 2}}})
    members = [register(api, f"1380013810{n}") for n in range(3)]
    pipeline.drain()
    assert sorted(points(api, m) for m in members) == [0, 100, 100]
    view = results(api, campaign_id)
    assert (view["status"], view["endedReason"], view["results"]["remainingCount"]) == ("ended", "budgetSpent", 0)
    log = api.call("GET", f"/v1/admin/campaigns/{campaign_id}/log", OPERATOR)[1]["items"]
    assert (log[-1]["action"], log[-1]["by"], log[-1]["comment"]) == ("ended", "system", "the budget is spent")


def test_a_paused_campaign_gives_nothing_until_resumed(demo, api, pipeline):
    campaign_id = running(api, WELCOME)
    api.call("POST", f"/v1/admin/campaigns/{campaign_id}/pause", OPERATOR)
    paused = register(api, "13800138000")
    pipeline.drain()
    api.call("POST", f"/v1/admin/campaigns/{campaign_id}/resume", OPERATOR)
    resumed = register(api, "13800138002")
    pipeline.drain()
    assert (points(api, paused), points(api, resumed)) == (0, 100)


def test_a_purchase_campaigns_points_go_back_with_the_lines_returned(demo, api, pipeline):
    """40 points on an order that paid 300 + 100: 30 and 10 by line; returning line 1 takes back its 30."""
    from tests.integration.test_returns import post_return

    running(
        api,
        {
            **WELCOME,
            "name": "下单送40",
            "trigger": {"type": "purchase"},
            "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 40}],
        },
    )
    member_id = register(api, "13800138000")
    body = order_body("o-2lines", 300, days_ago=0)
    body["lines"].append({**body["lines"][0], "lineNo": 2, "receivable": "100", "paid": "100", "pointsAmount": "100"})
    assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 400 + 40
    assert post_return(api, "r-line1", "o-2lines", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 100 + 10
    _, reversals = api.call(
        "GET", f"/v1/members/{member_id}/point-records", POS, query={"type": "RETURN_REVERSAL", "pointGroup": "points"}
    )
    assert [r["change"] for r in reversals["items"]] == [-330]
    assert post_return(api, "r-line2", "o-2lines", lines=[{"lineNo": 2, "quantity": "1"}])[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 0


# --- points for the order itself, in its accrual (交易促销积分) ---------------------------------------------


def last_weekend() -> tuple[datetime, datetime]:
    """The last whole Saturday-Sunday before today (Shanghai), as the program's local times."""
    today = NOW.date()
    saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
    if saturday + timedelta(days=2) > today:
        saturday -= timedelta(days=7)
    start = datetime.combine(saturday, datetime.min.time())
    return start, start + timedelta(days=2)


def ordered(body: dict, at: datetime, store: str = "SH001") -> dict:
    return {**body, "orderedAt": at.replace(tzinfo=SHANGHAI).isoformat(), "storeCode": store}


def double_points_on_the_weekend() -> dict:
    saturday, monday = last_weekend()
    return {
        **WELCOME,
        "name": "线下门店周末双倍积分",
        "trigger": {"type": "purchase", "order": {"storeGroupCode": "offline"}},
        "limits": {"perMember": {"count": 100}},
        "effects": [{"type": "orderPoints", "pointGroupCode": "points", "multiplier": "2"}],
        "startsAt": saturday.isoformat(),  # no offset: the program's time zone
        "endsAt": monday.isoformat(),
    }


def test_double_points_on_a_store_group_for_a_weekend_are_written_with_the_order_and_reversed_on_return(
    demo, api, pipeline
):
    from tests.integration.test_returns import post_return

    campaign_id = running(api, double_points_on_the_weekend(), expect="ended")  # its window: last weekend
    member_id = register(api, "13800138000")
    saturday, monday = last_weekend()
    body = order_body("o-sat", 300, member={"id": member_id})
    body["lines"].append({**body["lines"][0], "lineNo": 2, "receivable": "100", "paid": "100", "pointsAmount": "100"})
    orders = [
        ordered(body, saturday + timedelta(hours=15)),  # 400 points, and 400 more
        ordered({**body, "orderNo": "o-fri"}, saturday - timedelta(hours=1)),  # before the weekend: 400
        ordered({**body, "orderNo": "o-web"}, saturday + timedelta(hours=16), store="WEB"),  # online: 400
        ordered({**body, "orderNo": "o-mon"}, monday),  # the window's end is not in it: 400
    ]
    for order in orders:
        assert api.call("POST", "/v1/orders", POS, body=order)[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 4 * 400 + 400
    _, records = api.call("GET", f"/v1/members/{member_id}/point-records", POS, query={"pointGroup": "points"})
    (bonus,) = [r for r in records["items"] if r["type"] == "TRANSACTION_PROMOTION"]
    assert (bonus["change"], bonus["orderNo"], bonus["campaignId"]) == (400, "o-sat", campaign_id)
    assert (bonus["costCenterCode"], bonus["campaignName"]) == ("marketing", "线下门店周末双倍积分")
    _, order = api.call("GET", "/v1/orders/o-sat", POS)
    assert sorted(e["points"] for e in order["earned"] if e["pointGroupCode"] == "points") == [400, 400]
    view = results(api, campaign_id)["results"]
    assert (view["participations"], view["pointsGranted"], view["orders"], view["sales"]) == (1, 400, 1, "400.00")
    _, touched = api.call("GET", f"/v1/admin/members/{member_id}/campaigns", OPERATOR)
    assert [(t["campaignId"], t["effects"][0]["points"]) for t in touched["items"]] == [(campaign_id, 400)]

    # Line 1 (300 of 400 paid) goes back: its 300 base points and its 300 of the bonus.
    assert post_return(api, "r-sat-1", "o-sat", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 4 * 400 + 400 - 600
    assert post_return(api, "r-sat-2", "o-sat", lines=[{"lineNo": 2, "quantity": "1"}])[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 3 * 400


def test_points_per_yuan_on_a_product_group_stop_at_the_order_and_member_caps(demo, api, pipeline):
    group = {"code": "snacks", "name": "小食系列", "description": "薯条等"}
    assert api.call("POST", "/v1/admin/product-groups", OPERATOR, body=group)[0] == 201
    assert api.call("PUT", "/v1/admin/product-groups/snacks/products/TD0001", OPERATOR)[0] == 200
    assert api.call("POST", "/v1/admin/product-groups/snacks/enable", OPERATOR)[0] == 200
    effect = {
        "type": "orderPoints",
        "pointGroupCode": "points",
        "pointsPerYuan": "0.5",
        "productGroupCode": "snacks",
        "maxPerOrder": 100,
        "maxPerMember": 150,
    }
    campaign_id = running(
        api,
        {**WELCOME, "name": "小食每元加0.5分", "trigger": {"type": "purchase"}, "effects": [effect],
         "limits": {"perMember": {"count": 10}}},
    )  # fmt: skip
    member_id = register(api, "13800138000")
    for number in ("o-1", "o-2", "o-3"):
        body = order_body(number, 300, days_ago=0, member={"id": member_id})  # TD0001: in the group
        body["lines"].append(
            {
                **body["lines"][0],
                "lineNo": 2,
                "sku": "IC0600",
                "paid": "100",
                "receivable": "100",
                "pointsAmount": "100",
            }
        )
        assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202
        pipeline.drain()
    _, records = api.call("GET", f"/v1/members/{member_id}/point-records", POS, query={"type": "TRANSACTION_PROMOTION"})
    # 300 yuan in the group x 0.5 = 150, at most 100 an order, and 150 in all for the member
    assert sorted(r["change"] for r in records["items"]) == [50, 100]
    assert results(api, campaign_id)["results"]["pointsGranted"] == 150


def test_a_fixed_bonus_over_a_threshold_ends_its_campaign_when_the_budget_cannot_pay_it(demo, api, pipeline):
    campaign_id = running(
        api,
        {
            **WELCOME,
            "name": "满500加200分",
            "trigger": {"type": "purchase", "order": {"minAmount": "500"}},
            "effects": [{"type": "orderPoints", "pointGroupCode": "points", "fixedPoints": 200}],
            "limits": {"perMember": {"count": 10}, "budget": {"points": 500}},
        },
    )
    member_id = register(api, "13800138000")
    for number, amount in (("o-1", 499), ("o-2", 500), ("o-3", 800), ("o-4", 900)):
        assert api.call("POST", "/v1/orders", POS, body=order_body(number, amount, member={"id": member_id}))[0] == 202
        pipeline.drain()
    assert points(api, member_id) == 499 + 500 + 800 + 900 + 2 * 200
    view = results(api, campaign_id)
    assert (view["status"], view["endedReason"], view["results"]["remainingPoints"]) == ("ended", "budgetSpent", 100)


def test_a_paused_promotion_gives_nothing_to_orders_accrued_meanwhile(demo, api, pipeline):
    campaign_id = running(
        api,
        {**WELCOME, "trigger": {"type": "purchase"}, "limits": {"perMember": {"count": 10}},
         "effects": [{"type": "orderPoints", "pointGroupCode": "points", "multiplier": "1.5"}]},
    )  # fmt: skip
    member_id = register(api, "13800138000")
    assert api.call("POST", "/v1/orders", POS, body=order_body("o-1", 100, member={"id": member_id}))[0] == 202
    pipeline.drain()
    api.call("POST", f"/v1/admin/campaigns/{campaign_id}/pause", OPERATOR)  # the accrual's cache still has it
    assert api.call("POST", "/v1/orders", POS, body=order_body("o-2", 100, member={"id": member_id}))[0] == 202
    pipeline.drain()
    assert points(api, member_id) == 100 + 50 + 100


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": {"type": "registration"}}, "trigger"),
        (
            {"effects": [{"type": "orderPoints", "pointGroupCode": "points", "multiplier": "2"},
                         {"type": "addTag", "tagCode": "newcomer"}]},
            "effects",
        ),
        ({"effects": [{"type": "orderPoints", "pointGroupCode": "points", "multiplier": "2", "fixedPoints": 5}]},
         "effects/0"),
    ],
)  # fmt: skip
def test_order_points_need_a_purchase_trigger_and_one_kind_of_bonus_alone(demo, api, change, field):
    body = {**double_points_on_the_weekend(), **change}
    status, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(body))
    assert (status, problem["code"]) == (422, "VALIDATION_FAILED"), problem
    pointers = [problem.get("field", "")] + [e.get("field", "") for e in problem.get("errors", [])]
    assert any(p.lstrip("/").startswith(field) for p in pointers if p), problem


# --- birthdays (生日) -------------------------------------------------------------------------------------


def birthday_campaign(on: str = "day") -> dict:
    return {
        **WELCOME,
        "name": "生日礼 50 积分" if on == "day" else "生日月礼",
        "trigger": {"type": "birthday", "on": on},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 50}],
    }


def born(api: Api, phone: str, birthday: str | None) -> str:
    body = {"programCode": "DEMO", "phone": phone, **({"birthday": birthday} if birthday else {})}
    status, member = api.call("POST", "/v1/members", POS, body=body)
    assert status == 201, member
    return member["id"]


def run_day(api: Api, campaign_id: str, day: str | None = None) -> tuple[int, dict]:
    return api.call("POST", f"/v1/admin/campaigns/{campaign_id}/day-runs", OPERATOR, body={"date": day} if day else {})


def test_the_birthday_gift_goes_to_the_days_members_once_a_year(demo, api, pipeline):

    today = NOW.date()
    campaign_id = running(api, birthday_campaign())
    today_born = born(api, "13800138001", today.replace(year=1990).isoformat())
    tomorrow = today + timedelta(days=1)
    tomorrow_born = born(api, "13800138002", tomorrow.replace(year=1991).isoformat())
    no_birthday = born(api, "13800138003", None)
    pipeline.drain()

    status, accepted = run_day(api, campaign_id)
    assert (status, accepted["pages"], accepted["date"]) == (202, 1, today.isoformat())
    pipeline.drain()
    assert [points(api, m) for m in (today_born, tomorrow_born, no_birthday)] == [50, 0, 0]

    # Run again, and by the schedule (twice: it runs hourly): nothing more
    assert run_day(api, campaign_id)[0] == 202
    for _ in range(2):
        api.functions["CampaignsFunction"].invoke(load_event("campaigns_day_schedule.json"))
    pipeline.drain()
    assert points(api, today_born) == 50

    # An operator moves the birthday to yesterday and runs yesterday: still once this year
    _, member = api.call("GET", f"/v1/members/{today_born}", POS)
    yesterday = today - timedelta(days=1)
    patch = {"birthday": yesterday.replace(year=1990).isoformat()}
    headers = {"If-Match": f'"{member["version"]}"'}
    assert api.call("PATCH", f"/v1/admin/members/{today_born}", OPERATOR, body=patch, headers=headers)[0] == 200
    assert run_day(api, campaign_id, yesterday.isoformat())[1]["pages"] == 1
    pipeline.drain()
    assert points(api, today_born) == 50
    _, records = api.call("GET", f"/v1/members/{today_born}/point-records", POS)
    assert [(r["type"], r["change"], r["campaignId"]) for r in records["items"]] == [
        ("BEHAVIOUR_INCREASE", 50, campaign_id)
    ]
    assert results(api, campaign_id)["results"]["participations"] == 1

    status, problem = run_day(api, campaign_id, tomorrow.isoformat())
    assert (status, problem["code"]) == (422, "FUTURE_DATE")


def test_a_birthday_month_campaign_runs_on_the_first_for_everyone_born_in_the_month(demo, api, pipeline):
    first = NOW.date().replace(day=1)
    campaign = {**birthday_campaign("month"), "startsAt": (NOW - timedelta(days=40)).isoformat()}
    campaign_id = running(api, campaign)
    in_month = [born(api, f"1380013800{n}", first.replace(year=1980 + n, day=1 + n).isoformat()) for n in range(3)]
    other = born(api, "13800138009", (first - timedelta(days=1)).replace(year=1985).isoformat())
    pipeline.drain()
    if NOW.date() != first:
        assert run_day(api, campaign_id, (first + timedelta(days=1)).isoformat())[1]["pages"] == 0
    assert run_day(api, campaign_id, first.isoformat())[1]["pages"] == 1
    pipeline.drain()
    assert [points(api, m) for m in in_month] == [50, 50, 50] and points(api, other) == 0


def test_a_birthday_run_is_only_for_a_running_birthday_campaign(demo, api):
    welcome = running(api, WELCOME)
    status, problem = run_day(api, welcome)
    assert (status, problem["code"], problem["field"]) == (409, "NOT_A_DAILY_CAMPAIGN", "/campaignId")
    birthday = running(api, birthday_campaign())
    api.call("POST", f"/v1/admin/campaigns/{birthday}/pause", OPERATOR)
    status, problem = run_day(api, birthday)
    assert (status, problem["code"], problem["campaignStatus"]) == (409, "CAMPAIGN_STATUS", "paused")


# --- tier changes and behaviours -------------------------------------------------------------------------


def test_an_upgrade_into_gold_gives_the_campaigns_points_and_one_into_silver_does_not(demo, api, pipeline):
    campaign_id = running(
        api,
        {**WELCOME, "name": "升级金卡礼", "trigger": {"type": "tierChange", "toTierCodes": ["gold"]},
         "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 200}]},
    )  # fmt: skip
    silver, gold = register(api, "13800138001"), register(api, "13800138002")
    assert api.call("POST", "/v1/orders", POS, body=order_body("t-1", 300, member={"id": silver}))[0] == 202
    assert api.call("POST", "/v1/orders", POS, body=order_body("t-2", 1000, member={"id": gold}))[0] == 202
    pipeline.drain()
    assert (points(api, silver), points(api, gold)) == (300, 1000 + 200)
    _, touched = api.call("GET", f"/v1/admin/members/{gold}/campaigns", OPERATOR)
    assert [t["campaignId"] for t in touched["items"]] == [campaign_id]
    assert api.call("GET", f"/v1/members/{gold}", POS)[1]["tier"]["code"] == "gold"


def test_a_reported_behaviour_triggers_its_campaign_within_the_daily_limit(demo, api, pipeline):
    running(
        api,
        {**WELCOME, "name": "签到加赠", "trigger": {"type": "behaviour", "behaviourTypes": ["checkIn"]},
         "limits": {"perMember": {"count": 1, "period": "day"}},
         "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 5}]},
    )  # fmt: skip
    member_id = register(api, "13800138000")
    for n in range(2):  # the demo's check-in rule gives 10 once a day; the campaign 5 once a day
        body = {"behaviourType": "checkIn", "behaviourId": f"c-{n}", "occurredAt": NOW.isoformat()}
        assert api.call("POST", f"/v1/members/{member_id}/behaviours", POS, body=body)[0] in (200, 201)
    pipeline.drain()
    assert points(api, member_id) == 10 + 5


def test_days_after_registration_reads_the_programs_local_day_and_gives_once(demo, api, pipeline):
    from loyalty.clock import FixedClock
    from loyalty.domain.members import Registration
    from loyalty.services.members import member_service

    campaign = {
        **WELCOME,
        "name": "注册3天后送30积分",
        "trigger": {"type": "daysAfterRegistration", "days": 3},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 30}],
        "startsAt": (NOW - timedelta(days=10)).isoformat(),
    }
    campaign_id = running(api, campaign)
    three_days_ago = datetime.combine(NOW.date() - timedelta(days=3), datetime.min.time(), SHANGHAI)
    moments = {
        "13800138001": three_days_ago + timedelta(minutes=30),  # 00:30 local: the day before in UTC
        "13800138002": three_days_ago + timedelta(hours=23, minutes=30),
        "13800138003": three_days_ago + timedelta(days=1, minutes=10),  # two days ago
        "13800138004": three_days_ago - timedelta(minutes=10),  # four days ago
    }
    members = {}
    for phone, at in moments.items():
        service = member_service(clock=FixedClock(at))
        members[phone] = service.register("demo", "POS", Registration(program_code="DEMO", phone=phone)).id
    pipeline.drain()

    for _ in range(2):  # a rerun gives nothing more
        status, accepted = run_day(api, campaign_id)
        assert status == 202 and accepted["pages"] in (1, 2)  # two when the local day spans two UTC months
        pipeline.drain()
    assert [points(api, members[p]) for p in moments] == [30, 30, 0, 0]
    assert results(api, campaign_id)["results"]["participations"] == 2


def test_a_coupon_a_campaign_gave_counts_when_redeemed_and_a_redemption_can_trigger_a_campaign(
    demo, api, pipeline, captured_events
):
    from tests.integration.test_coupons import redeem

    rule_id = listed_rule(api)
    gift = {**WELCOME, "name": "入会送券", "effects": [{"type": "issueCoupon", "ruleId": rule_id}]}
    gift_id = running(api, gift)
    thanks = {
        **WELCOME,
        "name": "核销送 20 积分",
        "trigger": {"type": "couponRedeemed", "ruleIds": [rule_id]},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 20}],
    }
    thanks_id = running(api, thanks)
    member_id = register(api, "13800138000")
    pipeline.drain()
    (coupon,) = api.call("GET", f"/v1/members/{member_id}/coupons", POS)[1]["items"]
    assert redeem(api, [coupon["code"]], "1000")[0] == 201
    (redeemed,) = [e for e in captured_events.drain() if e["detail-type"] == "CouponRedeemed"]
    assert (redeemed["detail"]["memberId"], redeemed["detail"]["campaignId"]) == (member_id, gift_id)

    from loyalty.services.campaigns.engine import campaign_engine

    again = campaign_engine().on_event("demo", "CouponRedeemed", redeemed["detail"])  # a redelivery
    assert [o.result for o in again] == ["already"]
    assert results(api, gift_id)["results"]["couponsRedeemed"] == 1
    assert (results(api, thanks_id)["results"]["participations"], points(api, member_id)) == (1, 20)

    _, costs = api.call("GET", "/v1/admin/campaign-costs", OPERATOR, query={"programCode": "DEMO"})
    assert [(c["costCenterCode"], c["campaigns"], c["pointsGranted"], c["couponsIssued"], c["couponsRedeemed"])
            for c in costs] == [("marketing", 2, 20, 1, 1)]  # fmt: skip

    body = {**thanks, "trigger": {"type": "couponRedeemed", "ruleIds": ["2099010100001"]}}
    status, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(body))
    assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_REFERENCE", "/trigger/ruleIds/0")

    # The sale is voided: the redemption is rolled back, and the campaign counts the coupon redeemed no more,
    # whatever order its two events come in, however often; redeemed again on another order, it counts again.
    assert api.call("POST", f"/v1/coupons/{coupon['code']}/rollback", POS, body={"orderNo": "POS-1"})[0] == 200
    (undone,) = [e for e in captured_events.drain() if e["detail-type"] == "CouponRedemptionUndone"]
    assert undone["detail"]["campaignId"] == gift_id
    assert results(api, gift_id)["results"]["couponsRedeemed"] == 0
    campaign_engine().on_event("demo", "CouponRedemptionUndone", undone["detail"])
    campaign_engine().on_event("demo", "CouponRedeemed", redeemed["detail"])  # late, after its undoing
    assert results(api, gift_id)["results"]["couponsRedeemed"] == 0
    assert redeem(api, [coupon["code"]], "1000", order_no="POS-2")[0] == 201
    pipeline.drain()
    assert results(api, gift_id)["results"]["couponsRedeemed"] == 1


def test_members_30_days_without_a_purchase_are_won_back_once(demo, api, pipeline):
    """N 天未购 (D-096): the day's run reads the members whose last purchase was 30 days before, from the
    last-purchase index an accrual moves; a member who bought since, or who never bought, is not read."""
    quiet, back, recent, never = (born(api, f"1380013801{n}", None) for n in range(4))
    orders = [(quiet, 30), (back, 30), (back, 10), (recent, 29), (quiet, 45)]  # quiet's 45: synced late
    for n, (member_id, days_ago) in enumerate(orders):
        body = order_body(f"np-{n}", 100, days_ago=days_ago, member={"id": member_id})
        assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202
    pipeline.drain()
    before = {m: points(api, m) for m in (quiet, back, recent, never)}
    win_back = {
        **WELCOME,
        "name": "30 天未购回馈",
        "trigger": {"type": "noPurchase", "days": 30},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 30}],
    }
    campaign_id = running(api, win_back)
    status, accepted = run_day(api, campaign_id)
    assert (status, accepted["pages"]) == (202, 1)  # of the 8 shards of the day 30 days ago, the one with a member
    pipeline.drain()
    assert [points(api, m) - before[m] for m in (quiet, back, recent, never)] == [30, 0, 0, 0]
    assert run_day(api, campaign_id)[0] == 202
    pipeline.drain()
    assert points(api, quiet) - before[quiet] == 30
    _, touched = api.call("GET", f"/v1/admin/members/{quiet}/campaigns", OPERATOR)
    expected_day = (NOW.date() - timedelta(days=30)).isoformat()
    assert [p["businessKey"] for p in touched["items"]] == [f"noPurchase:{expected_day}"]


def test_a_coupon_given_for_an_order_is_taken_back_when_the_order_is_returned_in_full_if_unused(demo, api, pipeline):
    from tests.integration.test_coupons import redeem
    from tests.integration.test_returns import post_return

    rule_id = listed_rule(api)
    back = {
        **WELCOME,
        "name": "满300送券 (退货收回)",
        "trigger": {"type": "purchase", "order": {"minAmount": "300"}},
        "limits": {"perMember": {"count": 10}},
        "effects": [{"type": "issueCoupon", "ruleId": rule_id, "takeBackOnFullReturn": True}],
    }
    keeps = {**back, "name": "满300送券", "effects": [{"type": "issueCoupon", "ruleId": rule_id}]}
    running(api, back), running(api, keeps)
    member_id = register(api, "13800138000")
    assert api.call("POST", "/v1/orders", POS, body=order_body("tb-1", 300, quantity=2))[0] == 202
    assert api.call("POST", "/v1/orders", POS, body=order_body("tb-2", 300))[0] == 202
    pipeline.drain()
    coupons = api.call("GET", f"/v1/members/{member_id}/coupons", POS)[1]["items"]
    assert len(coupons) == 4  # two per order
    _, touched = api.call("GET", f"/v1/admin/members/{member_id}/campaigns", OPERATOR, query={"limit": "10"})
    by_order = {
        (p["businessKey"], p["campaignName"]): p["effects"][0]["code"] for p in touched["items"]
    }  # fmt: skip
    order_1, order_2 = (
        api.call("GET", f"/v1/orders/{n}", POS)[1]["orderId"] for n in ("tb-1", "tb-2")
    )  # fmt: skip
    taken = by_order[(f"order:{order_1}", back["name"])]
    used = by_order[(f"order:{order_2}", back["name"])]
    assert redeem(api, [used], "1000")[0] == 201

    assert post_return(api, "r-1", "tb-1", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202  # half of it
    pipeline.drain()
    assert coupon_status(api, member_id, taken) == "issued"
    assert post_return(api, "r-2", "tb-1", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202  # the rest
    assert post_return(api, "r-3", "tb-2", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202
    pipeline.drain()
    assert coupon_status(api, member_id, taken) == "revoked"  # unused, and its campaign takes coupons back
    assert coupon_status(api, member_id, used) == "used"  # redeemed before the return: it stays
    kept = by_order[(f"order:{order_1}", keeps["name"])]
    assert coupon_status(api, member_id, kept) == "issued"  # that campaign does not take its coupons back
    revoked = api.call("GET", f"/v1/members/{member_id}/coupons", POS, query={"status": "revoked"})[1]["items"]
    assert [c["code"] for c in revoked] == [taken]
    _, touched = api.call("GET", f"/v1/admin/members/{member_id}/campaigns", OPERATOR, query={"limit": "10"})
    flags = {p["effects"][0]["code"]: p["effects"][0].get("takenBack") for p in touched["items"]}
    assert (flags[taken], flags[used]) == (True, False)


def coupon_status(api: Api, member_id: str, code: str) -> str:
    coupons = api.call("GET", f"/v1/members/{member_id}/coupons", POS)[1]["items"]
    return str(next(c["status"] for c in coupons if c["code"] == code))


def test_a_budget_split_over_shards_is_spent_exactly_and_what_it_gave_is_their_sum(demo, api, pipeline):
    """D-098: 400 points over 4 shards (100 each, two gifts of 50 each); the ninth member finds every shard
    spent, and the campaign ends itself. Pausing and resuming act on every shard."""
    split = {
        **WELCOME,
        "name": "入会礼 (4 份预算)",
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 50}],
        "limits": {"budget": {"points": 400, "shards": 4}},
    }
    campaign_id = running(api, split)
    path = f"/v1/admin/campaigns/{campaign_id}"
    api.call("POST", f"{path}/pause", OPERATOR)
    paused = register(api, "13800138100")
    pipeline.drain()
    assert points(api, paused) == 0  # every shard said paused
    api.call("POST", f"{path}/resume", OPERATOR)
    members = [register(api, f"138001381{n:02d}") for n in range(1, 10)]
    pipeline.drain()
    assert sorted(points(api, m) for m in members) == [0] + [50] * 8
    view = results(api, campaign_id)
    assert (view["status"], view["endedReason"]) == ("ended", "budgetSpent")
    assert (view["results"]["participations"], view["results"]["pointsGranted"]) == (8, 400)
    assert view["results"]["remainingPoints"] == 0


def test_a_purchase_of_a_product_group_for_an_amount_and_an_audience_condition_decide_who_takes_part(
    demo, api, pipeline
):
    """购买 of a product group for at least ¥200 (the group's lines, 实收), only for members of a frozen
    audience; what the follow-ups gave is counted by kind."""
    from tests.integration.test_audiences import GOLD_OR_TAGGED, frozen_audience, tag

    group = {"code": "snacks", "name": "小食系列", "description": "薯条等"}
    assert api.call("POST", "/v1/admin/product-groups", OPERATOR, body=group)[0] == 201
    assert api.call("PUT", "/v1/admin/product-groups/snacks/products/TD0001", OPERATOR)[0] == 200
    assert api.call("POST", "/v1/admin/product-groups/snacks/enable", OPERATOR)[0] == 200
    vip, plain, small = (register(api, f"1380013802{n}") for n in range(3))
    for member_id in (vip, small):
        tag(api, member_id)
    audience = frozen_audience(api, pipeline, GOLD_OR_TAGGED)
    snack_bonus = {
        **WELCOME,
        "name": "小食满200加赠",
        "trigger": {"type": "purchase", "order": {"productGroupCode": "snacks", "minProductAmount": "200"}},
        "conditions": {"audienceId": audience["audienceId"]},
        "limits": {"perMember": {"count": 10}},
        "effects": [
            {"type": "grantPoints", "pointGroupCode": "points", "points": 30},
            {"type": "addTag", "tagCode": "newcomer"},
        ],
    }
    campaign_id = running(api, snack_bonus)
    orders = [("g-1", vip, 250), ("g-2", plain, 250), ("g-3", small, 150)]
    for number, member_id, amount in orders:
        body = order_body(number, amount, member={"id": member_id})
        assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202
    pipeline.drain()
    assert [points(api, m) for m in (vip, plain, small)] == [250 + 30, 250, 150]
    view = results(api, campaign_id)["results"]
    assert (view["participations"], view["pointsGranted"], view["tagsAdded"]) == (1, 30, 1)

    unknown = {**snack_bonus, "conditions": {"audienceId": "01JAAAAAAAAAAAAAAAAAAAAAAA"}}
    status, problem = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(unknown))
    assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_REFERENCE", "/conditions/audienceId")
    status, problem = api.call(
        "POST",
        "/v1/admin/campaigns",
        OPERATOR,
        body={**snack_bonus, "trigger": {"type": "purchase", "order": {"minProductAmount": "1"}}},
    )
    assert status == 422


def test_the_150th_campaign_of_a_kind_fires_once_and_campaigns_past_their_window_leave_the_index(demo, api, pipeline):
    """Issue 24: readers followed one page of 100 campaigns and the index kept campaigns whose window had
    ended, so after two years of campaigns a new one never ran. 120 registration campaigns end, 30 run."""
    from loyalty import clock
    from loyalty.store import keys
    from loyalty.store.table import Table

    def gift(n: int, days: int) -> dict:
        now = clock.SystemClock().now().astimezone(SHANGHAI)
        effects = [{"type": "grantPoints", "pointGroupCode": "points", "points": 10}]
        window = {
            "startsAt": (now - timedelta(hours=1)).isoformat(),
            "endsAt": (now + timedelta(days=days)).isoformat(),
        }
        return {**WELCOME, "name": f"入会礼 {n}", "effects": effects, **window}

    ended = [running(api, gift(n, days=1)) for n in range(120)]
    clock.advance(timedelta(days=2))
    live = [running(api, gift(120 + n, days=30)) for n in range(30)]
    index = keys.campaigns_on("demo", "DEMO", "registration")

    def indexed() -> int:
        start, count = None, 0
        while True:
            items, start = Table().query_index("GSI2", index, limit=100, start=start, pk_attribute="GSI2PK")
            count += len(items)
            if not start:
                return count

    assert indexed() == 150
    first = register(api, "13800000001")
    pipeline.drain()
    assert points(api, first) == 30 * 10  # every running one, the 150th among them, past the first page
    assert results(api, live[-1])["results"]["participations"] == 1
    assert results(api, ended[0])["status"] == "ended"
    api.functions["CampaignsFunction"].invoke(load_event("campaigns_day_schedule.json"))
    pipeline.drain()
    assert indexed() == 30  # the daily run took the ended ones out
    second = register(api, "13800000002")
    pipeline.drain()
    assert points(api, second) == 300 and results(api, live[-1])["results"]["participations"] == 2
    paused = live[0]
    assert api.call("POST", f"/v1/admin/campaigns/{paused}/pause", OPERATOR, body={})[0] == 200
    assert indexed() == 29
    assert api.call("POST", f"/v1/admin/campaigns/{paused}/resume", OPERATOR, body={})[0] == 200
    assert indexed() == 30


def test_a_test_member_takes_part_outside_results_costs_and_budget_and_employees_can_be_left_out(demo, api, pipeline):
    """Issue 25 (D-131): `testData` promises a test member is left out of reports; a campaign may leave
    employees out (or reach only them)."""
    campaign_id = running(
        api,
        {
            **WELCOME,
            "name": "下单送40",
            "trigger": {"type": "purchase"},
            "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 40}],
            "conditions": {"employees": "exclude"},
            "limits": {"perMember": {"count": 10}, "budget": {"points": 1000}},
        },
    )
    tester, staff, customer = (register(api, f"1380013810{n}") for n in range(3))
    for member_id, flag in ((tester, "testData"), (staff, "employee")):
        path = f"/v1/admin/members/{member_id}"
        assert api.call("PATCH", path, OPERATOR, body={flag: True}, headers={"if-match": '"1"'})[0] == 200
    for n, member_id in enumerate((tester, staff, customer)):
        body = order_body(f"flags-{n}", 100, days_ago=0, member={"id": member_id})
        assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202
    pipeline.drain()

    assert (points(api, tester), points(api, staff), points(api, customer)) == (140, 100, 140)
    results = api.call("GET", f"/v1/admin/campaigns/{campaign_id}", OPERATOR)[1]["results"]
    assert (results["participations"], results["pointsGranted"], results["remainingPoints"]) == (1, 40, 960)
    assert (results["testParticipations"], results["testPoints"]) == (1, 40)
    _, costs = api.call("GET", "/v1/admin/campaign-costs", OPERATOR, query={"programCode": "DEMO"})
    marketing = next(c for c in costs if c["costCenterCode"] == "marketing")
    assert (marketing["participations"], marketing["pointsGranted"]) == (1, 40)
    _, taken = api.call("GET", f"/v1/admin/members/{staff}/campaigns", OPERATOR)
    assert taken["items"] == []  # the employee was left out
