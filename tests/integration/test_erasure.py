"""Erasure erases (issue 25, D-123): every declared personal field, the channel identities, notes, tags, the
personal values of change records, and what the member's sales said of them; a cancelled member too. Old
records are brought to the same shape by migration 006."""

from __future__ import annotations

import json

from loyalty.clock import SystemClock
from loyalty.services.migrations.steps import personal_data_out_of_records
from loyalty.store import keys
from loyalty.store.table import Table
from tests.support import OPERATOR, POS, Api, order_body

WRITTEN = {
    "phone": "13812345678",
    "name": "王小明",
    "email": "wang.xiaoming@example.com",
    "birthday": "1991-03-04",
    "nickname": "明明同学",
    "avatarUrl": "https://img.example.com/avatars/wangxm.png",
    "address": {"province": "浙江", "city": "杭州", "district": "西湖区", "line": "文三路 478 号 9 幢"},
    "identity": "oWangXiaoMing_0001",
    "note": "客户说明: 住院中, 请勿来电",
    "reason": "本人要求: 家属代办",
}


def _written_values() -> list[str]:
    values = [v for k, v in WRITTEN.items() if isinstance(v, str) and k not in ("birthday",)]
    return [*values, WRITTEN["address"]["line"], "王小", "wangxm"]


def _member(api: Api) -> str:
    body = {
        "programCode": "DEMO",
        "phone": WRITTEN["phone"],
        "name": WRITTEN["name"],
        "email": WRITTEN["email"],
        "birthday": WRITTEN["birthday"],
        "gender": "male",
        "identity": {"type": "wechatOpenId", "value": WRITTEN["identity"]},
    }
    status, member = api.call("POST", "/v1/members", POS, body=body)
    assert status == 201, member
    patch = {k: WRITTEN[k] for k in ("nickname", "avatarUrl", "address")}
    status, _ = api.call("PATCH", f"/v1/members/{member['id']}", POS, body=patch, headers={"if-match": '"1"'})
    assert status == 200
    path = f"/v1/admin/members/{member['id']}"
    assert api.call("POST", f"{path}/notes", OPERATOR, body={"comment": WRITTEN["note"]})[0] == 201
    assert api.call("PUT", f"{path}/tags/high-value", OPERATOR)[0] == 200
    status, sale = api.call(
        "POST", "/v1/orders", POS, body=order_body(f"E-{member['id']}", 120, member={"phone": WRITTEN["phone"]})
    )
    assert status in (201, 202), sale
    assert api.call("POST", f"{path}/freeze", OPERATOR, body={"reason": WRITTEN["reason"]})[0] == 200
    return str(member["id"])


def _partition(member_id: str) -> str:
    return json.dumps(Table().query_all(keys.member("demo", member_id)), ensure_ascii=False, default=str)


def test_erasure_leaves_nothing_personal_in_the_member_or_its_records(demo, api, pipeline):
    member_id = _member(api)
    pipeline.drain()

    status, erased = api.call("DELETE", f"/v1/members/{member_id}/personal-data", POS)

    assert (status, erased["status"]) == (200, "erased")
    view = json.dumps(erased, ensure_ascii=False)
    assert [v for v in _written_values() if v in view] == []
    assert erased["identities"] == [] and erased["tags"] == [] and erased["address"] is None
    assert erased["cardNo"] and len(erased["accounts"]) == 2  # the card and the accounts stay
    lookup = {"identityType": "wechatOpenId", "identityValue": WRITTEN["identity"]}
    assert api.call("GET", "/v1/members/lookup", POS, query=lookup)[0] == 404
    assert api.call("GET", "/v1/members/lookup", POS, query={"phone": WRITTEN["phone"]})[0] == 404
    for path in ("notes", "profile-changes", "orders"):
        _, page = api.call("GET", f"/v1/admin/members/{member_id}/{path}", OPERATOR)
        answer = json.dumps(page, ensure_ascii=False)
        assert page["items"] and [v for v in _written_values() if v in answer] == [], path
    assert [v for v in _written_values() if v in _partition(member_id)] == []
    assert api.call("GET", "/v1/admin/tags/high-value", OPERATOR)[1]["memberCount"] == 0
    # erasing again changes nothing, and the guards are gone: the identity and the phone are free again
    assert api.call("DELETE", f"/v1/members/{member_id}/personal-data", POS) == (200, erased)
    again = {
        "programCode": "DEMO",
        "phone": WRITTEN["phone"],
        "identity": {"type": "wechatOpenId", "value": WRITTEN["identity"]},
    }
    assert api.call("POST", "/v1/members", POS, body=again)[0] == 201


def test_a_cancelled_member_is_erased_too(demo, api):
    member_id = _member(api)
    path = f"/v1/admin/members/{member_id}"
    assert api.call("POST", f"{path}/cancel", OPERATOR, body={"reason": WRITTEN["reason"]})[0] == 200

    status, erased = api.call("DELETE", f"/v1/members/{member_id}/personal-data", POS)

    assert (status, erased["status"], erased["name"], erased["nickname"]) == (200, "erased", None, None)
    assert [v for v in _written_values() if v in _partition(member_id)] == []


def test_migration_006_takes_personal_data_out_of_old_records(demo, api):
    table = Table()
    member_id = _member(api)
    order = {
        "PK": keys.order("demo", "POS", "OLD-1"),
        "SK": keys.ORDER_SK,
        "memberId": member_id,
        "submission": {"orderNo": "OLD-1", "member": {"phone": WRITTEN["phone"]}},
    }
    transfer = {
        "PK": keys.coupon("demo", "C1"),
        "SK": keys.transfer_sk("T1"),
        "giver": {"cardNo": "123456789012", "name": WRITTEN["name"], "phone": "138****5678"},
    }
    change = {
        "PK": keys.member("demo", member_id),
        "SK": keys.profile_change_sk("01OLDCHANGE000000000000000"),
        "changes": [{"field": "nickname", "old": None, "new": WRITTEN["nickname"]}, {"field": "employee", "new": True}],
    }
    table.put_many([order, transfer, change])
    clock = SystemClock()

    assert [personal_data_out_of_records(table, item, clock) for item in (order, transfer, change)] == [True] * 3

    assert table.get(order["PK"], order["SK"])["submission"]["member"] == {"id": member_id}
    assert table.get(transfer["PK"], transfer["SK"])["giver"] == {"cardNo": "123456789012"}
    assert table.get(change["PK"], change["SK"])["changes"] == [
        {"field": "nickname", "old": None, "new": "明*"},
        {"field": "employee", "new": True},
    ]
    # a second run finds each in its current shape
    for item in (order, transfer, change):
        assert personal_data_out_of_records(table, table.get(item["PK"], item["SK"]), clock) is False
