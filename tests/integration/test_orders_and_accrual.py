"""Orders in, points out (issue 3, items 1-3 and 6): the spec's numbers, exactly once under replays."""

from __future__ import annotations

import copy
import json
from datetime import datetime

import pytest

from tests.support import OPERATOR, OTHER_TENANT_POS, POS, SNACK_DOUBLE, Api, load_event

PHONE = "13800138000"


@pytest.fixture
def member(demo, api: Api) -> dict:
    status, body = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE, "name": "张三"})
    assert status == 201
    return body


def order(
    number: str = "roy202103230000000041",
    points_amount: str = "500",
    quantity: str = "1",
    store: str = "SH001",
    **changes: object,
) -> dict:
    body = {
        "programCode": "DEMO",
        "orderNo": number,
        "member": {"phone": PHONE},
        "storeCode": store,
        "orderedAt": "2026-11-20T14:52:00+08:00",
        "orderType": "堂食",
        "lines": [
            {
                "lineNo": 1,
                "sku": "TD0001",
                "categoryCode": "SNACK",
                "quantity": quantity,
                "receivable": points_amount,
                "paid": points_amount,
                "pointsAmount": points_amount,
            }
        ],
        "payments": [{"methodCode": "1001", "amount": points_amount}],
    }
    return {**body, **changes}


def accounts(api: Api, member_id: str) -> dict[str, tuple[int, int, int]]:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    return {a["pointGroupCode"]: (a["cumulative"], a["available"], a["expired"]) for a in view["accounts"]}


def test_a_500_line_earns_500_points_and_1_growth_with_365_day_lots(member, api, pipeline, captured_events):
    # When the sample order from the spec is posted
    status, accepted = api.call("POST", "/v1/orders", POS, body=order())
    assert status == 202 and accepted["status"] == "received" and accepted["memberId"] == member["id"]
    assert accounts(api, member["id"]) == {"points": (0, 0, 0), "growth": (0, 0, 0)}  # nothing inline
    pipeline.drain()
    # Then 500 积分 (线下门店1元1积分) and 1 成长值 (线下门店1个数量积1成长值)
    assert accounts(api, member["id"]) == {"points": (500, 500, 0), "growth": (1, 1, 0)}
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS)
    by_group = {r["pointGroupCode"]: r for r in records["items"]}
    assert by_group["points"]["type"] == "TRANSACTION" and by_group["points"]["change"] == 500
    assert by_group["points"]["remaining"] == 500 and by_group["growth"]["remaining"] == 1
    assert by_group["points"]["costCenterCode"] == "member" and by_group["points"]["countsTowardUpgrade"] is True
    assert by_group["growth"]["countsTowardUpgrade"] is False
    assert by_group["points"]["lines"] == [{"lineNo": 1, "points": 500}]
    # Fixed period of 365 days: valid to the end of the day 365 days after the order, in Shanghai time
    assert datetime.fromisoformat(by_group["points"]["expiresAt"]).isoformat() == "2027-11-20T23:59:59.999999+08:00"
    # The order shows what it earned
    _, shown = api.call("GET", "/v1/orders/roy202103230000000041", POS)
    assert shown["status"] == "accrued" and {(e["pointGroupCode"], e["points"]) for e in shown["earned"]} == {
        ("points", 500),
        ("growth", 1),
    }
    kinds = [e["detail-type"] for e in captured_events.drain()]
    assert kinds.count("PointsEarned") == 2 and "OrderAccrued" in kinds and "OrderReceived" in kinds


def test_eight_orders_give_cumulative_and_available_8600(member, api, pipeline):
    for n, amount in enumerate((1000, 2000, 2000, 2000, 400, 400, 400, 400)):
        assert api.call("POST", "/v1/orders", POS, body=order(f"o-{n}", str(amount)))[0] == 202
    pipeline.drain()
    assert accounts(api, member["id"])["points"] == (8600, 8600, 0)
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    assert sum(lot["remaining"] for lot in lots) == 8600 and len(lots) == 8


def test_redelivered_accrual_messages_add_nothing(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=order())
    # Capture the message the queue would deliver, then deliver it again and again
    pipeline.drain()
    event = load_event("accrue_points.json")
    body = json.loads(event["Records"][0]["body"])
    _, shown = api.call("GET", "/v1/orders/roy202103230000000041", POS)
    body["detail"]["order"].update(
        orderId=shown["orderId"], memberId=member["id"], submission=order() | {"member": {"phone": PHONE}}
    )
    event["Records"][0]["body"] = json.dumps(body)
    for _ in range(3):
        assert api.functions["AccruePointsFunction"].invoke(copy.deepcopy(event)) == {"batchItemFailures": []}
    assert accounts(api, member["id"]) == {"points": (500, 500, 0), "growth": (1, 1, 0)}
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS)
    assert len(records["items"]) == 2


