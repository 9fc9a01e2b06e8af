"""The operators' member list (issue 13, profile: member list): filters, look-ups, tags, name, paging across
registration months, all without a scan (D-082)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty.clock import FixedClock
from loyalty.domain.members import MemberFilter, Registration
from tests.support import MINI, OPERATOR, POS, Api


def register(api: Api, phone: str, key=POS, **fields) -> dict:
    status, member = api.call("POST", "/v1/members", key, body={"programCode": "DEMO", "phone": phone, **fields})
    assert status == 201, member
    return member


def listed(api: Api, **query) -> tuple[list[str], str | None]:
    status, page = api.call("GET", "/v1/admin/members", OPERATOR, query=query)
    assert status == 200, page
    return [m["id"] for m in page["items"]], page["nextCursor"]


@pytest.fixture
def members(demo, api: Api) -> dict[str, dict]:
    store = {"code": "SH002", "name": "上海淮海路店", "type": "offline", "city": "上海"}
    assert api.call("POST", "/v1/admin/stores", OPERATOR, body=store)[0] == 201  # a registration's store exists
    return {
        "zhang": register(api, "13800000001", name="张三", storeCode="SH001"),
        "li": register(api, "13800000002", name="Li  Si", storeCode="SH002"),
        "wang": register(api, "13800000003", name="王五", key=MINI),
        "zhao": register(api, "13800000004", name="ＬＩ ＳＩ", storeCode="SH001"),
    }


def test_newest_first_with_every_filter(members, api):
    ids = {name: m["id"] for name, m in members.items()}
    assert listed(api)[0] == [ids["zhao"], ids["wang"], ids["li"], ids["zhang"]]
    assert listed(api, storeCode="SH001")[0] == [ids["zhao"], ids["zhang"]]
    assert listed(api, channel="MINI_PROGRAM")[0] == [ids["wang"]]
    assert listed(api, tier="base", programCode="DEMO")[0] == [ids["zhao"], ids["wang"], ids["li"], ids["zhang"]]
    assert listed(api, tier="gold")[0] == []
    # a name matches whole, ignoring case, width and spaces; within a store
    assert listed(api, name="li si")[0] == [ids["zhao"], ids["li"]]
    assert listed(api, name="LiSi", storeCode="SH002")[0] == [ids["li"]]
    assert listed(api, name="张")[0] == []
    api.call("POST", f"/v1/admin/members/{ids['wang']}/freeze", OPERATOR, body={"reason": "chargeback"})
    assert listed(api, status="frozen")[0] == [ids["wang"]]
    # a registration window: all registered before now; none from a moment in the future
    assert len(listed(api, registeredTo=datetime.now(UTC).isoformat())[0]) == 4
    assert listed(api, registeredFrom="2099-01-01T00:00:00Z")[0] == []
    row = api.call("GET", "/v1/admin/members", OPERATOR, query={"storeCode": "SH002"})[1]["items"][0]
    assert (row["phone"], row["name"], row["tierCode"], row["storeCode"], row["status"]) == (
        "138****0002",
        "Li  Si",
        "base",
        "SH002",
        "active",
    )


def test_a_renamed_member_is_found_by_the_new_name_and_an_erased_one_by_none(members, api):
    member = members["zhang"]
    status, _ = api.call(
        "PATCH", f"/v1/members/{member['id']}", POS, body={"name": "张小三"}, headers={"if-match": '"1"'}
    )
    assert status == 200
    assert listed(api, name="张小三")[0] == [member["id"]] and listed(api, name="张三")[0] == []
    api.call("DELETE", f"/v1/members/{member['id']}/personal-data", POS)
    assert listed(api, name="张小三")[0] == [] and listed(api, status="erased")[0] == [member["id"]]


def test_look_up_by_phone_card_or_tag(members, api):
    zhang, li = members["zhang"], members["li"]
    assert listed(api, phone="138-0000-0001")[0] == [zhang["id"]]
    assert listed(api, phone="13999999999")[0] == []
    assert listed(api, cardNo=zhang["cardNo"])[0] == [zhang["id"]]
    assert listed(api, cardNo=zhang["cardNo"], storeCode="SH002")[0] == []  # the filters still hold
    bind = {"type": "wechatOpenId", "value": "o-zhang"}
    assert api.call("POST", f"/v1/members/{zhang['id']}/identities", MINI, body=bind)[0] == 200
    by_identity = {"identityChannel": "MINI_PROGRAM", "identityType": "wechatOpenId", "identityValue": "o-zhang"}
    assert listed(api, **by_identity)[0] == [zhang["id"]]
    assert listed(api, **{**by_identity, "identityChannel": "POS"})[0] == []  # bound on another channel
    status, problem = api.call("GET", "/v1/admin/members", OPERATOR, query={"identityType": "wechatOpenId"})
    assert (status, problem["code"]) == (422, "LOOKUP_KEY_MISSING")
    wrong = zhang["cardNo"][:-1] + str((int(zhang["cardNo"][-1]) + 1) % 10)
    status, problem = api.call("GET", "/v1/admin/members", OPERATOR, query={"cardNo": wrong})
    assert (status, problem["code"], problem["field"]) == (422, "INVALID_CARD_NO", "/cardNo")
    for member in (zhang, li, members["zhao"]):
        assert api.call("PUT", f"/v1/admin/members/{member['id']}/tags/high-value", OPERATOR)[0] == 200
    tagged = sorted([zhang["id"], li["id"], members["zhao"]["id"]])
    assert listed(api, tag="high-value")[0] == tagged
    assert listed(api, tag="high-value", storeCode="SH001")[0] == sorted([zhang["id"], members["zhao"]["id"]])
    first, cursor = listed(api, tag="high-value", limit="2")
    rest, end = listed(api, tag="high-value", limit="2", cursor=cursor)
    assert (first + rest, end) == (tagged, None)
    assert api.call("GET", "/v1/admin/members", OPERATOR, query={"tag": "nope"})[1]["code"] == "TAG_NOT_FOUND"


def test_pages_follow_each_other_and_channels_may_not_list(members, api):
    everyone = listed(api)[0]
    first, cursor = listed(api, limit="3")
    assert first == everyone[:3] and cursor
    rest, end = listed(api, limit="3", cursor=cursor)
    assert (rest, end) == (everyone[3:], None)
    status, problem = api.call("GET", "/v1/admin/members", OPERATOR, query={"cursor": "eyJzayI6ICJUfHgifQ"})
    assert (status, problem["code"]) == (422, "INVALID_CURSOR")
    assert api.call("GET", "/v1/admin/members", POS)[0] == 403


def test_the_list_walks_back_month_by_month_to_the_program_start(demo, aws):
    from loyalty.services.member_directory import member_directory
    from loyalty.services.members import member_service

    registered = {}
    for at, phone in (
        (datetime(2027, 1, 15, tzinfo=UTC), "13900000001"),
        (datetime(2027, 3, 1, 8, tzinfo=UTC), "13900000003"),
        (datetime(2027, 3, 2, tzinfo=UTC), "13900000004"),
    ):
        service = member_service(clock=FixedClock(at))
        registered[phone] = service.register("demo", "POS", Registration(program_code="DEMO", phone=phone)).id
    directory = member_directory(clock=FixedClock(datetime(2027, 3, 10, tzinfo=UTC)))
    page = directory.find("demo", MemberFilter(), limit=2)
    assert [m.id for m in page.items] == [registered["13900000004"], registered["13900000003"]]
    # the next page skips the empty February and ends at the program's start (December 2026)
    rest = directory.find("demo", MemberFilter(), limit=2, cursor=page.next_cursor)
    assert [m.id for m in rest.items] == [registered["13900000001"]] and rest.next_cursor is None
    march = directory.find("demo", MemberFilter(registered_from=datetime(2027, 3, 1, 12, tzinfo=UTC)), limit=10)
    assert [m.id for m in march.items] == [registered["13900000004"]]
