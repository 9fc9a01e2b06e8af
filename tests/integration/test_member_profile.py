"""The member's profile after registration (issue 13, profile): JSON Merge Patch with If-Match on its
version, who may change what, the phone guard moved in the same transaction, and a change history with
personal data masked."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR, POS, Api

PHONE = "13800138000"


@pytest.fixture
def member(demo, api: Api) -> dict:
    status, body = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE, "name": "张三"})
    assert status == 201
    return body


def patch(api: Api, member_id: str, body: dict, etag: str | None, who: dict = POS, **headers: str):
    path = f"/v1/admin/members/{member_id}" if who is OPERATOR else f"/v1/members/{member_id}"
    sent = {**headers, **({"if-match": etag} if etag else {})}
    return api.exchange("PATCH", path, who, body=body, headers=sent)


def test_a_change_needs_the_version_it_was_based_on(member, api):
    status, view, headers = api.exchange("GET", f"/v1/members/{member['id']}", POS)
    assert (status, view["version"], headers["etag"]) == (200, 1, '"1"')
    status, problem, _ = patch(api, member["id"], {"name": "张三丰"}, None)
    assert (status, problem["code"]) == (428, "PRECONDITION_REQUIRED")
    # "*" names no version and a weak tag never matches strongly (issue 25): neither may change the profile
    assert patch(api, member["id"], {"name": "x"}, "*")[1]["code"] == "PRECONDITION_REQUIRED"
    assert patch(api, member["id"], {"name": "x"}, 'W/"1"')[1]["code"] == "VERSION_MISMATCH"
    status, view, headers = patch(api, member["id"], {"name": "张三丰", "email": "zs@example.com"}, '"1"')
    assert (status, view["name"], view["email"], headers["etag"]) == (200, "张三丰", "zs@example.com", '"2"')
    # another client still holding version 1 is refused, and nothing of its change is written
    status, problem, _ = patch(api, member["id"], {"name": "李四"}, '"1"')
    assert (status, problem["code"], problem["currentVersion"]) == (412, "VERSION_MISMATCH", 2)
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["name"] == "张三丰"


def test_merge_patch_sets_merges_and_removes(member, api):
    first = {"address": {"province": "上海", "city": "上海", "line": "南京东路 1 号"}, "nickname": "三"}
    _, view, _ = patch(api, member["id"], first, '"1"', **{"content-type": "application/merge-patch+json"})
    _, view, _ = patch(api, member["id"], {"address": {"district": "黄浦区", "line": None}, "nickname": None}, '"2"')
    assert view["address"] == {"province": "上海", "city": "上海", "district": "黄浦区", "line": None}
    assert view["nickname"] is None and view["name"] == "张三"  # what was left out is kept
    # a patch that changes nothing writes nothing
    status, same, headers = patch(api, member["id"], {"name": "张三"}, '"3"')
    assert (status, same["version"], headers["etag"]) == (200, 3, '"3"')


def test_marketing_consent_keeps_its_time_and_channel(member, api):
    _, view, _ = patch(api, member["id"], {"marketingOptIn": True}, '"1"')
    assert view["marketingOptIn"] is True and view["marketingConsentChannel"] == "POS"
    assert view["marketingConsentAt"] is not None


def test_a_phone_change_moves_the_guard_or_is_refused_whole(member, api):
    _, other = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900139000"})
    status, problem, _ = patch(api, member["id"], {"phone": "139 0013 9000", "name": "改名"}, '"1"')
    assert (status, problem["code"], problem["existingMemberId"]) == (409, "PHONE_TAKEN", other["id"])
    assert api.call("GET", f"/v1/members/{member['id']}", POS)[1]["name"] == "张三"  # nothing written
    status, view, _ = patch(api, member["id"], {"phone": "13700137000"}, '"1"')
    assert (status, view["phone"]) == (200, "13700137000")
    assert api.call("GET", "/v1/members/lookup", POS, query={"phone": "13700137000"})[1]["id"] == member["id"]
    assert api.call("GET", "/v1/members/lookup", POS, query={"phone": PHONE})[0] == 404
    assert api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": PHONE})[0] == 201
    status, problem, _ = patch(api, member["id"], {"phone": None}, '"2"')
    assert (status, problem["code"]) == (422, "PHONE_REQUIRED")


def test_flags_and_a_set_birthday_are_the_operators(member, api):
    status, problem, _ = patch(api, member["id"], {"employee": True}, '"1"')
    assert (status, problem["code"], problem["field"]) == (403, "OPERATOR_ONLY_FIELD", "/employee")
    _, view, _ = patch(api, member["id"], {"birthday": "1990-05-01"}, '"1"')
    assert view["birthday"] == "1990-05-01"
    status, problem, _ = patch(api, member["id"], {"birthday": "1991-05-01"}, '"2"')
    assert (status, problem["code"]) == (409, "BIRTHDAY_ALREADY_SET")
    status, view, _ = patch(api, member["id"], {"birthday": "1991-05-01", "employee": True}, '"2"', who=OPERATOR)
    assert (status, view["birthday"], view["employee"], view["testData"]) == (200, "1991-05-01", True, False)
    status, problem, _ = patch(api, member["id"], {"homeStoreCode": "NOPE"}, '"3"', who=OPERATOR)
    assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_STORE", "/homeStoreCode")


def test_every_change_is_recorded_newest_first_with_personal_data_masked(member, api):
    patch(api, member["id"], {"phone": "13700137000", "gender": "female"}, '"1"')
    patch(api, member["id"], {"testData": True}, '"2"', who=OPERATOR)
    _, page = api.call("GET", f"/v1/admin/members/{member['id']}/profile-changes", OPERATOR)
    newest, oldest = page["items"]
    assert (newest["role"], newest["changedBy"]) == ("operator", OPERATOR["keyId"])
    assert newest["changes"] == [{"field": "testData", "old": None, "new": True}]
    assert oldest["role"] == "channel" and oldest["changedBy"] == "POS"
    assert oldest["changes"] == [
        {"field": "phone", "old": "138****8000", "new": "137****7000"},
        {"field": "gender", "old": None, "new": "*"},  # personal, masked like the rest (D-123)
    ]
    _, first = api.call("GET", f"/v1/members/{member['id']}/profile-changes", POS, query={"limit": "1"})
    _, second = api.call(
        "GET", f"/v1/members/{member['id']}/profile-changes", POS, query={"limit": "1", "cursor": first["nextCursor"]}
    )
    assert [first["items"][0]["changeId"], second["items"][0]["changeId"]] == [newest["changeId"], oldest["changeId"]]


def test_a_retry_under_its_key_gets_the_first_answer_and_an_erased_member_cannot_change(member, api):
    key = {"idempotency-key": "profile-1"}
    first = patch(api, member["id"], {"nickname": "三"}, '"1"', **key)
    assert patch(api, member["id"], {"nickname": "三"}, '"1"', **key)[:2] == first[:2]
    api.call("DELETE", f"/v1/members/{member['id']}/personal-data", POS)
    status, problem, _ = patch(api, member["id"], {"nickname": "x"}, '"2"')
    assert (status, problem["code"]) == (409, "MEMBER_NOT_ACTIVE")
    unknown = "/v1/members/01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert api.call("PATCH", unknown, POS, body={}, headers={"if-match": '"1"'})[0] == 404
