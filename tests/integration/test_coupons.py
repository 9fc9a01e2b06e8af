"""Coupons (issue 4): rules with approval, stock, issuance, verification, transfer, returns, expiry,
dashboard; over the template's handlers on moto."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from loyalty.store import keys
from loyalty.store.table import Table
from tests.support import OPERATOR, POS, SHANGHAI, Api, forget_answers, order_body

APPROVER = {**OPERATOR, "keyId": "01APPROVERKEY0000000000000"}
RULE = {
    "name": "满1000减500",
    "type": "amountOff",
    "amountOff": "500",
    "threshold": "1000",
    "programCode": "DEMO",
    "costCenterCode": "marketing",
    "costPerCoupon": "10",
    "totalStock": 200,
    "validity": {"type": "afterReceipt", "days": 30},
}


def listed_rule(api: Api, **changes) -> str:
    status, rule = api.call("POST", "/v1/admin/coupon-rules", OPERATOR, body={**RULE, **changes})
    assert status == 201, rule
    rule_id = rule["ruleId"]
    assert (
        api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})[0]
        == 200
    )
    status, approved = api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/approve", APPROVER, body={"comment": "ok"})
    assert status == 200 and approved["status"] == "listed", approved
    return rule_id


def register(api: Api, phone: str) -> str:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": phone})
    assert status == 201, member
    return member["id"]


@pytest.fixture
def member(demo, api: Api) -> str:
    return register(api, "13800138000")


def claim(api: Api, member_id: str, rule_id: str, key: str | None = None) -> tuple[int, dict]:
    headers = {"Idempotency-Key": key} if key else None
    return api.call("POST", f"/v1/members/{member_id}/coupons", POS, body={"ruleId": rule_id}, headers=headers)


def dashboard(api: Api, rule_id: str) -> dict:
    status, body = api.call("GET", f"/v1/admin/coupon-rules/{rule_id}/dashboard", OPERATOR)
    assert status == 200, body
    return body


def redeem(api: Api, codes: list[str], amount: str, order_no: str = "POS-1", **extra) -> tuple[int, dict]:
    body = {"codes": codes, "orderNo": order_no, "storeCode": "SH001", "orderAmount": amount, **extra}
    return api.call("POST", "/v1/coupons/redemptions", POS, body=body)


# --- rules and approval -----------------------------------------------------------------------------


def test_a_rule_goes_from_draft_through_the_named_approver_to_listed_with_every_step_logged(demo, api):
    status, draft = api.call("POST", "/v1/admin/coupon-rules", OPERATOR, body=RULE)
    assert status == 201 and draft["status"] == "draft" and len(draft["ruleId"]) == 13
    rule_id = draft["ruleId"]
    status, problem = api.call(
        "POST", f"/v1/admin/coupon-rules/{rule_id}/submit", OPERATOR, body={"approver": OPERATOR["keyId"]}
    )
    assert status == 422 and problem["code"] == "SELF_APPROVAL"
    api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})
    status, problem = api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/approve", OPERATOR, body={})
    assert status == 403 and problem["code"] == "NOT_THE_APPROVER"
    status, problem = api.call("PUT", f"/v1/admin/coupon-rules/{rule_id}", OPERATOR, body=RULE)
    assert status == 409 and problem["code"] == "RULE_STATUS"
    status, rejected = api.call(
        "POST", f"/v1/admin/coupon-rules/{rule_id}/reject", APPROVER, body={"comment": "门槛太低"}
    )
    assert rejected["status"] == "draft" and rejected["approvalStatus"] == "rejected"
    assert rejected["rejectionComment"] == "门槛太低"
    api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})
    _, listed = api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/approve", APPROVER, body={"comment": "同意"})
    assert listed["status"] == "listed" and listed["approvalStatus"] == "approved"
    log = api.call("GET", f"/v1/admin/coupon-rules/{rule_id}/log", OPERATOR)[1]["items"]
    assert [(e["action"], e["by"]) for e in log] == [
        ("submitted", OPERATOR["keyId"]),
        ("rejected", APPROVER["keyId"]),
        ("submitted", OPERATOR["keyId"]),
        ("approved", APPROVER["keyId"]),
    ]
    assert log[1]["comment"] == "门槛太低" and all(e["at"] for e in log)
    status, problem = api.call("DELETE", f"/v1/admin/coupon-rules/{rule_id}", OPERATOR)
    assert status == 409 and problem["code"] == "RULE_STATUS"


def test_only_listed_rules_issue_and_a_draft_can_be_copied_or_deleted(member, api):
    _, draft = api.call("POST", "/v1/admin/coupon-rules", OPERATOR, body=RULE)
    status, problem = claim(api, member, draft["ruleId"])
    assert status == 409 and problem["code"] == "RULE_NOT_LISTED"
    status, copy = api.call("POST", f"/v1/admin/coupon-rules/{draft['ruleId']}/copy", OPERATOR)
    assert status == 201 and copy["ruleId"] != draft["ruleId"] and copy["rule"]["amountOff"] == "500"
    assert api.call("DELETE", f"/v1/admin/coupon-rules/{draft['ruleId']}", OPERATOR)[0] == 204
    rule_id = listed_rule(api)
    api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/delist", OPERATOR)
    status, problem = claim(api, member, rule_id)
    assert status == 409 and problem["code"] == "RULE_NOT_LISTED"
    restock = {"quantity": 10, "reason": "加量"}  # 增发 on a delisted rule: the same case, the same code
    status, problem = api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/restocks", OPERATOR, body=restock)
    assert (status, problem["code"], problem["ruleStatus"]) == (409, "RULE_NOT_LISTED", "delisted")
    api.call("POST", f"/v1/admin/coupon-rules/{rule_id}/list", OPERATOR)
    status, body = claim(api, member, rule_id)
    assert status == 201, body


def test_a_rule_refers_only_to_what_exists_and_is_enabled(demo, api):
    status, problem = api.call("POST", "/v1/admin/coupon-rules", OPERATOR, body={**RULE, "storeGroupCode": "nowhere"})
    assert status == 422 and problem["code"] == "UNKNOWN_REFERENCE" and problem["field"] == "/storeGroupCode"


# --- stock, limits, dashboard -----------------------------------------------------------------------


def test_stock_200_with_50_claimed_shows_remaining_150_and_restock_adds(demo, api):
    rule_id = listed_rule(api)
    members = [register(api, f"1390000{i:04d}") for i in range(50)]
    codes = set()
    for member_id in members:
        status, coupon = claim(api, member_id, rule_id)
        assert status == 201 and coupon["status"] == "issued"
        codes.add(coupon["code"])
    assert len(codes) == 50
    board = dashboard(api, rule_id)
    assert (board["totalStock"], board["remaining"], board["issued"], board["claimers"]) == (200, 150, 50, 50)
    status, _ = api.call(
        "POST",
        f"/v1/admin/coupon-rules/{rule_id}/restocks",
        OPERATOR,
        body={"quantity": 1000, "cost": "0", "reason": "加量"},
    )
    assert status == 201
    board = dashboard(api, rule_id)
    assert (board["totalStock"], board["remaining"]) == (1200, 1150)
    log = api.call("GET", f"/v1/admin/coupon-rules/{rule_id}/log", OPERATOR)[1]["items"]
    assert log[-1]["action"] == "restocked" and log[-1]["quantity"] == 1000 and log[-1]["comment"] == "加量"


def test_stock_never_goes_below_zero(demo, api):
    rule_id = listed_rule(api, totalStock=3)
    members = [register(api, f"1370000{i:04d}") for i in range(4)]
    results = [claim(api, m, rule_id) for m in members]
    assert [s for s, _ in results] == [201, 201, 201, 409] and results[3][1]["code"] == "OUT_OF_STOCK"
    assert dashboard(api, rule_id)["remaining"] == 0


def test_per_member_limits_and_the_daily_cap_are_enforced(member, api):
    limited = listed_rule(api, claimLimits={"perDay": 2, "perYear": 5})
    assert [claim(api, member, limited)[0] for _ in range(3)] == [201, 201, 409]
    _, problem = claim(api, member, limited)
    assert problem["code"] == "CLAIM_LIMIT_REACHED" and problem["period"] == "day"
    capped = listed_rule(api, dailyIssueCap=3)
    others = [register(api, f"1360000{i:04d}") for i in range(4)]
    statuses = [claim(api, m, capped)[0] for m in others]
    assert statuses == [201, 201, 201, 409]
    assert claim(api, others[0], capped)[1]["code"] == "DAILY_CAP_REACHED"
    assert dashboard(api, limited)["claimers"] == 1 and dashboard(api, limited)["issued"] == 2


def test_a_claim_with_the_same_idempotency_key_issues_once(member, api):
    rule_id = listed_rule(api)
    first = claim(api, member, rule_id, key="claim-1")
    again = claim(api, member, rule_id, key="claim-1")
    assert first == again and dashboard(api, rule_id)["issued"] == 1


# --- verification ---------------------------------------------------------------------------------


def test_validate_then_redeem_once_and_the_settlement_and_dashboard_follow(member, api):
    rule_id = listed_rule(api)
    _, coupon = claim(api, member, rule_id)
    code = coupon["code"]
    status, check = api.call(
        "POST",
        "/v1/coupons/validate",
        POS,
        body={"codes": [code], "orderNo": "POS-1", "storeCode": "SH001", "orderAmount": "999.99"},
    )
    assert status == 200 and not check["usable"] and check["coupons"][0]["reasons"][0]["code"] == "BELOW_THRESHOLD"
    status, problem = redeem(api, [code], "999.99")
    assert status == 409 and problem["code"] == "COUPON_NOT_USABLE"
    status, redeemed = redeem(api, [code], "1000", verifier="V007")
    assert status == 201 and redeemed["discountTotal"] == "500" and redeemed["paidAmount"] == "500"
    assert redeem(api, [code], "1000") == (201, redeemed)  # the same order again: the first answer, 201 too
    status, problem = redeem(api, [code], "1000", order_no="POS-2")
    assert status == 409 and problem["coupons"][0]["reasons"][0]["code"] == "STATUS_USED"
    _, stored = api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)
    assert stored["status"] == "used" and stored["redemption"]["verifier"] == "V007"
    board = dashboard(api, rule_id)
    assert (board["used"], board["users"], board["newCustomers"], board["orderTotal"], board["roi"]) == (
        1,
        1,
        1,
        "500",
        "1.00",
    )
    day = datetime.now(SHANGHAI).date().isoformat()
    rows = api.call("GET", f"/v1/admin/coupon-rules/{rule_id}/settlements", OPERATOR, query={"date": day})[1]["items"]
    assert [(r["orderNo"], r["code"], r["storeCode"], r["verifier"]) for r in rows] == [
        ("POS-1", code, "SH001", "V007")
    ]


def test_a_rollback_makes_the_coupon_usable_again(member, api):
    rule_id = listed_rule(api)
    code = claim(api, member, rule_id)[1]["code"]
    redeem(api, [code], "1200")
    status, back = api.call("POST", f"/v1/coupons/{code}/rollback", POS, body={"orderNo": "POS-1"})
    assert status == 200 and back["status"] == "issued" and back.get("redemption") is None
    status, problem = api.call("POST", f"/v1/coupons/{code}/rollback", POS, body={"orderNo": "POS-1"})
    assert (status, problem["code"]) == (409, "COUPON_NOT_REDEEMED")  # a repeat with no key: the state's answer
    board = dashboard(api, rule_id)
    assert (board["used"], board["discountTotal"], board["orderTotal"]) == (0, "0", "0")
    assert redeem(api, [code], "1200", order_no="POS-2")[0] == 201


def test_a_rollback_retried_with_its_key_gets_its_first_answer_and_a_new_key_409(member, api):
    rule_id = listed_rule(api)
    code = claim(api, member, rule_id)[1]["code"]
    redeem(api, [code], "1200")
    path, body = f"/v1/coupons/{code}/rollback", {"orderNo": "POS-1"}
    first = api.call("POST", path, POS, body=body, headers={"idempotency-key": "undo-1"})
    assert first[0] == 200 and first[1]["status"] == "issued"
    assert api.call("POST", path, POS, body=body, headers={"idempotency-key": "undo-1"}) == first
    forget_answers("demo")  # the answer was lost after the commit: the marker written with it answers
    assert api.call("POST", path, POS, body=body, headers={"idempotency-key": "undo-1"}) == first
    status, problem = api.call("POST", path, POS, body=body, headers={"idempotency-key": "undo-2"})
    assert (status, problem["code"]) == (409, "COUPON_NOT_REDEEMED")
    assert dashboard(api, rule_id)["used"] == 0  # taken back once
    other = claim(api, member, rule_id)[1]["code"]
    redeem(api, [other], "1200", order_no="POS-9")
    status, problem = api.call("POST", f"/v1/coupons/{other}/rollback", POS, body=body)
    assert (status, problem["code"]) == (409, "NOT_REDEEMED_ON_ORDER")


def test_points_buy_a_coupon_both_or_neither(demo, api, pipeline):
    member_id = register(api, "13800138000")
    rule_id = listed_rule(api, pointsPrice=300, pointsGroupCode="points", publicClaim=False)
    exchange = lambda: api.call(  # noqa: E731
        "POST", f"/v1/members/{member_id}/coupon-exchanges", POS, body={"ruleId": rule_id}
    )
    status, problem = exchange()
    assert status == 409 and problem["code"] == "INSUFFICIENT_POINTS"
    assert dashboard(api, rule_id)["remaining"] == 200
    api.call("POST", "/v1/orders", POS, body=order_body("P-500", 500))
    pipeline.drain()
    status, coupon = exchange()
    assert status == 201 and coupon["source"] == "points"
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    points = next(a for a in view["accounts"] if a["pointGroupCode"] == "points")
    assert points["available"] == 200 and dashboard(api, rule_id)["remaining"] == 199
    # The 积分兑换优惠券 record names its coupon, and the coupon its record
    query = {"type": "REDEEM_COUPON"}
    [record] = api.call("GET", f"/v1/members/{member_id}/point-records", POS, query=query)[1]["items"]
    assert (record["change"], record["couponCode"], record["couponRuleId"]) == (-300, coupon["code"], rule_id)
    assert coupon["pointsRecordId"] == record["id"]


def test_an_operator_issues_to_a_member_named_by_phone_once_per_key(member, api):
    rule_id = listed_rule(api, publicClaim=False)
    status, problem = claim(api, member, rule_id)
    assert status == 409 and problem["code"] == "NOT_CLAIMABLE"
    path = f"/v1/admin/coupon-rules/{rule_id}/issuances"
    headers = {"Idempotency-Key": "issue-1"}
    status, coupon = api.call("POST", path, OPERATOR, body={"phone": "13800138000"}, headers=headers)
    assert status == 201 and (coupon["ownerId"], coupon["source"]) == (member, "operator")
    assert api.call("POST", path, OPERATOR, body={"phone": "13800138000"}, headers=headers) == (201, coupon)
    status, problem = api.call("POST", path, OPERATOR, body={"phone": "13999999999"})
    assert status == 404 and problem["code"] == "MEMBER_NOT_FOUND"
    assert dashboard(api, rule_id)["issued"] == 1


def test_points_are_not_spent_when_the_coupon_is_out_of_stock(demo, api, pipeline):
    member_id = register(api, "13800138000")
    rule_id = listed_rule(api, totalStock=1, pointsPrice=100, pointsGroupCode="points")
    api.call("POST", "/v1/orders", POS, body=order_body("P-500", 500))
    pipeline.drain()
    assert claim(api, register(api, "13900139000"), rule_id)[0] == 201  # the last coupon goes
    status, problem = api.call("POST", f"/v1/members/{member_id}/coupon-exchanges", POS, body={"ruleId": rule_id})
    assert status == 409 and problem["code"] == "OUT_OF_STOCK"
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    assert next(a for a in view["accounts"] if a["pointGroupCode"] == "points")["available"] == 500


# --- transfer, returns, expiry ---------------------------------------------------------------------


def test_a_transfer_is_accepted_by_a_friend_and_logged(member, api):
    rule_id = listed_rule(api, transfer={"allowed": True, "claimHours": 24})
    code = claim(api, member, rule_id)[1]["code"]
    body = {"programCode": "DEMO", "phone": "13900139000", "name": "李四"}
    friend = api.call("POST", "/v1/members", POS, body=body)[1]["id"]
    status, started = api.call("POST", f"/v1/members/{member}/coupons/{code}/transfers", POS)
    assert status == 201
    assert (
        api.call("GET", f"/v1/members/{member}/coupons", POS, query={"status": "transferring"})[1]["items"][0]["code"]
        == code
    )
    status, owned = api.call(
        "POST", f"/v1/coupons/{code}/transfers/{started['transferId']}/accept", POS, body={"memberId": friend}
    )
    assert status == 200 and owned["ownerId"] == friend and owned["status"] == "issued"
    assert api.call("GET", f"/v1/members/{friend}/coupons", POS)[1]["items"][0]["code"] == code
    assert api.call("GET", f"/v1/members/{member}/coupons", POS)[1]["items"] == []
    transfers = api.call("GET", f"/v1/admin/coupons/{code}/transfers", OPERATOR)[1]["items"]
    assert [line["status"] for line in transfers[0]["log"]] == ["issued=>transferring", "transferring=>issued"]
    assert transfers[0]["status"] == "accepted" and transfers[0]["receiverId"] == friend
    # The record shows who gave and who received as the spec's 转赠记录 does: card number, name, masked phone
    cards = [api.call("GET", f"/v1/members/{m}", POS)[1]["cardNo"] for m in (member, friend)]
    assert (transfers[0]["giver"], transfers[0]["receiver"]) == (
        {"cardNo": cards[0], "name": None, "phone": "138****8000"},
        {"cardNo": cards[1], "name": "李四", "phone": "139****9000"},
    )
    assert all(cards)
    # The record keeps the card numbers only: the friend's erasure reaches what it shows (D-123)
    assert api.call("DELETE", f"/v1/members/{friend}/personal-data", POS)[0] == 200
    transfers = api.call("GET", f"/v1/admin/coupons/{code}/transfers", OPERATOR)[1]["items"]
    assert transfers[0]["receiver"] == {"cardNo": cards[1], "name": None, "phone": None}
    [stored] = Table().query_all(keys.coupon("demo", code), keys.transfer_sk(""))
    assert (stored["giver"], stored["receiver"]) == ({"cardNo": cards[0]}, {"cardNo": cards[1]})


def test_a_coupon_that_cannot_be_transferred_is_refused(member, api):
    code = claim(api, member, listed_rule(api))[1]["code"]
    status, problem = api.call("POST", f"/v1/members/{member}/coupons/{code}/transfers", POS)
    assert status == 409 and problem["code"] == "NOT_TRANSFERABLE"


def _service_at(moment: datetime):
    from loyalty.clock import FixedClock
    from loyalty.services.expiry import expiry_service

    return expiry_service(clock=FixedClock(moment))


def _sweep(kind: str, at: datetime, days: list[datetime]) -> None:
    from loyalty.services.sweeps import Bucket
    from loyalty.store import keys

    service = _service_at(at)
    for day in days:
        for shard in range(keys.EXPIRY_SHARDS):
            service.sweep(Bucket("demo", "DEMO", day.date().isoformat(), shard, None, kind))


def test_a_lapsed_transfer_returns_to_the_giver_in_the_sweep(member, api):
    rule_id = listed_rule(api, transfer={"allowed": True, "claimHours": 1})
    code = claim(api, member, rule_id)[1]["code"]
    _, started = api.call("POST", f"/v1/members/{member}/coupons/{code}/transfers", POS)
    now = datetime.now(SHANGHAI)
    _sweep("TRANSFER", now + timedelta(hours=2), [now, now + timedelta(hours=1)])
    _, back = api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)
    assert (back["status"], back["ownerId"]) == ("issued", member)
    assert (
        api.call("GET", f"/v1/members/{member}/coupons", POS, query={"status": "issued"})[1]["items"][0]["code"] == code
    )
    transfers = api.call("GET", f"/v1/admin/coupons/{code}/transfers", OPERATOR)[1]["items"]
    assert transfers[0]["status"] == "returned"
    assert [line["status"] for line in transfers[0]["log"]] == ["issued=>transferring", "transferring=>issued"]
    friend = register(api, "13900139000")
    status, problem = api.call(
        "POST", f"/v1/coupons/{code}/transfers/{started['transferId']}/accept", POS, body={"memberId": friend}
    )
    assert status == 409 and problem["code"] == "TRANSFER_NOT_OPEN"


def test_a_lapsed_transfer_is_the_giver_s_coupon_the_moment_its_period_ends_before_any_sweep(member, api):
    """Issue 24: a transfer stayed `transferring` until the next sweep: the friend could not accept it, the
    giver could not redeem it, and reading the coupon did not show it back. It ends when its period ends;
    the write that meets it records it (and the sweep, later, finds nothing to do)."""
    from loyalty import clock

    rule_id = listed_rule(api, transfer={"allowed": True, "claimHours": 1}, threshold=None)
    code = claim(api, member, rule_id)[1]["code"]
    first = api.call("POST", f"/v1/members/{member}/coupons/{code}/transfers", POS)[1]["transferId"]
    clock.advance(timedelta(minutes=59))
    assert api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)[1]["status"] == "transferring"
    clock.advance(timedelta(minutes=2))  # the hour has passed: no sweep has run
    _, back = api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)
    assert (back["status"], back["ownerId"], back["transferEndsAt"]) == ("issued", member, None)
    issued = api.call("GET", f"/v1/members/{member}/coupons", POS, query={"status": "issued"})[1]
    assert [c["code"] for c in issued["items"]] == [code] and issued["nextCursor"] is None
    assert api.call("GET", f"/v1/members/{member}/coupons", POS, query={"status": "transferring"})[1]["items"] == []
    friend = register(api, "13900139000")
    accept = f"/v1/coupons/{code}/transfers/{first}/accept"
    status, problem = api.call("POST", accept, POS, body={"memberId": friend})
    assert (status, problem["code"]) == (409, "TRANSFER_NOT_OPEN")
    # The giver gives it again: the lapse is recorded by that write, then the new transfer starts
    status, again = api.call("POST", f"/v1/members/{member}/coupons/{code}/transfers", POS)
    assert status == 201, again
    transfers = api.call("GET", f"/v1/admin/coupons/{code}/transfers", OPERATOR)[1]["items"]
    assert {t["transferId"]: t["status"] for t in transfers} == {first: "returned", again["transferId"]: "pending"}
    # ...which lapses too; the giver redeems it at the till, without a sweep in between
    clock.advance(timedelta(hours=1, minutes=1))
    status, redeemed = redeem(api, [code], "100")
    assert status == 201, redeemed
    assert api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)[1]["status"] == "used"
    transfers = api.call("GET", f"/v1/admin/coupons/{code}/transfers", OPERATOR)[1]["items"]
    assert [t["status"] for t in transfers] == ["returned", "returned"]


def test_coupons_past_their_validity_expire_in_the_sweep_and_are_refused_before_it(member, api):
    rule_id = listed_rule(api, validity={"type": "afterReceipt", "days": 1}, threshold=None)
    code = claim(api, member, rule_id)[1]["code"]
    now = datetime.now(SHANGHAI)
    _sweep("COUPON", now, [now])  # still valid today: nothing happens
    assert api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)[1]["status"] == "issued"
    _sweep("COUPON", now + timedelta(days=1, hours=1), [now])
    _, gone = api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)
    assert gone["status"] == "expired"
    status, problem = redeem(api, [code], "100")
    assert status == 409 and problem["coupons"][0]["reasons"][0]["code"] == "STATUS_EXPIRED"


def test_a_returned_order_gives_its_coupon_back_when_the_rule_says_so(member, api, pipeline):
    rule_id = listed_rule(api, returnOnRefund={"enabled": True, "validityDays": 7}, threshold=None, amountOff="20")
    code = claim(api, member, rule_id)[1]["code"]
    assert redeem(api, [code], "500", order_no="R-500")[0] == 201
    api.call("POST", "/v1/orders", POS, body=order_body("R-500", 500))
    pipeline.drain()
    status, _ = api.call(
        "POST",
        "/v1/returns",
        POS,
        body={
            "returnNo": "RT-1",
            "originalOrderNo": "R-500",
            "wholeOrder": True,
            "returnedAt": datetime.now(SHANGHAI).isoformat(),
        },
    )
    assert status == 202
    pipeline.drain()
    _, back = api.call("GET", f"/v1/admin/coupons/{code}", OPERATOR)
    assert back["status"] == "issued" and back.get("redemption") is None
    assert back["validUntil"][:10] == (datetime.now(SHANGHAI) + timedelta(days=6)).date().isoformat()
    assert dashboard(api, rule_id)["used"] == 0


# --- batch issuance -------------------------------------------------------------------------------


def test_a_csv_issues_through_the_queue_with_a_report_per_row(demo, api, pipeline):
    rule_id = listed_rule(api, totalStock=2, claimLimits={"perDay": 1})
    first = register(api, "13700137000")
    register(api, "13700137001")
    csv = f"memberId,phone\n{first},\n,13700137001\n,13799999999\n{first},\n"
    status, job = api.call(
        "POST",
        f"/v1/admin/coupon-rules/{rule_id}/issuance-jobs",
        OPERATOR,
        body={"csv": csv},
        headers={"Idempotency-Key": "job-1"},
    )
    assert status == 202 and job["total"] == 4
    pipeline.drain()
    _, report = api.call("GET", f"/v1/admin/coupon-issuance-jobs/{job['jobId']}", OPERATOR)
    assert [r["outcome"] for r in report["rows"]] == ["ISSUED", "ISSUED", "UNKNOWN_MEMBER", "LIMIT_REACHED"]
    assert report["done"] == 4 and dashboard(api, rule_id)["remaining"] == 0


def test_a_redelivered_chunk_issues_nothing_twice(demo, api):
    from loyalty.services.coupon_batches import JobRequest, coupon_batch_service

    rule_id = listed_rule(api)
    member_id = register(api, "13700137000")
    service = coupon_batch_service()
    job = service.create("demo", rule_id, JobRequest(csv=f"memberId\n{member_id}\n"), "op")
    message = {"tenant": "demo", "jobId": job.job_id, "ruleId": rule_id, "rows": [{"row": 1, "memberId": member_id}]}
    assert service.work(message) == 1
    assert service.work(message) == 0
    assert dashboard(api, rule_id)["issued"] == 1


def test_events_announce_issue_and_redemption(member, api, captured_events):
    code = claim(api, member, listed_rule(api))[1]["code"]
    redeem(api, [code], "1000")
    kinds = [(e["detail-type"], e["detail"].get("code")) for e in captured_events.drain()]
    assert ("CouponIssued", code) in kinds and ("CouponRedeemed", code) in kinds


def test_operators_find_a_members_coupons_by_phone(member, api):
    code = claim(api, member, listed_rule(api))[1]["code"]
    status, found = api.call("GET", "/v1/admin/coupons", OPERATOR, query={"phone": "13800138000", "status": "issued"})
    assert status == 200 and [c["code"] for c in found["items"]] == [code]
    assert Decimal(found["items"][0]["terms"]["amountOff"]) == 500


def test_an_offline_till_checks_coupons_as_of_the_sale_within_seven_days(member, api):
    """A coupon usable only on yesterday's weekday: refused now, accepted for a sale made yesterday."""
    now = datetime.now(SHANGHAI)
    yesterday = now - timedelta(days=1)
    window = {"type": "fixedDates", "startDate": (now - timedelta(days=10)).date().isoformat(), "endDate": "2030-12-31"}
    rule_id = listed_rule(api, validity=window, usableWeekdays=[yesterday.isoweekday()])
    code = claim(api, member, rule_id)[1]["code"]
    check = {"codes": [code], "orderNo": "OFF-1", "storeCode": "SH001", "orderAmount": "1200"}
    _, today = api.call("POST", "/v1/coupons/validate", POS, body=check)
    assert [r["code"] for r in today["coupons"][0]["reasons"]] == ["WEEKDAY_NOT_USABLE"]
    _, then = api.call("POST", "/v1/coupons/validate", POS, body={**check, "orderedAt": yesterday.isoformat()})
    assert then["coupons"][0]["reasons"] == [] and then["coupons"][0]["usable"]
    status, redeemed = redeem(api, [code], "1200", order_no="OFF-1", orderedAt=yesterday.isoformat())
    assert status == 201 and redeemed["discountTotal"] == "500"
    for late in (now - timedelta(days=8), now + timedelta(hours=1)):
        status, problem = api.call("POST", "/v1/coupons/validate", POS, body={**check, "orderedAt": late.isoformat()})
        assert (status, problem["code"], problem["field"]) == (422, "TIME_OUT_OF_RANGE", "/orderedAt")


def test_another_tenants_member_has_no_coupons_here_it_is_404(member, api):
    """A member-scoped list answers as every member route does: 404 for a member this tenant does not have."""
    from tests.support import OTHER_TENANT_POS

    claim(api, member, listed_rule(api))
    assert len(api.call("GET", f"/v1/members/{member}/coupons", POS)[1]["items"]) == 1
    status, problem = api.call("GET", f"/v1/members/{member}/coupons", OTHER_TENANT_POS)
    assert (status, problem["code"]) == (404, "MEMBER_NOT_FOUND")
    status, problem = api.call("GET", "/v1/members/01HZZZZZZZZZZZZZZZZZZZZZZZ/coupons", POS)
    assert (status, problem["code"]) == (404, "MEMBER_NOT_FOUND")
