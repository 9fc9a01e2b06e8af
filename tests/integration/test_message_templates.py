"""Message templates (issue 15, social-hub §11.1): a business template is usable once written; a marketing
one goes through its named approver and back to draft when it changes; a template naming a variable that does
not exist is refused, naming it."""

from __future__ import annotations

from tests.integration.test_coupons import APPROVER
from tests.support import OPERATOR

BASE = "/v1/admin/programs/DEMO/message-templates"
EARNED = {
    "programCode": "DEMO",
    "code": "points-earned",
    "name": "购买赠送积分通知",
    "channel": "sms",
    "purpose": "business",
    "body": "{{memberName}}您好, 您本次购买获得{{points}}积分, 当前可用{{balance}}积分。",
}
WIN_BACK = {
    **EARNED,
    "code": "win-back",
    "name": "老客回流",
    "channel": "email",
    "purpose": "marketing",
    "subject": "{{memberName}}, 好久不见",
    "body": "送您一张{{couponName}}: {{couponCode}}",
}


def test_a_business_template_is_usable_once_written_and_a_bad_variable_is_named(demo, api):
    status, template = api.call("POST", BASE, OPERATOR, body=EARNED)
    assert (status, template["status"], template["variables"]) == (201, "active", ["memberName", "points", "balance"])
    assert api.call("POST", BASE, OPERATOR, body=EARNED)[1]["code"] == "ALREADY_EXISTS"
    status, problem = api.call("POST", BASE, OPERATOR, body={**EARNED, "code": "x", "body": "{{bonus}}到账"})
    assert status == 422 and problem["errors"][0]["field"] == "/body" and "bonus" in problem["errors"][0]["detail"]
    status, problem = api.call("POST", "/v1/admin/programs/NOPE/message-templates", OPERATOR, body=EARNED)
    assert (status, problem["code"], problem["field"]) == (422, "VALIDATION_FAILED", "/programCode")
    changed = {**EARNED, "body": "您获得{{points}}积分"}
    status, replaced = api.call("PUT", f"{BASE}/points-earned", OPERATOR, body=changed)
    assert (status, replaced["version"], replaced["status"]) == (200, 2, "active")
    assert [t["template"]["code"] for t in api.call("GET", BASE, OPERATOR)[1]["items"]] == ["points-earned"]
    assert api.call("DELETE", f"{BASE}/points-earned", OPERATOR)[0] == 204
    status, problem = api.call("GET", f"{BASE}/points-earned", OPERATOR)
    assert (status, problem["code"]) == (404, "TEMPLATE_NOT_FOUND")


def test_a_marketing_template_goes_through_its_named_approver_and_back_to_draft_when_it_changes(demo, api):
    status, draft = api.call("POST", BASE, OPERATOR, body=WIN_BACK)
    assert (status, draft["status"]) == (201, "draft")
    path = f"{BASE}/win-back"
    status, problem = api.call("POST", f"{path}/submit", OPERATOR, body={"approver": OPERATOR["keyId"]})
    assert (status, problem["code"]) == (422, "SELF_APPROVAL")
    assert api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})[1]["status"] == "pending"
    status, problem = api.call("PUT", path, OPERATOR, body=WIN_BACK)
    assert (status, problem["code"], problem["templateStatus"]) == (409, "TEMPLATE_STATUS", "pending")
    status, problem = api.call("POST", f"{path}/approve", OPERATOR, body={})
    assert (status, problem["code"]) == (403, "NOT_THE_APPROVER")
    status, approved = api.call("POST", f"{path}/approve", APPROVER, body={"comment": "同意"})
    assert (status, approved["status"], approved["approvalStatus"]) == (200, "approved", "approved")
    _, again = api.call("PUT", path, OPERATOR, body={**WIN_BACK, "body": "送您{{couponName}}"})
    assert (again["status"], again["approvalStatus"], again.get("approver")) == ("draft", "none", None)
    assert [e["action"] for e in api.call("GET", f"{path}/log", OPERATOR)[1]["items"]] == ["submitted", "approved"]


def test_the_sample_event_creates_a_template(demo, api):
    """events/messages_create_template.json, as API Gateway hands it to MessagesFunction."""
    from tests.support import load_event

    event = load_event("messages_create_template.json")
    event["requestContext"]["authorizer"] = {"lambda": OPERATOR}
    response = api.functions["MessagesFunction"].invoke(event)
    assert response["statusCode"] == 201, response
