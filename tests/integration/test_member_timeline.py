"""The member's timeline and spend metrics (issue 13, timeline and metrics): 注册, 首购 and 购买 written with
what they record, channel behaviours beside them; spend metrics moved in the accrual and return
transactions, exact under replays."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support import OPERATOR, POS, SHANGHAI, Api, order_body


@pytest.fixture
def member(demo, api: Api) -> dict:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    assert status == 201
    return member


def timeline(api: Api, member_id: str) -> list[dict]:
    return api.call("GET", f"/v1/members/{member_id}/behaviours", POS)[1]["items"]


def metrics(api: Api, member_id: str) -> dict:
    return api.call("GET", f"/v1/members/{member_id}", POS)[1]["metrics"]


def test_registration_and_orders_are_on_the_timeline_newest_first(member, api, pipeline):
    assert [e["type"] for e in timeline(api, member["id"])] == ["register"]
    api.call("POST", "/v1/orders", POS, body=order_body("T-OLD", 300, days_ago=3))
    api.call("POST", "/v1/orders", POS, body=order_body("T-NEW", 200, days_ago=2))
    pipeline.drain()
    entries = timeline(api, member["id"])
    assert [(e["type"], e.get("orderNo")) for e in entries[:2]] == [("register", None), ("purchase", "T-NEW")]
    # the oldest order is both the first purchase and a purchase (the same moment: in either order)
    assert sorted((e["type"], e["orderNo"]) for e in entries[2:]) == [("firstPurchase", "T-OLD"), ("purchase", "T-OLD")]
    (purchase,) = [e for e in entries[2:] if e["type"] == "purchase"]
    assert (purchase["source"], purchase["channel"], purchase["storeCode"]) == ("system", "POS", "SH001")
    assert (purchase["amount"], purchase["points"]["points"]) == ("300", 300)
    _, operators = api.call("GET", f"/v1/admin/members/{member['id']}/behaviours", OPERATOR, query={"limit": "1"})
    assert len(operators["items"]) == 1 and operators["nextCursor"]


def test_a_channel_behaviour_is_on_the_timeline(member, api):
    when = datetime.now(SHANGHAI).replace(microsecond=0).isoformat()
    body = {"behaviourType": "checkIn", "behaviourId": "c-1", "occurredAt": when}
    assert api.call("POST", f"/v1/members/{member['id']}/behaviours", POS, body=body)[0] in (200, 201)
    (checked,) = [e for e in timeline(api, member["id"]) if e["type"] == "checkIn"]
    assert (checked["source"], checked["channel"], checked["behaviourId"]) == ("channel", "POS", "c-1")


def test_spend_metrics_follow_orders_and_returns_exactly_once(member, api, pipeline):
    assert metrics(api, member["id"])["orderCount"] == 0
    api.call("POST", "/v1/orders", POS, body=order_body("M-1", 300, days_ago=3))
    api.call("POST", "/v1/orders", POS, body=order_body("M-2", 200, days_ago=2))
    pipeline.drain()
    seen = metrics(api, member["id"])
    assert (seen["totalSpend"], seen["orderCount"], seen["averageOrderValue"]) == ("500.00", 2, "250.00")
    assert seen["firstPurchaseAt"] < seen["lastPurchaseAt"]
    # a replayed accrual changes nothing
    from loyalty.services.accrual import accrual_service
    from loyalty.store import keys
    from loyalty.store.table import Table

    stored = Table().get(keys.order("demo", "POS", "M-1"), keys.ORDER_SK) or {}
    assert accrual_service().accrue("demo", {**stored, "status": "received"}) is False
    assert metrics(api, member["id"]) == seen
    # a return lowers them, once
    returned = {"returnNo": "R-1", "originalOrderNo": "M-1", "returnedAt": order_body("x", 1)["orderedAt"]}
    assert api.call("POST", "/v1/returns", POS, body={**returned, "wholeOrder": True})[0] == 202
    pipeline.drain()
    after = metrics(api, member["id"])
    assert (after["totalSpend"], after["returnedAmount"], after["averageOrderValue"]) == ("200.00", "300.00", "100.00")
    assert (after["firstPurchaseAt"], after["lastPurchaseAt"]) == (seen["firstPurchaseAt"], seen["lastPurchaseAt"])
