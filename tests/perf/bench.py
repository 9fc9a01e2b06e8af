"""`make bench`: the cost of each operation, measured through the real handlers on moto (see cost.py)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    POWERTOOLS_SERVICE_NAME="loyalty",
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_METRICS_DISABLED="true",
)

import boto3

from infra.local.template import REGION, Resolver
from tests.conftest import Pipeline
from tests.perf.cost import CostHook, Meter
from tests.support import (
    OPERATOR,
    POS,
    SHANGHAI,
    SNACK_DOUBLE,
    Api,
    emulated_account,
    load_event,
    order_body,
    with_points_budget,
)

HEADER = (
    "| operation | round trips (service:API count) | items read | items written | read units | write units "
    "| $ per million |\n|---|---|---|---|---|---|---|"
)


class Bench:
    def __init__(self, resolver: Resolver) -> None:
        from infra.local.seed import seed_demo_tenant
        from tests.support import operator_keys_on_record

        seed_demo_tenant()
        operator_keys_on_record()
        self.resolver = resolver
        self.api = Api()
        self.pipeline = Pipeline(resolver, self.api)
        self.hook = CostHook()
        import loyalty.services.events as events
        import loyalty.services.queues as queues
        import loyalty.store.table as table

        for client in (table.dynamodb_client(), events._events_client(), queues.sqs()):
            self.hook.attach(client)
        self.raw = boto3.client("dynamodb", region_name=REGION)
        self.rows: dict[str, Meter] = {}
        self.rate = 0.0  # messages per second through one sender worker (messages())

    def measure(self, name: str, action: Callable[[], Any]) -> Any:
        self.hook.meter = Meter()
        result = action()
        self.hook.settle(self.raw)
        self.rows[name] = self.hook.meter
        return result

    def quiet(self, action: Callable[[], Any]) -> Any:
        """Set-up work, not measured."""
        saved, self.hook.meter = self.hook.meter, Meter()
        result = action()
        self.hook.meter.pending.clear()
        self.hook.meter = saved
        return result

    def settle_pipeline(self) -> None:
        self.quiet(self.pipeline.drain)

    def poll(self, function: str) -> None:
        """Deliver what waits on the function's queue (the measured Lambda work), after publishing the outbox."""
        streams = [p for p in self.pipeline.pollers if p.function.name == "PublishEventsFunction"]
        self.quiet(lambda: [p.poll_once() for p in streams])
        queues = [p for p in self.pipeline.pollers if p.function.name == function]
        while sum(p.poll_once() for p in queues):
            pass


