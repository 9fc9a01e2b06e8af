"""Tags (issue 13, tags): operators define tags, attach and detach them per member; a member's tags are on
the profile, a tag counts its members exactly, and the members holding a tag are listed by page."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR, POS, Api

VIP = {"code": "vip", "name": "高净值", "colour": "#E4572E", "category": "人群", "description": "年消费满 1 万"}


@pytest.fixture
def members(demo, api: Api) -> list[dict]:
    assert api.call("POST", "/v1/admin/tags", OPERATOR, body=VIP)[0] == 201
    found = []
    for n in range(3):
        status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": f"1380013800{n}"})
        assert status == 201
        found.append(member)
    return found


def tag_path(member: dict, code: str = "vip") -> str:
    return f"/v1/admin/members/{member['id']}/tags/{code}"


def test_a_tag_is_attached_once_counted_exactly_and_detached(members, api):
    first = members[0]
    status, view = api.call("PUT", tag_path(first), OPERATOR)
    assert status == 200 and [(t["code"], t["name"]) for t in view["tags"]] == [("vip", "高净值")]
    assert api.call("PUT", tag_path(first), OPERATOR)[0] == 200  # a repeat changes nothing
    api.call("PUT", tag_path(members[1]), OPERATOR)
    _, tag = api.call("GET", "/v1/admin/tags/vip", OPERATOR)
    assert (tag["memberCount"], tag["colour"]) == (2, "#E4572E")
    # a tag that members hold cannot be deleted
    assert api.call("DELETE", "/v1/admin/tags/vip", OPERATOR)[0] == 409
    status, view = api.call("DELETE", tag_path(first), OPERATOR)
    assert (status, view["tags"]) == (200, [])
    assert api.call("DELETE", tag_path(first), OPERATOR)[0] == 200
    assert api.call("GET", "/v1/admin/tags/vip", OPERATOR)[1]["memberCount"] == 1
    assert api.call("GET", f"/v1/members/{first['id']}", POS)[1]["tags"] == []


def test_the_members_of_a_tag_are_listed_by_page(members, api):
    for member in members:
        api.call("PUT", tag_path(member), OPERATOR)
    _, first = api.call("GET", "/v1/admin/tags/vip/members", OPERATOR, query={"limit": "2"})
    _, second = api.call(
        "GET", "/v1/admin/tags/vip/members", OPERATOR, query={"limit": "2", "cursor": first["nextCursor"]}
    )
    listed = [m["memberId"] for m in first["items"] + second["items"]]
    assert sorted(listed) == sorted(m["id"] for m in members) and second["nextCursor"] is None
    assert api.call("GET", "/v1/admin/tags/nope/members", OPERATOR)[1]["code"] == "TAG_NOT_FOUND"


def test_unknown_tags_and_members_and_channel_keys_are_refused(members, api):
    status, problem = api.call("PUT", tag_path(members[0], "nope"), OPERATOR)
    assert (status, problem["code"], problem["field"]) == (422, "UNKNOWN_TAG", "/tagCode")
    unknown = {"id": "01HZZZZZZZZZZZZZZZZZZZZZZZ"}
    assert api.call("PUT", tag_path(unknown), OPERATOR)[1]["code"] == "MEMBER_NOT_FOUND"
    assert api.call("GET", "/v1/admin/tags/vip", OPERATOR)[1]["memberCount"] == 0  # nothing counted
    assert api.call("PUT", tag_path(members[0]), POS)[0] == 403
    status, problem = api.call("POST", "/v1/admin/tags", OPERATOR, body={**VIP, "code": "red", "colour": "red"})
    assert (status, problem["errors"][0]["field"]) == (422, "/colour")


def test_notes_on_a_member_are_kept_with_their_author_newest_first(members, api):
    path = f"/v1/admin/members/{members[0]['id']}/notes"
    status, first = api.call("POST", path, OPERATOR, body={"comment": "来电投诉: 积分未到账\n已补录"})
    assert (status, first["writtenBy"], first["comment"]) == (201, OPERATOR["keyId"], "来电投诉: 积分未到账\n已补录")
    api.call("POST", path, OPERATOR, body={"comment": "已回访"})
    _, page = api.call("GET", path, OPERATOR)
    assert [n["comment"] for n in page["items"]] == ["已回访", "来电投诉: 积分未到账\n已补录"]
    assert api.call("POST", path, OPERATOR, body={"comment": "bad\x1b"})[0] == 422
    unknown = "/v1/admin/members/01HZZZZZZZZZZZZZZZZZZZZZZZ/notes"
    assert api.call("POST", unknown, OPERATOR, body={"comment": "x"})[1]["code"] == "MEMBER_NOT_FOUND"
    assert api.call("GET", path, POS)[0] == 403
