"""Members over the real handlers on moto: registration, One ID, lookups, erasure (issue 2, item 6)."""

from __future__ import annotations

import copy
from datetime import datetime

from tests.support import MINI, OPERATOR, OTHER_TENANT_POS, POS, Api, load_event

REGISTRATION = {
    "programCode": "DEMO",
    "phone": "13800138000",
    "name": "张三",
    "email": "zhang.san@example.com",
    "birthday": "1990-05-01",
    "identity": {"type": "wechatOpenId", "value": "oAbC123"},
}


def register(api: Api, body: dict | None = None, key: str | None = None, caller: dict = POS) -> tuple[int, dict]:
    return api.call(
        "POST", "/v1/members", caller, body=body or REGISTRATION, headers={"idempotency-key": key} if key else None
    )


def test_sample_event_registers_a_member_with_base_tier_and_one_zero_account_per_point_group(
    demo, api, captured_events
):
    # Given the demo program (points 积分 and growth 成长值), when the sample event from events/ is handled
    event = load_event("register_member.json")
    response = api.functions["RegisterMemberFunction"].invoke(event)
    # Then the member starts in the base tier, which never expires, with two zero accounts
    assert response["statusCode"] == 201
    import json

    member = json.loads(response["body"])
    assert member["tier"]["code"] == "base" and member["tier"]["type"] == "base"
    assert member["tier"]["validUntil"] is None
    assert sorted(
        (a["pointGroupCode"], a["name"], a["cumulative"], a["available"], a["expired"]) for a in member["accounts"]
    ) == [("growth", "成长值", 0, 0, 0), ("points", "积分", 0, 0, 0)]
    assert member["identities"][0]["channel"] == "POS" and member["identities"][0]["value"] == "oAbC123"
    assert member["registrationStoreCode"] == "SH001" and member["registrationChannel"] == "POS"
    # And MemberRegistered went to the bus, with the tenant
    [published] = captured_events.drain()
    assert published["detail-type"] == "MemberRegistered"
    assert published["detail"] == {
        "tenant": "demo",
        "eventId": published["detail"]["eventId"],  # stable per event, for consumers to dedupe
        "memberId": member["id"],
        "programCode": "DEMO",
        "channel": "POS",
        "tierCode": "base",
        "registeredAt": datetime.fromisoformat(member["registeredAt"]).isoformat(),  # campaigns read it
    }


def test_the_base_tier_record_is_the_valid_one(demo, api):
    status, member = register(api)
    assert status == 201
    status, records = api.call("GET", f"/v1/members/{member['id']}/tiers", POS)
    assert status == 200
    assert [(r["code"], r["type"], r["status"]) for r in records["items"]] == [("base", "BASE", "valid")]
    assert records["items"][0]["recordId"] == member["tier"]["recordId"] and records["nextCursor"] is None


def test_a_second_registration_with_the_same_phone_is_409_naming_the_member_and_writes_nothing(demo, api):
    _, first = register(api)
    # Same number spelled differently, another identity
    body = {**REGISTRATION, "phone": "138-0013-8000", "identity": {"type": "wechatOpenId", "value": "oOther"}}
    status, problem = register(api, body)
    assert status == 409
    assert problem["code"] == "PHONE_TAKEN" and problem["existingMemberId"] == first["id"]
    assert problem["field"] == "/phone" and problem["type"] == "/problems/phone-taken"
    # The refused registration bound nothing
    status, _ = api.call(
        "GET", "/v1/members/lookup", POS, query={"identityType": "wechatOpenId", "identityValue": "oOther"}
    )
    assert status == 404


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(demo, api, captured_events):
    status1, first = register(api, key="k-1")
    status2, again = register(api, key="k-1")
    assert (status1, status2) == (201, 201)
    assert again == first
    assert len(captured_events.drain()) == 1  # the retry published nothing


