"""Account status (issue 13, profile): a frozen member neither earns, spends nor claims (409 MEMBER_FROZEN)
until unfrozen; a cancelled one is gone for good, its phone free, its ledger kept. Operators only."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR, POS, Api, order_body

PHONE = "13800138000"
SPEND = {"pointGroupCode": "points", "points": 100, "purpose": "gift"}


@pytest.fixture
def member(demo, api: Api, pipeline) -> dict:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE})
    assert status == 201
    assert api.call("POST", "/v1/orders", POS, body=order_body("S-1", 500))[0] == 202
    pipeline.drain()
    return member


def available(api: Api, member_id: str) -> int:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    return next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")


def move(api: Api, member_id: str, action: str, reason: str = "风控核查") -> tuple[int, dict]:
    return api.call("POST", f"/v1/admin/members/{member_id}/{action}", OPERATOR, body={"reason": reason})


def test_a_frozen_member_neither_earns_spends_nor_claims_until_unfrozen(member, api, pipeline):
    mid = member["id"]
    status, view = move(api, mid, "freeze")
    assert (status, view["status"], view["statusReason"]) == (200, "frozen", "风控核查")
    status, problem = api.call("POST", f"/v1/members/{mid}/redemptions", POS, body=SPEND)
    assert (status, problem["code"]) == (409, "MEMBER_FROZEN")
    status, problem = api.call("POST", "/v1/orders", POS, body=order_body("S-2", 100))
    assert (status, problem["code"]) == (409, "MEMBER_FROZEN")
    rules = api.call("GET", "/v1/admin/coupon-rules", OPERATOR)[1]["items"]
    status, problem = api.call("POST", f"/v1/members/{mid}/coupons", POS, body={"ruleId": rules[0]["ruleId"]})
    assert (status, problem["code"]) == (409, "MEMBER_FROZEN")
    behaviour = {"behaviourType": "checkIn", "behaviourId": "f-1", "occurredAt": order_body("x", 1)["orderedAt"]}
    status, problem = api.call("POST", f"/v1/members/{mid}/behaviours", POS, body=behaviour)
    assert (status, problem["code"]) == (409, "MEMBER_FROZEN")
    assert available(api, mid) == 500
    # an operator's adjustment still works, and a repeat of the freeze is refused by the state
    assert move(api, mid, "freeze")[1]["code"] == "MEMBER_NOT_ACTIVE"
    status, view = move(api, mid, "unfreeze", "核查通过")
    assert (status, view["status"]) == (200, "active")
    assert api.call("POST", f"/v1/members/{mid}/redemptions", POS, body=SPEND)[0] == 201
    assert move(api, mid, "unfreeze")[1]["code"] == "MEMBER_NOT_FROZEN"
    _, page = api.call("GET", f"/v1/admin/members/{mid}/profile-changes", OPERATOR)
    assert [(c["changes"][0]["new"], c["reason"]) for c in page["items"]] == [
        ("active", "核查通过"),
        ("frozen", "风控核查"),
    ]


def test_an_order_that_came_in_before_the_freeze_is_held_not_accrued(member, api, pipeline):
    assert api.call("POST", "/v1/orders", POS, body=order_body("S-3", 200))[0] == 202
    move(api, member["id"], "freeze")
    pipeline.drain()
    order = api.call("GET", "/v1/orders/S-3", POS)[1]
    assert (order["status"], order["heldReason"]) == ("held", "MEMBER_FROZEN")
    assert available(api, member["id"]) == 500
    status, problem = api.call("POST", "/v1/admin/orders/POS/S-3/release", OPERATOR, body={})
    assert (status, problem["code"]) == (409, "MEMBER_FROZEN")
    move(api, member["id"], "unfreeze")
    assert api.call("POST", "/v1/admin/orders/POS/S-3/release", OPERATOR, body={})[1]["status"] == "accrued"
    assert available(api, member["id"]) == 700


def test_a_cancelled_member_frees_the_phone_and_keeps_the_ledger(member, api):
    mid = member["id"]
    status, view = move(api, mid, "cancel", "会员申请注销")
    assert (status, view["status"], view["phone"], available(api, mid)) == (200, "cancelled", None, 500)
    assert api.call("POST", f"/v1/members/{mid}/redemptions", POS, body=SPEND)[1]["code"] == "MEMBER_NOT_ACTIVE"
    assert move(api, mid, "unfreeze")[1]["code"] == "MEMBER_NOT_FROZEN"
    assert move(api, mid, "cancel")[1]["code"] == "MEMBER_NOT_ACTIVE"
    status, other = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE})
    assert status == 201 and other["id"] != mid
    _, page = api.call("GET", f"/v1/admin/members/{mid}/profile-changes", OPERATOR)
    assert page["items"][0]["changes"] == [
        {"field": "status", "old": "active", "new": "cancelled"},
        {"field": "phone", "old": "138****8000", "new": None},
    ]


def test_only_operators_change_a_members_status(member, api):
    status, problem = api.call("POST", f"/v1/admin/members/{member['id']}/freeze", POS, body={"reason": "x"})
    assert (status, problem["code"]) == (403, "FORBIDDEN")
    assert move(api, member["id"], "freeze", "")[0] == 422
