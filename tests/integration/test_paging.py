"""Every list pages the same way (issue 24, D-113): walked from the OpenAPI document, not listed by hand.

Each GET whose answer is a list takes `limit` and `cursor` and answers `items` and `nextCursor` (two
reports of totals, bounded by configuration, are the named exceptions). Then each is read over the
handlers a page of one at a time, to the end, on a tenant with two or more of nearly everything: the pages
must give exactly what one large page gives (nothing capped, nothing twice), and a forged cursor is 422."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.test_coupons import APPROVER
from tests.integration.test_messages import EARNED, PROMO, approved
from tests.support import OPERATOR, POS, ROOT, Api, order_body, with_points_budget

DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())
TOTALS = {  # answers that are totals, not lists: one row per cost center, or per template and day
    "/v1/admin/campaign-costs": "one total per cost center of the tenant",
    "/v1/admin/message-counts": "one count per template and program day of a range of at most 92 days",
}


def _schema(reference: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in reference:
        reference = DOCUMENT["components"]["schemas"][reference["$ref"].rsplit("/", 1)[-1]]
    return reference


def list_routes() -> list[tuple[str, dict[str, Any]]]:
    """(path, operation) of every GET that answers a list, a page or a bare array."""
    found = []
    for path, operations in DOCUMENT["paths"].items():
        operation = operations.get("get")
        content = (operation or {}).get("responses", {}).get("200", {}).get("content", {})
        schema = _schema(next(iter(content.values()))["schema"]) if content else {}
        if schema.get("type") == "array" or "items" in schema.get("properties", {}):
            found.append((path, operation))
    return found


def test_every_list_route_pages_with_a_cursor_and_says_when_there_is_more():
    bare, uncursored = [], []
    for path, operation in list_routes():
        content = operation["responses"]["200"]["content"]
        schema = _schema(next(iter(content.values()))["schema"])
        parameters = {p["name"] for p in operation.get("parameters", [])}
        if schema.get("type") == "array":
            if path not in TOTALS:
                bare.append(path)
            continue
        if not {"limit", "cursor"} <= parameters or "nextCursor" not in schema["properties"]:
            uncursored.append(path)
    assert bare == [] and uncursored == []
    assert len(list_routes()) > 45  # the walk found the lists (46 pages and 2 totals when written)


@pytest.fixture
def history(demo, api: Api, pipeline) -> dict[str, str]:
    """Two or more of each thing a list shows: members, orders, lots and records, coupons,
        tier records, notes, profile changes, tags, campaigns and their log, templates, rules and their log (the
    demo's rule is not transferable: its transfers are an empty list here, test_coupons.py pages them)."""
    members = []
    for n in range(3):
        status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": f"1380013800{n}"})
        assert status == 201, member
        members.append(member["id"])
    member = members[0]
    for number, amount in (("P1", "120"), ("P2", "80"), ("P3", "50")):
        assert api.call("POST", "/v1/orders", POS, body=order_body(number, int(amount), member={"id": member}))
    for tag in ("high-value", "newcomer"):
        for tagged in members[:2]:
            api.call("PUT", f"/v1/admin/members/{tagged}/tags/{tag}", OPERATOR)
    for text in ("喜欢甜品", "周末来店"):
        assert api.call("POST", f"/v1/admin/members/{member}/notes", OPERATOR, body={"comment": text})[0] == 201
    for version, name in ((1, "张三"), (2, "张三丰")):
        headers = {"If-Match": f'"{version}"'}
        assert api.call("PATCH", f"/v1/members/{member}", POS, body={"name": name}, headers=headers)[0] == 200
    change = {"tierCode": "gold", "reason": "门店补录"}
    assert api.call("POST", f"/v1/admin/members/{member}/tier-changes", OPERATOR, body=change)[0] in (200, 201)
    _, rules = api.call("GET", "/v1/admin/coupon-rules", OPERATOR)
    rule = rules["items"][0]["ruleId"]
    codes = []
    for key in ("c1", "c2"):
        status, coupon = api.call(
            "POST", f"/v1/members/{member}/coupons", POS, body={"ruleId": rule}, headers={"Idempotency-Key": key}
        )
        assert status == 201, coupon
        codes.append(coupon["code"])
    group = {"code": "sweets", "name": "甜品与小食", "description": "甜品与小食"}
    assert api.call("POST", "/v1/admin/product-groups", OPERATOR, body=group)[0] == 201
    for product in ("TD0001", "IC0600"):
        assert api.call("PUT", f"/v1/admin/product-groups/sweets/products/{product}", OPERATOR)[0] in (200, 201, 204)
    approved(api, PROMO)  # a marketing template, submitted and approved: two steps in its log
    approved(api, EARNED)
    pipeline.drain()
    campaign = {
        "programCode": "DEMO",
        "name": "入会礼",
        "trigger": {"type": "registration"},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 5}],
        "startsAt": datetime.now(UTC).isoformat(),
        "endsAt": datetime(2099, 1, 1, tzinfo=UTC).isoformat(),
        "costCenterCode": "marketing",
    }
    campaigns = []
    for n in range(2):
        _, draft = api.call(
            "POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget({**campaign, "name": f"入会礼 {n}"})
        )
        path = f"/v1/admin/campaigns/{draft['campaignId']}"
        assert api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})[0] == 200
        campaigns.append(draft["campaignId"])
    assert api.call("POST", f"/v1/admin/campaigns/{campaigns[0]}/approve", APPROVER, body={"comment": "同意"})[0] == 200
    return {
        "memberId": member,
        "ruleId": rule,
        "code": codes[0],
        "campaignId": campaigns[0],
        "programCode": "DEMO",
        "tagCode": "high-value",
        "groupCode": "online",
    }


