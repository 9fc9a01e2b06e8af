"""Tier rules on spend amount (消费金额) and visit count (消费次数) besides points (issue 13, tiers; spec §4.3,
§5.1-5.2): they lift a member when an order reaches them, keep or lower the tier at its end, and count
only the current tier's period (a return lowers the spend; the sweep starts them again at 0)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support import OPERATOR, POS, Api, order_body

RULES = "/v1/admin/programs/DEMO/tier-rules"


def rule(code: str, tier: str, condition: str, lower: int) -> dict:
    return {"code": code, "name": code, "tierCode": tier, "condition": condition, "lowerBound": lower}


@pytest.fixture
def member(demo, api: Api) -> dict:
    # before any accrual loads the program: a silver tier for 200 yuan spent, platinum for 3 orders
    assert api.call("POST", RULES, OPERATOR, body=rule("silver-spend", "silver", "spend", 200))[0] == 201
    assert api.call("POST", RULES, OPERATOR, body=rule("platinum-visits", "platinum", "orders", 3))[0] == 201
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    assert status == 201
    return member


def tier(api: Api, member_id: str) -> dict:
    return api.call("GET", f"/v1/members/{member_id}", POS)[1]["tier"]


def test_spend_and_visits_lift_a_member_where_points_do_not(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=order_body("S-1", 200))  # 200 points: below silver's 300
    pipeline.drain()
    assert tier(api, member["id"])["code"] == "silver"
    history = api.call("GET", f"/v1/members/{member['id']}/tiers", POS)[1]["items"]
    assert history[-1]["tierRuleCode"] == "silver-spend"
    api.call("POST", "/v1/orders", POS, body=order_body("S-2", 10))
    pipeline.drain()
    assert tier(api, member["id"])["code"] == "silver"  # two orders: not yet
    api.call("POST", "/v1/orders", POS, body=order_body("S-3", 10))
    pipeline.drain()
    assert tier(api, member["id"])["code"] == "platinum"  # the third order, 220 points in all
    progress = api.call("GET", f"/v1/members/{member['id']}", POS)[1]["tierProgress"]
    assert [(p["condition"], p["qualifying"], p["nextTier"]) for p in progress] == [
        ("points", 220, None),  # platinum is the top tier
        ("spend", 220, None),
        ("orders", 3, None),
    ]


def sweep_at_tier_end(api: Api, member_id: str) -> dict:
    from loyalty.clock import FixedClock
    from loyalty.services.sweeps import Bucket
    from loyalty.services.tier_sweep import tier_sweep_service
    from loyalty.store.keys import shard_of

    until = datetime.fromisoformat(tier(api, member_id)["validUntil"])
    sweeper = tier_sweep_service(clock=FixedClock(until + timedelta(hours=2)))
    assert sweeper.sweep(Bucket("demo", "DEMO", until.date().isoformat(), shard_of(member_id))) == 1
    return tier(api, member_id)


def test_spend_in_the_period_keeps_the_tier_and_then_starts_again(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=order_body("K-1", 250))
    pipeline.drain()
    kept = sweep_at_tier_end(api, member["id"])
    assert (kept["code"], kept["type"]) == ("silver", "retention")
    from loyalty.store import keys
    from loyalty.store.table import Table

    profile = Table().get(keys.member("demo", member["id"]), keys.MEMBER_SK) or {}
    assert (profile["tierSpend"], profile["tierOrders"], profile["grossSpend"]) == (0, 0, 250)


def test_a_return_lowers_the_spend_so_the_tier_is_not_kept(member, api, pipeline):
    api.call("POST", "/v1/orders", POS, body=order_body("R-1", 200))
    pipeline.drain()
    assert tier(api, member["id"])["code"] == "silver"
    returned = {"returnNo": "RR-1", "originalOrderNo": "R-1", "returnedAt": order_body("x", 1)["orderedAt"]}
    api.call("POST", "/v1/returns", POS, body={**returned, "wholeOrder": True})
    pipeline.drain()
    assert tier(api, member["id"])["code"] == "silver"  # a return does not downgrade (§5.1) ...
    lowered = sweep_at_tier_end(api, member["id"])
    assert (lowered["code"], lowered["type"]) == ("base", "downgrade")  # ... the sweep does


def test_a_rule_names_a_point_group_exactly_when_it_counts_points(member, api):
    status, problem = api.call(
        "POST", RULES, OPERATOR, body={**rule("x", "gold", "spend", 1), "pointGroupCode": "points"}
    )
    assert (status, problem["errors"][0]["field"]) == (422, "/pointGroupCode")
    status, problem = api.call("POST", RULES, OPERATOR, body=rule("y", "gold", "points", 1))
    assert (status, problem["errors"][0]["field"]) == (422, "/pointGroupCode")
