"""Sending messages (issue 15): notifications from the bus, campaign messages, the rules members are owed, and
the send records; over the template's handlers on moto, with the bus and queues run by the local stack's
pollers. What the providers were asked is read from the calls themselves (SNS Publish, SES SendEmail) and
from a webhook receiver on this machine."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from infra.local.template import REGION
from loyalty.services.messages.mail_identities import MailIdentities
from tests.integration.test_campaigns import WELCOME, running
from tests.integration.test_coupons import APPROVER
from tests.support import OPERATOR, POS, SHANGHAI, Api, order_body

TEMPLATES = "/v1/admin/programs/DEMO/message-templates"
SETTINGS = "/v1/admin/programs/DEMO/message-settings"
EARNED = {
    "programCode": "DEMO",
    "code": "points-earned",
    "name": "购买赠送积分通知",
    "channel": "sms",
    "purpose": "business",
    "body": "{{memberName}}您好, 您在{{storeName}}获得{{points}}{{pointGroupName}}, 当前可用{{balance}}。",
}
PROMO = {
    "programCode": "DEMO",
    "code": "promo",
    "name": "会员日",
    "channel": "sms",
    "purpose": "marketing",
    "body": "{{memberName}}, {{campaignName}}: 会员日全场双倍积分",
}


class Outbox:
    """Every SNS Publish and SES SendEmail the senders made, with their parameters (an email's in SES v1's
    shape: Source, Destination, Message)."""

    current: list[Outbox] = []

    def __init__(self) -> None:
        from loyalty.services.messages.senders import senders

        self.calls: list[tuple[str, dict[str, Any]]] = []
        Outbox.current[:] = [self]
        channels = senders()
        channels["sms"].client.meta.events.register(  # type: ignore[attr-defined]
            "provide-client-params.sns.Publish", _record_sms, unique_id="test-outbox-sms"
        )
        # an email's client is made per tenant (D-125): hook the ones made and the default session's next ones
        made = [client for _, client in channels["email"].clients.sessions.values()]  # type: ignore[attr-defined]
        for emitter in [boto3._get_default_session().events, *(client.meta.events for client in made)]:
            emitter.register("provide-client-params.sesv2.SendEmail", _record_email, unique_id="test-outbox-email")

    def of(self, channel: str) -> list[dict[str, Any]]:
        return [params for kind, params in self.calls if kind == channel]


def _record_sms(params: dict[str, Any], **_: Any) -> None:
    Outbox.current[-1].calls.append(("sms", params))


def _record_email(params: dict[str, Any], **_: Any) -> None:
    simple = params["Content"]["Simple"]
    mail = {"Source": params["FromEmailAddress"], "Destination": params["Destination"], "Message": simple}
    Outbox.current[-1].calls.append(("email", mail))


@pytest.fixture
def outbox(aws) -> Outbox:
    return Outbox()


def member(api: Api, phone: str, *, opted_in: bool = False, **profile: Any) -> str:
    body = {"programCode": "DEMO", "phone": phone, "name": "张三", **profile}
    status, created = api.call("POST", "/v1/members", POS, body=body)
    assert status == 201, created
    if opted_in:
        change = {"marketingOptIn": True}
        path = f"/v1/admin/members/{created['id']}"
        assert api.call("PATCH", path, OPERATOR, body=change, headers={"if-match": '"1"'})[0] == 200
    return str(created["id"])


def records(api: Api, member_id: str, **query: str) -> list[dict[str, Any]]:
    status, page = api.call("GET", f"/v1/admin/members/{member_id}/messages", OPERATOR, query=query or None)
    assert status == 200, page
    return list(page["items"])


def switch_on(api: Api, **settings: Any) -> dict[str, Any]:
    status, written = api.call("PUT", SETTINGS, OPERATOR, body=settings)
    assert status == 200, written
    return dict(written)


def approved(api: Api, template: dict[str, Any]) -> None:
    assert api.call("POST", TEMPLATES, OPERATOR, body=template)[0] == 201
    path = f"{TEMPLATES}/{template['code']}"
    if template["purpose"] == "marketing":
        api.call("POST", f"{path}/submit", OPERATOR, body={"approver": APPROVER["keyId"]})
        assert api.call("POST", f"{path}/approve", APPROVER, body={"comment": "同意"})[1]["status"] == "approved"


def test_an_accrual_sends_one_points_earned_sms_and_a_redelivered_event_sends_nothing_more(demo, api, pipeline, outbox):
    approved(api, EARNED)
    notifications = {"pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "points"}}
    switch_on(api, notifications=notifications)
    member_id = member(api, "13900139000")
    status, accrued = api.call(
        "POST", "/v1/orders", POS, body=order_body("SMS-0001", 120, member={"phone": "13900139000"})
    )
    assert status in (200, 202), accrued
    pipeline.drain()

    sms = outbox.of("sms")
    assert len(sms) == 1
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    balance = next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")
    assert sms[0]["PhoneNumber"] == "+8613900139000"
    assert sms[0]["MessageAttributes"]["AWS.SNS.SMS.SMSType"]["StringValue"] == "Transactional"
    assert sms[0]["Message"] == f"张三您好, 您在上海南京路店获得{balance}积分, 当前可用{balance}。"
    [record] = records(api, member_id)
    assert record["status"] == "sent" and record["notification"] == "pointsEarned"
    assert record["recipient"] == "139****9000" and record["length"] == len(sms[0]["Message"])
    assert record["providerMessageId"] and record["channel"] == "sms" and record["purpose"] == "business"
    assert record["body"] == sms[0]["Message"]  # 发送内容, while the program keeps it

    # The same OrderAccrued delivered again (EventBridge delivers at least once): nothing more is sent.
    from loyalty.services.messages.notifications import Notifier
    from loyalty.services.messages.sending import message_service

    messages = message_service()
    again, _ = Notifier(messages).requests(
        "demo",
        "OrderAccrued",
        {"memberId": member_id, "orderId": "x", "programCode": "DEMO", "points": {"points": balance}},
    )
    assert messages.deliver(again[0]) == "sent"  # another order id: a message of its own
    assert len(outbox.of("sms")) == 2
    assert messages.deliver(again[0]) == "sent" and len(outbox.of("sms")) == 2


def test_a_business_message_ignores_consent_but_erasure_stops_it_and_takes_bodies_away(demo, api, pipeline, outbox):
    approved(api, EARNED)
    switch_on(api, notifications={"pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "points"}})
    member_id = member(api, "13900139001")
    api.call("POST", "/v1/orders", POS, body=order_body("SMS-0002", 80, member={"phone": "13900139001"}))
    pipeline.drain()
    assert [r["status"] for r in records(api, member_id)] == ["sent"]
    table = boto3.client("dynamodb", region_name=REGION)
    from loyalty.settings import get_settings
    from loyalty.store import keys

    body_key = {"PK": {"S": keys.message("demo", f"pointsEarned#{_order_id(api, 'SMS-0002')}")}, "SK": {"S": "BODY"}}
    kept = table.get_item(TableName=get_settings().table_name, Key=body_key)["Item"]
    assert kept["recipient"]["S"] == "+8613900139001" and int(kept["expiration"]["N"]) > datetime.now(UTC).timestamp()

    assert api.call("DELETE", f"/v1/members/{member_id}/personal-data", POS)[0] == 200
    pipeline.drain()
    assert "Item" not in table.get_item(TableName=get_settings().table_name, Key=body_key)
    [record] = records(api, member_id)
    assert record["recipient"] is None and record["body"] is None and record["status"] == "sent"

    from loyalty.services.messages.sending import MessageRequest, message_service

    request = MessageRequest("demo", "DEMO", "points-earned", member_id, "test#after-erasure", {"points": 5})
    assert message_service().deliver(request) == "refused"
    assert (records(api, member_id)[0]["reason"], len(outbox.of("sms"))) == ("erased", 1)


def _order_id(api: Api, number: str) -> str:
    status, found = api.call("GET", f"/v1/orders/{number}", POS)
    assert status == 200, found
    return str(found["orderId"])


def test_marketing_goes_only_to_members_who_said_yes_and_counts_against_the_daily_cap(demo, api, pipeline, outbox):
    approved(api, PROMO)
    switch_on(api, quietHours=None, marketingCap={"perDay": 1, "perWeek": 5})
    welcome = {**WELCOME, "effects": [{"type": "sendMessage", "templateCode": "promo"}]}
    first, second = running(api, welcome), running(api, {**welcome, "name": "入会第二条"})
    willing = member(api, "13900139003", opted_in=True)
    never_asked = member(api, "13900139005")
    pipeline.drain()

    [sms] = outbox.of("sms")  # two campaigns, one message: the cap is one marketing message a day
    assert sms["PhoneNumber"] == "+8613900139003"
    assert sms["MessageAttributes"]["AWS.SNS.SMS.SMSType"]["StringValue"] == "Promotional"
    assert sms["Message"] in ("张三, 新会员入会礼: 会员日全场双倍积分", "张三, 入会第二条: 会员日全场双倍积分")
    assert sorted((r["status"], r["reason"]) for r in records(api, willing)) == [
        ("refused", "capReached"),
        ("sent", None),
    ]
    assert {r["campaignId"] for r in records(api, willing)} == {first, second}
    assert [(r["status"], r["reason"]) for r in records(api, never_asked)] == [("refused", "noConsent")] * 2
    _, listed = api.call("GET", "/v1/admin/messages", OPERATOR, query={"status": "refused", "campaignId": first})
    assert never_asked in {r["memberId"] for r in listed["items"]}
    assert {(r["status"], r["campaignId"]) for r in listed["items"]} == {("refused", first)}
    today = datetime.now(SHANGHAI).date().isoformat()
    query = {"programCode": "DEMO", "from": today, "to": today}
    _, counts = api.call("GET", "/v1/admin/message-counts", OPERATOR, query=query)
    assert [(c["templateCode"], c["sent"], c["refused"], c["failed"]) for c in counts] == [("promo", 1, 3, 0)]


def test_an_email_goes_through_ses_from_the_verified_sender(demo, api, pipeline, outbox):
    MailIdentities().register("demo", "loyalty@example.com")  # the platform's act (infra.mail_senders)
    tier = {
        "programCode": "DEMO",
        "code": "tier-mail",
        "name": "等级变更",
        "channel": "email",
        "purpose": "business",
        "subject": "{{memberName}}, 您的等级已变更",
        "body": "恭喜您成为{{tierName}}会员。",
    }
    approved(api, tier)
    status, problem = api.call(
        "PUT", SETTINGS, OPERATOR, body={"notifications": {"tierChanged": {"templateCode": "tier-mail"}}}
    )
    assert (status, problem["code"], problem["field"]) == (
        422,
        "CHANNEL_NOT_CONFIGURED",
        "/notifications/tierChanged/templateCode",
    )
    # a sender the platform did not register for this tenant is refused, another tenant's too (D-125)
    MailIdentities().register("other", "loyalty@other.example.com")
    for address in ("nobody@example.com", "loyalty@other.example.com"):
        status, problem = api.call("PUT", SETTINGS, OPERATOR, body={"emailFrom": address})
        assert (status, problem["code"], problem["field"]) == (422, "EMAIL_SENDER_NOT_ALLOWED", "/emailFrom")
    switch_on(api, emailFrom="loyalty@example.com", notifications={"tierChanged": {"templateCode": "tier-mail"}})
    member_id = member(api, "13900139006", email="zhang.san@example.com")
    _, view = api.call("GET", f"/v1/members/{member_id}", POS)
    target = "gold" if view["tier"]["code"] != "gold" else "silver"
    status, changed = api.call(
        "POST", f"/v1/admin/members/{member_id}/tier-changes", OPERATOR, body={"tierCode": target, "reason": "补录"}
    )
    assert status in (200, 201), changed
    pipeline.drain()
    [mail] = outbox.of("email")
    assert mail["Source"] == "loyalty@example.com"
    assert mail["Destination"] == {"ToAddresses": ["zhang.san@example.com"]}
    assert mail["Message"]["Subject"]["Data"] == "张三, 您的等级已变更"
    assert records(api, member_id)[0]["subject"] == "张三, 您的等级已变更"
    assert (
        mail["Message"]["Body"]["Text"]["Data"] == f"恭喜您成为{'金卡会员' if target == 'gold' else '银卡会员'}会员。"
    )
    [record] = records(api, member_id)
    assert (record["status"], record["recipient"], record["notification"]) == (
        "sent",
        "z***@example.com",
        "tierChanged",
    )


class Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.seen.append((dict(self.headers), body))
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.answers, Receiver.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_a_webhook_is_signed_retried_on_a_5xx_and_failed_for_good_on_a_4xx(demo, api, pipeline, receiver):
    from loyalty.services.messages.senders import signature

    hook = {**EARNED, "code": "points-push", "channel": "webhook"}
    approved(api, hook)
    secret = "a-long-shared-secret"
    switch_on(
        api,
        webhook={"url": receiver, "secret": secret},
        notifications={"pointsEarned": {"templateCode": "points-push", "pointGroupCode": "points"}},
    )
    assert "secret" not in (api.call("GET", SETTINGS, OPERATOR)[1]["settings"]["webhook"] or {}) or (
        api.call("GET", SETTINGS, OPERATOR)[1]["settings"]["webhook"].get("secret") is None
    )
    member_id = member(api, "13900139007", identity={"type": "wechatOpenId", "value": "oX1a2b3c4d5e"})
    Receiver.answers = [503]
    api.call("POST", "/v1/orders", POS, body=order_body("HOOK-0001", 50, member={"phone": "13900139007"}))
    pipeline.drain()
    assert len(Receiver.seen) == 2  # a 503, then the retry inside the same attempt
    headers, body = Receiver.seen[-1]
    stamp = headers["X-Loyalty-Timestamp"]
    assert headers["X-Loyalty-Signature"] == "sha256=" + signature(secret, stamp, body)
    sent = json.loads(body)
    assert sent["memberId"] == member_id and headers["Idempotency-Key"] == sent["messageId"]
    assert sent["identities"] == [{"channel": "POS", "type": "wechatOpenId", "value": "oX1a2b3c4d5e"}]
    assert sent["body"].startswith("张三您好, 您在上海南京路店获得")
    assert [r["status"] for r in records(api, member_id)] == ["sent"]

    Receiver.answers = [410]
    api.call("POST", "/v1/orders", POS, body=order_body("HOOK-0002", 50, member={"phone": "13900139007"}))
    pipeline.drain()
    newest = records(api, member_id)[0]
    assert (newest["status"], newest["reason"]) == ("failed", "webhookRefused")  # coarse: no oracle (D-124)
    # a secret kept when the settings are written again without it
    switch_on(api, webhook={"url": receiver}, notifications={})


def test_quiet_hours_hold_marketing_until_the_morning_and_the_release_sends_it_once(demo, api, outbox):
    from loyalty.clock import FixedClock
    from loyalty.services.messages.sending import MessageRequest, message_service

    approved(api, PROMO)
    switch_on(api, quietHours={"start": "21:00:00", "end": "09:00:00"})
    member_id = member(api, "13900139008", opted_in=True)
    late_evening = datetime(2026, 12, 7, 22, 30, tzinfo=SHANGHAI)
    clock = FixedClock(late_evening)
    service = message_service(clock=clock)
    enqueued: list[MessageRequest] = []
    service.enqueue = enqueued.extend  # type: ignore[method-assign]
    request = MessageRequest("demo", "DEMO", "promo", member_id, "test#quiet", {"campaignName": "会员日"})
    assert service.deliver(request) == "held"
    [record] = records(api, member_id)
    assert record["heldUntil"] == datetime(2026, 12, 8, 9, 0, tzinfo=SHANGHAI).astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    ) or datetime.fromisoformat(record["heldUntil"]) == datetime(2026, 12, 8, 9, 0, tzinfo=SHANGHAI)
    assert service.deliver(request) == "held" and outbox.of("sms") == []
    clock.at = datetime(2026, 12, 8, 8, 59, tzinfo=SHANGHAI)
    assert service.release("demo", "DEMO") == 0
    clock.at = datetime(2026, 12, 8, 9, 5, tzinfo=SHANGHAI)
    assert service.release("demo", "DEMO") == 1
    assert service.deliver(enqueued[0]) == "sent" and service.deliver(enqueued[0]) == "sent"
    assert len(outbox.of("sms")) == 1
    assert service.release("demo", "DEMO") == 0  # released once: the hold is gone with the claim
    [record] = records(api, member_id)
    assert record["status"] == "sent" and record["attempts"] == 1


def test_a_throttled_provider_is_tried_later_and_a_dead_claim_is_not_sent_again(demo, api, outbox):
    from botocore.exceptions import ClientError

    from loyalty.clock import FixedClock
    from loyalty.services.messages.senders import TryLater
    from loyalty.services.messages.sending import LEASE, MessageRequest, message_service

    approved(api, EARNED)
    member_id = member(api, "13900139009")
    clock = FixedClock(datetime.now(UTC))
    service = message_service(clock=clock)
    sms = service.channels()["sms"]
    real_publish = sms.client.publish  # type: ignore[attr-defined]

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")

    sms.client.publish = throttled  # type: ignore[attr-defined]
    request = MessageRequest("demo", "DEMO", "points-earned", member_id, "test#throttled", {"points": 5})
    with pytest.raises(TryLater):
        service.deliver(request)
    [record] = records(api, member_id)
    assert (record["status"], record["reason"], record["attempts"]) == ("queued", "Throttling", 1)
    sms.client.publish = real_publish  # type: ignore[attr-defined]
    assert service.deliver(request) == "sent"
    assert records(api, member_id)[0]["attempts"] == 2

    def dies(**_: Any) -> Any:
        raise SystemExit("the sandbox died mid-call")

    sms.client.publish = dies  # type: ignore[attr-defined]
    crashed = MessageRequest("demo", "DEMO", "points-earned", member_id, "test#crashed", {"points": 5})
    with pytest.raises(SystemExit):
        service.deliver(crashed)
    sms.client.publish = real_publish  # type: ignore[attr-defined]
    with pytest.raises(TryLater):  # redelivered while the lease lives: not now
        service.deliver(crashed)
    clock.at += LEASE + timedelta(seconds=1)
    assert service.deliver(crashed) == "failed"
    newest = records(api, member_id)[0]
    assert (newest["status"], newest["reason"]) == ("failed", "outcomeUnknown")
    assert len(outbox.of("sms")) == 1


def test_settings_refuse_unknown_templates_and_point_groups_and_keep_the_defaults(demo, api, monkeypatch):
    status, defaults = api.call("GET", SETTINGS, OPERATOR)
    assert status == 200 and defaults["version"] == 0
    assert defaults["settings"]["quietHours"] == {"start": "21:00:00", "end": "09:00:00"}
    assert defaults["settings"]["marketingCap"] == {"perDay": 2, "perWeek": 5}
    bad = {"notifications": {"couponIssued": {"templateCode": "nope"}}}
    status, problem = api.call("PUT", SETTINGS, OPERATOR, body=bad)
    assert (status, problem["code"], problem["field"]) == (
        422,
        "UNKNOWN_REFERENCE",
        "/notifications/couponIssued/templateCode",
    )
    approved(api, EARNED)
    bad = {"notifications": {"pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "stars"}}}
    status, problem = api.call("PUT", SETTINGS, OPERATOR, body=bad)
    assert (status, problem["code"], problem["field"]) == (
        422,
        "UNKNOWN_REFERENCE",
        "/notifications/pointsEarned/pointGroupCode",
    )
    status, problem = api.call("PUT", SETTINGS, OPERATOR, body={"webhook": {"url": "https://hooks.example.com/x"}})
    assert (status, problem["code"], problem["field"]) == (422, "SECRET_REQUIRED", "/webhook/secret")
    status, problem = api.call(
        "PUT", SETTINGS, OPERATOR, body={"webhook": {"url": "http://hooks.example.com/x", "secret": "s" * 16}}
    )
    assert status == 422
    # a webhook that could reach inside the platform is refused when it is written (D-124)
    for url in ("https://169.254.169.254/latest/meta-data/", "https://0x7f000001/", "https://a:b@hooks.example.com/"):
        status, problem = api.call("PUT", SETTINGS, OPERATOR, body={"webhook": {"url": url, "secret": "s" * 16}})
        assert (status, problem["code"], problem["field"]) == (422, "WEBHOOK_URL_REFUSED", "/webhook/url"), url
    written = switch_on(api, marketingCap={"perDay": 1, "perWeek": None})
    assert written["version"] == 1 and written["updatedBy"] == OPERATOR["keyId"]
    switch_on(api, notifications={"pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "points"}})
    status, problem = api.call("DELETE", f"{TEMPLATES}/points-earned", OPERATOR)
    assert (status, problem["code"]) == (409, "STILL_REFERENCED")
    switch_on(api, notifications={})
    assert api.call("DELETE", f"{TEMPLATES}/points-earned", OPERATOR)[0] == 204
    status, problem = api.call("GET", "/v1/admin/programs/NOPE/message-settings", OPERATOR)
    assert (status, problem["code"]) == (404, "PROGRAM_NOT_FOUND")

    # Two operators at once: the one who read an older version gets 409, not a silent overwrite.
    from loyalty.domain.errors import Conflict
    from loyalty.domain.messages import MessageSettingsInput
    from loyalty.services.messages.settings import message_settings_service

    service = message_settings_service()
    stale = service._item("demo", "DEMO", consistent=True)
    switch_on(api, marketingCap={"perDay": 3, "perWeek": 6})
    monkeypatch.setattr(service, "_item", lambda *_, **__: stale)
    with pytest.raises(Conflict) as raised:
        service.replace("demo", "DEMO", MessageSettingsInput(), OPERATOR["keyId"])
    assert raised.value.code == "CONCURRENT_UPDATE"
    assert api.call("GET", SETTINGS, OPERATOR)[1]["settings"]["marketingCap"] == {"perDay": 3, "perWeek": 6}


EXPIRING = {
    **EARNED,
    "code": "points-expiring",
    "name": "积分到期提醒",
    "body": "{{memberName}}您好, 您有{{points}}{{pointGroupName}}将于{{expiryDate}}到期, 当前可用{{balance}}。",
}


def test_points_expiring_in_n_days_are_told_once_per_member_with_the_total_across_pages(
    demo, api, pipeline, outbox, monkeypatch
):
    from loyalty.services.messages import daily
    from loyalty.services.messages.sending import message_service

    approved(api, EXPIRING)
    notifications = {"pointsExpiring": {"templateCode": "points-expiring", "pointGroupCode": "points", "daysAhead": 7}}
    switch_on(api, notifications=notifications)
    members = {phone: member(api, phone) for phone in ("13900139010", "13900139011")}
    for number, (phone, amount) in enumerate([("13900139010", 100), ("13900139010", 50), ("13900139011", 30)]):
        api.call("POST", "/v1/orders", POS, body=order_body(f"EXP-{number}", amount, member={"phone": phone}))
    pipeline.drain()
    outbox.calls.clear()
    lots = api.call("GET", f"/v1/members/{members['13900139010']}/lots", POS, query={"pointGroup": "points"})[1][
        "items"
    ]
    expiry_day = datetime.fromisoformat(lots[0]["expiresAt"]).astimezone(SHANGHAI).date()
    assert {datetime.fromisoformat(lot["expiresAt"]).astimezone(SHANGHAI).date() for lot in lots} == {expiry_day}
    totals = {}
    for phone, member_id in members.items():
        open_lots = api.call("GET", f"/v1/members/{member_id}/lots", POS, query={"pointGroup": "points"})[1]["items"]
        totals[phone] = sum(lot["remaining"] for lot in open_lots)

    monkeypatch.setattr(daily, "PAGE", 1)  # every lot a page: a member's lots straddle pages
    planner = daily.DailyNotifications(message_service())
    assert planner.plan("demo", "DEMO", expiry_day - timedelta(days=7)) == 8  # a page per shard
    pipeline.drain()
    assert planner.plan("demo", "DEMO", expiry_day - timedelta(days=7)) == 8  # an operator's rerun: nothing new
    pipeline.drain()
    sms = {p["PhoneNumber"]: p["Message"] for p in outbox.of("sms")}
    assert len(outbox.of("sms")) == 2
    for phone, total in totals.items():
        text = f"张三您好, 您有{total}积分将于{expiry_day.isoformat()}到期, 当前可用{total}。"
        assert sms[f"+86{phone}"] == text
    [record] = records(api, members["13900139010"], notification="pointsExpiring")
    assert record["status"] == "sent"


def test_the_schedule_plans_a_program_day_once_from_its_morning(demo, api, outbox):
    from loyalty.clock import FixedClock
    from loyalty.services.messages.daily import DailyNotifications
    from loyalty.services.messages.sending import message_service

    approved(api, {**EARNED, "code": "birthday", "name": "生日祝福", "body": "{{memberName}}, 生日快乐!"})
    switch_on(api, notifications={"birthday": {"templateCode": "birthday"}})
    clock = FixedClock(datetime(2026, 12, 7, 8, 30, tzinfo=SHANGHAI))
    planner = DailyNotifications(message_service(clock=clock))
    assert planner.plan("demo", "DEMO") == 0  # quiet hours end at 09:00: not yet
    clock.at = datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)
    assert planner.plan("demo", "DEMO") == 1 and planner.plan("demo", "DEMO") == 0
    clock.at = datetime(2026, 12, 8, 9, 0, tzinfo=SHANGHAI)
    assert planner.plan("demo", "DEMO") == 1


def test_birthdays_and_coupons_expiring_are_told_on_their_day(demo, api, pipeline, outbox):
    from loyalty.services.messages.daily import DailyNotifications
    from loyalty.services.messages.sending import message_service
    from tests.integration.test_coupons import claim, listed_rule

    approved(api, {**EARNED, "code": "birthday", "name": "生日祝福", "body": "{{memberName}}, 生日快乐!"})
    expiring = {
        **EARNED,
        "code": "coupon-expiring",
        "name": "券到期",
        "body": "您的{{couponName}}({{couponCode}})将于{{expiryDate}}到期",
    }
    approved(api, expiring)
    notifications = {
        "birthday": {"templateCode": "birthday"},
        "couponExpiring": {"templateCode": "coupon-expiring", "daysAhead": 3},
    }
    switch_on(api, notifications=notifications)
    today = datetime.now(SHANGHAI).date()
    born = member(api, "13900139012", birthday=today.replace(year=1992).isoformat())  # 1992: a leap year
    member(api, "13900139013", birthday=(today + timedelta(days=1)).replace(year=1992).isoformat())
    holder = member(api, "13900139014")
    rule_id = listed_rule(api)
    status, coupon = claim(api, holder, rule_id)
    assert status == 201, coupon
    pipeline.drain()
    outbox.calls.clear()

    planner = DailyNotifications(message_service())
    planner.plan("demo", "DEMO", today)
    pipeline.drain()
    assert [(p["PhoneNumber"], p["Message"]) for p in outbox.of("sms")] == [("+8613900139012", "张三, 生日快乐!")]
    assert records(api, born)[0]["notification"] == "birthday"
    last_day = datetime.fromisoformat(coupon["validUntil"]).astimezone(SHANGHAI).date()
    outbox.calls.clear()
    planner.plan("demo", "DEMO", last_day - timedelta(days=3))
    pipeline.drain()
    told = [p for p in outbox.of("sms") if p["PhoneNumber"] == "+8613900139014"]
    assert [p["Message"] for p in told] == [f"您的{coupon['ruleName']}({coupon['code']})将于{last_day.isoformat()}到期"]


def test_send_records_page_newest_first_and_a_forged_cursor_is_refused(demo, api, outbox):
    from loyalty.services.messages.sending import MessageRequest, message_service

    approved(api, EARNED)
    member_id = member(api, "13900139015")
    service = message_service()
    for n in range(3):
        assert (
            service.deliver(MessageRequest("demo", "DEMO", "points-earned", member_id, f"test#page{n}", {"points": n}))
            == "sent"
        )
    seen, cursor = [], None
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        status, page = api.call("GET", "/v1/admin/messages", OPERATOR, query=query)
        assert status == 200, page
        seen += [r["messageId"] for r in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    mine = [r["messageId"] for r in records(api, member_id)]
    assert seen == mine and len(mine) == 3 and mine == sorted(mine, reverse=True)
    _, by_phone = api.call("GET", "/v1/admin/messages", OPERATOR, query={"phone": "139-0013-9015"})
    assert [r["messageId"] for r in by_phone["items"]] == mine
    _, nobody = api.call("GET", "/v1/admin/messages", OPERATOR, query={"phone": "13999999999"})
    assert nobody == {"items": [], "nextCursor": None}
    for forged in ("bm90LWpzb24", "WyJ4Il0", "e30"):  # not JSON, a list of one, an object
        status, problem = api.call("GET", "/v1/admin/messages", OPERATOR, query={"cursor": forged})
        assert (status, problem["code"]) == (422, "INVALID_CURSOR"), forged
        status, problem = api.call("GET", f"/v1/admin/members/{member_id}/messages", OPERATOR, query={"cursor": forged})
        assert (status, problem["code"]) == (422, "INVALID_CURSOR"), forged
    status, problem = api.call(
        "GET", "/v1/admin/messages", OPERATOR, query={"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    )
    assert (status, problem["field"]) == (422, "/from")
    far = {"programCode": "DEMO", "from": "9999-12-30", "to": "9999-12-31"}
    for path, query, field in (
        ("/v1/admin/message-counts", far, "/from"),
        ("/v1/admin/messages", {"to": "0001-01-02T00:00:00Z"}, "/to"),
    ):
        status, problem = api.call("GET", path, OPERATOR, query=query)
        assert (status, problem.get("field") or problem["errors"][0]["field"]) == (422, field), problem


def test_an_email_from_a_sender_ses_no_longer_verifies_fails_with_the_reason(demo, api, outbox):
    from loyalty.services.messages.sending import MessageRequest, message_service

    mail = {**EARNED, "code": "mail", "channel": "email", "subject": "积分到账"}
    approved(api, mail)
    MailIdentities().register("demo", "nobody@example.com")
    switch_on(api, emailFrom="nobody@example.com")
    boto3.client("sesv2", region_name=REGION).delete_email_identity(EmailIdentity="nobody@example.com")
    member_id = member(api, "13900139016", email="li.si@example.com")
    request = MessageRequest("demo", "DEMO", "mail", member_id, "test#unverified", {"points": 5})
    assert message_service().deliver(request) == "failed"
    [record] = records(api, member_id)
    assert (record["status"], record["reason"], record["recipient"]) == (
        "failed",
        "unverifiedSender",
        "l***@example.com",
    )
    no_email = member(api, "13900139017")
    request = MessageRequest("demo", "DEMO", "mail", no_email, "test#no-email", {"points": 5})
    assert message_service().deliver(request) == "refused"
    assert records(api, no_email)[0]["reason"] == "noEmail"


def test_no_phone_email_or_body_reaches_the_logs(demo, api, outbox, log_output):
    from loyalty.services.messages.sending import MessageRequest, message_service

    MailIdentities().register("demo", "loyalty@example.com")  # the platform's act (infra.mail_senders)
    approved(api, EARNED)
    approved(api, {**EARNED, "code": "mail", "channel": "email", "subject": "积分到账 {{points}}"})
    switch_on(api, emailFrom="loyalty@example.com")
    member_id = member(api, "13900139018", email="wang.wu@example.com")
    log_output.seek(0)
    log_output.truncate()
    service = message_service()
    for template in ("points-earned", "mail"):
        request = MessageRequest("demo", "DEMO", template, member_id, f"test#logs-{template}", {"points": 777})
        assert service.deliver(request) == "sent"
    logged = log_output.getvalue()
    assert logged.count("message sent") == 2  # the logs say what happened...
    for secret in ("13900139018", "wang.wu@example.com", "获得777", "积分到账"):
        assert secret not in logged  # ...and not to whom or what


def test_a_throttled_request_goes_back_to_the_queue_with_a_backoff(demo, api, pipeline, outbox):
    from botocore.exceptions import ClientError

    from loyalty.services.messages.senders import senders
    from loyalty.services.messages.sending import MessageRequest, enqueue

    approved(api, EARNED)
    member_id = member(api, "13900139019")
    sms = senders()["sms"]

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")

    sms.client.publish = throttled  # type: ignore[attr-defined]
    visibility: list[dict[str, Any]] = []
    session, event = boto3._get_default_session(), "provide-client-params.sqs.ChangeMessageVisibility"
    session.events.register(event, lambda params, **_: visibility.append(params), unique_id="test-backoff")
    enqueue([MessageRequest("demo", "DEMO", "points-earned", member_id, "test#backoff", {"points": 5})])
    pipeline.drain()  # one receive: the message is then invisible for its backoff, not redelivered at once
    [record] = records(api, member_id)
    assert (record["status"], record["reason"], record["attempts"]) == ("queued", "Throttling", 1)
    sqs = boto3.client("sqs", region_name=REGION)
    from loyalty.settings import get_settings

    counts = sqs.get_queue_attributes(
        QueueUrl=get_settings().message_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
    assert outbox.of("sms") == []
    session.events.unregister(event, unique_id="test-backoff")
    assert [v["VisibilityTimeout"] for v in visibility] == [30]  # the first try later: 30 s
