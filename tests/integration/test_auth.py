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
    # Unknown keys are passed on as nobody, for the route to answer 401 (the answer is cacheable per key)
    for header in ("Bearer lk_unknown", "Bearer nonsense", "", None):
        answer = authorize(api, header)
        assert answer == {"isAuthorized": True, "context": {"tenant": ""}}


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
