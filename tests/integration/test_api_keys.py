"""API keys an operator can issue, list, rotate and revoke (issue 25, D-120): the authorizer refuses a
revoked key and a rotated-away secret after its grace; every action is recorded; another tenant's keys are
out of reach; an approver must be an active operator key of the tenant."""

from __future__ import annotations

from datetime import timedelta

from loyalty import clock
from tests.integration.test_campaigns import WELCOME
from tests.support import OPERATOR, OTHER_TENANT_OPERATOR, POS, load_event, with_points_budget


def authorize(api, secret: str) -> dict | None:
    event = load_event("authorizer.json")
    event["headers"] = {"authorization": f"Bearer {secret}"}
    answer = api.functions["AuthorizerFunction"].invoke(event)
    return answer.get("context") if answer["isAuthorized"] else None


def test_issue_list_rotate_revoke_and_every_action_recorded(demo, api):
    status, issued = api.call(
        "POST", "/v1/admin/api-keys", OPERATOR, body={"name": "上海门店收银", "role": "channel", "channel": "POS"}
    )
    assert status == 201, issued
    key_id, secret = issued["keyId"], issued["secret"]
    assert secret.startswith("lk_demo~") and issued["createdBy"] == OPERATOR["keyId"]
    assert authorize(api, secret) == {"tenant": "demo", "role": "channel", "channel": "POS", "keyId": key_id}

    status, page = api.call("GET", "/v1/admin/api-keys", OPERATOR, query={"limit": "100"})
    listed = next(k for k in page["items"] if k["keyId"] == key_id)
    assert status == 200 and "secret" not in listed and secret not in str(page)
    assert (listed["status"], listed["role"], listed["channel"], listed["name"]) == (
        "active",
        "channel",
        "POS",
        "上海门店收银",
    )
    assert listed["lastUsedOn"] == clock.SystemClock().now().date().isoformat()  # the authorizer marked the day

    status, rotated = api.call("POST", f"/v1/admin/api-keys/{key_id}/rotate", OPERATOR, body={"graceHours": 2})
    assert status == 200 and rotated["secret"] != secret and rotated["keyId"] == key_id
    assert authorize(api, secret) is not None and authorize(api, rotated["secret"]) is not None  # in its grace
    clock.advance(timedelta(hours=2))
    try:
        assert authorize(api, secret) is None  # the grace is over
        assert authorize(api, rotated["secret"]) is not None
        status, revoked = api.call("POST", f"/v1/admin/api-keys/{key_id}/revoke", OPERATOR)
        assert (status, revoked["status"]) == (200, "revoked")
        assert authorize(api, rotated["secret"]) is None
        status, problem = api.call("POST", f"/v1/admin/api-keys/{key_id}/revoke", OPERATOR)
        assert (status, problem["code"]) == (409, "KEY_REVOKED")
        assert api.call("POST", f"/v1/admin/api-keys/{key_id}/rotate", OPERATOR, body={})[1]["code"] == "KEY_REVOKED"
    finally:
        clock.reset()

    _, actions = api.call("GET", "/v1/admin/api-key-actions", OPERATOR)
    mine = [(a["action"], a["by"], a.get("graceHours")) for a in actions["items"] if a["keyId"] == key_id]
    assert mine == [
        ("revoked", OPERATOR["keyId"], None),
        ("rotated", OPERATOR["keyId"], 2),
        ("issued", OPERATOR["keyId"], None),
    ]


def test_a_rotation_with_no_grace_ends_the_old_secret_at_once_and_the_grace_is_bounded(demo, api):
    _, issued = api.call("POST", "/v1/admin/api-keys", OPERATOR, body={"name": "ops", "role": "operator"})
    _, rotated = api.call("POST", f"/v1/admin/api-keys/{issued['keyId']}/rotate", OPERATOR, body={"graceHours": 0})
    assert authorize(api, issued["secret"]) is None and authorize(api, rotated["secret"])["role"] == "operator"
    status, problem = api.call(
        "POST", f"/v1/admin/api-keys/{issued['keyId']}/rotate", OPERATOR, body={"graceHours": 721}
    )
    assert (status, problem["code"], problem["errors"][0]["field"]) == (422, "VALIDATION_FAILED", "/graceHours")
    status, problem = api.call("POST", "/v1/admin/api-keys", OPERATOR, body={"name": "tills", "role": "channel"})
    assert (status, problem["errors"][0]["field"]) == (422, "/channel")


