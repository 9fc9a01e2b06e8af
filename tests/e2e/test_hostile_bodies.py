"""The audit's hostile bodies (issue 25), sent raw over HTTP on both engines: each is a clear 4xx with its code
and field, never a 500, and nothing of it is written. Schemathesis never found these: they break rules across
fields, sizes and ranges that a schema does not say."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import KeepAlive
from tests.e2e.test_local_stack import wait_for

pytestmark = pytest.mark.e2e


def raw(client: KeepAlive, method: str, path: str, body: str, headers: dict[str, str] | None = None):
    sent = {"content-type": "application/json", "authorization": f"Bearer {client.key}", **(headers or {})}
    client.connection.request(method, path, body=body.encode(), headers=sent)
    response = client.connection.getresponse()
    payload = response.read()
    return response.status, json.loads(payload) if payload else None


def _yesterday(stack) -> str:
    return (datetime.fromisoformat(stack.request("GET", "/_local/clock")[1]["now"]) - timedelta(days=1)).isoformat()


def operator_bodies(stack) -> list[tuple[str, str, str, int, str, str]]:
    """(method, path, raw body, status, code, field) of each hostile operator request."""
    window = {"not": {"attribute": "orders", "window": {"from": "2026-01-01", "to": "9999-12-31"}}}
    audience = {"programCode": "DEMO", "name": "远未来", "condition": {"all": [window]}}
    campaign = {
        "programCode": "DEMO",
        "name": "九千年后",
        "trigger": {"type": "registration"},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 1}],
        "limits": {"budget": {"points": 100}},
        "startsAt": "2026-12-01T00:00:00+08:00",
        "endsAt": "9999-12-31T00:00:00+08:00",
        "costCenterCode": "marketing",
    }
    unbudgeted = {**campaign, "endsAt": "2027-01-01T00:00:00+08:00", "limits": {}}
    deep = "[" * 5000 + "]" * 5000
    settings = "/v1/admin/programs/DEMO/message-settings"
    return [
        (
            "POST",
            "/v1/admin/audiences",
            json.dumps(audience),
            422,
            "VALIDATION_FAILED",
            "/window/to",
        ),
        ("POST", "/v1/admin/programs/DEMO/expiry-sweeps", '{"date": "0001-01-01"}', 422, "VALIDATION_FAILED", "/date"),
        ("POST", "/v1/admin/campaigns", json.dumps(campaign), 422, "VALIDATION_FAILED", "/endsAt"),
        ("POST", "/v1/admin/campaigns", json.dumps(unbudgeted), 422, "VALIDATION_FAILED", "/limits"),
        (
            "POST",
            "/v1/admin/master-data-jobs",
            json.dumps({"kind": "store", "format": "csv", "data": "code,name\nX1," + "x" * 140_000}),
            422,
            "CSV_MALFORMED",
            "/data",
        ),
        *[
            (
                "PUT",
                settings,
                json.dumps({"webhook": {"url": url, "secret": "s" * 16}}),
                422,
                "WEBHOOK_URL_REFUSED",
                "/webhook/url",
            )
            for url in ("https://169.254.169.254/", "https://0x7f000001/", "https://u:p@hooks.example.com/")
        ],
        (
            "PUT",
            settings,
            json.dumps({"emailFrom": "ceo@another-brand.example.com"}),
            422,
            "EMAIL_SENDER_NOT_ALLOWED",
            "/emailFrom",
        ),
        (
            "POST",
            "/v1/admin/master-data-jobs",
            json.dumps({"kind": "store", "format": "jsonl", "data": deep}),
            202,
            "",
            "",
        ),
    ]


def test_hostile_operator_bodies_are_refused_with_their_code(stack):
    operator = KeepAlive(stack.base, stack.info["apiKeys"]["operator"])
    answers = []
    for method, path, body, status, code, field in operator_bodies(stack):
        answered, problem = raw(operator, method, path, body)
        assert answered == status, (path, body[:80], problem)
        if code:
            pointer = problem.get("field") or problem["errors"][0]["field"]
            assert problem["code"] == code and pointer.endswith(field), problem
        answers.append(problem)
    # the line nested 5,000 deep became its row's outcome (it answered 500)
    rows = f"/v1/admin/bulk-jobs/{answers[-1]['jobId']}/rows"
    found = wait_for(lambda: operator.json("GET", rows)[1].get("items"), lambda items: items)
    assert [(r["outcome"], r["detail"][:30]) for r in found] == [("INVALID", "line 1 is not JSON: nested dee")]


def test_hostile_channel_bodies_are_refused_and_write_nothing(stack):
    pos = KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    engine = stack.info["engine"]
    future = {"programCode": "DEMO", "phone": f"1320013{7 if engine == 'moto' else 8}001", "birthday": "2090-01-01"}
    status, problem = raw(pos, "POST", "/v1/members", json.dumps(future))
    assert (status, problem["code"], problem["field"]) == (422, "BIRTHDAY_OUT_OF_RANGE", "/birthday")
    status, member = pos.json("POST", "/v1/members", {**future, "birthday": "1990-02-03"})
    assert status == 201, member
    one_yuan = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": "1", "paid": "1", "pointsAmount": "99999"}
    order = {
        "programCode": "DEMO",
        "orderNo": f"hostile-{engine}",
        "member": {"id": member["id"]},
        "storeCode": "SH001",
        "orderedAt": _yesterday(stack),
        "lines": [one_yuan],
    }
    status, problem = raw(pos, "POST", "/v1/orders", json.dumps(order))
    assert (status, problem["code"]) == (422, "POINTS_AMOUNT_OVER_PAID"), problem
    assert pos.json("GET", f"/v1/orders/hostile-{engine}")[0] == 404
    status, problem = raw(pos, "PATCH", f"/v1/members/{member['id']}", '{"name": "x"}', {"if-match": "*"})
    assert (status, problem["code"]) == (428, "PRECONDITION_REQUIRED")
    forged = "eyJzayI6ICJUI290aGVyI00jMSJ9"  # {"sk": "T#other#M#1"}, unsealed
    status, problem = raw(pos, "GET", f"/v1/members/{member['id']}/point-records?cursor={forged}", "")
    assert (status, problem["code"]) == (422, "INVALID_CURSOR")
    _, view = pos.json("GET", f"/v1/members/{member['id']}")
    assert sum(a["available"] for a in view["accounts"]) == 0 and view["tier"]["code"] == "base"
