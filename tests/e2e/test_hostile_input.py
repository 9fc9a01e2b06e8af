"""Hostile requests over HTTP get clear 4xx answers and write nothing (issue 12): deep nesting, every JSON
spelling of the content type, duplicate keys, integers sent as strings or booleans, control characters,
business times out of range, an order of a trillion."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import ON_MOTO, KeepAlive, module_tenant

pytestmark = [pytest.mark.e2e, ON_MOTO]


@pytest.fixture(scope="module")
def client(stacks, request) -> KeepAlive:
    """The refusals happen before any engine is reached: the default engine's stack is enough."""
    stack = stacks("moto").with_tenant(module_tenant(request))
    return KeepAlive(stack.base, stack.info["apiKeys"]["pos"])


# a time past the API's bounds (2000-2099, D-127) is refused by the model; inside them, by the business window
OUT_OF_RANGE = {"TIME_OUT_OF_RANGE", "VALIDATION_FAILED"}


def _pointer(problem: dict) -> str:
    return str(problem.get("field") or problem["errors"][0]["field"])


def post(client: KeepAlive, path: str, body: str, content_type: str = "application/json") -> tuple[int, dict]:
    client.connection.request(
        "POST",
        path,
        body=body.encode(),
        headers={"content-type": content_type, "authorization": f"Bearer {client.key}"},
    )
    response = client.connection.getresponse()
    return response.status, json.loads(response.read())


def test_a_body_nested_1000_levels_is_400_not_500(client):
    status, problem = post(client, "/v1/members", "[" * 1000 + "]" * 1000)
    assert (status, problem["code"]) == (400, "MALFORMED_JSON") and "nested" in problem["detail"]
    status, problem = post(client, "/v1/members", '{"programCode": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}")
    assert (status, problem["code"]) == (400, "MALFORMED_JSON")  # beyond 32 levels, however short


def test_every_json_spelling_of_the_content_type_is_read_as_json(client):
    body = json.dumps({"programCode": "DEMO", "phone": "13200132000"})
    assert post(client, "/v1/members", body, "APPLICATION/JSON")[0] == 201
    body = json.dumps({"programCode": "DEMO", "phone": "13200132001"})
    assert post(client, "/v1/members", body, "application/merge-patch+json; charset=UTF-8")[0] == 201
    status, problem = post(client, "/v1/members", body, "text/plain")
    assert (status, problem["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_key_given_twice_is_refused(client):
    status, member = post(client, "/v1/members", json.dumps({"programCode": "DEMO", "phone": "13200132002"}))
    assert status == 201
    body = '{"pointGroupCode": "points", "points": 1000, "points": 1, "purpose": "gift"}'
    status, problem = post(client, f"/v1/members/{member['id']}/redemptions", body)
    assert (status, problem["code"]) == (400, "MALFORMED_JSON") and "'points' is given twice" in problem["detail"]


def test_integers_come_as_json_numbers_only(client):
    status, member = post(client, "/v1/members", json.dumps({"programCode": "DEMO", "phone": "13200132003"}))
    for points in (True, "1"):
        body = json.dumps({"pointGroupCode": "points", "points": points, "purpose": "gift"})
        status, problem = post(client, f"/v1/members/{member['id']}/redemptions", body)
        assert (status, problem["code"], problem["errors"][0]["field"]) == (422, "VALIDATION_FAILED", "/points")


@pytest.mark.parametrize("name", ["a\x00b", "\x1b[31mred", "abc\u202edcba", "zero\u200bwidth", "two\r\nlines"])
def test_display_fields_refuse_control_and_format_characters(client, name):
    body = json.dumps({"programCode": "DEMO", "phone": "13200132009", "name": name})
    status, problem = post(client, "/v1/members", body)
    assert (status, problem["errors"][0]["field"]) == (422, "/name")
    status, _ = post(client, "/v1/members", json.dumps({"programCode": "DEMO", "phone": "13200132009"}))
    assert status in (201, 409)  # the phone was not taken by the refused registrations (409: an earlier case)


def test_names_are_stored_in_one_normal_form(client):
    decomposed = "Jose\u0301"  # e + combining acute accent
    body = json.dumps({"programCode": "DEMO", "phone": "13200132010", "name": decomposed})
    status, member = post(client, "/v1/members", body)
    assert status == 201 and member["name"] == "Jos\u00e9"


def test_business_times_outside_their_window_are_422_and_take_nothing(client):
    """An order dated 9999-12-31 was accepted, then failed accrual until the DLQ, its number taken."""
    status, member = post(client, "/v1/members", json.dumps({"programCode": "DEMO", "phone": "13200132020"}))
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": "100", "paid": "100"}
    order = {"programCode": "DEMO", "orderNo": "far-future", "member": {"id": member["id"]}, "storeCode": "SH001"}
    for when in ("9999-12-31T23:59:59+08:00", "1990-01-01T00:00:00+08:00"):
        status, problem = post(client, "/v1/orders", json.dumps({**order, "orderedAt": when, "lines": [line]}))
        assert (status, _pointer(problem)) == (422, "/orderedAt") and problem["code"] in OUT_OF_RANGE
    assert client.json("GET", "/v1/orders/far-future")[0] == 404  # the number is still free
    behaviour = {"behaviourType": "checkIn", "behaviourId": "old-1", "occurredAt": "2000-01-01T09:00:00+08:00"}
    status, problem = post(client, f"/v1/members/{member['id']}/behaviours", json.dumps(behaviour))
    assert (status, _pointer(problem)) == (422, "/occurredAt") and problem["code"] in OUT_OF_RANGE
    returned = {
        "returnNo": "r-future",
        "originalOrderNo": "x",
        "returnedAt": "3000-01-01T00:00:00Z",
        "wholeOrder": True,
    }
    status, problem = post(client, "/v1/returns", json.dumps(returned))
    assert (status, _pointer(problem)) == (422, "/returnedAt") and problem["code"] in OUT_OF_RANGE


def test_an_order_of_a_trillion_is_refused_and_the_number_stays_free(client):
    """One order of 999,999,999,999.99 minted a trillion points and lifted a member to the top tier."""
    status, member = post(client, "/v1/members", json.dumps({"programCode": "DEMO", "phone": "13200132021"}))
    huge = "999999999999.99"
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": huge, "paid": huge}
    order = {
        "programCode": "DEMO",
        "orderNo": "trillion",
        "member": {"id": member["id"]},
        "storeCode": "SH001",
        "orderedAt": (
            datetime.fromisoformat(client.json("GET", "/_local/clock")[1]["now"]) - timedelta(days=1)
        ).isoformat(),
        "lines": [line],
    }
    status, problem = post(client, "/v1/orders", json.dumps(order))
    assert (status, problem["code"], problem["field"]) == (422, "ORDER_AMOUNT_OVER_CEILING", "/lines")
    assert client.json("GET", "/v1/orders/trillion")[0] == 404
    _, view = client.json("GET", f"/v1/members/{member['id']}")
    assert (view["tier"]["code"], sum(a["available"] for a in view["accounts"])) == ("base", 0)
