"""Tenancy and access (issue 2, item 4): keys resolve to tenant and role; every route enforces them."""

from __future__ import annotations

import json
import re

import boto3
import pytest

from tests.support import OPERATOR, POS, ROOT, Api, load_event

OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())
OPERATIONS = [
    (method.upper(), path, spec["operationId"])
    for path, item in OPENAPI["paths"].items()
    for method, spec in item.items()
]
SAMPLE_PARAMETER = {"memberId": "01HZZZZZZZZZZZZZZZZZZZZZZZ"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMETER.get(m.group(1), "DEMO"), path)


def authorize(api: Api, header: str | None) -> dict:
    event = load_event("authorizer.json")
    event["headers"] = {"authorization": header} if header is not None else {}
    return api.functions["AuthorizerFunction"].invoke(event)


def test_the_authorizer_resolves_each_key_to_its_tenant_role_and_channel(demo, api):
    assert authorize(api, f"Bearer {demo['pos']}")["context"] | {"keyId": ""} == {
        "tenant": "demo",
        "role": "channel",
        "channel": "POS",
        "keyId": "",
    }
    assert authorize(api, f"Bearer {demo['operator']}")["context"]["role"] == "operator"
    assert authorize(api, demo["miniProgram"])["context"]["channel"] == "MINI_PROGRAM"  # bare key also accepted
    # Unknown keys are refused by the authorizer: API Gateway answers 403 without invoking the route
    for header in ("Bearer lk_unknown", "Bearer nonsense", "", None):
        answer = authorize(api, header)
        assert answer == {"isAuthorized": False}


def test_keys_are_stored_only_as_digests_and_never_logged(demo, api, aws, log_output):
    authorize(api, f"Bearer {demo['pos']}")
    authorize(api, "Bearer lk_unknown-key-value")
    api.call("GET", "/v1/admin/stores", {"tenant": "demo", "role": "operator", "channel": "operator", "keyId": "k"})
    table = boto3.client("dynamodb", region_name="us-east-1")
    dump = json.dumps(table.scan(TableName=aws.ref("LoyaltyTable"))["Items"])
    logs = log_output.getvalue()
    for key in (*demo.values(), "lk_unknown-key-value"):
        assert key not in dump and key not in logs
    assert "caller resolved" in logs  # the authorizer does log, without the key


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=[op for _, _, op in OPERATIONS])
def test_every_route_answers_401_without_a_known_key_and_403_to_the_wrong_role(aws, api, method, path, operation):
    target = concrete(path)
    status, problem = api.call(method, target, None)
    assert (status, problem["code"]) == (401, "UNAUTHORIZED"), operation
    wrong = POS if target.startswith("/v1/admin/") else OPERATOR
    status, problem = api.call(method, target, wrong)
    assert (status, problem["code"]) == (403, "FORBIDDEN"), operation


def test_no_route_gives_another_tenant_any_of_this_tenants_data(demo, api, pipeline, monkeypatch):
    """Every operation, called with the other tenant's key of the right role and this tenant's real ids,
    answers without a byte of this tenant's data, and changes nothing of it. Every table key each request
    builds is the caller's tenant's, checked in the table wrapper's tenant scope (issue 12)."""
    from loyalty.store import table as table_module
    from tests.support import OTHER_TENANT_OPERATOR, OTHER_TENANT_POS, order_body

    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    assert api.call("POST", "/v1/orders", POS, body=order_body("T1", 300))[0] == 202
    pipeline.drain()
    rules = api.call("GET", "/v1/admin/coupon-rules", OPERATOR)[1]["items"]
    _, coupon = api.call("POST", f"/v1/members/{member['id']}/coupons", POS, body={"ruleId": rules[0]["ruleId"]})
    secrets = [member["id"], "13800138000", coupon["code"], rules[0]["ruleId"], "T1"]

    def real(path: str) -> str:
        ids = {"memberId": member["id"], "ruleId": rules[0]["ruleId"], "orderNo": "T1", "programCode": "DEMO"}
        ids["campaignId"] = "HD2026120001"
        ids["code"] = coupon["code"] if "/coupons/" in path else "SH001" if "/stores/" in path else "DEMO"
        return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "01HZZZZZZZZZZZZZZZZZZZZZZZ"), path)

    keys_by_operation: dict[str, list[tuple[str | None, str]]] = {}
    guard = table_module.guard_partition

    def recorded(partition: str, *, written_index: bool = False) -> None:
        keys_by_operation.setdefault(operation, []).append((table_module._scope.get(), partition))
        guard(partition, written_index=written_index)

    monkeypatch.setattr(table_module, "guard_partition", recorded)
    leaks = []
    for method, path, operation in OPERATIONS:
        stranger = OTHER_TENANT_OPERATOR if path.startswith("/v1/admin/") else OTHER_TENANT_POS
        target = real(path)
        status, body = api.call(method, target, stranger)
        text = json.dumps(body, ensure_ascii=False)
        hidden = [secret for secret in secrets if secret not in target]  # a problem may echo the path it was asked
        if status >= 500 or any(secret in text for secret in hidden) or (200 <= status < 300 and method != "GET"):
            leaks.append((operation, status))
    assert leaks == []
    needs_a_query = {"findCoupons", "lookupMember", "listCouponSettlements", "getMessageCounts"}  # 422 before any read
    reads = {operation for method, _, operation in OPERATIONS if method == "GET"} - needs_a_query
    assert reads <= set(keys_by_operation)  # every read reached the table, inside the scope
    scopes = {scope for keys in keys_by_operation.values() for scope, _ in keys}
    assert scopes == {"T#other#"}
    for operation, built in keys_by_operation.items():
        assert all(key.startswith("T#other#") for _, key in built), operation
    monkeypatch.undo()
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["phone"] == "13800138000"
    assert api.call("GET", "/v1/admin/stores/SH001", OPERATOR)[0] == 200
    assert api.call("GET", f"/v1/admin/coupons/{coupon['code']}", OPERATOR)[1]["status"] == "issued"
