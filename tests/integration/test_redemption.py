"""Spending points FIFO, cancelling, adjusting by hand (issue 3, item 4)."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR, POS, Api, forget_answers

ORDER = {
    "programCode": "DEMO",
    "member": {"phone": "13800138000"},
    "storeCode": "SH001",
    "payments": [],
    "orderType": "堂食",
}


@pytest.fixture
def member(demo, api: Api, pipeline) -> dict:
    """A member with two lots of points: 300 (ordered in 2026-01, so expiring first) and 500 (2026-11)."""
    _, body = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    for number, when, amount in (
        ("newer", "2026-11-20T10:00:00+08:00", "500"),
        ("older", "2026-01-15T10:00:00+08:00", "300"),
    ):
        line = {
            "lineNo": 1,
            "sku": "TD0001",
            "quantity": "1",
            "receivable": amount,
            "paid": amount,
            "pointsAmount": amount,
        }
        assert (
            api.call("POST", "/v1/orders", POS, body={**ORDER, "orderNo": number, "orderedAt": when, "lines": [line]})[
                0
            ]
            == 202
        )
    pipeline.drain()
    return body


def points(api: Api, member_id: str) -> tuple[int, int, int]:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    account = next(a for a in view["accounts"] if a["pointGroupCode"] == "points")
    return account["cumulative"], account["available"], account["expired"]


def lots(api: Api, member_id: str) -> list[tuple[str, int]]:
    found = api.call("GET", f"/v1/members/{member_id}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    return [(lot["expiresAt"][:10], lot["remaining"]) for lot in found]


def redeem(api: Api, member_id: str, amount: int, **extra) -> tuple[int, dict]:
    body = {"pointGroupCode": "points", "points": amount, "purpose": "gift", "reference": "冰淇淋兑换券", **extra}
    return api.call("POST", f"/v1/members/{member_id}/redemptions", POS, body=body)


def test_a_redemption_draws_the_earliest_expiring_lot_first(member, api):
    assert lots(api, member["id"]) == [("2027-01-15", 300), ("2027-11-20", 500)]
    status, spent = redeem(api, member["id"], 400)
    assert status == 201 and spent["type"] == "REDEEM_GIFT" and spent["status"] == "active"
    assert [(r["expiresAt"][:10], r["points"]) for r in spent["relations"]] == [
        ("2027-01-15", 300),
        ("2027-11-20", 100),
    ]
    assert lots(api, member["id"]) == [("2027-11-20", 400)]  # the emptied lot closed
    assert points(api, member["id"]) == (800, 400, 0)  # cumulative keeps what was earned
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query={"pointGroup": "points"})
    assert [(r["type"], r["change"], r["remaining"]) for r in records["items"]][-1] == ("REDEEM_GIFT", -400, None)
    earning = {r["orderNo"]: r["remaining"] for r in records["items"] if r["type"] == "TRANSACTION"}
    assert earning == {"older": 0, "newer": 400}  # 本笔交易积分可用余额


def test_not_enough_points_is_409_and_writes_nothing(member, api):
    status, problem = redeem(api, member["id"], 801)
    assert status == 409 and problem["code"] == "INSUFFICIENT_POINTS" and problem["spendable"] == 800
    assert points(api, member["id"]) == (800, 800, 0) and len(lots(api, member["id"])) == 2


def test_points_for_a_coupon_are_recorded_as_such(member, api):
    _, spent = redeem(api, member["id"], 100, purpose="coupon", reference="满100减20")
    assert spent["type"] == "REDEEM_COUPON"


def test_a_retry_with_its_idempotency_key_spends_once(member, api):
    body = {"pointGroupCode": "points", "points": 100, "purpose": "orderPayment", "orderNo": "pay-1"}
    headers = {"idempotency-key": "spend-1"}
    first = api.call("POST", f"/v1/members/{member['id']}/redemptions", POS, body=body, headers=headers)
    again = api.call("POST", f"/v1/members/{member['id']}/redemptions", POS, body=body, headers=headers)
    assert first == again and first[1]["type"] == "REDEEM_GIFT"  # paying an order counts as 积分兑换礼品
    assert points(api, member["id"]) == (800, 700, 0)


def test_cancelling_returns_the_points_to_their_lots_with_their_expiry(member, api):
    _, spent = redeem(api, member["id"], 400)
    path = f"/v1/members/{member['id']}/redemptions/{spent['id']}/cancel"
    status, cancelled = api.call("POST", path, POS)
    assert status == 200 and cancelled["status"] == "cancelled"
    assert lots(api, member["id"]) == [("2027-01-15", 300), ("2027-11-20", 500)]  # the closed lot re-opened
    assert points(api, member["id"]) == (800, 800, 0)
    status, again = api.call("POST", path, POS)  # a repeat without the first call's key: the state's answer
    assert (status, again["code"]) == (409, "REDEMPTION_ALREADY_CANCELLED")
    assert points(api, member["id"]) == (800, 800, 0)
    _, records = api.call(
        "GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "REDEEM_CANCEL_RETURN"}
    )
    assert [r["change"] for r in records["items"]] == [400]


def test_a_cancel_retried_with_its_key_gets_its_first_answer_and_a_new_key_409(member, api):
    _, spent = redeem(api, member["id"], 400)
    path = f"/v1/members/{member['id']}/redemptions/{spent['id']}/cancel"
    first = api.call("POST", path, POS, headers={"idempotency-key": "cancel-1"})
    assert first[0] == 200 and first[1]["status"] == "cancelled"
    assert api.call("POST", path, POS, headers={"idempotency-key": "cancel-1"}) == first
    forget_answers("demo")  # as after a timeout once the write had committed: only the marker is left
    assert api.call("POST", path, POS, headers={"idempotency-key": "cancel-1"}) == first
    status, problem = api.call("POST", path, POS, headers={"idempotency-key": "cancel-2"})
    assert (status, problem["code"], problem["field"]) == (409, "REDEMPTION_ALREADY_CANCELLED", "/redemptionId")
    assert points(api, member["id"]) == (800, 800, 0)  # given back once


def test_manual_adjustments_add_a_lot_or_spend_fifo(member, api):
    path = f"/v1/admin/members/{member['id']}/point-adjustments"
    status, added = api.call(
        "POST", path, OPERATOR, body={"pointGroupCode": "points", "points": 50, "reason": "补录积分"}
    )
    assert status == 201 and added["type"] == "MANUAL_INCREASE"
    assert points(api, member["id"]) == (850, 850, 0)
    status, taken = api.call(
        "POST", path, OPERATOR, body={"pointGroupCode": "points", "points": -350, "reason": "误发"}
    )
    assert status == 201 and taken["type"] == "MANUAL_DECREASE"
    assert [r["points"] for r in taken["relations"]] == [300, 50]
    assert points(api, member["id"]) == (500, 500, 0)  # a manual decrease lowers cumulative too (§8.2)
    assert api.call("POST", path, POS, body={"pointGroupCode": "points", "points": 1, "reason": "x"})[0] == 403
    assert api.call("POST", path, OPERATOR, body={"pointGroupCode": "points", "points": 0, "reason": "x"})[0] == 422
    assert api.call("POST", path, OPERATOR, body={"pointGroupCode": "stars", "points": 1, "reason": "x"})[1][
        "code"
    ] == ("UNKNOWN_POINT_GROUP")


def test_unknown_member_or_redemption_is_404(member, api):
    assert redeem(api, "01HZZZZZZZZZZZZZZZZZZZZZZZ", 1)[0] == 404
    assert api.call("POST", f"/v1/members/{member['id']}/redemptions/01HZZZZZZZZZZZZZZZZZZZZZZZ/cancel", POS)[0] == 404
