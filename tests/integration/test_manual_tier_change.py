"""Manual tier changes (issue 13, tiers: 变动类型 手动): an operator sets a member's tier up or down with a
reason; it is a tier record like an automatic change, and the next tier sweep treats it like any tier."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support import OPERATOR, POS, Api


@pytest.fixture
def member(demo, api: Api) -> dict:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    assert status == 201
    return member


def change(api: Api, member_id: str, **body: object) -> tuple[int, dict]:
    return api.call("POST", f"/v1/admin/members/{member_id}/tier-changes", OPERATOR, body=body)


def test_an_operator_raises_and_lowers_a_tier_with_a_reason(member, api):
    status, record = change(api, member["id"], tierCode="gold", reason="门店补录: 线下消费凭证")
    assert (status, record["code"], record["type"], record["change"]) == (201, "gold", "UPGRADE", "manual")
    assert (record["reason"], record["changedBy"], record["fromCode"]) == (
        "门店补录: 线下消费凭证",
        OPERATOR["keyId"],
        "base",
    )
    valid_from, until = datetime.fromisoformat(record["validFrom"]), datetime.fromisoformat(record["validUntil"])
    assert 365 <= (until - valid_from).days <= 366  # the gold tier's own validity
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert (view["tier"]["code"], view["tier"]["recordId"]) == ("gold", record["recordId"])
    status, down = change(api, member["id"], tierCode="base", reason="误操作更正")
    assert (status, down["type"], down.get("validUntil")) == (201, "DOWNGRADE", None)
    history = api.call("GET", f"/v1/members/{member['id']}/tiers", POS)[1]["items"]
    assert [(r["code"], r["change"], r["status"]) for r in history] == [
        ("base", "automatic", "invalid"),
        ("gold", "manual", "invalid"),
        ("base", "manual", "valid"),
    ]


def test_a_given_validity_replaces_the_tiers_and_bad_requests_are_refused(member, api):
    status, record = change(
        api, member["id"], tierCode="silver", reason="活动赠送", validity={"type": "fixedPeriod", "days": 30}
    )
    until = datetime.fromisoformat(record["validUntil"]) - datetime.fromisoformat(record["validFrom"])
    assert status == 201 and 30 <= until.days <= 31
    assert change(api, member["id"], tierCode="diamond", reason="x")[1]["code"] == "UNKNOWN_TIER"
    status, problem = change(
        api, member["id"], tierCode="base", reason="x", validity={"type": "fixedPeriod", "days": 1}
    )
    assert (status, problem["code"]) == (422, "BASE_TIER_VALIDITY")
    assert change(api, member["id"], tierCode="gold")[0] == 422  # a reason is required
    status, problem = api.call(
        "POST", f"/v1/admin/members/{member['id']}/tier-changes", POS, body={"tierCode": "gold", "reason": "x"}
    )
    assert (status, problem["code"]) == (403, "FORBIDDEN")


def test_the_next_sweep_reviews_a_manual_tier_like_any_other(member, api):
    from loyalty.clock import FixedClock
    from loyalty.services.sweeps import Bucket
    from loyalty.services.tier_sweep import tier_sweep_service
    from loyalty.store.keys import shard_of

    _, record = change(api, member["id"], tierCode="gold", reason="试用", validity={"type": "fixedPeriod", "days": 1})
    until = datetime.fromisoformat(record["validUntil"])
    sweeper = tier_sweep_service(clock=FixedClock(until + timedelta(hours=2)))
    assert sweeper.sweep(Bucket("demo", "DEMO", until.date().isoformat(), shard_of(member["id"]))) == 1
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert view["tier"]["code"] != "gold" and view["tier"]["type"] == "downgrade"


def test_a_counted_manual_increase_upgrades_and_a_counted_decrease_lowers_the_accumulator(member, api):
    """§5.1: 人工积分调整增加 counted toward upgrade is evaluated like an accrual (1,000 qualifying: gold);
    人工积分调整积分减少 counted lowers the accumulator; uncounted ones leave it alone."""
    path = f"/v1/admin/members/{member['id']}/point-adjustments"
    body = {"pointGroupCode": "points", "reason": "补录线下消费"}
    assert api.call("POST", path, OPERATOR, body={**body, "points": 5000})[0] == 201  # not counted: no upgrade
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert view["tier"]["code"] == "base"
    status, added = api.call("POST", path, OPERATOR, body={**body, "points": 1000, "countsTowardUpgrade": True})
    assert status == 201 and added["countsTowardUpgrade"] is True
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    progress = next(p for p in view["tierProgress"] if p["pointGroupCode"] == "points")
    assert (view["tier"]["code"], view["tier"]["type"], progress["qualifying"]) == ("gold", "upgrade", 1000)
    status, _ = api.call("POST", path, OPERATOR, body={**body, "points": -400, "countsTowardUpgrade": True})
    assert status == 201
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    progress = next(p for p in view["tierProgress"] if p["pointGroupCode"] == "points")
    assert (view["tier"]["code"], progress["qualifying"]) == ("gold", 600)  # lowered, no downgrade until the sweep
