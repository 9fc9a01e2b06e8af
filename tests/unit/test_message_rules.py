"""Message templates and the rules members are owed (issue 15, social-hub §11): variables checked when a
template is written and never failing when it renders, consent and status, quiet hours, caps, masking."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from loyalty.domain.messages import (
    QuietHours,
    TemplateInput,
    cap_periods,
    held_until,
    masked_recipient,
    refusal,
    render,
    variables_in,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SMS = {
    "programCode": "DEMO",
    "code": "points-earned",
    "name": "购买赠送积分通知",
    "channel": "sms",
    "purpose": "business",
    "body": "{{memberName}}您好, 您本次购买获得{{ points }}积分, 当前可用{{balance}}积分。",
}


def test_a_template_renders_its_variables_and_a_missing_value_as_nothing():
    template = TemplateInput.model_validate(SMS)
    assert variables_in(template.body) == ["memberName", "points", "balance"]
    text = render(template.body, {"memberName": "张三", "points": 120, "balance": 1320})
    assert text == "张三您好, 您本次购买获得120积分, 当前可用1320积分。"
    assert render(template.body, {"points": 120}) == "您好, 您本次购买获得120积分, 当前可用积分。"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"body": "您的{{bonus}}到账"}, "body", "unknown variable bonus"),
        ({"channel": "email", "subject": "{{couponNam}}"}, "subject", "unknown variable couponNam"),
        ({"channel": "email"}, "subject", "an email has a subject"),
        ({"subject": "积分到账"}, "subject", "an email has a subject"),
    ],
)
def test_a_template_naming_what_does_not_exist_is_refused_at_the_field(change, field, message):
    with pytest.raises(ValidationError) as refused:
        TemplateInput.model_validate({**SMS, **change})
    (error,) = refused.value.errors()
    assert error["loc"] == (field,) and message in error["msg"]


@pytest.mark.parametrize(
    ("purpose", "profile", "for_tests", "expected"),
    [
        ("business", {"status": "active"}, False, None),
        ("business", {"status": "frozen"}, False, None),  # "points credited" reaches a frozen member
        ("business", {"status": "erased"}, False, "erased"),
        ("marketing", {"status": "active", "marketingOptIn": True}, False, None),
        ("marketing", {"status": "active"}, False, "noConsent"),  # never answered is no
        ("marketing", {"status": "active", "marketingOptIn": False}, False, "noConsent"),
        ("marketing", {"status": "frozen", "marketingOptIn": True}, False, "frozen"),
        ("marketing", {"status": "cancelled", "marketingOptIn": True}, False, "cancelled"),
        ("business", {"status": "active", "testData": True}, False, "testMember"),
        ("business", {"status": "active", "testData": True}, True, None),
    ],
)
def test_who_a_message_may_reach(purpose, profile, for_tests, expected):
    assert refusal(purpose, profile, for_tests=for_tests) == expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-12-06T20:59:00", None),
        ("2026-12-06T21:00:00", "2026-12-07T09:00:00"),
        ("2026-12-06T23:30:00", "2026-12-07T09:00:00"),
        ("2026-12-07T03:00:00", "2026-12-07T09:00:00"),
        ("2026-12-07T09:00:00", None),
    ],
)
def test_quiet_hours_hold_marketing_until_the_morning_in_the_programs_zone(local, expected):
    now = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)
    until = held_until(now.astimezone(ZoneInfo("UTC")), SHANGHAI, QuietHours())
    assert (until.replace(tzinfo=None).isoformat() if until else None) == expected


def test_quiet_hours_within_a_day_and_none():
    lunch = QuietHours(start=time(12, 0), end=time(13, 30))
    at = datetime(2026, 12, 6, 12, 15, tzinfo=SHANGHAI)
    assert held_until(at, SHANGHAI, lunch) == datetime(2026, 12, 6, 13, 30, tzinfo=SHANGHAI)
    assert held_until(at, SHANGHAI, None) is None


def test_caps_count_per_day_and_iso_week_of_the_program():
    periods = cap_periods(datetime(2026, 12, 6, 17, 0, tzinfo=ZoneInfo("UTC")), SHANGHAI)  # Monday 01:00 local
    assert (periods["day"][0], periods["week"][0]) == ("2026-12-07", "2026-W50")


def test_recipients_are_masked_on_records():
    assert masked_recipient("sms", "13800138000") == "138****8000"
    assert masked_recipient("email", "zhangsan@example.com") == "z***@example.com"
    assert masked_recipient("webhook", "https://hooks.example.com/wechat?token=secret") == "https://hooks.example.com/…"