def run(resolver: Resolver) -> tuple[dict[str, Meter], list[str], float]:
    bench = Bench(resolver)
    api = bench.api
    _, member = bench.measure(
        "register a member",
        lambda: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"}),
    )
    mid = member["id"]
    bench.measure("post an order (1 line)", lambda: api.call("POST", "/v1/orders", POS, body=order_body("o1", 500)))
    bench.measure("accrue an order (1 line, 2 groups)", lambda: bench.poll("AccruePointsFunction"))
    ten = order_body("o10", 100)
    ten["lines"] = [{**ten["lines"][0], "lineNo": n} for n in range(1, 11)]
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=ten))
    bench.measure("accrue an order (10 lines, 2 groups)", lambda: bench.poll("AccruePointsFunction"))
    spend = {"pointGroupCode": "points", "points": 100, "purpose": "gift"}
    _, one = bench.measure(
        "redeem from 1 lot", lambda: api.call("POST", f"/v1/members/{mid}/redemptions", POS, body=spend)
    )
    bench.measure(
        "cancel that redemption", lambda: api.call("POST", f"/v1/members/{mid}/redemptions/{one['id']}/cancel", POS)
    )
    for n in range(20):
        bench.quiet(lambda n=n: api.call("POST", "/v1/orders", POS, body=order_body(f"small-{n}", 10, days_ago=30 + n)))
    bench.settle_pipeline()
    bench.measure(
        "redeem from 20 lots",
        lambda: api.call("POST", f"/v1/members/{mid}/redemptions", POS, body={**spend, "points": 200}),
    )
    bench.quiet(
        lambda: api.call(
            "POST",
            "/v1/returns",
            POS,
            body={
                "returnNo": "r1",
                "originalOrderNo": "o1",
                "returnedAt": datetime.now(SHANGHAI).isoformat(),
                "wholeOrder": True,
            },
        )
    )
    bench.measure("process a return (1 line, 2 groups)", lambda: bench.poll("ProcessReturnFunction"))
    bench.measure(
        "record a check-in",
        lambda: api.call(
            "POST",
            f"/v1/members/{mid}/behaviours",
            POS,
            body={"behaviourType": "checkIn", "behaviourId": "c1", "occurredAt": datetime.now(SHANGHAI).isoformat()},
        ),
    )
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("old", 300, days_ago=366)))
    bench.settle_pipeline()
    rules = api.call("GET", "/v1/admin/coupon-rules", OPERATOR)[1]["items"]
    rule_id = rules[0]["ruleId"]  # the demo's listed 满100减20
    bench.quiet(lambda: api.call("POST", f"/v1/members/{mid}/coupons", POS, body={"ruleId": rule_id}))
    _, coupon = bench.measure(
        "claim a coupon (warm rule cache)",
        lambda: api.call("POST", f"/v1/members/{mid}/coupons", POS, body={"ruleId": rule_id}),
    )
    presented = {"codes": [coupon["code"]], "orderNo": "c-1", "storeCode": "SH001", "orderAmount": "100"}
    bench.measure("validate a coupon", lambda: api.call("POST", "/v1/coupons/validate", POS, body=presented))
    bench.measure("redeem a coupon", lambda: api.call("POST", "/v1/coupons/redemptions", POS, body=presented))
    bench.measure(
        "plan a day's expiry (operator: 24 buckets)",
        lambda: api.call("POST", "/v1/admin/programs/DEMO/expiry-sweeps", OPERATOR, body={}),
    )
    bench.measure(
        "get a member (2 groups, one lot past its expiry unswept)",
        lambda: api.call("GET", f"/v1/members/{mid}", POS),
    )
    bench.measure("sweep the 24 buckets (2 expiring lots)", lambda: bench.poll("ExpirySweepFunction"))
    scheduled_run(bench)
    bench.measure("get a member (2 groups, after the sweep)", lambda: api.call("GET", f"/v1/members/{mid}", POS))
    bench.quiet(lambda: api.call("POST", "/v1/admin/programs/DEMO/point-rules", OPERATOR, body=SNACK_DOUBLE))
    sys.modules["lambda_AccruePointsFunction_app"].service.cache_clear()  # a new sandbox sees the new rule
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("cat-1", 100)))
    bench.quiet(lambda: bench.poll("AccruePointsFunction"))  # loads the program with the new rule
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("cat-2", 100)))
    bench.measure(
        "accrue an order (1 line) with a category-scoped rule (warm)",
        lambda: bench.poll("AccruePointsFunction"),
    )
    product_group(bench)
    bench.measure(
        "plan a day's tier sweep (operator: 8 buckets)",
        lambda: api.call("POST", "/v1/admin/programs/DEMO/tier-sweeps", OPERATOR, body={}),
    )
    from loyalty.clock import FixedClock
    from loyalty.services.sweeps import Bucket
    from loyalty.services.tier_sweep import tier_sweep_service
    from loyalty.store.keys import shard_of

    tier = api.call("GET", f"/v1/members/{mid}", POS)[1]["tier"]  # the 10-line order made the member gold
    until = datetime.fromisoformat(tier["validUntil"])
    service = tier_sweep_service(clock=FixedClock(until + timedelta(hours=2)))
    day, shard = until.date().isoformat(), shard_of(mid)
    bench.measure("tier sweep of one member (bucket page)", lambda: service.sweep(Bucket("demo", "DEMO", day, shard)))
    non_member_sale(bench)
    held_orders(bench)
    customer_center(bench, mid)
    erasure(bench)
    api_keys(bench)
    pages(bench, mid)
    campaigns(bench)
    return bench.rows, own_overhead(bench, mid, presented), bench.rate


