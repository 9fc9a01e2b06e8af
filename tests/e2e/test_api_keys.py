"""API keys over HTTP on the local stack (issue 25, D-120), whose gateway caches the authorizer's answer per
key for `AuthorizerCacheSeconds` (300 s) on the stack's clock, as API Gateway does: a revoked key is refused
within that bound, measured here by moving the clock; a rotated key's old secret works through its grace and
not after; an operator cannot reach another tenant's keys. On the default engine, on the stack whose clock
moves (no state here depends on the engine: one conditional write per action)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ON_MOTO, KeepAlive, Stack, module_tenant

pytestmark = [pytest.mark.e2e, ON_MOTO]
CACHE_SECONDS = 300  # template.yaml's AuthorizerCacheSeconds default


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, stacks) -> Stack:
    return stacks("moto", moves_clock=True).with_tenant(module_tenant(request))


def status_with(stack: Stack, secret: str) -> int:
    return stack.request("GET", "/v1/admin/api-keys?limit=1", key=secret)[0]


def test_a_revoked_key_is_refused_within_the_cache_bound_and_a_rotated_secret_after_its_grace(stack):
    operator = KeepAlive(stack.base, stack.info["apiKeys"]["operator"])
    status, issued = operator.json("POST", "/v1/admin/api-keys", {"name": "运营 王芳", "role": "operator"})
    assert status == 201 and status_with(stack, issued["secret"]) == 200  # used: its answer is cached now
    assert operator.json("POST", f"/v1/admin/api-keys/{issued['keyId']}/revoke")[0] == 200
    assert status_with(stack, issued["secret"]) == 200  # the cached answer, as on API Gateway
    stack.move_clock(advance=f"PT{CACHE_SECONDS - 10}S")
    assert status_with(stack, issued["secret"]) == 200
    stack.move_clock(advance="PT11S")  # past the bound
    assert status_with(stack, issued["secret"]) == 403

    _, unused = operator.json("POST", "/v1/admin/api-keys", {"name": "never used", "role": "operator"})
    operator.json("POST", f"/v1/admin/api-keys/{unused['keyId']}/revoke")
    assert status_with(stack, unused["secret"]) == 403  # nothing cached: refused at once

    _, key = operator.json("POST", "/v1/admin/api-keys", {"name": "收银", "role": "channel", "channel": "POS"})
    status, rotated = operator.json("POST", f"/v1/admin/api-keys/{key['keyId']}/rotate", {"graceHours": 1})
    assert status == 200
    member = {"programCode": "DEMO", "phone": "13900139001"}
    assert stack.request("POST", "/v1/members", member, key=key["secret"])[0] == 201  # the old one, in its grace
    stack.move_clock(advance=f"PT1H{CACHE_SECONDS}S")  # the grace over, and the cached answer too
    assert stack.request("GET", "/v1/members/lookup?phone=13900139001", key=key["secret"])[0] == 403
    assert stack.request("GET", "/v1/members/lookup?phone=13900139001", key=rotated["secret"])[0] != 403

    _, listed = operator.json("GET", "/v1/admin/api-keys?limit=100")
    by_id = {k["keyId"]: k for k in listed["items"]}
    assert (by_id[issued["keyId"]]["status"], by_id[key["keyId"]]["status"]) == ("revoked", "active")
    assert by_id[key["keyId"]]["lastUsedOn"] is not None and "secret" not in by_id[key["keyId"]]


def test_an_operator_cannot_manage_another_tenants_keys(stack):
    other = stack.with_tenant("api-keys-other")
    mine = KeepAlive(stack.base, stack.info["apiKeys"]["operator"])
    their_operator = KeepAlive(other.base, other.info["apiKeys"]["operator"])
    _, issued = their_operator.json("POST", "/v1/admin/api-keys", {"name": "theirs", "role": "operator"})
    for method, path, body in (("GET", "", None), ("POST", "/rotate", {}), ("POST", "/revoke", None)):
        status, problem = mine.json(method, f"/v1/admin/api-keys/{issued['keyId']}{path}", body)
        assert (status, problem["code"]) == (404, "API_KEY_NOT_FOUND"), path
    assert status_with(other, issued["secret"]) == 200  # untouched
    _, listed = mine.json("GET", "/v1/admin/api-keys?limit=100")
    assert issued["keyId"] not in {k["keyId"] for k in listed["items"]}
