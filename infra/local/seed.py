"""The demo tenant: the sample program of spec social-hub §4 and §8.1, a few stores and products, and keys."""

from __future__ import annotations

from typing import Any

from loyalty.domain.config import KINDS
from loyalty.services.auth import api_key_service
from loyalty.services.config import config_service

TENANT = "demo"
PROGRAM = "DEMO"

MASTER_DATA: list[tuple[str, dict[str, Any]]] = [
    ("store", {"code": "SH001", "name": "上海南京路店", "type": "offline", "city": "上海"}),
    ("store", {"code": "KS003", "name": "昆山昆城店", "type": "offline", "city": "昆山"}),
    ("store", {"code": "WEB", "name": "官网虚拟门店", "type": "virtual"}),
    ("store", {"code": "MINI", "name": "会员中心小程序虚拟门店", "type": "virtual"}),
    ("productCategory", {"code": "SNACK", "name": "小食"}),
    ("productCategory", {"code": "DESSERT", "name": "甜品"}),
    ("product", {"code": "TD0001", "name": "咸味薯条", "categoryCode": "SNACK"}),
    ("product", {"code": "IC0600", "name": "600g生日蛋糕冰淇淋", "categoryCode": "DESSERT"}),
    ("paymentMethod", {"code": "1001", "name": "现金", "earnsPoints": True}),
    ("paymentMethod", {"code": "2343", "name": "EBUY微信扫码支付", "earnsPoints": True}),
    ("paymentMethod", {"code": "GIFT", "name": "礼品卡", "earnsPoints": False}),
    ("tag", {"code": "high-value", "name": "高净值会员", "colour": "#E4572E", "category": "人群"}),
    ("tag", {"code": "newcomer", "name": "新会员", "colour": "#4C9F70", "category": "生命周期"}),
    (
        "storeGroup",
        {"code": "online", "name": "线上门店", "description": "官网与小程序"},
    ),
    (
        "storeGroup",
        {"code": "offline", "name": "线下门店", "description": "实体门店"},
    ),
]

GROUP_MEMBERS = {("storeGroup", "online"): ["WEB", "MINI"], ("storeGroup", "offline"): ["SH001", "KS003"]}

PROGRAM_STRUCTURE: list[tuple[str, dict[str, Any]]] = [
    ("pointGroup", {"code": "points", "name": "积分"}),
    ("pointGroup", {"code": "growth", "name": "成长值"}),
    ("costCenter", {"code": "member", "name": "会员成本中心"}),
    ("costCenter", {"code": "marketing", "name": "营销成本中心"}),
    ("tier", {"code": "base", "name": "普通会员", "order": 1, "base": True, "validity": {"type": "none"}}),
    ("tier", {"code": "silver", "name": "银卡会员", "order": 2, "validity": {"type": "fixedPeriod", "days": 365}}),
    ("tier", {"code": "gold", "name": "金卡会员", "order": 3, "validity": {"type": "fixedPeriod", "days": 365}}),
    ("tier", {"code": "platinum", "name": "铂金卡会员", "order": 4, "validity": {"type": "fixedPeriod", "days": 365}}),
    (
        "tierRule",
        {
            "code": "silver",
            "name": "银卡会员条件",
            "tierCode": "silver",
            "pointGroupCode": "points",
            "lowerBound": 300,
            "upperBound": 1000,
        },
    ),
    (
        "tierRule",
        {
            "code": "gold",
            "name": "金卡会员条件",
            "tierCode": "gold",
            "pointGroupCode": "points",
            "lowerBound": 1000,
            "upperBound": 5000,
        },
    ),
    (
        "tierRule",
        {
            "code": "platinum",
            "name": "铂金卡会员",
            "tierCode": "platinum",
            "pointGroupCode": "points",
            "lowerBound": 5000,
        },
    ),
    (
        "behaviourRule",
        {
            "code": "daily-check-in",
            "name": "每日签到送10积分",
            "behaviourType": "checkIn",
            "pointGroupCode": "points",
            "points": 10,
            "countsTowardUpgrade": False,
            "costCenterCode": "marketing",
            "maxPerDay": 1,
        },
    ),
    (
        "pointRule",
        {
            "code": "online-amount",
            "name": "线上门店1元积1分",
            "pointGroupCode": "points",
            "awardMode": "amount",
            "unit": "1",
            "pointsPerUnit": 1,
            "countsTowardUpgrade": True,
            "costCenterCode": "marketing",
            "storeScope": {"storeGroupCode": "online"},
            "validity": {"type": "fixedPeriod", "days": 365},
        },
    ),
    (
        "pointRule",
        {
            "code": "offline-amount",
            "name": "线下门店1元1积分",
            "pointGroupCode": "points",
            "awardMode": "amount",
            "unit": "1",
            "pointsPerUnit": 1,
            "countsTowardUpgrade": True,
            "costCenterCode": "member",
            "storeScope": {"storeGroupCode": "offline"},
            "validity": {"type": "fixedPeriod", "days": 365},
        },
    ),
    (
        "pointRule",
        {
            "code": "offline-quantity",
            "name": "线下门店1个数量积1成长值",
            "pointGroupCode": "growth",
            "awardMode": "quantity",
            "unit": "1",
            "pointsPerUnit": 1,
            "countsTowardUpgrade": False,
            "costCenterCode": "member",
            "storeScope": {"storeGroupCode": "offline"},
            "validity": {"type": "fixedPeriod", "days": 365},
        },
    ),
]