def campaigns(bench: Bench) -> None:
    """What a campaign event costs: one with no campaign waiting, and a welcome gift given."""
    api = bench.api
    bench.settle_pipeline()
    bench.quiet(lambda: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900138999"}))
    bench.measure("campaign event, no campaign waiting (MemberRegistered)", lambda: bench.poll("CampaignsFunction"))
    now = datetime.now(SHANGHAI)
    gift = {
        "programCode": "DEMO",
        "name": "新会员入会礼",
        "trigger": {"type": "registration"},
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}],
        "limits": {"budget": {"points": 100000}},
        "startsAt": (now - timedelta(days=1)).isoformat(),
        "endsAt": (now + timedelta(days=30)).isoformat(),
        "costCenterCode": "marketing",
    }
    _, draft = bench.measure(
        "create a campaign", lambda: api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(gift))
    )
    path = f"/v1/admin/campaigns/{draft['campaignId']}"
    approver = {**OPERATOR, "keyId": "01BENCHAPPROVER00000000000"}
    bench.quiet(lambda: api.call("POST", f"{path}/submit", OPERATOR, body={"approver": approver["keyId"]}))
    bench.measure("approve a campaign (budget item)", lambda: api.call("POST", f"{path}/approve", approver, body={}))
    bench.quiet(lambda: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900139000"}))
    bench.measure("campaign: a welcome gift of 100 points (budget)", lambda: bench.poll("CampaignsFunction"))
    promotions(bench, gift, approver)
    birthdays(bench, gift, approver)
    batch_campaign(bench, gift, approver)
    message_templates(bench, approver)
    messages(bench)


MESSAGES_RUN = 200


def messages(bench: Bench) -> None:
    """A points-earned SMS from the OrderAccrued event it follows (settings, template, member, claim, SNS,
    record), a campaign's marketing SMS from its request, a refusal (no consent) and a request delivered
    again; then messages per second through one sender worker on the emulator."""
    from loyalty.services.messages.senders import senders
    from loyalty.services.messages.sending import MessageRequest, message_service

    api = bench.api
    mail = senders()["email"].clients  # type: ignore[attr-defined]  # a session per tenant (D-125)
    for client in (senders()["sms"].client, mail.sts, mail("demo")):  # type: ignore[attr-defined]
        bench.hook.attach(client)
    settings = {"notifications": {"pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "points"}}}
    bench.quiet(lambda: api.call("PUT", "/v1/admin/programs/DEMO/message-settings", OPERATOR, body=settings))
    bench.settle_pipeline()
    _, member = bench.quiet(
        lambda: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13500135000"})
    )
    bench.quiet(
        lambda: api.call("POST", "/v1/orders", POS, body=order_body("msg-1", 120, member={"phone": "13500135000"}))
    )
    bench.quiet(lambda: bench.poll("AccruePointsFunction"))
    bench.quiet(lambda: [p.poll_once() for p in bench.pipeline.pollers if p.function.name == "PublishEventsFunction"])
    bench.measure(
        "send a points-earned SMS (OrderAccrued; first: program read)", lambda: bench.poll("MessagesFunction")
    )
    second = order_body("msg-2", 80, member={"phone": "13500135000"})
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=second))
    bench.quiet(lambda: bench.poll("AccruePointsFunction"))
    bench.quiet(lambda: [p.poll_once() for p in bench.pipeline.pollers if p.function.name == "PublishEventsFunction"])
    bench.measure("send a points-earned SMS (OrderAccrued; warm)", lambda: bench.poll("MessagesFunction"))
    path = f"/v1/admin/members/{member['id']}"
    bench.quiet(lambda: api.call("PATCH", path, OPERATOR, body={"marketingOptIn": True}, headers={"if-match": '"1"'}))
    service = message_service()
    request = MessageRequest("demo", "DEMO", "win-back", member["id"], "bench#marketing", {"couponName": "满100减20"})
    quiet_off = {"quietHours": None}
    bench.quiet(lambda: api.call("PUT", "/v1/admin/programs/DEMO/message-settings", OPERATOR, body=quiet_off))
    bench.quiet(lambda: service.enqueue([request]))
    bench.measure("send a campaign's marketing SMS (request, cap counted)", lambda: bench.poll("MessagesFunction"))
    bench.measure("the same request delivered again (nothing sent)", lambda: service.deliver(request))
    refused = MessageRequest(
        "demo", "DEMO", "win-back", bench.quiet(lambda: _member(api, "13500135001")), "bench#no", {}
    )
    bench.measure("refuse a marketing SMS (no consent: a record)", lambda: service.deliver(refused))

    def rate() -> float:
        started = time.perf_counter()
        for n in range(MESSAGES_RUN):
            request = MessageRequest("demo", "DEMO", "points-earned", member["id"], f"bench#rate{n}", {"points": n})
            service.deliver(request)
        return MESSAGES_RUN / (time.perf_counter() - started)

    bench.rate = bench.quiet(rate)
    bench.measure(
        "list a member's send records (page of 50, with bodies)",
        lambda: api.call("GET", f"/v1/admin/members/{member['id']}/messages", OPERATOR),
    )
    bench.measure(
        "list the tenant's send records (page of 50, with bodies)",
        lambda: api.call("GET", "/v1/admin/messages", OPERATOR),
    )


def _member(api: Api, phone: str) -> str:
    return str(api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": phone})[1]["id"])


def message_templates(bench: Bench, approver: dict) -> None:
    """A message template written (business: usable at once) and a marketing one approved."""
    api, base = bench.api, "/v1/admin/programs/DEMO/message-templates"
    earned = {
        "programCode": "DEMO",
        "code": "points-earned",
        "name": "购买赠送积分通知",
        "channel": "sms",
        "purpose": "business",
        "body": "您本次购买获得{{points}}积分, 当前可用{{balance}}积分。",
    }
    bench.measure("create a message template", lambda: api.call("POST", base, OPERATOR, body=earned))
    marketing = {**earned, "code": "win-back", "purpose": "marketing", "body": "送您一张{{couponName}}"}
    bench.quiet(lambda: api.call("POST", base, OPERATOR, body=marketing))
    bench.quiet(lambda: api.call("POST", f"{base}/win-back/submit", OPERATOR, body={"approver": approver["keyId"]}))
    bench.measure(
        "approve a marketing template", lambda: api.call("POST", f"{base}/win-back/approve", approver, body={})
    )


def scheduled_run(bench: Bench) -> None:
    """The hourly expiry run of one program (D-109): the schedule's invocation, the programs page, the
    program's run (24 probes: a bucket message only for what holds something), and the same hour again."""
    function = bench.api.functions["ExpirySweepFunction"]
    bench.measure("hourly expiry: the schedule's invocation (1 message)", lambda: function.invoke(load_event(
        "expiry_sweep_schedule.json")))  # fmt: skip
    bench.measure("hourly expiry: a page of programs and each program's run", lambda: bench.poll("ExpirySweepFunction"))
    bench.quiet(lambda: function.invoke(load_event("expiry_sweep_schedule.json")))
    bench.measure("hourly expiry, the same hour again (a page, nothing due)", lambda: bench.poll("ExpirySweepFunction"))


def pages(bench: Bench, mid: str) -> None:
    """A page of each list issue 24 found capped (D-113)."""
    api = bench.api
    bench.measure("a page of a member's coupons", lambda: api.call("GET", f"/v1/members/{mid}/coupons", POS))
    bench.measure("a page of coupon rules", lambda: api.call("GET", "/v1/admin/coupon-rules", OPERATOR))
    bench.measure("a page of a member's open lots", lambda: api.call("GET", f"/v1/members/{mid}/lots", POS))
    bench.measure("a page of a member's tier history", lambda: api.call("GET", f"/v1/members/{mid}/tiers", POS))
    bench.measure(
        "a page of coupons found by phone",
        lambda: api.call("GET", "/v1/admin/coupons", OPERATOR, query={"phone": "13800138000"}),
    )


def batch_campaign(bench: Bench, base: dict, approver: dict) -> None:
    """An audience frozen by its scan, and a batch campaign run to it: the scan of the bench table (its cost
    grows with the table; docs/performance.md §4 has it per 10,000 members) and a run to one member."""
    api = bench.api
    bench.settle_pipeline()
    _, member = bench.quiet(
        lambda: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13900139002"})
    )
    bench.quiet(lambda: api.call("POST", "/v1/admin/tags", OPERATOR, body={"code": "bench-batch", "name": "群发"}))
    bench.quiet(lambda: api.call("PUT", f"/v1/admin/members/{member['id']}/tags/bench-batch", OPERATOR))
    body = {"programCode": "DEMO", "name": "群发", "condition": {"attribute": "tags", "values": ["bench-batch"]}}
    _, audience = bench.quiet(lambda: api.call("POST", "/v1/admin/audiences", OPERATOR, body=body))
    path = f"/v1/admin/audiences/{audience['audienceId']}"
    bench.measure("enable an audience (8 shard pages queued)", lambda: api.call("POST", f"{path}/enable", OPERATOR))
    bench.measure("audience scan of the tenant's members (8 shard pages)", lambda: bench.poll("CampaignsFunction"))
    batch = {**base, "name": "群发 100 积分", "kind": "batch", "audienceId": audience["audienceId"]}
    del batch["trigger"]
    _, draft = bench.quiet(lambda: api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(batch)))
    campaign = f"/v1/admin/campaigns/{draft['campaignId']}"
    bench.quiet(lambda: api.call("POST", f"{campaign}/submit", OPERATOR, body={"approver": approver["keyId"]}))
    bench.measure(
        "approve a batch campaign (launch: 8 shard pages queued)",
        lambda: api.call("POST", f"{campaign}/approve", approver, body={}),
    )
    bench.measure("batch run to 1 member (8 shard pages, 100 points)", lambda: bench.poll("CampaignsFunction"))


def birthdays(bench: Bench, base: dict, approver: dict) -> None:
    """A birthday campaign's day: the run planned (one page per day read), and a page of one member gifted."""
    api = bench.api
    today = datetime.now(SHANGHAI).date()
    gift = {**base, "name": "生日礼", "trigger": {"type": "birthday"}, "limits": {}}
    _, draft = bench.quiet(lambda: api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(gift)))
    path = f"/v1/admin/campaigns/{draft['campaignId']}"
    bench.quiet(lambda: api.call("POST", f"{path}/submit", OPERATOR, body={"approver": approver["keyId"]}))
    bench.quiet(lambda: api.call("POST", f"{path}/approve", approver, body={}))
    born = {"programCode": "DEMO", "phone": "13900139001", "birthday": f"1990-{today:%m-%d}"}
    bench.measure(
        "register a member with a birthday (its index entry)", lambda: api.call("POST", "/v1/members", POS, body=born)
    )
    bench.settle_pipeline()
    bench.measure(
        "plan a birthday campaign's day (operator run)",
        lambda: api.call("POST", f"{path}/day-runs", OPERATOR, body={}),
    )
    bench.measure("birthday page: one member gifted 100 points", lambda: bench.poll("CampaignsFunction"))


