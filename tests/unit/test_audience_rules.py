"""The audience tree (群组, social-hub §10.3): what each condition reads, and/or/not, windows in the program's
calendar, and that costly facts (the timeline, another audience) are read only when they decide."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from loyalty.domain.audiences import AudienceInput, MemberFacts, Window, matches

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=SHANGHAI)


def facts(profile: dict | None = None, tags: set[str] = frozenset(), points: int = 0, activities: list | None = None):
    reads: list[str] = []

    def load_activities(starts, ends):
        reads.append("timeline")
        return [
            a for a in activities or [] if (starts is None or a["at"] >= starts) and (ends is None or a["at"] < ends)
        ]

    def load_membership(audience_id):
        reads.append(audience_id)
        return audience_id == "01JAAAAAAAAAAAAAAAAAAAAAAA"

    member = {"tier": {"code": "gold"}, "status": "active", **(profile or {})}
    return MemberFacts(NOW, SHANGHAI, member, set(tags), {"points": points}, load_activities, load_membership), reads


def tree(condition: dict):
    return AudienceInput.model_validate({"programCode": "DEMO", "name": "x", "condition": condition}).condition


def test_and_or_not_over_tier_and_tags():
    condition = tree(
        {
            "all": [
                {"any": [{"attribute": "tier", "values": ["gold"]}, {"attribute": "tags", "values": ["vip"]}]},
                {"not": {"attribute": "tags", "values": ["blacklist", "staff"]}},
            ]
        }
    )
    assert matches(condition, facts()[0])
    assert matches(condition, facts({"tier": {"code": "base"}}, tags={"vip"})[0])
    assert not matches(condition, facts({"tier": {"code": "base"}})[0])
    assert not matches(condition, facts(tags={"staff"})[0])
    every = tree({"attribute": "tags", "values": ["vip", "staff"], "match": "all"})
    assert matches(every, facts(tags={"vip", "staff", "x"})[0]) and not matches(every, facts(tags={"vip"})[0])


@pytest.mark.parametrize(
    ("condition", "profile", "expected"),
    [
        ({"attribute": "registrationStore", "values": ["SH001"]}, {"storeCode": "SH001"}, True),
        ({"attribute": "registrationChannel", "values": ["pos"]}, {"channel": "miniProgram"}, False),
        ({"attribute": "gender", "values": ["female"]}, {"gender": "female"}, True),
        ({"attribute": "city", "values": ["上海"]}, {"address": {"city": "上海"}}, True),
        ({"attribute": "city", "values": ["上海"]}, {}, False),
        ({"attribute": "birthdayMonth", "values": [12]}, {"birthday": "1990-12-25"}, True),
        ({"attribute": "birthdayMonth", "values": [12]}, {}, False),
        ({"attribute": "marketingOptIn", "value": True}, {"marketingOptIn": True}, True),
        ({"attribute": "marketingOptIn", "value": False}, {}, True),  # never answered: not a yes
        ({"attribute": "status", "values": ["frozen"]}, {"status": "frozen"}, True),
        # employees and test members, to include or leave out (issue 25, D-131)
        ({"attribute": "employee", "value": True}, {"employee": True}, True),
        ({"attribute": "employee", "value": False}, {"employee": True}, False),
        ({"not": {"attribute": "testData", "value": True}}, {"testData": True}, False),
        ({"not": {"attribute": "testData", "value": True}}, {}, True),
    ],
)
def test_profile_conditions(condition, profile, expected):
    assert matches(tree(condition), facts(profile)[0]) is expected


def test_registered_and_last_purchase_windows_are_days_of_the_program_calendar():
    # 2026-11-30 23:30 in Shanghai is 15:30 UTC: within "November" locally
    registered = {"registeredAt": "2026-11-30T15:30:00+00:00", "lastPurchaseAt": "2026-09-01T02:00:00+00:00"}
    november = tree({"attribute": "registered", "window": {"from": "2026-11-01", "to": "2026-11-30"}})
    assert matches(november, facts(registered)[0])
    assert not matches(november, facts({"registeredAt": "2026-11-30T16:30:00+00:00"})[0])  # 1 Dec 00:30 local
    dormant = tree({"not": {"attribute": "lastPurchase", "window": {"lastDays": 90}}})
    assert matches(dormant, facts(registered)[0])  # 96 days before NOW
    assert matches(dormant, facts({})[0])  # never bought: no purchase in the window either
    assert not matches(dormant, facts({"lastPurchaseAt": "2026-11-20T02:00:00+00:00"})[0])


def test_points_and_activity_measures():
    assert matches(tree({"attribute": "points", "pointGroupCode": "points", "min": 300}), facts(points=300)[0])
    assert not matches(tree({"attribute": "points", "pointGroupCode": "points", "max": 299}), facts(points=300)[0])
    history = [
        {"type": "purchase", "amount": Decimal("600.00"), "at": datetime(2026, 11, 20, tzinfo=SHANGHAI)},
        {"type": "purchase", "amount": Decimal("450.50"), "at": datetime(2026, 12, 1, tzinfo=SHANGHAI)},
        {"type": "behaviour", "behaviourType": "signIn", "at": datetime(2026, 12, 5, tzinfo=SHANGHAI)},
    ]
    spent = tree({"attribute": "spend", "window": {"lastDays": 30}, "min": "1000"})
    assert matches(spent, facts(activities=history)[0])  # 1,050.50 in the last 30 days
    assert not matches(
        tree({"attribute": "spend", "window": {"lastDays": 10}, "min": "1000"}), facts(activities=history)[0]
    )
    two_orders = tree({"attribute": "orders", "window": {"from": "2026-11-01"}, "min": 2, "max": 2})
    assert matches(two_orders, facts(activities=history)[0])
    signed_in = tree({"attribute": "behaviour", "behaviourType": "signIn", "window": {"lastDays": 7}})
    assert matches(signed_in, facts(activities=history)[0])  # "did" by default: at least once


def test_the_timeline_and_other_audiences_are_read_only_when_they_decide():
    condition = tree(
        {
            "all": [
                {"attribute": "orders", "window": {"lastDays": 30}},
                {"attribute": "audience", "audienceId": "01JAAAAAAAAAAAAAAAAAAAAAAA"},
                {"attribute": "tier", "values": ["platinum"]},
            ]
        }
    )
    member, reads = facts()
    assert not matches(condition, member) and reads == []  # the tier said no first
    member, reads = facts({"tier": {"code": "platinum"}})
    assert not matches(condition, member) and reads == ["01JAAAAAAAAAAAAAAAAAAAAAAA", "timeline"]


@pytest.mark.parametrize(
    "condition",
    [
        {"attribute": "orders", "window": {}},
        {"attribute": "orders", "window": {"from": "2026-12-01", "lastDays": 3}},
        {"attribute": "registered", "window": {"from": "2026-12-02", "to": "2026-12-01"}},
        {"attribute": "behaviour", "window": {"lastDays": 3}},
        {"attribute": "nickname", "values": ["x"]},
        {"all": []},
        {"not": {"not": {"not": {"not": {"not": {"not": {"attribute": "tier", "values": ["gold"]}}}}}}},
        {"any": [{"attribute": "tier", "values": ["gold"]}] * 31},
    ],
)
def test_shapes_that_are_refused(condition):
    with pytest.raises(ValidationError):
        tree(condition)


def test_a_window_of_last_days_counts_back_from_the_evaluation():
    starts, ends = Window.model_validate({"lastDays": 90}).instants(NOW, SHANGHAI)
    assert (ends - starts).days == 90 and ends == NOW