def seed_demo_tenant(tenant: str = TENANT) -> tuple[dict[str, str], dict[str, str]]:
    """Create the demo configuration (for `tenant`: the local stack makes more tenants like the demo, one per
    end-to-end test module, POST /_local/tenants) and return fresh API keys by name (shown once, never stored
    plain), and their key ids (what a submitter names as the approver)."""
    config = config_service()
    for kind_name, data in MASTER_DATA:
        kind = KINDS[kind_name]
        config.create(tenant, kind, None, kind.model.model_validate(data))
        for member in GROUP_MEMBERS.get((kind_name, data["code"]), []):
            config.add_member(tenant, kind_name, data["code"], member)
        if kind.enableable:
            config.enable(tenant, kind, data["code"])
    config.create(
        tenant,
        KINDS["program"],
        None,
        KINDS["program"].model.model_validate({"code": PROGRAM, "name": "品牌会员计划", "timeZone": "Asia/Shanghai"}),
    )
    for kind_name, data in PROGRAM_STRUCTURE:
        kind = KINDS[kind_name]
        config.create(tenant, kind, PROGRAM, kind.model.model_validate(data))
    keys = api_key_service()
    issued = {
        "operator": keys.issue(tenant, "operator", "operator", "demo operator"),
        "approver": keys.issue(tenant, "operator", "operator", "demo approver"),  # approves what "operator" submits
        "pos": keys.issue(tenant, "channel", "POS", "demo POS"),
        "miniProgram": keys.issue(tenant, "channel", "MINI_PROGRAM", "demo mini-program"),
    }
    seed_demo_coupon_rule(tenant, issued["operator"][1].key_id, issued["approver"][1].key_id)
    seed_demo_audience(tenant)
    return {name: key for name, (key, _) in issued.items()}, {name: who.key_id for name, (_, who) in issued.items()}


DEMO_COUPON_RULE = {
    "name": "满100减20",
    "type": "amountOff",
    "amountOff": "20",
    "threshold": "100",
    "programCode": PROGRAM,
    "costCenterCode": "marketing",
    "costPerCoupon": "20",
    "totalStock": 1000,
    "validity": {"type": "afterReceipt", "days": 30},
    "usageText": "全部门店可用, 订单满100元减20元",
}


def seed_demo_audience(tenant: str = TENANT) -> str:
    """A draft audience (群组, §10.3): gold members or those tagged high-value, who have not bought in 90
    days; an operator previews and enables it, then runs a batch campaign to it."""
    from loyalty.domain.audiences import AudienceInput
    from loyalty.services.campaigns.audiences import audience_service

    condition = {
        "all": [
            {"any": [{"attribute": "tier", "values": ["gold"]}, {"attribute": "tags", "values": ["high-value"]}]},
            {"not": {"attribute": "lastPurchase", "window": {"lastDays": 90}}},
        ]
    }
    audience = AudienceInput.model_validate(
        {"programCode": PROGRAM, "name": "90 天未购的高价值会员", "condition": condition}
    )
    return audience_service().create(tenant, audience, "demo-operator").audience_id


