"""A member's orders and returns, and non-member sales attached later (issue 13: timeline, orders without a
member): the history newest first with points; a sale to nobody stored without points; attached within the
program's window it accrues once."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR, POS, Api, order_body

PHONE = "13800138000"


@pytest.fixture
def member(demo, api: Api) -> dict:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE})
    assert status == 201
    return member


def anonymous(number: str, amount: int, days_ago: int = 1, phone: str | None = None) -> dict:
    body = order_body(number, amount, days_ago=days_ago)
    if phone:
        body["member"] = {"phone": phone}
    else:
        del body["member"]
    return body


def history(api: Api, member_id: str, key=POS, **query) -> dict:
    status, page = api.call("GET", f"/v1/members/{member_id}/orders", key, query=query or None)
    assert status == 200
    return page


def attach(api: Api, member_id: str, order_no: str, key: str | None = None) -> tuple[int, dict]:
    return api.call(
        "POST",
        f"/v1/admin/members/{member_id}/attached-orders",
        OPERATOR,
        body={"channel": "POS", "orderNo": order_no},
        headers={"idempotency-key": key} if key else None,
    )


def test_orders_and_returns_newest_first_with_points_and_paging(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=order_body("H-1", 300, days_ago=3))
    api.call("POST", "/v1/orders", POS, body=order_body("H-2", 200, days_ago=2))
    pipeline.drain()
    returned = {"returnNo": "R-1", "originalOrderNo": "H-1", "returnedAt": order_body("x", 1)["orderedAt"]}
    assert api.call("POST", "/v1/returns", POS, body={**returned, "wholeOrder": True})[0] == 202
    pipeline.drain()
    page = history(api, member["id"])
    assert [(s["kind"], s["number"], s["status"]) for s in page["items"]] == [
        ("return", "R-1", "processed"),
        ("order", "H-2", "accrued"),
        ("order", "H-1", "accrued"),
    ]
    ret, newer, older = page["items"]
    assert older["points"] == {"points": 300, "growth": 1}
    assert (ret["originalOrderNo"], ret["amount"], ret["points"]) == ("H-1", "300.00", {"points": -300, "growth": -1})
    assert (newer["amount"], newer["points"], newer["storeCode"]) == ("200.00", {"points": 200, "growth": 1}, "SH001")
    first = history(api, member["id"], limit="2")
    assert len(first["items"]) == 2 and first["nextCursor"]
    rest = history(api, member["id"], limit="2", cursor=first["nextCursor"])
    assert [s["number"] for s in rest["items"]] == ["H-1"] and rest["nextCursor"] is None
    # the operator sees the same; another member's history is empty; a stranger's cursor is refused
    assert api.call("GET", f"/v1/admin/members/{member['id']}/orders", OPERATOR)[1]["items"] == page["items"]
    status, problem = api.call("GET", f"/v1/members/{member['id']}/orders", POS, query={"cursor": "bm90LWpzb24"})
    assert (status, problem["code"]) == (422, "INVALID_CURSOR")
    assert api.call("GET", "/v1/members/01JDQ0000000000000000000ZZ/orders", POS)[0] == 404


def test_a_sale_to_nobody_is_stored_without_points(demo, api, pipeline):
    sale = anonymous("N-1", 500)
    status, accepted = api.call("POST", "/v1/orders", POS, body=sale)
    assert status == 202 and accepted["status"] == "unattached" and accepted.get("memberId") is None
    # a phone that is nobody's makes a non-member sale too (it used to be 422 UNKNOWN_MEMBER)
    status, accepted = api.call("POST", "/v1/orders", POS, body=anonymous("N-2", 80, phone="139 0000 0000"))
    assert (status, accepted["status"]) == (202, "unattached")
    pipeline.drain()
    status, shown = api.call("GET", "/v1/orders/N-1", POS)
    assert (status, shown["status"], shown["earned"]) == (200, "unattached", [])
    # a retry is the same order; the same number with other content is a conflict
    assert api.call("POST", "/v1/orders", POS, body=sale)[0] == 200
    assert api.call("POST", "/v1/orders", POS, body={**sale, "orderType": "外带"})[1]["code"] == "ORDER_CONFLICT"


def test_a_sale_before_registering_is_attached_and_accrues_once(demo, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=anonymous("PRE-1", 500, days_ago=5, phone=PHONE))
    api.call("POST", "/v1/orders", POS, body=anonymous("PRE-2", 40, days_ago=4))
    pipeline.drain()
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE})
    assert status == 201
    # the service desk finds what the phone bought before
    status, found = api.call("GET", f"/v1/admin/members/{member['id']}/unattached-orders", OPERATOR)
    assert status == 200 and [(s["number"], s["status"], s["amount"]) for s in found["items"]] == [
        ("PRE-1", "unattached", "500.00")
    ]
    status, attached = attach(api, member["id"], "PRE-1", key="attach-1")
    assert (status, attached["status"], attached["memberId"]) == (200, "received", member["id"])
    assert attached["attachedBy"] and attached["attachedAt"]
    assert attach(api, member["id"], "PRE-1", key="attach-1") == (200, attached)  # a retry: the first answer
    status, problem = attach(api, member["id"], "PRE-1", key="attach-2")  # a repeat with a new key: the state
    assert (status, problem["code"], problem["memberId"]) == (409, "ORDER_ALREADY_ATTACHED", member["id"])
    pipeline.drain()
    pipeline.drain()
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert {a["pointGroupCode"]: a["available"] for a in view["accounts"]} == {"points": 500, "growth": 1}
    assert (view["metrics"]["orderCount"], view["metrics"]["totalSpend"]) == (1, "500.00")
    assert [s["number"] for s in history(api, member["id"])["items"]] == ["PRE-1"]
    assert api.call("GET", f"/v1/admin/members/{member['id']}/unattached-orders", OPERATOR)[1]["items"] == []
    # a second attach of another sale without the phone works by number; the timeline has the purchases
    assert attach(api, member["id"], "PRE-2")[0] == 200
    pipeline.drain()
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert {a["pointGroupCode"]: a["available"] for a in view["accounts"]}["points"] == 540


def test_attaching_is_refused_past_the_window_after_a_return_and_for_frozen_members(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=anonymous("OLD", 100, days_ago=31))
    api.call("POST", "/v1/orders", POS, body=anonymous("RET", 100, days_ago=2))
    api.call("POST", "/v1/orders", POS, body=anonymous("FRZ", 100, days_ago=2))
    returned_at = order_body("x", 1)["orderedAt"]
    status, accepted = api.call(
        "POST",
        "/v1/returns",
        POS,
        body={"returnNo": "NR-1", "originalOrderNo": "RET", "returnedAt": returned_at, "wholeOrder": True},
    )
    assert (status, accepted["status"]) == (202, "unattached")
    # the non-member order counts what is left to return
    again = {"returnNo": "NR-2", "originalOrderNo": "RET", "returnedAt": returned_at, "wholeOrder": True}
    assert api.call("POST", "/v1/returns", POS, body=again)[1]["code"] == "NOTHING_TO_RETURN"
    status, problem = attach(api, member["id"], "OLD")
    assert (status, problem["code"], problem["field"]) == (409, "ATTACH_WINDOW_PASSED", "/orderNo")
    assert attach(api, member["id"], "RET")[1]["code"] == "ORDER_RETURNED"
    assert attach(api, member["id"], "NOPE")[1]["code"] == "ORDER_NOT_FOUND"
    api.call("POST", f"/v1/admin/members/{member['id']}/freeze", OPERATOR, body={"reason": "fraud check"})
    assert attach(api, member["id"], "FRZ")[1]["code"] == "MEMBER_FROZEN"
    pipeline.drain()
    assert history(api, member["id"])["items"] == []
    assert api.call("GET", "/v1/orders/FRZ", POS)[1]["status"] == "unattached"
