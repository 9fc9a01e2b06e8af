"""The pure rules of campaigns (domain/campaigns.py): who takes part, when, and how a purchase campaign's
points are split over an order's lines."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from loyalty.domain.campaigns import (
    BirthdayTrigger,
    CampaignInput,
    MemberConditions,
    Occasion,
    OrderConditions,
    OrderPoints,
    PerMemberLimit,
    birthday_days,
    capped,
    limit_period,
    member_misses,
    order_misses,
    share_by,
    triggered_by,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = {
    "programCode": "DEMO",
    "name": "x",
    "trigger": {"type": "registration"},
    "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}],
    "startsAt": "2026-12-05T00:00:00",
    "endsAt": "2026-12-06T23:59:59",
    "costCenterCode": "marketing",
    "limits": {"budget": {"points": 100000}},
}


def order(**changes) -> Occasion:
    fields = {"kind": "order", "key": "order:1", "at": datetime(2026, 12, 5, 12, tzinfo=SHANGHAI)}
    return Occasion(**{**fields, **changes})


def test_a_window_without_an_offset_is_the_programs_local_time():
    starts, ends = CampaignInput.model_validate(BASE).window(SHANGHAI)
    assert starts.isoformat() == "2026-12-05T00:00:00+08:00" and ends.isoformat() == "2026-12-06T23:59:59+08:00"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"endsAt": "2026-12-04T00:00:00"}, "endsAt"),
        ({"effects": [BASE["effects"][0], BASE["effects"][0]]}, "effects"),
        ({"effects": [{"type": "addTag", "tagCode": "vip"}], "limits": {"budget": {"points": 10}}}, "limits"),
        ({"effects": []}, "effects"),
        ({"limits": {"budget": {"count": 10}}}, "limits"),  # points without a points budget (issue 25)
    ],
)
def test_inconsistent_campaigns_are_refused_on_the_field_at_fault(change, pointer):
    with pytest.raises(ValidationError) as refused:
        CampaignInput.model_validate({**BASE, **change})
    assert refused.value.errors()[0]["loc"][0] == pointer


def test_first_purchase_is_only_the_first_and_registration_only_registration():
    first = CampaignInput.model_validate({**BASE, "trigger": {"type": "firstPurchase"}}).trigger
    assert triggered_by(first, order(first_purchase=True)) and not triggered_by(first, order())
    registration = CampaignInput.model_validate(BASE).trigger
    assert not triggered_by(registration, order(first_purchase=True))


def test_order_conditions_name_the_first_that_fails():
    conditions = OrderConditions(min_amount=Decimal("300"), channels=["POS"], payment_methods=["1001"])
    assert order_misses(conditions, order(amount=Decimal("299.99"), channel="POS"), True) == "amount"
    assert order_misses(conditions, order(amount=Decimal(300), channel="WEB"), True) == "channel"
    paid_by_card = order(amount=Decimal(300), channel="POS", payment_methods=frozenset({"2001"}))
    assert order_misses(conditions, paid_by_card, True) == "paymentMethod"
    paid = order(amount=Decimal(300), channel="POS", payment_methods=frozenset({"1001", "2001"}))
    assert order_misses(conditions, paid, True) is None
    assert order_misses(OrderConditions(store_group_code="offline"), paid, False) == "store"


def test_member_conditions_read_tier_tags_and_registration():
    conditions = MemberConditions(tier_codes=["gold"], tag_codes=["vip", "new"], registration_channels=["POS"])
    profile = {"tier": {"code": "gold"}, "channel": "POS"}
    assert member_misses(conditions, profile, {"vip", "new", "x"}) is None
    assert member_misses(conditions, profile, {"vip"}) == "tags"
    assert member_misses(conditions, {**profile, "tier": {"code": "silver"}}, {"vip", "new"}) == "tier"
    assert member_misses(conditions, {**profile, "channel": "WEB"}, {"vip", "new"}) == "registrationChannel"


def test_a_limit_counts_in_the_calendar_period_of_the_program():
    late = datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC: still the 31st in Shanghai
    assert limit_period(PerMemberLimit(period="day"), late, SHANGHAI)[0] == "2026-12-31"
    assert limit_period(PerMemberLimit(period="month"), late, SHANGHAI)[0] == "2026-12"
    assert limit_period(PerMemberLimit(period="ever"), late, SHANGHAI) == ("ever", None)


def test_points_are_split_over_lines_by_what_each_paid_and_add_up():
    assert share_by(40, {1: Decimal(300), 2: Decimal(100)}) == {1: 30, 2: 10}
    assert share_by(10, {1: Decimal(1), 2: Decimal(1), 3: Decimal(1)}) == {1: 4, 2: 3, 3: 3}
    assert share_by(7, {1: Decimal(0), 2: Decimal(0)}) == {1: 7}  # nothing paid: all on the first line
    assert sum(share_by(101, {1: Decimal("33.33"), 2: Decimal("66.67")}).values()) == 101


def bonus(**effect) -> OrderPoints:
    return OrderPoints.model_validate({"type": "orderPoints", "pointGroupCode": "points", **effect})


PAID = {1: Decimal("300"), 2: Decimal("100"), 3: Decimal("0.99")}
BASE_POINTS = {1: 300, 2: 100}  # line 3 earned nothing


def test_double_points_are_the_orders_points_in_the_group_once_more_shared_as_they_were_earned():
    assert bonus(multiplier="2").bonus(BASE_POINTS, PAID, None) == (400, {1: Decimal(300), 2: Decimal(100)})
    points, weights = bonus(multiplier="1.25").bonus(BASE_POINTS, PAID, {2, 3})
    assert (points, weights) == (25, {2: Decimal(100)})  # only the group's lines; line 3 earned none


def test_points_per_yuan_count_what_the_lines_paid_and_drop_the_fraction():
    assert bonus(pointsPerYuan="0.5").bonus(BASE_POINTS, PAID, None)[0] == 200  # 400.99 x 0.5 = 200.495
    assert bonus(pointsPerYuan="3", productGroupCode="snacks").bonus(BASE_POINTS, PAID, {1})[0] == 900
    assert bonus(pointsPerYuan="3", productGroupCode="snacks").bonus(BASE_POINTS, PAID, set())[0] == 0


def test_a_fixed_bonus_is_once_per_order_and_shared_by_what_each_line_paid():
    points, weights = bonus(fixedPoints=200).bonus(BASE_POINTS, PAID, None)
    assert (points, share_by(points, weights)) == (200, {1: 150, 2: 50, 3: 0})


def test_the_caps_take_the_smaller_of_the_orders_and_what_is_left_of_the_members():
    effect = bonus(pointsPerYuan="1", maxPerOrder=100, maxPerMember=150)
    assert [capped(400, effect, so_far) for so_far in (0, 100, 150, 170)] == [100, 50, 0, 0]
    assert capped(400, bonus(multiplier="2"), 10_000) == 400


@pytest.mark.parametrize(
    ("effect", "pointer"),
    [
        ({"multiplier": "2", "fixedPoints": 5}, "multiplier"),
        ({}, "multiplier"),
        ({"multiplier": "1"}, "multiplier"),  # no more points is no promotion
        ({"fixedPoints": 5, "productGroupCode": "snacks"}, "productGroupCode"),
    ],
)
def test_an_order_points_effect_is_exactly_one_kind_of_bonus(effect, pointer):
    with pytest.raises(ValidationError) as refused:
        bonus(**effect)
    assert pointer in str(refused.value)


def test_a_birthday_run_reads_the_day_or_on_the_first_the_month_and_29_february_on_the_28th():
    from datetime import date

    day, month = BirthdayTrigger(type="birthday"), BirthdayTrigger(type="birthday", on="month")
    assert birthday_days(day, date(2026, 12, 2)) == [(12, "02#")]
    assert birthday_days(day, date(2027, 2, 28)) == [(2, "28#"), (2, "29#")]  # no 29th in 2027
    assert birthday_days(day, date(2028, 2, 28)) == [(2, "28#")]  # 2028 has one
    assert birthday_days(month, date(2026, 12, 1)) == [(12, "")]
    assert birthday_days(month, date(2026, 12, 2)) is None


def test_a_birthday_campaign_gives_once_a_year_unless_it_says_otherwise():
    body = {**BASE, "trigger": {"type": "birthday"}}
    assert CampaignInput.model_validate(body).limits.per_member.period == "year"
    limited = {**body, "limits": {"perMember": {"count": 1, "period": "ever"}, "budget": {"points": 100}}}
    assert CampaignInput.model_validate(limited).limits.per_member.period == "ever"


def test_tier_change_and_behaviour_triggers_name_what_they_wait_for():
    from loyalty.domain.campaigns import BehaviourTrigger, TierChangeTrigger

    at = datetime(2026, 12, 2, 9, tzinfo=SHANGHAI)
    upgrade = Occasion("tierChange", "tier:r1", at, tier_code="gold", tier_change="upgrade")
    downgrade = Occasion("tierChange", "tier:r2", at, tier_code="gold", tier_change="downgrade")
    into_gold = TierChangeTrigger(type="tierChange", toTierCodes=["gold"])
    assert (triggered_by(into_gold, upgrade), triggered_by(into_gold, downgrade)) == (True, False)
    assert not triggered_by(TierChangeTrigger(type="tierChange", toTierCodes=["platinum"]), upgrade)
    check_in = Occasion("behaviour", "behaviour:c1", at, behaviour_type="checkIn")
    assert triggered_by(BehaviourTrigger(type="behaviour", behaviourTypes=["checkIn", "share"]), check_in)
    assert not triggered_by(BehaviourTrigger(type="behaviour", behaviourTypes=["share"]), check_in)
    assert not triggered_by(into_gold, check_in)


def test_a_budget_split_over_shards_and_summed_back():
    from loyalty.domain.campaigns import Budget
    from loyalty.services.campaigns import guards

    budget = Budget(points=1001, count=10, shards=4)
    items = guards.budget_items({"PK": "T#demo#CAMPAIGN#HD2026120001", "campaignId": "HD2026120001"}, budget)
    assert [i["SK"] for i in items] == ["BUDGET", "BUDGET#1", "BUDGET#2", "BUDGET#3"]
    assert [(i["remainingPoints"], i["remainingCount"]) for i in items] == [(251, 3), (250, 3), (250, 2), (250, 2)]
    items[0] |= {"launchedAt": "2026-12-06T10:00:00+00:00", "shardsDone": 8, "skipped": 1, "skipped_limit": 1}
    items[2] |= {"participations": 3, "pointsGranted": 300, "skipped": 2, "skipped_limit": 2}
    total = guards.merged(items)
    assert (total["remainingPoints"], total["remainingCount"], total["participations"]) == (1001, 10, 3)
    assert (total["skipped"], total["skipped_limit"], total["shardsDone"], total["active"]) == (3, 3, 8, True)
    assert sorted(guards.shard_order(budget)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("conditions", "profile", "missed"),
    [
        ({}, {"employee": True, "testData": True}, None),  # both take part unless a campaign says otherwise
        ({"employees": "exclude"}, {"employee": True}, "employees"),
        ({"employees": "only"}, {}, "employees"),
        ({"employees": "only"}, {"employee": True}, None),
        ({"testMembers": "exclude"}, {"testData": True}, "testMembers"),
        ({"testMembers": "only"}, {"testData": False}, "testMembers"),
    ],
)
def test_employees_and_test_members_take_part_as_the_campaign_says(conditions, profile, missed):
    """Issue 25 (D-131)."""
    rules = MemberConditions.model_validate(conditions)
    assert member_misses(rules, {"tier": {"code": "base"}, **profile}, set()) == missed


def test_rules_added_for_requests_do_not_refuse_what_was_stored_before_them():
    """D-127: a campaign written before the points-budget rule and the date bounds still loads from the table
    (an engine that could not read it would fail every event), while a request with it is refused."""
    old = {**BASE, "endsAt": "9999-12-31T00:00:00", "limits": {}}
    with pytest.raises(ValidationError) as refused:
        CampaignInput.model_validate(old)
    assert {e["loc"][0] for e in refused.value.errors()} <= {"endsAt", "limits"}
    assert CampaignInput.stored(old).ends_at.year == 9999