def promotions(bench: Bench, base: dict, approver: dict) -> None:
    """Points for the order itself, in its accrual: an order a promotion matches, and one it does not."""
    api = bench.api
    double = {
        **base,
        "name": "线下门店双倍积分",
        "startsAt": (datetime.now(SHANGHAI) - timedelta(days=3)).isoformat(),
        "trigger": {"type": "purchase", "order": {"storeGroupCode": "offline"}},
        "effects": [{"type": "orderPoints", "pointGroupCode": "points", "multiplier": "2"}],
        "limits": {"perMember": {"count": 1000}, "budget": {"points": 1_000_000}},
    }
    _, draft = bench.quiet(lambda: api.call("POST", "/v1/admin/campaigns", OPERATOR, body=with_points_budget(double)))
    path = f"/v1/admin/campaigns/{draft['campaignId']}"
    bench.quiet(lambda: api.call("POST", f"{path}/submit", OPERATOR, body={"approver": approver["keyId"]}))
    bench.quiet(lambda: api.call("POST", f"{path}/approve", approver, body={}))
    _, program = bench.quiet(lambda: api.call("GET", "/v1/admin/programs/DEMO", OPERATOR))
    settings = {k: v for k, v in program.items() if k not in ("createdAt", "updatedAt", "dailyPointsCeiling")}
    bench.quiet(lambda: api.call("PUT", "/v1/admin/programs/DEMO", OPERATOR, body=settings))  # no ceiling
    sys.modules["lambda_AccruePointsFunction_app"].service.cache_clear()  # a new sandbox: promotions not read yet
    bench.settle_pipeline()
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("promo-1", 100)))
    bench.measure(
        "accrue an order with double points (first: promotions read)", lambda: bench.poll("AccruePointsFunction")
    )
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("promo-2", 100)))
    bench.measure("accrue an order with double points (warm)", lambda: bench.poll("AccruePointsFunction"))
    online = {**order_body("promo-web", 100), "storeCode": "WEB"}
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=online))
    bench.measure(
        "accrue an order no promotion matches (one approved, warm)", lambda: bench.poll("AccruePointsFunction")
    )


