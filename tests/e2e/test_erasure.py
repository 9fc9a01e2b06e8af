"""Erasure erases, read back over every route (issue 25, D-123): a member registered with every personal field
and an identity, with a note, a tag, orders, messages, a coupon transfer and a redemption, is erased; then
every GET route of the OpenAPI document that takes a member answers with none of the values written, nor do
the member lists and lookups, nor the table's items of that member (its partition and its guards). On both
engines: erasure is conditional writes and a walk of the partition."""

from __future__ import annotations

import json
import re
import urllib.parse

import boto3
import pytest

from infra.local.seed import DEMO_COUPON_RULE
from tests.e2e.conftest import KeepAlive
from tests.e2e.test_campaigns import Operators
from tests.e2e.test_customer_center import sale
from tests.e2e.test_local_stack import wait_for
from tests.support import ROOT

pytestmark = pytest.mark.e2e

PHONE, IDENTITY = "13712345678", "oErase_WangXiaoMing_0001"
WRITTEN = {
    "phone": PHONE,
    "name": "王小明",
    "email": "wang.xiaoming@example.com",
    "nickname": "明明同学",
    "avatarUrl": "https://img.example.com/avatars/wangxm.png",
    "line": "文三路 478 号 9 幢",
    "identity": IDENTITY,
    "note": "客户说明: 住院中, 请勿来电",
    "reason": "本人要求: 家属代办",
}
# What must not show either: the phone and email as a message record masks them, the birthday as written
ALSO = ["137****5678", "w***@example.com", "+8613712345678", "1991-03-04"]


def _leaks(text: str) -> list[str]:
    return [value for value in [*WRITTEN.values(), *ALSO] if value in text]


def _member_routes() -> list[str]:
    """Every GET path of the API that takes a member id (the OpenAPI document is the list, not this test)."""
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    return sorted(
        path for path, operations in document["paths"].items() if "get" in operations and "{memberId}" in path
    )


def _table_items(stack, member_id: str) -> list[dict]:
    """The member's partition and the guards a phone or an identity would have, read from the engine."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=stack.info["dynamodbEndpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    tenant = stack.info["tenant"]
    partitions = [
        f"T#{tenant}#M#{member_id}",
        f"T#{tenant}#PHONE#{PHONE}",
        f"T#{tenant}#IDENTITY#POS#wechatOpenId#{IDENTITY}",
    ]
    items = []
    for partition in partitions:
        pages = client.get_paginator("query").paginate(
            TableName=stack.info["tableName"],
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
        )
        items += [item for page in pages for item in page["Items"]]
    return items


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: urllib.parse.quote(ids[m.group(1)], safe=""), path)


def test_nothing_written_of_an_erased_member_is_read_back_anywhere(stack):
    keys = stack.info["apiKeys"]
    pos, operator = KeepAlive(stack.base, keys["pos"]), KeepAlive(stack.base, keys["operator"])
    operators = Operators(stack)
    body = {
        "programCode": "DEMO",
        "phone": PHONE,
        "name": WRITTEN["name"],
        "email": WRITTEN["email"],
        "birthday": "1991-03-04",
        "gender": "male",
        "identity": {"type": "wechatOpenId", "value": IDENTITY},
    }
    status, member = pos.json("POST", "/v1/members", body)
    assert status == 201, member
    member_id, admin = member["id"], f"/v1/admin/members/{member['id']}"
    patch = {
        "nickname": WRITTEN["nickname"],
        "avatarUrl": WRITTEN["avatarUrl"],
        "marketingOptIn": True,
        "address": {"province": "浙江", "city": "杭州", "district": "西湖区", "line": WRITTEN["line"]},
    }
    assert pos.call("PATCH", f"/v1/members/{member_id}", patch, headers={"if-match": '"1"'})[0] == 200
    assert operator.json("POST", f"{admin}/notes", {"comment": WRITTEN["note"]})[0] == 201
    assert operator.json("PUT", f"{admin}/tags/high-value")[0] == 200
    # an order named by the phone, accrued, and its points-earned SMS recorded
    assert pos.json("POST", "/v1/orders", sale(f"erase-{stack.info['engine']}", "300", {"phone": PHONE}))[0] == 202
    messages = f"{admin}/messages"
    sent = wait_for(lambda: operator.json("GET", messages)[1]["items"], lambda items: items, seconds=60)
    assert {m.get("recipient") for m in sent} & {"137****5678", "w***@example.com"}
    status, redemption = pos.json(
        "POST", f"/v1/members/{member_id}/redemptions", {"pointGroupCode": "points", "points": 10, "purpose": "gift"}
    )
    assert status == 201, redemption
    # a coupon given to a friend, who accepts it
    rule = {**DEMO_COUPON_RULE, "name": "转赠券", "transfer": {"allowed": True, "claimHours": 24}}
    status, draft = operator.json("POST", "/v1/admin/coupon-rules", rule)
    assert status == 201, draft
    rule_path = f"/v1/admin/coupon-rules/{draft['ruleId']}"
    assert operator.json("POST", f"{rule_path}/submit", {"approver": operators.approver_id})[0] == 200
    assert operators.approver.json("POST", f"{rule_path}/approve", {"comment": "同意"})[0] == 200
    status, coupon = pos.json("POST", f"/v1/members/{member_id}/coupons", {"ruleId": draft["ruleId"]})
    assert status == 201, coupon
    friend = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13712345679"})[1]["id"]
    status, started = pos.json("POST", f"/v1/members/{member_id}/coupons/{coupon['code']}/transfers")
    assert status == 201, started
    accept = f"/v1/coupons/{coupon['code']}/transfers/{started['transferId']}/accept"
    assert pos.json("POST", accept, {"memberId": friend})[0] == 200
    assert operator.json("POST", f"{admin}/freeze", {"reason": WRITTEN["reason"]})[0] == 200
    assert _leaks(json.dumps(pos.json("GET", f"/v1/members/{member_id}")[1], ensure_ascii=False))  # there to find

    status, erased = pos.json("DELETE", f"/v1/members/{member_id}/personal-data")

    assert (status, erased["status"]) == (200, "erased"), erased
    # the message records are erased by the bus's consumer: wait for it
    wait_for(lambda: operator.json("GET", messages)[1]["items"], lambda items: not _leaks(json.dumps(items)))
    ids = {"memberId": member_id, "redemptionId": redemption["id"]}
    answers = {}
    for path in _member_routes():
        client = operator if path.startswith("/v1/admin/") else pos
        status, answer = client.json("GET", _fill(path, ids))
        assert status == 200, (path, answer)
        answers[path] = json.dumps(answer, ensure_ascii=False)
    assert len(answers) >= 15
    assert {path: _leaks(text) for path, text in answers.items() if _leaks(text)} == {}
    listed = operator.json("GET", f"/v1/admin/coupons/{coupon['code']}/transfers")[1]
    assert listed["items"] and not _leaks(json.dumps(listed, ensure_ascii=False))
    for query in (f"phone={PHONE}", f"identityType=wechatOpenId&identityValue={IDENTITY}"):
        assert pos.json("GET", f"/v1/members/lookup?{query}")[0] == 404
    assert (
        operator.json("GET", "/v1/admin/members?" + urllib.parse.urlencode({"name": WRITTEN["name"]}))[1]["items"] == []
    )
    items = _table_items(stack, member_id)
    assert len(items) > 10 and _leaks(json.dumps(items, ensure_ascii=False)) == []
