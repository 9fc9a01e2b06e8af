"""Messages (消息中心, social-hub §11; issue 15): templates with named variables, and the rules a message
must pass before it is sent, and a program's message settings. Pure: the sender (services/messages/) reads
the member and the clock and asks these rules; nothing here sends anything.

- A template (短信模板, email, webhook for app push or WeChat) belongs to a program, has a channel and a
  purpose: business (业务, "120 points credited") or marketing (营销). Its body names variables as
  `{{points}}`; a template naming a variable that does not exist is refused when it is written, so that
  rendering never fails when a message is sent (a value missing then renders as nothing).
- What members are owed: marketing only to members who said yes, never to frozen, cancelled or erased
  members, nor to test members unless the template is for tests; business messages to everyone but erased
  members. Marketing waits out the program's quiet hours and counts against a per-member cap per day and
  per week.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.coupons import period_labels
from loyalty.domain.members import EMAIL_PATTERN
from loyalty.domain.validity import CamelModel, invalid_field

# The variables a template may name, and what each renders. The sender fills those its occasion knows.
VARIABLES: dict[str, str] = {
    "memberName": "the member's name",
    "points": "the points of the occasion (earned, expiring)",
    "balance": "available points in the occasion's point group",
    "pointGroupName": "the point group's name",
    "couponName": "the coupon's rule name",
    "couponCode": "the coupon's code",
    "tierName": "the member's (new) tier",
    "expiryDate": "when the points or the coupon expire (the program's calendar day)",
    "storeName": "the store of the order",
    "programName": "the program's name",
    "campaignName": "the campaign that sends it",
}
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}")
Channel = Literal["sms", "email", "webhook"]
Purpose = Literal["business", "marketing"]


def variables_in(text: str) -> list[str]:
    """The variables a text names, in order, once each."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def render(text: str, values: dict[str, Any]) -> str:
    """The text with each variable replaced by its value; a value not known renders as nothing (never an
    error at send time: the names were checked when the template was written)."""
    return PLACEHOLDER.sub(lambda m: "" if values.get(m.group(1)) is None else str(values[m.group(1)]), text)


class TemplateInput(CamelModel):
    """A message template as an operator writes it."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "programCode": "DEMO",
            "code": "points-earned",
            "name": "购买赠送积分通知",
            "channel": "sms",
            "purpose": "business",
            "body": "{{memberName}}您好, 您本次购买获得{{points}}积分, 当前可用{{balance}}积分。",
        }
    ]

    program_code: str = Field(pattern=CODE_PATTERN)
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    channel: Channel
    purpose: Purpose = Field(description="business (业务): no consent needed; marketing (营销): opted-in members only")
    subject: str | None = Field(default=None, max_length=200, description="email only")
    body: str = Field(min_length=1, max_length=2000, description="text with {{variable}} placeholders")
    for_tests: bool = Field(default=False, description="may reach test members (and only then)")

    @model_validator(mode="after")
    def _known_variables(self) -> TemplateInput:
        for field, text in (("subject", self.subject or ""), ("body", self.body)):
            unknown = [name for name in variables_in(text) if name not in VARIABLES]
            if unknown:
                raise invalid_field("Template", field, f"unknown variable {unknown[0]}", unknown[0])
        if (self.channel == "email") != (self.subject is not None):
            raise invalid_field("Template", "subject", "an email has a subject, and only an email", self.subject)
        return self


def refusal(
    purpose: str, profile: dict[str, Any], *, for_tests: bool = False
) -> Literal["erased", "frozen", "cancelled", "noConsent", "testMember"] | None:
    """Why a message may not go to this member, or None when it may. Erased members get nothing; marketing
    needs a yes (never answered is no) and an active member; test members only get templates for tests."""
    status = profile.get("status", "active")
    if status == "erased":
        return "erased"
    if purpose == "marketing":
        if status in ("frozen", "cancelled"):
            return status  # type: ignore[no-any-return]
        if profile.get("marketingOptIn") is not True:
            return "noConsent"
    if profile.get("testData") and not for_tests:
        return "testMember"
    return None


# A time of day on the program's clock: hours and minutes, seconds if wanted, no offset.
ClockTime = Annotated[
    time,
    WithJsonSchema({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"}),
]


class QuietHours(CamelModel):
    """免打扰: marketing is held from `start` to `end` in the program's time zone (across midnight when `end`
    comes first), and sent at `end`."""

    start: ClockTime = time(21, 0)
    end: ClockTime = time(9, 0)

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a time of day in the program's zone, without an offset")
        return value


def held_until(now: datetime, zone: ZoneInfo, quiet: QuietHours | None) -> datetime | None:
    """When a marketing message asked for `now` may go, if quiet hours hold it; None when it may go now."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    wraps = quiet.start > quiet.end
    inside = (clock >= quiet.start or clock < quiet.end) if wraps else (quiet.start <= clock < quiet.end)
    if not inside:
        return None
    day = local.date() if clock < quiet.end else local.date() + timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=zone)