def seed_demo_coupon_rule(tenant: str, operator: str, approver: str) -> str:
    """A listed public-claim coupon rule (§9.1 sample), drafted and approved by the two demo operator keys."""
    from loyalty.domain.coupons import CouponRuleInput
    from loyalty.services.coupon_rules import Decision, Submission, coupon_rule_service

    rules = coupon_rule_service()
    rule_id = rules.create(tenant, CouponRuleInput.model_validate(DEMO_COUPON_RULE), operator).rule_id
    rules.submit(tenant, rule_id, Submission(approver=approver), operator)
    rules.approve(tenant, rule_id, Decision(comment="demo"), approver)
    return rule_id


# The local receiver checks signatures with it; the demo's only, on this machine.
DEMO_WEBHOOK_SECRET = "local-demo-webhook-secret"  # noqa: S105  # nosec B105
DEMO_EMAIL_FROM = "loyalty@example.com"


def email_from(tenant: str) -> str:
    """The sender address the platform registers for a local tenant: the demo's, or one of the tenant's own
    (a tenant may not send as another, D-125)."""
    return DEMO_EMAIL_FROM if tenant == TENANT else f"loyalty@{tenant}.example.com"


DEMO_TEMPLATES = [
    {
        "code": "points-earned",
        "name": "购买赠送积分通知",
        "channel": "sms",
        "purpose": "business",
        "body": "{{memberName}}您好, 您本次购买获得{{points}}{{pointGroupName}}, 当前可用{{balance}}。",
    },
    {
        "code": "coupon-issued",
        "name": "购买赠送优惠券通知",
        "channel": "sms",
        "purpose": "business",
        "body": "您的{{couponName}}已经到账, 券码{{couponCode}}, {{expiryDate}}前有效, 请至卡券包查看。",
    },
    {
        "code": "points-expiring",
        "name": "积分到期提醒",
        "channel": "sms",
        "purpose": "business",
        "body": "您有{{points}}{{pointGroupName}}将于{{expiryDate}}到期, 当前可用{{balance}}。",
    },
    {
        "code": "tier-changed",
        "name": "等级变更通知",
        "channel": "email",
        "purpose": "business",
        "subject": "{{memberName}}, 您的会员等级已变更",
        "body": "恭喜您成为{{tierName}}, 感谢您对{{programName}}的支持。",
    },
    {
        "code": "tier-push",
        "name": "等级变更推送",
        "channel": "webhook",
        "purpose": "business",
        "body": "您已成为{{tierName}}",
    },
    {
        "code": "member-day",
        "name": "会员日营销短信",
        "channel": "sms",
        "purpose": "marketing",
        "body": "{{memberName}}, {{campaignName}}: 本周六会员日全场双倍积分, 回T退订",
    },
]


def seed_demo_messages(webhook_url: str, key_ids: dict[str, str], tenant: str = TENANT) -> None:
    """消息中心 of the demo program (§11): SMS, email and webhook templates (the marketing one submitted by the
    demo operator key and approved by the demo approver key, `key_ids`), the tenant's registered email sender,
    and the notifications switched on: points earned and expiring in 7 days, coupon issued, tier changed
    (email). The webhook goes to the local stack's receiver."""
    from loyalty.domain.messages import MessageSettingsInput, TemplateInput
    from loyalty.services.approval import Decision, Submission
    from loyalty.services.messages.mail_identities import MailIdentities
    from loyalty.services.messages.settings import message_settings_service
    from loyalty.services.messages.templates import template_service

    MailIdentities().register(tenant, email_from(tenant))  # what the platform does for a tenant (infra.mail_senders)
    templates = template_service()
    for template in DEMO_TEMPLATES:
        operator, approver = key_ids["operator"], key_ids["approver"]
        created = templates.create(tenant, TemplateInput.model_validate({"programCode": PROGRAM, **template}), operator)
        if created.status == "draft":
            templates.submit(tenant, PROGRAM, template["code"], Submission(approver=approver), operator)
            templates.approve(tenant, PROGRAM, template["code"], Decision(comment="demo"), approver)
    settings = {
        "emailFrom": email_from(tenant),
        "webhook": {"url": webhook_url, "secret": DEMO_WEBHOOK_SECRET},
        "notifications": {
            "pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "points"},
            "pointsExpiring": {"templateCode": "points-expiring", "pointGroupCode": "points", "daysAhead": 7},
            "couponIssued": {"templateCode": "coupon-issued"},
            "tierChanged": {"templateCode": "tier-changed"},
        },
    }
    message_settings_service().replace(
        tenant, PROGRAM, MessageSettingsInput.model_validate(settings), key_ids["operator"]
    )
