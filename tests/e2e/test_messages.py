"""Messages over HTTP (issue 15, done when): an accrual produces one "points earned" SMS record and one SMS, a
retried order sends nothing more, a member without marketing consent gets a refused record and no SMS (quiet
hours, which hold marketing until they end, are in test_time.py, on a stack whose clock moves). What was
sent is read from the local stack's outbox (the emulator's SNS and SES records, the demo webhook's
receipts). On both engines: the once is a conditional write."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import KeepAlive
from tests.e2e.test_campaigns import Operators, campaign
from tests.e2e.test_customer_center import sale
from tests.e2e.test_local_stack import wait_for

pytestmark = pytest.mark.e2e
SETTINGS = "/v1/admin/programs/DEMO/message-settings"


def clients(stack) -> tuple[KeepAlive, KeepAlive]:
    keys = stack.info["apiKeys"]
    return KeepAlive(stack.base, keys["pos"]), KeepAlive(stack.base, keys["operator"])


def sms_to(stack, phone: str, containing: str = "") -> list[str]:
    outbox = KeepAlive(stack.base).json("GET", "/_local/outbox")[1]
    return [m["message"] for m in outbox["sms"] if m["phoneNumber"] == f"+86{phone}" and containing in m["message"]]


def records(operator: KeepAlive, member_id: str, template: str) -> list[dict]:
    status, page = operator.json("GET", f"/v1/admin/members/{member_id}/messages?templateCode={template}")
    assert status == 200, page
    return list(page["items"])


def settings_with(operator: KeepAlive, **changes) -> None:
    """The demo's message settings with `changes` (the webhook's secret is kept when left out)."""
    _, current = operator.json("GET", SETTINGS)
    body = {**current["settings"], **changes}
    body["webhook"] = {"url": body["webhook"]["url"]} if body.get("webhook") else None
    status, written = operator.json("PUT", SETTINGS, body)
    assert status == 200, written


def test_an_accrual_sends_one_points_earned_sms_and_a_retried_order_sends_nothing_more(stack):
    pos, operator = clients(stack)
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13200132001", "name": "王五"})
    order = sale("msg-order-1", "260", {"id": member["id"]})
    retry = {"Idempotency-Key": f"msg-order-1-{stack.info['engine']}"}
    first = pos.call("POST", "/v1/orders", order, headers=retry)
    assert first[0] == 202, first
    sent = wait_for(lambda: records(operator, member["id"], "points-earned"), lambda r: r and r[0]["status"] == "sent")
    assert pos.call("POST", "/v1/orders", order, headers=retry)[2] == first[2]  # the first answer, again
    assert pos.json("POST", "/v1/orders", order)[0] in (200, 202, 409)  # a new key: the order's state
    time.sleep(1.5)  # what a second send would take to show
    _, view = pos.json("GET", f"/v1/members/{member['id']}")
    balance = next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")
    assert sms_to(stack, "13200132001") == [f"王五您好, 您本次购买获得{balance}积分, 当前可用{balance}。"]
    assert [(r["status"], r["recipient"], r["notification"]) for r in sent] == [("sent", "132****2001", "pointsEarned")]
    assert len(records(operator, member["id"], "points-earned")) == 1


def test_marketing_is_refused_to_a_member_without_consent(stack):
    """(Quiet hours, which hold marketing until they end, are in test_time.py: its stack's clock moves.)"""
    pos, operator = clients(stack)
    operators = Operators(stack)
    settings_with(operator, quietHours=None, marketingCap={"perDay": 5, "perWeek": 10})
    operators.run(campaign("会员日短信", {"type": "purchase"}, [{"type": "sendMessage", "templateCode": "member-day"}]))
    members = {}
    for phone, name in (("13200132002", "不同意"), ("13200132003", "同意")):
        _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": phone, "name": name})
        members[phone] = member["id"]
    path = f"/v1/admin/members/{members['13200132003']}"
    assert operator.call("PATCH", path, {"marketingOptIn": True}, headers={"if-match": '"1"'})[0] == 200
    for number, member_id in enumerate(members.values()):
        assert pos.json("POST", "/v1/orders", sale(f"msg-mkt-{number}", "100", {"id": member_id}))[0] == 202

    refused = wait_for(lambda: records(operator, members["13200132002"], "member-day"), bool)
    assert [(r["status"], r["reason"]) for r in refused] == [("refused", "noConsent")]
    sent = wait_for(
        lambda: records(operator, members["13200132003"], "member-day"), lambda r: bool(r) and r[0]["status"] == "sent"
    )
    assert sent[0]["status"] == "sent"
    assert sms_to(stack, "13200132003", "会员日") == ["同意, 会员日短信: 本周六会员日全场双倍积分, 回T退订"]
    assert sms_to(stack, "13200132002", "会员日") == []
    settings_with(operator, quietHours={"start": "21:00:00", "end": "09:00:00"})


def test_a_webhook_reaches_the_local_receiver_signed_with_the_demo_secret(stack):
    pos, operator = clients(stack)
    _, current = operator.json("GET", SETTINGS)
    notifications = {**current["settings"]["notifications"], "tierChanged": {"templateCode": "tier-push"}}
    settings_with(operator, notifications=notifications)
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13200132004", "name": "赵六"})
    change = {"tierCode": "gold", "reason": "门店补录"}
    assert operator.json("POST", f"/v1/admin/members/{member['id']}/tier-changes", change)[0] in (200, 201)

    def received() -> list[dict]:
        hooks = KeepAlive(stack.base).json("GET", "/_local/outbox")[1]["webhook"]
        return [h for h in hooks if h["payload"].get("memberId") == member["id"]]

    [hook] = wait_for(received, bool)
    assert hook["signatureVerified"] is True and hook["idempotencyKey"] == hook["payload"]["messageId"]
    assert hook["payload"]["body"] == "您已成为金卡会员"
    [record] = records(operator, member["id"], "tier-push")
    assert (record["status"], record["channel"], record["recipient"]) == ("sent", "webhook", f"{stack.base}/…")
    settings_with(operator, notifications={**notifications, "tierChanged": {"templateCode": "tier-changed"}})
