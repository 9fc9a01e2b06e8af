"""Configuration shapes and their links: what is refused before anything is written."""

from dataclasses import replace

import pytest
from pydantic import ValidationError

from loyalty.domain.config import KINDS, PointRule, ProductGroup, Ref, StoreGroup, Tier, TierRule, distinct_refs


def point_rule(**changes):
    base = {
        "code": "r",
        "name": "r",
        "pointGroupCode": "points",
        "awardMode": "amount",
        "unit": "1",
        "countsTowardUpgrade": True,
        "costCenterCode": "member",
        "validity": {"type": "fixedPeriod", "days": 365},
    }
    return PointRule.model_validate({**base, **changes})


def test_a_point_rule_references_everything_it_names_with_a_pointer_for_each():
    rule = point_rule(
        tierCodes=["gold", "gold"], storeScope={"storeGroupCode": "offline"}, productScope={"categoryCodes": ["SNACK"]}
    )
    refs = KINDS["pointRule"].refs(rule)
    assert Ref("storeGroup", "offline", "storeScope/storeGroupCode", must_be_enabled=True) in refs
    assert Ref("productCategory", "SNACK", "productScope/categoryCodes/0") in refs
    # Naming a tier twice counts it once, reported at its first place
    distinct = distinct_refs(refs)
    assert distinct[("tier", "gold")].field == "tierCodes/0"
    assert len(distinct) == 5  # point group, cost center, tier, store group, category


@pytest.mark.parametrize(
    "changes",
    [
        {"storeScope": {"storeCodes": ["SH001"], "storeGroupCode": "offline"}},
        {"productScope": {"productCodes": ["P"], "categoryCodes": ["C"]}},
        {"unit": "0"},
        {"unit": "0.001"},
        {"awardMode": "visits"},
        {"validity": {"type": "none"}},  # points always expire by rule
    ],
)
def test_a_point_rule_must_be_unambiguous(changes):
    with pytest.raises(ValidationError):
        point_rule(**changes)


def test_tier_guards_keep_one_base_tier_and_one_tier_per_order():
    base = Tier(code="base", name="普通会员", order=1, base=True)
    silver = Tier.model_validate(
        {"code": "silver", "name": "银卡", "order": 2, "validity": {"type": "fixedPeriod", "days": 365}}
    )
    assert KINDS["tier"].unique(base) == ["TIER_ORDER#0001", "BASE_TIER"]
    assert KINDS["tier"].unique(silver) == ["TIER_ORDER#0002"]


def test_tier_rule_bounds_are_half_open_and_ordered():
    assert (
        TierRule(
            code="g", name="g", tier_code="gold", point_group_code="points", lower_bound=1000, upper_bound=5000
        ).upper_bound
        == 5000
    )
    with pytest.raises(ValidationError) as refused:
        TierRule(code="g", name="g", tier_code="gold", point_group_code="points", lower_bound=1000, upper_bound=1000)
    assert refused.value.errors()[0]["loc"] == ("upperBound",)


def test_a_group_holds_its_members_in_items_of_their_own_not_in_a_list():
    with pytest.raises(ValidationError):  # the list of old is refused, not silently dropped
        StoreGroup.model_validate({"code": "g", "name": "g", "description": "d", "storeCodes": ["SH001"]})
    assert KINDS["storeGroup"].refs(StoreGroup(code="g", name="g", description="d", all_stores=True)) == []


def test_a_scope_check_asks_only_for_the_memberships_an_order_needs():
    from loyalty.domain.accrual import Catalog

    catalog = Catalog(
        store_groups={
            "offline": StoreGroup(code="offline", name="o", description="d"),
            "all": StoreGroup(code="all", name="a", description="d", all_stores=True),
        },
        product_groups={"cakes": ProductGroup(code="cakes", name="c", description="d")},
    )
    wanted = catalog.lookups("SH001", ["IC0600", "TD0001", "IC0600"], ["offline", "all", "gone"], ["cakes"])
    assert wanted == [
        ("storeGroup", "offline", "SH001"),
        ("productGroup", "cakes", "IC0600"),
        ("productGroup", "cakes", "TD0001"),
    ]  # a group of everything, or one not enabled (not in the catalog), needs no read
    found = replace(catalog, members=frozenset({("productGroup", "cakes", "IC0600")}))
    assert found.store_in("all", "SH001") and not found.store_in("offline", "SH001") and not found.store_in("gone", "x")
    assert found.product_in("cakes", "IC0600") and not found.product_in("cakes", "TD0001")


def test_the_written_out_control_and_format_ranges_are_unicodes():
    """What the API document says text may not hold is exactly what validation refuses (Unicode Cc, Cf)."""
    import unicodedata

    from loyalty.domain.validity import CONTROL_AND_FORMAT

    written = {c for low, high in CONTROL_AND_FORMAT for c in range(low, high + 1)}
    assert written == {c for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Cf")}