def customer_center(bench: Bench, mid: str) -> None:
    """Issue 13: a profile change with If-Match, a lookup by card, freezing, a tag, a note, a manual tier
    change and the timeline."""
    api = bench.api
    _, member, headers = api.exchange("GET", f"/v1/members/{mid}", POS)
    change = {"name": "张三", "address": {"city": "上海"}, "marketingOptIn": True}
    bench.measure(
        "change a member's profile (3 fields, If-Match)",
        lambda: api.call("PATCH", f"/v1/members/{mid}", POS, body=change, headers={"if-match": headers["etag"]}),
    )
    card = {"cardNo": member["cardNo"]}
    bench.measure("look up a member by card number", lambda: api.call("GET", "/v1/members/lookup", POS, query=card))
    reason = {"reason": "bench"}
    bench.measure("freeze a member", lambda: api.call("POST", f"/v1/admin/members/{mid}/freeze", OPERATOR, body=reason))
    bench.quiet(lambda: api.call("POST", f"/v1/admin/members/{mid}/unfreeze", OPERATOR, body=reason))
    bench.measure(
        "attach a tag to a member", lambda: api.call("PUT", f"/v1/admin/members/{mid}/tags/high-value", OPERATOR)
    )
    bench.measure("list a tag's members (1)", lambda: api.call("GET", "/v1/admin/tags/high-value/members", OPERATOR))
    note = {"comment": "来电咨询积分"}
    bench.measure(
        "add a note to a member", lambda: api.call("POST", f"/v1/admin/members/{mid}/notes", OPERATOR, body=note)
    )
    tier = {"tierCode": "platinum", "reason": "bench"}
    bench.measure(
        "change a member's tier by hand",
        lambda: api.call("POST", f"/v1/admin/members/{mid}/tier-changes", OPERATOR, body=tier),
    )
    bench.measure("read a member's timeline (a page)", lambda: api.call("GET", f"/v1/members/{mid}/behaviours", POS))
    bench.measure(
        "list a member's orders and returns (a page)", lambda: api.call("GET", f"/v1/members/{mid}/orders", POS)
    )
    bench.measure("list members (newest first, a page)", lambda: api.call("GET", "/v1/admin/members", OPERATOR))
    by_name = {"name": "张三", "storeCode": "SH001"}
    bench.measure(
        "list members by name in a store", lambda: api.call("GET", "/v1/admin/members", OPERATOR, query=by_name)
    )
    bulk_jobs(bench)


