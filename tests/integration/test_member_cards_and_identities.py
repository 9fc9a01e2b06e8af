"""Card numbers and identity unbinding (issue 13, profile): a member is found by card like by phone, an
order may name the card, and an identity leaves a member with its times kept."""

from __future__ import annotations

import pytest

from loyalty.domain.members import valid_card_number
from tests.support import POS, Api, order_body

IDENTITY = {"type": "wechatOpenId", "value": "oWx-card-1"}


@pytest.fixture
def member(demo, api: Api) -> dict:
    body = {"programCode": "DEMO", "phone": "13800138000", "identity": IDENTITY}
    status, member = api.call("POST", "/v1/members", POS, body=body)
    assert status == 201
    return member


def test_a_member_gets_a_card_number_found_like_a_phone(member, api, pipeline):
    card = member["cardNo"]
    assert valid_card_number(card)
    assert api.call("GET", "/v1/members/lookup", POS, query={"cardNo": card})[1]["id"] == member["id"]
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    status, problem = api.call("GET", "/v1/members/lookup", POS, query={"cardNo": wrong})
    assert (status, problem["code"], problem["field"]) == (422, "INVALID_CARD_NO", "/cardNo")
    # an order may name its member by card
    assert api.call("POST", "/v1/orders", POS, body=order_body("CARD-1", 300, member={"cardNo": card}))[0] == 202
    pipeline.drain()
    _, view = api.call("GET", f"/v1/members/{member['id']}", POS)
    assert next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points") == 300


def test_a_drawn_card_number_that_is_taken_is_drawn_again(member, api, monkeypatch):
    import loyalty.services.members as members

    draws = iter([member["cardNo"], member["cardNo"], "000000000000"])
    monkeypatch.setattr(members, "new_card_number", lambda: next(draws))
    status, other = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900139000"})
    assert (status, other["cardNo"]) == (201, "000000000000")


def test_an_identity_is_unbound_with_its_time_and_can_be_bound_again(member, api):
    path = f"/v1/members/{member['id']}/identities/wechatOpenId/oWx-card-1"
    status, view = api.call("DELETE", path, POS)
    (identity,) = view["identities"]
    assert status == 200 and identity["unboundAt"] is not None and identity["boundAt"] is not None
    lookup = {"identityType": "wechatOpenId", "identityValue": "oWx-card-1"}
    assert api.call("GET", "/v1/members/lookup", POS, query=lookup)[0] == 404
    assert api.call("DELETE", path, POS)[0] == 200  # a repeat changes nothing
    status, problem = api.call("DELETE", f"/v1/members/{member['id']}/identities/wechatOpenId/nope", POS)
    assert (status, problem["code"]) == (404, "IDENTITY_NOT_FOUND")
    # the identity is free: another member may bind it, and this one may not see it as theirs any more
    _, other = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900139000"})
    status, view = api.call("POST", f"/v1/members/{other['id']}/identities", POS, body=IDENTITY)
    assert status == 200 and view["identities"][0]["unboundAt"] is None
    assert api.call("GET", "/v1/members/lookup", POS, query=lookup)[1]["id"] == other["id"]