def cap_periods(now: datetime, zone: ZoneInfo) -> dict[str, tuple[str, datetime]]:
    """The day and the week (program calendar) a marketing message counts in: label and period end."""
    labels = period_labels(now, zone)
    return {"day": labels["D"], "week": labels["W"]}


def masked_recipient(channel: str, recipient: str) -> str:
    """What a send record shows of whom it went to: 138****8000, z***@example.com, a webhook's host."""
    if channel == "sms":
        digits = recipient.removeprefix("+86")
        return digits[:3] + "*" * max(len(digits) - 7, 0) + digits[-4:] if len(digits) > 7 else "*" * len(digits)
    if channel == "email":
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return re.sub(r"^(https?://[^/]+).*$", r"\1/…", recipient)


# --- a program's message settings (D-102) -------------------------------------------------------------------

NOTIFICATIONS = ("pointsEarned", "pointsExpiring", "couponIssued", "couponExpiring", "tierChanged", "birthday")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class Notification(CamelModel):
    """A notification (业务通知) an operator switched on: which template says it."""

    enabled: bool = True
    template_code: str = Field(pattern=CODE_PATTERN)


class PointsNotification(Notification):
    point_group_code: str = Field(pattern=CODE_PATTERN, description="the point group whose points it tells")


class PointsExpiringNotification(PointsNotification):
    days_ahead: int = Field(default=7, ge=1, le=90, description="tell this many days before the points expire")


class CouponExpiringNotification(Notification):
    days_ahead: int = Field(default=3, ge=1, le=90, description="tell this many days before the coupon expires")


class Notifications(CamelModel):
    points_earned: PointsNotification | None = Field(default=None, description="after an order accrued points")
    points_expiring: PointsExpiringNotification | None = Field(
        default=None, description="a daily job: one message per member with the points that expire that day"
    )
    coupon_issued: Notification | None = None
    coupon_expiring: CouponExpiringNotification | None = None
    tier_changed: Notification | None = Field(default=None, description="an upgrade, downgrade or manual change")
    birthday: Notification | None = Field(default=None, description="on the member's birthday, in the morning")


class MarketingCap(CamelModel):
    """频次: at most this many marketing messages per member per calendar day and week (null: no cap)."""

    per_day: int | None = Field(default=2, ge=0, le=100)
    per_week: int | None = Field(default=5, ge=0, le=700)


class WebhookSettings(CamelModel):
    url: str = Field(
        pattern=r"^https://[^\s/]+(/\S*)?$|^http://(127\.0\.0\.1|localhost)(:[0-9]+)?(/\S*)?$",
        max_length=500,
        description="where messages of webhook templates are POSTed (https; http only to this machine)",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="the HMAC-SHA256 key of the signature header; write-only, kept when left out",
    )


class MessageSettingsInput(CamelModel):
    """消息设置 of a program: when marketing may go, how often, from where, and which notifications are on."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "quietHours": {"start": "21:00:00", "end": "09:00:00"},
            "marketingCap": {"perDay": 2, "perWeek": 5},
            "smsCountryCode": "+86",
            "emailFrom": "loyalty@example.com",
            "webhook": {"url": "https://hooks.example.com/loyalty", "secret": "a-long-shared-secret"},  # nosec B105: an example
            "bodyRetentionDays": 30,
            "notifications": {
                "pointsEarned": {"templateCode": "points-earned", "pointGroupCode": "points"},
                "pointsExpiring": {"templateCode": "points-expiring", "pointGroupCode": "points", "daysAhead": 7},
                "tierChanged": {"templateCode": "tier-changed"},
            },
        }
    ]

    quiet_hours: QuietHours | None = Field(
        default_factory=QuietHours, description="免打扰 for marketing, in the program's zone; null for none"
    )
    marketing_cap: MarketingCap = Field(default_factory=MarketingCap)
    sms_country_code: str = Field(
        default="+86", pattern=r"^\+[1-9][0-9]{0,3}$", description="put before a phone stored without one"
    )
    email_from: str | None = Field(
        default=None,
        pattern=EMAIL_PATTERN,
        max_length=254,
        description="a sender the platform registered for the tenant (D-125)",
    )
    webhook: WebhookSettings | None = None
    body_retention_days: int = Field(default=30, ge=1, le=365, description="how long a sent body is kept")
    notifications: Notifications = Field(default_factory=Notifications)


def e164(phone: str, country_code: str) -> str:
    """A phone as SNS wants it: +<country><number>; a stored phone without a + is of the program's country."""
    return phone if phone.startswith("+") else f"{country_code}{phone}"
