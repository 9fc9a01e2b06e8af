"""Returns (issue 3, item 5) with the spec's numbers: trace back, reverse, give back, exactly once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.support import POS, SHANGHAI, Api, order_body


@pytest.fixture
def member(demo, api: Api) -> dict:
    return api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})[1]


def post_order(api: Api, number: str, amount: int, quantity: int = 1, days_ago: int = 1) -> None:
    body = order_body(number, amount, days_ago=days_ago, quantity=quantity)
    assert api.call("POST", "/v1/orders", POS, body=body)[0] == 202


def post_return(api: Api, number: str, order_no: str, key: str | None = None, **body) -> tuple[int, dict]:
    payload = {
        "returnNo": number,
        "originalOrderNo": order_no,
        "returnedAt": datetime.now(SHANGHAI).replace(second=0, microsecond=0).isoformat(),  # a retry: same body
        **body,
    }
    return api.call("POST", "/v1/returns", POS, body=payload, headers={"idempotency-key": key} if key else None)


def accounts(api: Api, member_id: str) -> dict[str, tuple[int, int, int]]:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    return {a["pointGroupCode"]: (a["cumulative"], a["available"], a["expired"]) for a in view["accounts"]}


def records(api: Api, member_id: str, record_type: str) -> list[dict]:
    return api.call("GET", f"/v1/members/{member_id}/point-records", POS, query={"type": record_type})[1]["items"]


def test_a_full_return_reverses_500_points_and_1_growth(member, api, pipeline):
    post_order(api, "roy202103230000000041", 500)
    pipeline.drain()
    status, accepted = post_return(api, "roy202103230000000042", "roy202103230000000041", wholeOrder=True)
    assert status == 202 and accepted["status"] == "received"
    pipeline.drain()
    assert accounts(api, member["id"]) == {"points": (0, 0, 0), "growth": (0, 0, 0)}
    reversals = sorted((r["pointGroupCode"], r["change"]) for r in records(api, member["id"], "RETURN_REVERSAL"))
    assert reversals == [("growth", -1), ("points", -500)]
    _, earned = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "TRANSACTION"})
    assert {r["pointGroupCode"]: r["remaining"] for r in earned["items"]} == {"points": 0, "growth": 0}  # 500 -> 0
    assert api.call("GET", f"/v1/members/{member['id']}/lots", POS)[1]["items"] == []


def test_partial_returns_floor_and_the_last_reverses_what_is_left(member, api, pipeline):
    post_order(api, "o1", 100, quantity=3)
    pipeline.drain()
    for n in range(3):
        assert post_return(api, f"r{n}", "o1", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202
        pipeline.drain()
    assert [r["change"] for r in records(api, member["id"], "RETURN_REVERSAL") if r["pointGroupCode"] == "points"] == [
        -33,
        -33,
        -34,
    ]
    assert accounts(api, member["id"])["points"] == (0, 0, 0)
    status, problem = post_return(api, "r4", "o1", lines=[{"lineNo": 1, "quantity": "1"}])
    assert status == 422 and problem["code"] == "RETURN_EXCEEDS_ORDER" and problem["field"] == "/lines/0/quantity"


def test_spent_points_are_taken_from_other_lots_then_owed_and_paid_off_by_the_next_earning(member, api, pipeline):
    post_order(api, "o1", 500)
    post_order(api, "o2", 100, days_ago=2)
    pipeline.drain()
    api.call(
        "POST",
        f"/v1/members/{member['id']}/redemptions",
        POS,
        body={"pointGroupCode": "points", "points": 550, "purpose": "gift"},
    )  # o2's 100, then 450 of o1's 500
    post_return(api, "r1", "o1", wholeOrder=True)
    pipeline.drain()
    # 500 reversed: 50 from o1's lot, nothing else left: 450 owed, available -450
    assert accounts(api, member["id"])["points"] == (100, -450, 0)
    [reversal] = [r for r in records(api, member["id"], "RETURN_REVERSAL") if r["pointGroupCode"] == "points"]
    assert reversal["change"] == -500
    # The next 600 earned pay the 450 first: 150 left in the new lot
    post_order(api, "o3", 600)
    pipeline.drain()
    assert accounts(api, member["id"])["points"] == (700, 150, 0)
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    assert [lot["remaining"] for lot in lots] == [150]


def test_points_that_paid_the_order_come_back_with_their_source_expiry(member, api, pipeline):
    post_order(api, "earn", 800, days_ago=30)
    pipeline.drain()
    _, spent = api.call(
        "POST",
        f"/v1/members/{member['id']}/redemptions",
        POS,
        body={"pointGroupCode": "points", "points": 300, "purpose": "orderPayment", "orderNo": "paid"},
    )
    post_order(api, "paid", 200)
    pipeline.drain()
    assert accounts(api, member["id"])["points"] == (1000, 700, 0)
    post_return(api, "r-paid", "paid", wholeOrder=True)
    pipeline.drain()
    # 200 reversed, 300 given back (积分兑换取消积分返回) to the lot they came from, with its expiry
    assert accounts(api, member["id"])["points"] == (800, 800, 0)
    [given] = records(api, member["id"], "REDEEM_CANCEL_RETURN")
    assert given["change"] == 300
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    assert [(lot["remaining"], lot["expiresAt"]) for lot in lots] == [(800, spent["relations"][0]["expiresAt"])]
    status, problem = api.call(
        "POST",
        f"/v1/members/{member['id']}/redemptions",
        POS,
        body={"pointGroupCode": "points", "points": 1, "purpose": "orderPayment", "orderNo": "paid"},
    )
    assert status == 409 and problem["code"] == "ORDER_ALREADY_PAID"


def test_a_return_before_its_order_accrued_waits_on_the_order_and_comes_with_the_accrual(member, api, pipeline):
    """Issue 24: the return's message failed and came back after a queue redelivery (~61 s), and for that
    minute the member could spend the points of a returned order. It waits on the order instead; the accrual
    announces it again in its own transaction, so the pipeline's first pass applies both, with no message
    redelivered; a replay changes nothing."""
    from loyalty.services.returns import return_service
    from loyalty.store import keys
    from loyalty.store.table import Table

    post_order(api, "o1", 500)
    post_return(api, "r1", "o1", wholeOrder=True)
    stored = Table().get("T#demo#RETURN#POS#r1", "RETURN")
    service = return_service()
    assert service.process("demo", stored) is False  # the order is received, not accrued: it waits on it
    assert service.process("demo", stored) is False  # delivered twice: listed twice, applied once
    order = Table().get(keys.order("demo", "POS", "o1"), keys.ORDER_SK)
    assert order is not None and [r["returnNo"] for r in order["waitingReturns"]] == ["r1", "r1"]
    pipeline.drain()  # the accrual runs, announces the return again, and it is applied: no redelivery waited
    assert accounts(api, member["id"]) == {"points": (0, 0, 0), "growth": (0, 0, 0)}
    order = Table().get(keys.order("demo", "POS", "o1"), keys.ORDER_SK)
    assert order is not None and order["status"] == "accrued" and "waitingReturns" not in order
    for _ in range(3):
        assert service.process("demo", stored) is False
    assert len(records(api, member["id"], "RETURN_REVERSAL")) == 2


def test_a_return_after_its_order_accrued_is_applied_at_once(member, api, pipeline):
    post_order(api, "o1", 500)
    pipeline.drain()
    post_return(api, "r1", "o1", wholeOrder=True)
    pipeline.drain()
    assert accounts(api, member["id"]) == {"points": (0, 0, 0), "growth": (0, 0, 0)}


def test_a_return_lowers_the_accumulator_but_never_the_tier(member, api, pipeline):
    post_order(api, "o1", 1000)
    pipeline.drain()
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["tier"]["code"] == "gold"
    post_return(api, "r1", "o1", wholeOrder=True)
    pipeline.drain()
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["tier"]["code"] == "gold"
    from loyalty.store.member_repo import MemberRepository
    from loyalty.store.table import Table

    items = MemberRepository(Table()).items("demo", member["id"])
    assert next(i for i in items if i["SK"].endswith("#points"))["qualifying"] == 0


def test_returns_are_validated_and_repeats_get_the_first_answer(member, api, pipeline):
    post_order(api, "o1", 500)
    pipeline.drain()
    assert post_return(api, "r1", "nope", wholeOrder=True)[1]["code"] == "UNKNOWN_ORDER"
    assert post_return(api, "r1", "o1", lines=[{"lineNo": 9, "quantity": "1"}])[1]["field"] == "/lines/0/lineNo"
    first = post_return(api, "r1", "o1", wholeOrder=True)
    again = post_return(api, "r1", "o1", wholeOrder=True)
    assert first[0] == 202 and again == (200, first[1])
    assert post_return(api, "r1", "o1", lines=[{"lineNo": 1, "quantity": "1"}])[1]["code"] == "RETURN_CONFLICT"
    assert json.dumps(first[1])  # the answer is plain JSON


def test_a_retry_under_its_key_gets_the_first_answer_after_processing_and_another_repeat_the_state(
    member, api, pipeline
):
    post_order(api, "o1", 500)
    pipeline.drain()
    first = post_return(api, "r1", "o1", key="ret-1", wholeOrder=True)
    assert first[0] == 202 and first[1]["status"] == "received"
    pipeline.drain()
    assert post_return(api, "r1", "o1", key="ret-1", wholeOrder=True) == first  # not 200 "processed"
    status, now = post_return(api, "r1", "o1", key="ret-2", wholeOrder=True)
    assert (status, now["status"], now["returnId"]) == (200, "processed", first[1]["returnId"])


def test_a_whole_order_return_of_an_order_returned_already_is_422_and_stores_nothing(member, api, pipeline):
    post_order(api, "o1", 500)
    pipeline.drain()
    assert post_return(api, "r1", "o1", lines=[{"lineNo": 1, "quantity": "1"}])[0] == 202
    pipeline.drain()
    status, problem = post_return(api, "r2", "o1", wholeOrder=True)
    assert (status, problem["code"], problem["field"]) == (422, "NOTHING_TO_RETURN", "/wholeOrder")
    assert api.call("GET", "/v1/orders/o1", POS)[1]["status"] == "accrued"
    assert post_return(api, "r2", "o1", lines=[{"lineNo": 1, "quantity": "1"}])[1]["code"] == "RETURN_EXCEEDS_ORDER"


def test_used_points_whose_lot_has_expired_come_back_until_the_end_of_the_day_after(member, api, pipeline):
    # Given 800 points earned 364 days ago (their lot ends tomorrow), 300 of which paid an order
    from loyalty.clock import FixedClock
    from loyalty.services.returns import return_service
    from loyalty.store.table import Table

    post_order(api, "earn", 800, days_ago=364)
    pipeline.drain()
    api.call(
        "POST",
        f"/v1/members/{member['id']}/redemptions",
        POS,
        body={"pointGroupCode": "points", "points": 300, "purpose": "orderPayment", "orderNo": "paid"},
    )
    post_order(api, "paid", 200)
    pipeline.drain()
    post_return(api, "r-late", "paid", wholeOrder=True)
    # When the return is processed three days later, after the source lot has expired
    later = datetime.now(SHANGHAI) + timedelta(days=3)
    return_service(clock=FixedClock(later)).process("demo", Table().get("T#demo#RETURN#POS#r-late", "RETURN"))
    # Then the 300 come back in a new lot ending at the end of the day after the return (§8.5)
    [given] = records(api, member["id"], "REDEEM_CANCEL_RETURN")
    assert given["change"] == 300
    assert [r["points"] for r in given["relations"]] == [300]
    assert given["relations"][0]["expiresAt"][:10] == (later + timedelta(days=1)).date().isoformat()
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    assert (300, (later + timedelta(days=1)).date().isoformat()) in [
        (lot["remaining"], lot["expiresAt"][:10]) for lot in lots
    ]
