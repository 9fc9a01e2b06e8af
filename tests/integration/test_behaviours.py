"""Behaviour points by rule (issue 3, item 4): a check-in adds 行为增加积分, once per id, capped per day."""

from __future__ import annotations

import pytest

from tests.support import MINI, OPERATOR, POS, Api, load_event


@pytest.fixture
def member(demo, api: Api) -> dict:
    return api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})[1]


def check_in(api: Api, member_id: str, behaviour_id: str, when: str = "2026-11-22T09:00:00+08:00", caller=POS):
    body = {"behaviourType": "checkIn", "behaviourId": behaviour_id, "occurredAt": when}
    return api.call("POST", f"/v1/members/{member_id}/behaviours", caller, body=body)


def available(api: Api, member_id: str) -> tuple[int, int]:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    points = next(a for a in view["accounts"] if a["pointGroupCode"] == "points")
    return points["cumulative"], points["available"]


def test_a_check_in_adds_10_points_once_and_a_repeat_gets_the_first_answer(member, api):
    status, result = check_in(api, member["id"], "c-1")
    assert status == 201 and [(e["ruleCode"], e["points"]) for e in result["earned"]] == [("daily-check-in", 10)]
    assert check_in(api, member["id"], "c-1") == (200, result)
    assert available(api, member["id"]) == (10, 10)  # 行为增加积分 counts in cumulative (§8.2)
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "BEHAVIOUR_INCREASE"})
    assert [(r["change"], r["remaining"], r["costCenterCode"]) for r in records["items"]] == [(10, 10, "marketing")]


def test_the_daily_cap_holds_and_a_new_day_earns_again(member, api):
    check_in(api, member["id"], "c-1")
    status, second = check_in(api, member["id"], "c-2", "2026-11-22T18:00:00+08:00", caller=MINI)
    assert status == 201 and second["earned"] == [] and second["cappedRules"] == ["daily-check-in"]
    assert available(api, member["id"]) == (10, 10)
    assert check_in(api, member["id"], "c-3", "2026-11-23T08:00:00+08:00")[1]["earned"][0]["points"] == 10
    assert available(api, member["id"]) == (20, 20)


def test_a_behaviour_id_reused_for_another_member_is_409_and_the_sample_event_works(member, api):
    _, other = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900139000"})
    check_in(api, member["id"], "c-1")
    status, problem = check_in(api, other["id"], "c-1")
    assert status == 409 and problem["code"] == "BEHAVIOUR_CONFLICT"
    event = load_event("record_behaviour.json")
    event["rawPath"] = event["rawPath"].replace("01HZZZZZZZZZZZZZZZZZZZZZZZ", other["id"])
    assert api.functions["RecordBehaviourFunction"].invoke(event)["statusCode"] == 201


def test_behaviour_rules_are_configured_by_operators(demo, api):
    path = "/v1/admin/programs/DEMO/behaviour-rules"
    rule = {
        "code": "review",
        "name": "评价送积分",
        "behaviourType": "review",
        "pointGroupCode": "growth",
        "points": 5,
        "costCenterCode": "nope",
    }
    status, problem = api.call("POST", path, OPERATOR, body=rule)
    assert status == 422 and problem["field"] == "/costCenterCode"
    assert api.call("POST", path, OPERATOR, body={**rule, "costCenterCode": "member"})[0] == 201


def test_a_decrease_rule_takes_points_first_in_first_out_and_never_more_than_there_are(member, api):
    """行为减少积分: a cancelled check-in takes 15; available goes down, cumulative does not (§8.2)."""
    rule = {
        "code": "check-in-cancelled",
        "name": "取消签到扣15积分",
        "behaviourType": "checkInCancelled",
        "pointGroupCode": "points",
        "direction": "decrease",
        "points": 15,
        "costCenterCode": "marketing",
    }
    assert api.call("POST", "/v1/admin/programs/DEMO/behaviour-rules", OPERATOR, body=rule)[0] == 201
    body = {"behaviourType": "checkInCancelled", "behaviourId": "x-1", "occurredAt": "2026-11-22T10:00:00+08:00"}
    path = f"/v1/members/{member['id']}/behaviours"
    status, problem = api.call("POST", path, POS, body=body)
    assert (status, problem["code"]) == (409, "INSUFFICIENT_POINTS")  # 0 points: nothing written
    assert api.call("POST", path, POS, body=body)[0] == 409  # the id was not taken by the refusal
    for n, day in enumerate(("2026-11-20", "2026-11-21")):  # two check-ins: two lots of 10
        check_in(api, member["id"], f"c-{n}", f"{day}T09:00:00+08:00")
    status, result = api.call("POST", path, POS, body=body)
    assert status == 201 and [(e["ruleCode"], e["points"]) for e in result["earned"]] == [("check-in-cancelled", -15)]
    assert api.call("POST", path, POS, body=body) == (200, result)  # once per id
    assert available(api, member["id"]) == (20, 5)
    query = {"type": "BEHAVIOUR_DECREASE"}
    [record] = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query=query)[1]["items"]
    assert record["change"] == -15 and [r["points"] for r in record["relations"]] == [10, 5]  # the older lot first
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS)[1]["items"]
    assert [lot["remaining"] for lot in lots] == [5]