def erasure(bench: Bench) -> None:
    """Issue 25 (D-123): erasing a member with an identity, a tag, a note and three change records (a profile
    change, a freeze, an unfreeze), then the same erasure again (a repeat finds nothing left)."""
    api = bench.api
    body = {"programCode": "DEMO", "phone": "13712340000", "identity": {"type": "wechatOpenId", "value": "oBench1"}}
    _, member = bench.quiet(lambda: api.call("POST", "/v1/members", POS, body=body))
    mid, reason = member["id"], {"reason": "bench"}
    named = {"name": "赵六"}
    bench.quiet(lambda: api.call("PATCH", f"/v1/members/{mid}", POS, body=named, headers={"if-match": '"1"'}))
    bench.quiet(lambda: api.call("PUT", f"/v1/admin/members/{mid}/tags/high-value", OPERATOR))
    bench.quiet(lambda: api.call("POST", f"/v1/admin/members/{mid}/notes", OPERATOR, body={"comment": "bench"}))
    bench.quiet(lambda: api.call("POST", f"/v1/admin/members/{mid}/freeze", OPERATOR, body=reason))
    bench.quiet(lambda: api.call("POST", f"/v1/admin/members/{mid}/unfreeze", OPERATOR, body=reason))
    erase = f"/v1/members/{mid}/personal-data"
    bench.measure(
        "erase a member (1 identity, 1 tag, 1 note, 3 change records)", lambda: api.call("DELETE", erase, POS)
    )
    bench.measure("erase an erased member again (nothing left)", lambda: api.call("DELETE", erase, POS))


def api_keys(bench: Bench) -> None:
    """Issue 25 (D-120): a tenant's operator issues, lists, rotates and revokes a key."""
    api = bench.api
    body = {"name": "bench till", "role": "channel", "channel": "POS"}
    _, issued = bench.measure("issue an API key", lambda: api.call("POST", "/v1/admin/api-keys", OPERATOR, body=body))
    path = f"/v1/admin/api-keys/{issued['keyId']}"
    bench.measure("list API keys (a page)", lambda: api.call("GET", "/v1/admin/api-keys", OPERATOR))
    rotation = {"graceHours": 24}
    bench.measure("rotate an API key", lambda: api.call("POST", f"{path}/rotate", OPERATOR, body=rotation))
    bench.measure("revoke an API key", lambda: api.call("POST", f"{path}/revoke", OPERATOR))


