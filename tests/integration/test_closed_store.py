"""A closed store takes no new business (issue 25, D-130): an order, a registration or a coupon redemption that
names it is 409 STORE_CLOSED; a store the tenant does not have is 422 UNKNOWN_STORE; reopened, it takes them."""

from __future__ import annotations

from tests.integration.test_coupons import claim, listed_rule, redeem
from tests.support import OPERATOR, POS, Api, order_body


def _store(api: Api, status: str) -> None:
    body = {"code": "SH009", "name": "上海徐汇店", "status": status}
    if api.call("GET", "/v1/admin/stores/SH009", OPERATOR)[0] == 404:
        assert api.call("POST", "/v1/admin/stores", OPERATOR, body=body)[0] == 201
    else:
        assert api.call("PUT", "/v1/admin/stores/SH009", OPERATOR, body=body)[0] == 200


def test_a_closed_store_takes_no_orders_registrations_or_redemptions(demo, api, pipeline):
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138100"})
    assert status == 201
    code = claim(api, member["id"], listed_rule(api))[1]["code"]
    _store(api, "closed")

    sale = {**order_body("CL-1", 100, member={"id": member["id"]}), "storeCode": "SH009"}
    status, problem = api.call("POST", "/v1/orders", POS, body=sale)
    assert (status, problem["code"], problem["field"]) == (409, "STORE_CLOSED", "/storeCode")
    joining = {"programCode": "DEMO", "phone": "13800138101", "storeCode": "SH009"}
    assert api.call("POST", "/v1/members", POS, body=joining)[1]["code"] == "STORE_CLOSED"
    status, problem = redeem(api, [code], "1200", order_no="CL-2", storeCode="SH009")
    assert (status, problem["code"]) == (409, "STORE_CLOSED")
    unknown = {**joining, "storeCode": "NOWHERE"}
    assert api.call("POST", "/v1/members", POS, body=unknown)[1]["code"] == "UNKNOWN_STORE"
    assert api.call("GET", "/v1/orders/CL-1", POS)[0] == 404  # nothing was written

    _store(api, "open")
    assert api.call("POST", "/v1/orders", POS, body=sale)[0] == 202
    assert api.call("POST", "/v1/members", POS, body=joining)[0] == 201
    assert redeem(api, [code], "1200", order_no="CL-2", storeCode="SH009")[0] == 201