def test_the_same_idempotency_key_with_another_body_is_refused(demo, api):
    register(api, key="k-1")
    status, problem = register(api, {**REGISTRATION, "phone": "13900139000", "identity": None}, key="k-1")
    assert status == 422 and problem["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_an_identity_bound_to_another_member_is_refused_and_nothing_is_written(demo, api):
    register(api)
    status, problem = register(api, {**REGISTRATION, "phone": "13900139000"})
    assert status == 409 and problem["code"] == "IDENTITY_TAKEN"
    status, _ = api.call("GET", "/v1/members/lookup", POS, query={"phone": "13900139000"})
    assert status == 404


def test_binding_a_further_identity_then_looking_up_by_it_on_that_channel_only(demo, api):
    _, member = register(api)
    path = f"/v1/members/{member['id']}/identities"
    status, bound = api.call("POST", path, MINI, body={"type": "openId", "value": "mini-42"})
    assert status == 200
    assert {(i["channel"], i["value"]) for i in bound["identities"]} == {
        ("POS", "oAbC123"),
        ("MINI_PROGRAM", "mini-42"),
    }
    # Binding it again to the same member is a harmless repeat
    status, _ = api.call("POST", path, MINI, body={"type": "openId", "value": "mini-42"})
    assert status == 200
    # Identities belong to a channel: the mini-program finds the member, POS does not
    query = {"identityType": "openId", "identityValue": "mini-42"}
    assert api.call("GET", "/v1/members/lookup", MINI, query=query)[1]["id"] == member["id"]
    assert api.call("GET", "/v1/members/lookup", POS, query=query)[0] == 404


def test_binding_an_identity_that_another_member_holds_is_409(demo, api):
    _, first = register(api)
    _, second = register(api, {**REGISTRATION, "phone": "13900139000", "identity": None})
    status, problem = api.call(
        "POST", f"/v1/members/{second['id']}/identities", POS, body={"type": "wechatOpenId", "value": "oAbC123"}
    )
    assert status == 409 and problem["code"] == "IDENTITY_TAKEN" and problem["existingMemberId"] == first["id"]


def test_lookup_by_phone_ignores_formatting(demo, api):
    _, member = register(api)
    status, found = api.call("GET", "/v1/members/lookup", POS, query={"phone": "138 0013 8000"})
    assert status == 200 and found["id"] == member["id"]
    status, problem = api.call("GET", "/v1/members/lookup", POS, query={})
    assert status == 422 and problem["code"] == "LOOKUP_KEY_MISSING"


def test_erasure_blanks_personal_data_keeps_accounts_and_frees_the_phone(demo, api):
    _, member = register(api)
    status, erased = api.call("DELETE", f"/v1/members/{member['id']}/personal-data", POS)
    assert status == 200
    assert erased["status"] == "erased"
    assert (erased["name"], erased["phone"], erased["email"], erased["birthday"]) == (None, None, None, None)
    assert erased["accounts"] == member["accounts"] and erased["tier"] == member["tier"]
    # Erasing again changes nothing
    assert api.call("DELETE", f"/v1/members/{member['id']}/personal-data", POS) == (200, erased)
    # The number is free for a new registration
    status, newcomer = register(api, {**REGISTRATION, "identity": None})
    assert status == 201 and newcomer["id"] != member["id"]


def test_another_tenant_cannot_read_the_member(demo, api):
    _, member = register(api)
    status, problem = api.call("GET", f"/v1/members/{member['id']}", OTHER_TENANT_POS)
    assert status == 404 and problem["code"] == "MEMBER_NOT_FOUND"
    assert api.call("GET", "/v1/members/lookup", OTHER_TENANT_POS, query={"phone": "13800138000"})[0] == 404


def test_registration_into_an_unknown_or_unready_program_is_refused(demo, api):
    status, problem = register(api, {**REGISTRATION, "programCode": "NOPE"})
    assert status == 404 and problem["code"] == "PROGRAM_NOT_FOUND"
    api.call("POST", "/v1/admin/programs", OPERATOR, body={"code": "EMPTY", "name": "no tiers yet"})
    status, problem = register(api, {**REGISTRATION, "programCode": "EMPTY"})
    assert status == 409 and problem["code"] == "PROGRAM_NOT_READY"


def test_bad_input_is_422_with_a_pointer_per_field_malformed_json_400_oversized_413(demo, api):
    body = copy.deepcopy(REGISTRATION)
    body.update(phone="12", email="not-an-email", birthday="1990-13-01", extra=1)
    body["identity"]["type"] = "has spaces"
    status, problem = register(api, body)
    assert status == 422 and problem["code"] == "VALIDATION_FAILED"
    assert {e["field"] for e in problem["errors"]} == {"/phone", "/email", "/birthday", "/extra", "/identity/type"}
    assert all(e["in"] == "body" for e in problem["errors"])
    status, problem = api.call("POST", "/v1/members", POS, raw_body='{"programCode": ')
    assert status == 400 and problem["code"] == "MALFORMED_JSON"
    status, problem = api.call("POST", "/v1/members", POS, raw_body='{"x": "' + "a" * 300_000 + '"}')
    assert status == 413 and problem["code"] == "PAYLOAD_TOO_LARGE"