def product_group(bench: Bench) -> None:
    """Issue 13: a rule on a product group of 2,000 products; the order's own products are read, once."""
    api = bench.api
    group = {"code": "promo", "name": "促销商品", "description": "bench"}
    bench.quiet(lambda: api.call("POST", "/v1/admin/product-groups", OPERATOR, body=group))
    rows = "groupCode,productCode\npromo,TD0001\n" + "\n".join(f"promo,B{n:04d}" for n in range(1999))
    products = "code,name,categoryCode\n" + "\n".join(f"B{n:04d},商品{n},SNACK" for n in range(1999))
    bench.quiet(
        lambda: api.call(
            "POST", "/v1/admin/master-data-jobs", OPERATOR, body={"kind": "product", "format": "csv", "data": products}
        )
    )
    bench.settle_pipeline()
    bench.quiet(
        lambda: api.call(
            "POST",
            "/v1/admin/master-data-jobs",
            OPERATOR,
            body={"kind": "productGroupMember", "format": "csv", "data": rows},
        )
    )
    bench.settle_pipeline()
    bench.quiet(lambda: api.call("POST", "/v1/admin/product-groups/promo/enable", OPERATOR))
    rule = {**SNACK_DOUBLE, "code": "promo-double", "productScope": {"productGroupCode": "promo"}}
    bench.quiet(lambda: api.call("POST", "/v1/admin/programs/DEMO/point-rules", OPERATOR, body=rule))
    sys.modules["lambda_AccruePointsFunction_app"].service.cache_clear()  # a new sandbox sees the new rule
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("grp-1", 10)))
    bench.measure(
        "accrue an order (1 line) with a rule on a group of 2,000 products (first time: its place read)",
        lambda: bench.poll("AccruePointsFunction"),
    )
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("grp-2", 10)))
    bench.measure(
        "accrue an order (1 line) with a rule on a group of 2,000 products (warm)",
        lambda: bench.poll("AccruePointsFunction"),
    )


def non_member_sale(bench: Bench) -> None:
    """Issue 13: a sale to a phone that is no member, attached when the buyer registers, then accrued."""
    api = bench.api
    walk_in = order_body("walk-in-1", 30, member={"phone": "13912345678"})
    bench.measure("post a non-member sale", lambda: api.call("POST", "/v1/orders", POS, body=walk_in))
    _, buyer = bench.quiet(
        lambda: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13912345678"})
    )
    attach = {"channel": "POS", "orderNo": "walk-in-1"}
    bench.measure(
        "attach a non-member sale to a member",
        lambda: api.call("POST", f"/v1/admin/members/{buyer['id']}/attached-orders", OPERATOR, body=attach),
    )
    bench.measure("accrue the attached sale (1 line, 2 groups)", lambda: bench.poll("AccruePointsFunction"))


def bulk_jobs(bench: Bench) -> None:
    """Issue 13: a CSV of 50 members tagged (one chunk), 50 products upserted (one chunk)."""
    api = bench.api
    phones = [f"1361234{n:04d}" for n in range(50)]
    for phone in phones:
        bench.quiet(
            lambda phone=phone: api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": phone})
        )
    tagging = {"action": "attachTag", "tagCode": "newcomer", "csv": "phone\n" + "\n".join(phones)}
    bench.measure(
        "start a bulk job (50 members: the job, one chunk queued)",
        lambda: api.call("POST", "/v1/admin/member-jobs", OPERATOR, body=tagging),
    )
    bench.measure("tag a chunk of 50 members by phone", lambda: bench.poll("RunBulkJobsFunction"))
    products = "code,name,categoryCode\n" + "\n".join(f"C{n:04d},商品{n},SNACK" for n in range(50))
    upsert = {"kind": "product", "format": "csv", "data": products}
    bench.quiet(lambda: api.call("POST", "/v1/admin/master-data-jobs", OPERATOR, body=upsert))
    bench.measure("upsert a chunk of 50 new products", lambda: bench.poll("RunBulkJobsFunction"))
    bench.quiet(lambda: api.call("POST", "/v1/admin/master-data-jobs", OPERATOR, body=upsert))
    bench.measure("upsert a chunk of 50 unchanged products", lambda: bench.poll("RunBulkJobsFunction"))