QUERIES = {  # what a route needs besides its path (and the day of the settlements: none are made here)
    "/v1/admin/coupons": {"memberId": "{memberId}"},
    "/v1/admin/coupon-rules/{ruleId}/settlements": {"date": "2026-12-01"},
}


def test_a_page_of_one_at_a_time_gives_what_one_large_page_gives_and_a_forged_cursor_is_422(history, api):
    walked: dict[str, int] = {}
    for path, _ in list_routes():
        if path in TOTALS or "{jobId}" in path:
            continue
        key = POS if path.startswith("/v1/members") else OPERATOR
        url = path.replace("{code}", "promo") if "message-templates" in path else path
        url = url.replace("product-groups/{groupCode}", "product-groups/sweets")
        url = url.format(**history)
        query = {k: v.format(**history) for k, v in QUERIES.get(path, {}).items()}
        status, whole = api.call("GET", url, key, query={**query, "limit": "100"})
        assert status == 200, (path, whole)
        assert whole["nextCursor"] is None, path  # fewer than 100 here
        items, cursor, pages, issued = [], None, 0, []
        while True:
            status, page = api.call(
                "GET", url, key, query={**query, "limit": "1", **({"cursor": cursor} if cursor else {})}
            )
            assert status == 200 and len(page["items"]) <= 1, (path, page)
            items += page["items"]
            pages += 1
            cursor = page["nextCursor"]
            issued += [cursor] if cursor else []
            if not cursor or pages > 200:
                break
        for real in issued[:1]:  # a cursor this API issued, changed to point elsewhere, keeps no seal (D-128)
            tampered = _tampered(real)
            status, problem = api.call("GET", url, key, query={**query, "limit": "1", "cursor": tampered})
            assert (status, problem["code"]) == (422, "INVALID_CURSOR"), (path, problem)
        assert items == whole["items"], path
        walked[path] = len(items)
        if cursor is None and len(items) > 1:  # a cursor of another tenant's partition is never followed
            forged = base64.urlsafe_b64encode(json.dumps({"at": ["x", "T#other#M#1", "x"]}).encode()).decode()
            status, problem = api.call("GET", url, key, query={**query, "limit": "1", "cursor": forged})
            assert (status, problem["code"]) == (422, "INVALID_CURSOR"), (path, problem)
    several = {path for path, count in walked.items() if count > 1}
    assert {  # the lists issue 24 found capped, among the others
        "/v1/admin/coupon-rules/{ruleId}/log",
        "/v1/admin/campaigns/{campaignId}/log",
        "/v1/members/{memberId}/coupons",
        "/v1/admin/coupons",
        "/v1/members/{memberId}/lots",
        "/v1/members/{memberId}/tiers",
        "/v1/admin/programs/{programCode}/message-templates",
        "/v1/admin/programs/{programCode}/message-templates/{code}/log",
        "/v1/admin/members",
        "/v1/admin/tags/{tagCode}/members",
        "/v1/members/{memberId}/point-records",
    } <= several, sorted(set(walked) - several)


def _tampered(cursor: str) -> str:
    """The cursor with its position moved to another tenant's keys, its seal kept."""
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if "at" in payload:
        payload["at"] = [payload["at"][0], "T#other#M#1", payload["at"][2]]
    else:
        payload["sk"] = payload["sk"][:-1] + ("0" if payload["sk"][-1:] != "0" else "1")
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
