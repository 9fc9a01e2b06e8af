"""The customer center over HTTP (issue 13, done when): freeze, the timeline and a member's orders, a manual
tier change, tags in bulk, a spend-based tier rule, a non-member sale attached later. On both engines: each
of these is a conditional write (the member's status, the order's, the row's result)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import KeepAlive
from tests.e2e.test_local_stack import wait_for

pytestmark = pytest.mark.e2e


def sale(order_no: str, amount: str, member: dict | None, program: str = "DEMO") -> dict:
    """A one-line order of TD0001 at SH001, an hour ago."""
    when = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": amount, "paid": amount, "pointsAmount": amount}
    body = {"programCode": program, "orderNo": order_no, "storeCode": "SH001", "orderedAt": when, "lines": [line]}
    return {**body, **({"member": member} if member else {})}


def clients(stack) -> tuple[KeepAlive, KeepAlive]:
    keys = stack.info["apiKeys"]
    return KeepAlive(stack.base, keys["pos"]), KeepAlive(stack.base, keys["operator"])


def test_freeze_the_timeline_orders_and_a_manual_tier_change(stack):
    pos, operator = clients(stack)
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13100131001", "name": "周一"})
    path, admin = f"/v1/members/{member['id']}", f"/v1/admin/members/{member['id']}"
    assert pos.json("POST", "/v1/orders", sale("cc-order-1", "300", {"id": member["id"]}))[0] == 202

    def timeline() -> list[str]:
        return [entry["type"] for entry in pos.json("GET", f"{path}/behaviours")[1]["items"]]

    assert sorted(wait_for(timeline, lambda kinds: len(kinds) == 3)) == ["firstPurchase", "purchase", "register"]
    _, orders = pos.json("GET", f"{path}/orders")
    assert [(o["kind"], o["number"], o["amount"], o["points"]) for o in orders["items"]] == [
        ("order", "cc-order-1", "300.00", {"points": 300, "growth": 1})
    ]
    # frozen: no earning, no spending; unfrozen, both again
    status, frozen = operator.json("POST", f"{admin}/freeze", {"reason": "风控核查"})
    assert (status, frozen["status"]) == (200, "frozen")
    status, problem = pos.json("POST", "/v1/orders", sale("cc-order-2", "100", {"id": member["id"]}))
    assert (status, problem["code"]) == (409, "MEMBER_FROZEN")
    spend = {"pointGroupCode": "points", "points": 100, "purpose": "gift"}
    assert pos.json("POST", f"{path}/redemptions", spend)[1]["code"] == "MEMBER_FROZEN"
    assert operator.json("POST", f"{admin}/unfreeze", {"reason": "核查通过"})[1]["status"] == "active"
    assert pos.json("POST", f"{path}/redemptions", spend)[0] == 201
    # a manual tier change: a tier record like an automatic one, with its reason and who made it
    status, record = operator.json("POST", f"{admin}/tier-changes", {"tierCode": "platinum", "reason": "大客户补录"})
    assert (status, record["type"], record["change"], record["reason"]) == (201, "UPGRADE", "manual", "大客户补录")
    assert pos.json("GET", path)[1]["tier"]["code"] == "platinum"
    _, listed = operator.json("GET", "/v1/admin/members?tier=platinum&name=%E5%91%A8%E4%B8%80")
    assert [m["id"] for m in listed["items"]] == [member["id"]]


def test_tags_in_bulk_from_a_csv_of_phones(stack):
    pos, operator = clients(stack)
    phones = [f"1310013110{i}" for i in range(3)]
    ids = [pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": p})[1]["id"] for p in phones]
    csv = "phone\n" + "\n".join([*phones, "13100139999"]) + "\n"
    status, _, raw = operator.call(
        "POST",
        "/v1/admin/member-jobs",
        {"action": "attachTag", "tagCode": "high-value", "csv": csv},
        headers={"Idempotency-Key": f"cc-tags-{stack.info['engine']}"},
    )
    job = json.loads(raw)
    assert (status, job["total"]) == (202, 4)
    report = wait_for(lambda: operator.json("GET", f"/v1/admin/bulk-jobs/{job['jobId']}")[1], lambda r: r["done"] == 4)
    assert report["outcomes"] == {"TAGGED": 3, "UNKNOWN_MEMBER": 1}
    _, tagged = operator.json("GET", "/v1/admin/members?tag=high-value&limit=100")
    assert set(ids) <= {m["id"] for m in tagged["items"]}
    _, view = pos.json("GET", f"/v1/members/{ids[0]}")
    assert [t["code"] for t in view["tags"]] == ["high-value"]


def test_a_spend_rule_lifts_a_member_whose_points_do_not(stack):
    """A program of its own: a base tier and a VIP tier reached by 300 yuan spent, no points at all."""
    pos, operator = clients(stack)
    code = "E2ESPEND"
    assert operator.json("POST", "/v1/admin/programs", {"code": code, "name": "消费金额等级"})[0] == 201
    tiers = f"/v1/admin/programs/{code}/tiers"
    assert operator.json("POST", tiers, {"code": "base", "name": "普通", "order": 1, "base": True})[0] == 201
    vip = {"code": "vip", "name": "VIP", "order": 2, "validity": {"type": "fixedPeriod", "days": 365}}
    assert operator.json("POST", tiers, vip)[0] == 201
    rule = {"code": "vip-spend", "name": "消费满300", "tierCode": "vip", "condition": "spend", "lowerBound": 300}
    assert operator.json("POST", f"/v1/admin/programs/{code}/tier-rules", rule)[0] == 201
    _, member = pos.json("POST", "/v1/members", {"programCode": code, "phone": "13100131201"})
    path = f"/v1/members/{member['id']}"
    assert pos.json("POST", "/v1/orders", sale("cc-spend-1", "200", {"id": member["id"]}, code))[0] == 202
    assert wait_for(lambda: pos.json("GET", path)[1]["metrics"]["orderCount"], lambda n: n == 1) == 1
    view = pos.json("GET", path)[1]
    assert view["tier"]["code"] == "base"
    assert [(p["condition"], p["qualifying"], p["nextTier"]["pointsNeeded"]) for p in view["tierProgress"]] == [
        ("spend", 200, 100)  # "¥100 to VIP"
    ]
    assert pos.json("POST", "/v1/orders", sale("cc-spend-2", "100", {"id": member["id"]}, code))[0] == 202
    tier = wait_for(lambda: pos.json("GET", path)[1]["tier"], lambda t: t["code"] == "vip")
    assert tier["code"] == "vip"
    history = pos.json("GET", f"{path}/tiers")[1]["items"]
    assert (history[-1]["type"], history[-1]["tierRuleCode"]) == ("UPGRADE", "vip-spend")


def test_a_sale_before_registering_is_attached_and_accrues_once(stack):
    pos, operator = clients(stack)
    phone = "13100131301"
    status, accepted = pos.json("POST", "/v1/orders", sale("cc-walk-in-1", "480", {"phone": phone}))
    assert (status, accepted["status"]) == (202, "unattached")
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": phone})
    admin = f"/v1/admin/members/{member['id']}"
    _, found = operator.json("GET", f"{admin}/unattached-orders")
    assert [(o["number"], o["status"]) for o in found["items"]] == [("cc-walk-in-1", "unattached")]
    attach = {"channel": "POS", "orderNo": "cc-walk-in-1"}
    key = {"Idempotency-Key": f"cc-attach-{stack.info['engine']}"}
    first = operator.call("POST", f"{admin}/attached-orders", attach, headers=key)
    assert first[0] == 200 and operator.call("POST", f"{admin}/attached-orders", attach, headers=key)[2] == first[2]
    status, problem = operator.json("POST", f"{admin}/attached-orders", attach)
    assert (status, problem["code"]) == (409, "ORDER_ALREADY_ATTACHED")

    def points() -> int:
        view = pos.json("GET", f"/v1/members/{member['id']}")[1]
        return next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")

    assert wait_for(points, lambda p: p == 480) == 480
    time.sleep(1)  # a second accrual, were there one, would have landed by now
    assert points() == 480
    assert pos.json("GET", "/v1/orders/cc-walk-in-1")[1]["status"] == "accrued"

    # a return of a non-member sale is kept (no points to take back) and counts on the sale
    assert pos.json("POST", "/v1/orders", sale("cc-walk-in-2", "60", None))[1]["status"] == "unattached"
    returned = {"returnNo": "cc-walk-in-r2", "originalOrderNo": "cc-walk-in-2", "wholeOrder": True}
    returned["returnedAt"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    assert pos.json("POST", "/v1/returns", returned)[1]["status"] == "unattached"
    again = {**returned, "returnNo": "cc-walk-in-r3"}
    assert pos.json("POST", "/v1/returns", again)[1]["code"] == "NOTHING_TO_RETURN"


def test_a_return_is_applied_seconds_after_its_order_accrues_whichever_arrives_first(stack):
    """Issue 24 (D-115): a return that was picked up before its order's accrual waited a queue redelivery
    (~61 s), while the member could spend the returned order's points. The order accrued, then its return;
    then orders and their returns posted back to back."""
    pos, _ = clients(stack)
    engine = "1" if stack.info["engine"] == "moto" else "2"
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": f"1310013109{engine}"})

    def points() -> int:
        view = pos.json("GET", f"/v1/members/{member['id']}")[1]
        return next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")

    def returned(number: str, order_no: str) -> dict:
        at = datetime.now(UTC).replace(microsecond=0).isoformat()
        return {"returnNo": number, "originalOrderNo": order_no, "wholeOrder": True, "returnedAt": at}

    assert pos.json("POST", "/v1/orders", sale(f"rt-first-{engine}", "300", {"id": member["id"]}))[0] == 202
    assert wait_for(points, lambda p: p == 300) == 300
    started = time.monotonic()
    assert pos.json("POST", "/v1/returns", returned(f"rt-r1-{engine}", f"rt-first-{engine}"))[0] == 202
    assert wait_for(points, lambda p: p == 0, seconds=10) == 0 and time.monotonic() - started < 10

    # The return posted right behind its order, three times: whichever the stack reads first, the return is
    # applied within seconds (the return-first path is forced in tests/integration/test_returns.py)
    for n in range(3):
        order_no = f"rt-next-{engine}-{n}"
        started = time.monotonic()
        assert pos.json("POST", "/v1/orders", sale(order_no, "200", {"id": member["id"]}))[0] == 202
        assert pos.json("POST", "/v1/returns", returned(f"rt-r-{engine}-{n}", order_no))[0] == 202
        expected = n + 2
        assert wait_for(lambda: records(pos, member["id"]), lambda c, e=expected: c == e, seconds=10) == expected
        assert points() == 0 and time.monotonic() - started < 10


def records(pos: KeepAlive, member_id: str) -> int:
    """How many return reversals of points the member's ledger holds."""
    path = f"/v1/members/{member_id}/point-records?type=RETURN_REVERSAL&pointGroup=points"
    return len(pos.json("GET", path)[1]["items"])