def held_orders(bench: Bench) -> None:
    """The daily points ceiling: an order over it is held, listed, released; another rejected."""
    api = bench.api
    _, program = api.call("GET", "/v1/admin/programs/DEMO", OPERATOR)
    settings = {k: v for k, v in program.items() if k not in ("createdAt", "updatedAt")}
    ceiling = {**settings, "dailyPointsCeiling": 50}
    bench.quiet(lambda: api.call("PUT", "/v1/admin/programs/DEMO", OPERATOR, body=ceiling))
    sys.modules["lambda_AccruePointsFunction_app"].service.cache_clear()  # a new sandbox sees the ceiling
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("held-1", 20)))
    bench.measure(
        "accrue an order held for review (the day's count would pass the ceiling)",
        lambda: bench.poll("AccruePointsFunction"),
    )
    bench.quiet(lambda: api.call("POST", "/v1/orders", POS, body=order_body("held-2", 40)))
    bench.measure(
        "accrue an order held for review (alone over the ceiling)", lambda: bench.poll("AccruePointsFunction")
    )
    bench.measure("list held orders (2)", lambda: api.call("GET", "/v1/admin/held-orders", OPERATOR))
    release, reject = "/v1/admin/orders/POS/held-1/release", "/v1/admin/orders/POS/held-2/reject"
    bench.measure("release a held order (1 line, 2 groups)", lambda: api.call("POST", release, OPERATOR, body={}))
    bench.measure("reject a held order", lambda: api.call("POST", reject, OPERATOR, body={"note": "test order"}))


RUNS = 30


def own_overhead(bench: Bench, member_id: str, presented: dict[str, Any]) -> list[str]:
    """Milliseconds per operation spent in the project's code (handler, Powertools, pydantic, ours), excluding
    the time inside client calls: the median over RUNS runs of (wall time - time in client calls)."""
    api = bench.api
    spend = {"pointGroupCode": "points", "points": 1, "purpose": "gift"}
    operations: dict[str, Callable[[int], Any]] = {
        "register a member": lambda n: api.call(
            "POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": f"1370000{n:04d}"}
        ),
        "get a member": lambda n: api.call("GET", f"/v1/members/{member_id}", POS),
        "post an order": lambda n: api.call("POST", "/v1/orders", POS, body=order_body(f"ovh-{n}", 50)),
        "accrue an order": lambda n: bench.poll("AccruePointsFunction"),
        "redeem 1 point": lambda n: api.call("POST", f"/v1/members/{member_id}/redemptions", POS, body=spend),
        "validate a coupon": lambda n: api.call("POST", "/v1/coupons/validate", POS, body=presented),
    }
    rows = ["| operation | own code, ms (median) | in client calls, ms (median) |", "|---|---|---|"]
    for name, operation in operations.items():
        own, storage = [], []
        for n in range(RUNS):
            if name == "accrue an order":
                bench.quiet(lambda n=n: api.call("POST", "/v1/orders", POS, body=order_body(f"acc-{n}", 50)))
                bench.quiet(
                    lambda: [
                        p.poll_once() for p in bench.pipeline.pollers if p.function.name == "PublishEventsFunction"
                    ]
                )
            bench.hook.meter = Meter()
            started = time.perf_counter()
            operation(n)
            elapsed = time.perf_counter() - started
            own.append((elapsed - bench.hook.meter.storage_seconds) * 1000)
            storage.append(bench.hook.meter.storage_seconds * 1000)
            bench.hook.meter.pending.clear()
        rows.append(f"| {name} | {statistics.median(own):.1f} | {statistics.median(storage):.1f} |")
    return rows


def main() -> None:
    with emulated_account() as resolver:
        bench_rows, overhead, rate = run(resolver)
    print("1. Cost per operation (DynamoDB rules applied to the real item sizes; on-demand prices in cost.py)\n")
    print(HEADER)
    for name, meter in bench_rows.items():
        print(meter.row(name))
    print(f"\n3. Our own overhead per operation (median of {RUNS} runs, time in client calls excluded)\n")
    print("\n".join(overhead))
    print(f"\n4. Messages per second through one sender worker on the emulator: {rate:.0f} ({MESSAGES_RUN} SMS)")
    rows = bench_rows
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text("\n".join([HEADER, *(m.row(n) for n, m in rows.items())]) + "\n")


if __name__ == "__main__":
    main()