def test_a_retry_under_its_key_gets_202_received_even_after_accrual(member, api, pipeline):
    headers = {"idempotency-key": "order-1"}
    first = api.call("POST", "/v1/orders", POS, body=order(), headers=headers)
    assert first[0] == 202 and first[1]["status"] == "received"
    pipeline.drain()
    assert api.call("POST", "/v1/orders", POS, body=order(), headers=headers) == first
    status, now = api.call("POST", "/v1/orders", POS, body=order(), headers={"idempotency-key": "order-2"})
    assert (status, now["status"], now["orderId"]) == (200, "accrued", first[1]["orderId"])
    assert accounts(api, member["id"])["points"] == (500, 500, 0)


def test_a_repeated_post_gets_the_first_answer_and_another_order_under_its_number_is_409(member, api, pipeline):
    status, first = api.call("POST", "/v1/orders", POS, body=order())
    status2, again = api.call("POST", "/v1/orders", POS, body=order())
    assert (status, status2) == (202, 200) and again == first
    status, problem = api.call("POST", "/v1/orders", POS, body=order(points_amount="501"))
    assert status == 409 and problem["code"] == "ORDER_CONFLICT" and problem["existingOrderId"] == first["orderId"]
    # Order numbers are per channel: the mini-program may use the same number
    mini = {**POS, "channel": "MINI_PROGRAM"}
    assert api.call("POST", "/v1/orders", mini, body=order(store="MINI"))[0] == 202
    pipeline.drain()
    assert accounts(api, member["id"])["points"] == (1000, 1000, 0)  # each order once


def test_reaching_1000_qualifying_points_upgrades_base_straight_to_gold(member, api, pipeline, captured_events):
    api.call("POST", "/v1/orders", POS, body=order(points_amount="1000"))
    pipeline.drain()
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert (view["tier"]["code"], view["tier"]["type"]) == ("gold", "upgrade")
    assert view["tier"]["validUntil"] is not None
    tiers = api.call("GET", f"/v1/members/{member['id']}/tiers", POS)[1]["items"]
    assert [(t["code"], t["type"], t["status"]) for t in tiers] == [
        ("base", "BASE", "invalid"),
        ("gold", "UPGRADE", "valid"),
    ]  # exactly one valid tier record
    changed = [e["detail"] for e in captured_events.drain() if e["detail-type"] == "TierChanged"]
    assert [(c["from"], c["to"]) for c in changed] == [("base", "gold")]
    # The accumulator is kept: 250 more (1250) stays gold, 3750 more (5000) reaches platinum
    api.call("POST", "/v1/orders", POS, body=order("o-2", "250"))
    pipeline.drain()
    view = api.call("GET", f"/v1/members/{member['id']}", POS)[1]
    assert view["tier"]["code"] == "gold"
    # "3750 points to platinum", and gold is kept at its end with 1000 (reached)
    assert view["tierProgress"] == [
        {
            "condition": "points",
            "pointGroupCode": "points",
            "qualifying": 1250,
            "nextTier": {"code": "platinum", "name": "铂金卡会员", "pointsNeeded": 3750},
            "retentionTarget": 1000,
            "retentionPointsNeeded": 0,
            "retentionBy": view["tier"]["validUntil"],
        }
    ]
    api.call("POST", "/v1/orders", POS, body=order("o-3", "3750"))
    pipeline.drain()
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["tier"]["code"] == "platinum"


def test_growth_never_counts_toward_upgrade(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=order(points_amount="1", quantity="400"))  # 1 point, 400 growth
    pipeline.drain()
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert view["tier"]["code"] == "base" and accounts(api, member["id"])["growth"] == (400, 400, 0)


def test_unknown_member_store_or_payment_method_is_422_and_stores_nothing(member, api):
    cases = [
        (order(member={"id": "01JDQ0000000000000000000ZZ"}), "UNKNOWN_MEMBER", "/member"),
        (order(storeCode="NOPE"), "UNKNOWN_STORE", "/storeCode"),
        (
            order(payments=[{"methodCode": "BITCOIN", "amount": "500"}]),
            "UNKNOWN_PAYMENT_METHOD",
            "/payments/0/methodCode",
        ),
    ]
    for body, code, pointer in cases:
        status, problem = api.call("POST", "/v1/orders", POS, body=body)
        assert (status, problem["code"], problem["field"]) == (422, code, pointer)
    assert api.call("GET", "/v1/orders/roy202103230000000041", POS)[0] == 404
    status, problem = api.call("POST", "/v1/orders", POS, body=order(lines=[]))
    assert status == 422 and problem["errors"][0]["field"] == "/lines"


