"""The expiry sweep (issue 3, item 7): only what expired, exactly once, never a point spent and expired."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support import OPERATOR, POS, SHANGHAI, Api, load_event, order_body


def post_order(api: Api, number: str, amount: int, days_ago: int) -> None:
    assert api.call("POST", "/v1/orders", POS, body=order_body(number, amount, days_ago=days_ago))[0] == 202


@pytest.fixture
def member(demo, api: Api, pipeline) -> dict:
    """300 points earned 367 days ago (their 365-day lot expired two days ago) and 500 earned yesterday."""
    _, body = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    post_order(api, "old", 300, days_ago=367)
    post_order(api, "new", 500, days_ago=1)
    pipeline.drain()
    return body


def account(api: Api, member_id: str) -> tuple[int, int, int]:
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    found = next(a for a in view["accounts"] if a["pointGroupCode"] == "points")
    return found["cumulative"], found["available"], found["expired"]


def sweep(api: Api, **body) -> tuple[int, dict]:
    return api.call("POST", "/v1/admin/programs/DEMO/expiry-sweeps", OPERATOR, body=body)


def test_an_expired_lot_is_not_spendable_even_before_the_sweep(member, api):
    body = {"pointGroupCode": "points", "points": 100, "purpose": "gift"}
    status, spent = api.call("POST", f"/v1/members/{member['id']}/redemptions", POS, body=body)
    assert status == 201 and [r["points"] for r in spent["relations"]] == [100]
    assert spent["relations"][0]["expiresAt"] > datetime.now(SHANGHAI).isoformat()  # from the valid lot
    status, problem = api.call("POST", f"/v1/members/{member['id']}/redemptions", POS, body={**body, "points": 401})
    assert status == 409 and problem["spendable"] == 400


def test_the_balance_shown_is_the_balance_that_can_be_spent_before_the_sweep(member, api):
    """300 of the 800 are past their expiry, unswept: the member sees 500 available, 300 expired, one lot."""
    assert account(api, member["id"]) == (800, 500, 300)
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    assert [lot["remaining"] for lot in lots] == [500]
    body = {"pointGroupCode": "points", "points": 500, "purpose": "gift"}
    assert api.call("POST", f"/v1/members/{member['id']}/redemptions", POS, body=body)[0] == 201  # all of it
    assert account(api, member["id"]) == (800, 0, 300)


def test_the_sweep_expires_what_remains_of_expired_lots_once(member, api, pipeline, captured_events):
    status, accepted = sweep(api)
    assert status == 202 and accepted["buckets"] == 3 * 8  # lots, coupons and transfers; eight shards each
    pipeline.drain()
    assert account(api, member["id"]) == (800, 500, 300)  # cumulative unchanged, available down, expired up
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "EXPIRY"})
    assert sorted((r["pointGroupCode"], r["change"]) for r in records["items"]) == [("growth", -1), ("points", -300)]
    lots = api.call("GET", f"/v1/members/{member['id']}/lots", POS, query={"pointGroup": "points"})[1]["items"]
    assert [lot["remaining"] for lot in lots] == [500]
    # Again, and by the schedule: nothing more
    sweep(api)
    api.functions["ExpirySweepFunction"].invoke(load_event("expiry_sweep_schedule.json"))
    pipeline.drain()
    assert account(api, member["id"]) == (800, 500, 300)
    expired = [e["detail"] for e in captured_events.drain() if e["detail-type"] == "PointsExpired"]
    assert sorted((e["pointGroupCode"], e["points"]) for e in expired) == [("growth", 1), ("points", 300)]


def test_a_lot_spent_in_part_expires_only_what_it_still_has(member, api, pipeline, aws):
    # Given the expired lot was drawn from (say, just before midnight) after the sweep listed it
    from loyalty.store.ledger_repo import LedgerRepository, LedgerWrite, LotDraw
    from loyalty.store.table import Table

    table = Table()
    [old] = [
        lot for lot in LedgerRepository(table).open_lots("demo", member["id"], "points") if lot["remaining"] == 300
    ]
    LedgerRepository(table).write(LedgerWrite("demo", member["id"], draws=[LotDraw(old["SK"], 300, 120)]))
    # When the sweep runs, then it expires the 180 left, not the 300 it would have seen in the index
    sweep(api)
    pipeline.drain()
    _, records = api.call(
        "GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "EXPIRY", "pointGroup": "points"}
    )
    assert [r["change"] for r in records["items"]] == [-180]


def test_a_sweep_for_an_earlier_day_sweeps_what_ended_before_it_and_a_future_day_is_refused(member, api, pipeline):
    three_weeks_ago = (datetime.now(SHANGHAI) - timedelta(days=21)).date()
    assert sweep(api, date=three_weeks_ago.isoformat())[0] == 202
    pipeline.drain()
    _, records = api.call("GET", f"/v1/members/{member['id']}/point-records", POS, query={"type": "EXPIRY"})
    assert records["items"] == []  # nothing expired before that day: the lot past its expiry is still open
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=2)).date()
    status, problem = sweep(api, date=tomorrow.isoformat())
    assert status == 422 and problem["code"] == "FUTURE_DATE"
    assert api.call("POST", "/v1/admin/programs/DEMO/expiry-sweeps", POS, body={})[0] == 403