def test_keys_of_another_tenant_are_out_of_reach_and_channels_manage_none(demo, api):
    _, issued = api.call("POST", "/v1/admin/api-keys", OPERATOR, body={"name": "ops", "role": "operator"})
    key_id = issued["keyId"]
    for method, path in (("GET", ""), ("POST", "/revoke"), ("POST", "/rotate")):
        status, problem = api.call(method, f"/v1/admin/api-keys/{key_id}{path}", OTHER_TENANT_OPERATOR, body={})
        assert (status, problem["code"]) == (404, "API_KEY_NOT_FOUND"), path
    _, theirs = api.call("GET", "/v1/admin/api-keys", OTHER_TENANT_OPERATOR)
    assert key_id not in str(theirs)
    assert api.call("GET", "/v1/admin/api-keys", POS)[0] == 403
    assert authorize(api, issued["secret"])["tenant"] == "demo"
    assert authorize(api, issued["secret"].replace("lk_demo~", "lk_other~")) is None  # the tenant is in the digest


def test_an_approver_must_be_an_active_operator_key_of_the_tenant(demo, api):
    _, draft = api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(WELCOME))
    path = f"/v1/admin/campaigns/{draft['campaignId']}/submit"
    _, channel_key = api.call(
        "POST", "/v1/admin/api-keys", OPERATOR, body={"name": "t", "role": "channel", "channel": "POS"}
    )
    _, revoked = api.call("POST", "/v1/admin/api-keys", OPERATOR, body={"name": "gone", "role": "operator"})
    api.call("POST", f"/v1/admin/api-keys/{revoked['keyId']}/revoke", OPERATOR)
    for approver in ("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", channel_key["keyId"], revoked["keyId"]):
        status, problem = api.call("POST", path, OPERATOR, body={"approver": approver})
        assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_APPROVER", "/approver"), approver
    _, approver = api.call("POST", "/v1/admin/api-keys", OPERATOR, body={"name": "王芳", "role": "operator"})
    status, pending = api.call("POST", path, OPERATOR, body={"approver": approver["keyId"]})
    assert (status, pending["status"]) == (200, "pending")


def test_a_key_issued_before_records_is_moved_into_its_tenant_by_the_migration(demo, api):
    """Keys issued before D-120 (lk_<secret>, a global digest item) keep working, and migration 005 makes
    them listable and revocable."""
    from loyalty.services.auth import digest
    from loyalty.services.migrations.steps import MIGRATIONS
    from loyalty.store import keys
    from loyalty.store.table import Table

    old = "lk_" + "A" * 43
    table = Table()
    legacy = {"PK": keys.api_key(digest(old)), "SK": keys.API_KEY_SK, "tenant": "demo", "role": "operator",
              "channel": "operator", "keyId": "01PREVKEY00000000000000000", "name": "old admin",
              "createdAt": "2025-01-01T00:00:00+00:00"}  # fmt: skip
    table.put_many([legacy])
    assert authorize(api, old)["keyId"] == "01PREVKEY00000000000000000"
    step = next(m for m in MIGRATIONS if m.id == "005-api-key-records").step
    assert step(table, legacy, clock.SystemClock()) is True
    assert step(table, legacy, clock.SystemClock()) is False  # once
    assert authorize(api, old)["keyId"] == "01PREVKEY00000000000000000"
    assert api.call("POST", "/v1/admin/api-keys/01PREVKEY00000000000000000/revoke", OPERATOR)[0] == 200
    assert authorize(api, old) is None