def test_a_member_is_found_by_id_or_by_identity_too(member, api, pipeline):
    api.call("POST", f"/v1/members/{member['id']}/identities", POS, body={"type": "card", "value": "C-1"})
    assert api.call("POST", "/v1/orders", POS, body=order("by-id", member={"id": member["id"]}))[0] == 202
    identity = {"identity": {"type": "card", "value": "C-1"}}
    assert api.call("POST", "/v1/orders", POS, body=order("by-identity", member=identity))[0] == 202
    pipeline.drain()
    assert accounts(api, member["id"])["points"] == (1000, 1000, 0)


def test_records_filter_by_group_type_and_time_and_page(member, api, pipeline):
    for n in range(3):
        api.call("POST", "/v1/orders", POS, body=order(f"o-{n}", "100"))
    pipeline.drain()
    path = f"/v1/members/{member['id']}/point-records"
    _, points = api.call("GET", path, POS, query={"pointGroup": "points", "type": "TRANSACTION"})
    assert [r["change"] for r in points["items"]] == [100, 100, 100]
    _, first = api.call("GET", path, POS, query={"limit": "4"})
    _, rest = api.call("GET", path, POS, query={"limit": "4", "cursor": first["nextCursor"]})
    assert len(first["items"]) + len(rest["items"]) == 6
    _, none = api.call("GET", path, POS, query={"until": "2020-01-01T00:00:00+08:00"})
    assert none["items"] == []
    _, everything = api.call("GET", path, POS, query={"since": "2020-01-01T00:00:00+08:00"})
    assert len(everything["items"]) == 6
    assert api.call("GET", path, OTHER_TENANT_POS)[0] == 404


def test_operators_cannot_post_orders_and_channels_see_only_their_orders(member, api):
    assert api.call("POST", "/v1/orders", OPERATOR, body=order())[0] == 403
    api.call("POST", "/v1/orders", POS, body=order())
    assert api.call("GET", "/v1/orders/roy202103230000000041", {**POS, "channel": "MINI_PROGRAM"})[0] == 404


def test_an_accrual_that_read_a_stale_accumulator_is_retried_not_applied(member, api, aws):
    # Given a received order, and an accrual whose read of the member is one point behind the table
    from loyalty.services.accrual import RetryLater, accrual_service
    from loyalty.store.order_repo import OrderRepository
    from loyalty.store.table import Table

    api.call("POST", "/v1/orders", POS, body=order(points_amount="1000"))
    stored = OrderRepository(Table()).get("demo", "POS", "roy202103230000000041")
    service = accrual_service()
    real_items = service.members.items

    def stale(tenant, member_id):
        return [dict(i, qualifying=-1) if i["SK"].endswith("#points") else i for i in real_items(tenant, member_id)]

    service.members.items = stale  # type: ignore[method-assign]
    # When it accrues, then the guarded write is refused and nothing is written
    with pytest.raises(RetryLater):
        service.accrue("demo", stored)
    assert accounts(api, member["id"])["points"] == (0, 0, 0)
    # And the retry, reading afresh, applies it once (and upgrades to gold)
    service.members.items = real_items  # type: ignore[method-assign]
    assert service.accrue("demo", stored) is True
    assert service.accrue("demo", stored) is False
    assert accounts(api, member["id"])["points"] == (1000, 1000, 0)
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["tier"]["code"] == "gold"


def test_a_category_scope_matches_by_the_product_code_alone(member, api, pipeline):
    """积分规则 on 商品类别 SNACK: TD0001 is a snack in master data, so a line without a category matches."""
    assert api.call("POST", "/v1/admin/programs/DEMO/point-rules", OPERATOR, body=SNACK_DOUBLE)[0] == 201
    body = order(points_amount="120")
    del body["lines"][0]["categoryCode"]
    dessert = {**body["lines"][0], "lineNo": 2, "sku": "IC0600"}  # 甜品: the 1 per 1 offline rule
    body["lines"].append(dessert)
    body["payments"] = [{"methodCode": "1001", "amount": "240"}]  # the two lines' paid (D-119)
    assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202
    pipeline.drain()
    assert accounts(api, member["id"])["points"] == (360, 360, 0)  # 120 x 2 + 120 x 1
