"""Coupon rules of social-hub §9 and anxin A.8 as pure functions, with the spec's numbers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from loyalty.domain.accrual import Catalog
from loyalty.domain.config import ProductGroup, StoreGroup
from loyalty.domain.coupons import (
    AfterReceipt,
    AfterReceiptUntil,
    CouponOrder,
    CouponRuleInput,
    CouponState,
    CouponTerms,
    FixedDates,
    TimeWindow,
    new_code,
    period_labels,
    split,
    well_formed,
    window_at_issue,
)
from loyalty.domain.coupons import check as check_coupon

ZONE = ZoneInfo("Asia/Shanghai")
WEDNESDAY_NOON = datetime(2026, 11, 18, 12, 0, tzinfo=ZONE)
CATALOG = Catalog(
    store_groups={"offline": StoreGroup(code="offline", name="线下", description="实体")},
    product_groups={"cakes": ProductGroup(code="cakes", name="蛋糕", description="d")},
    members=frozenset(
        {("storeGroup", "offline", "SH001"), ("storeGroup", "offline", "KS003"), ("productGroup", "cakes", "IC0600")}
    ),
)


def coupon(**terms) -> CouponState:
    return CouponState(
        code="1086321312752127",
        status="issued",
        owner_id="M1",
        valid_from=datetime(2026, 11, 1, tzinfo=ZONE),
        valid_until=datetime(2026, 11, 30, 23, 59, 59, tzinfo=ZONE),
        terms=CouponTerms.model_validate(terms),
    )


def order(amount: str, *, store: str = "SH001", codes: list[str] | None = None, lines=None) -> CouponOrder:
    return CouponOrder.model_validate(
        {
            "codes": codes or ["1086321312752127"],
            "orderNo": "A1",
            "storeCode": store,
            "orderAmount": amount,
            "lines": lines or [],
        }
    )


def reasons(verdict) -> list[str]:
    return [reason.code for reason in verdict.reasons]


def test_spend_1000_take_500_is_refused_on_999_99_and_gives_500_on_1000():
    full_reduction = coupon(type="amountOff", amountOff="500", threshold="1000")
    refused = check_coupon(full_reduction, order("999.99"), WEDNESDAY_NOON, ZONE, CATALOG)
    assert not refused.usable and reasons(refused) == ["BELOW_THRESHOLD"] and refused.discount == 0
    accepted = check_coupon(full_reduction, order("1000"), WEDNESDAY_NOON, ZONE, CATALOG)
    assert accepted.usable and accepted.discount == Decimal("500")


def test_spend_100_pay_80_percent_gives_20_off_100():
    eighty_percent = coupon(type="discount", payablePercent=80, threshold="100")
    verdict = check_coupon(eighty_percent, order("100"), WEDNESDAY_NOON, ZONE, CATALOG)
    assert verdict.usable and verdict.discount == Decimal("20.00")
    assert check_coupon(eighty_percent, order("99.99"), WEDNESDAY_NOON, ZONE, CATALOG).discount == 0


def test_a_discount_is_rounded_half_up_to_the_fen():
    verdict = check_coupon(coupon(type="discount", payablePercent=85), order("33.33"), WEDNESDAY_NOON, ZONE, CATALOG)
    assert verdict.discount == Decimal("5.00")  # 33.33 x 15% = 4.9995


def test_an_amount_off_never_exceeds_the_order():
    verdict = check_coupon(coupon(type="amountOff", amountOff="10"), order("6.50"), WEDNESDAY_NOON, ZONE, CATALOG)
    assert verdict.discount == Decimal("6.50")


def test_outside_the_store_group_the_weekday_or_the_time_window_each_reason_is_named():
    limited = coupon(
        type="amountOff",
        amountOff="10",
        storeGroupCode="offline",
        usableWeekdays=[6, 7],
        usableTime={"start": "14:00:00", "end": "17:00:00"},
    )
    verdict = check_coupon(limited, order("50", store="WEB"), WEDNESDAY_NOON, ZONE, CATALOG)
    assert reasons(verdict) == ["OUTSIDE_TIME_WINDOW", "WEEKDAY_NOT_USABLE", "STORE_NOT_IN_SCOPE"]
    saturday_3pm = datetime(2026, 11, 21, 15, 0, tzinfo=ZONE)
    assert check_coupon(limited, order("50", store="KS003"), saturday_3pm, ZONE, CATALOG).usable


def test_the_product_scope_sets_the_amount_a_threshold_and_discount_see():
    cakes_only = coupon(type="amountOff", amountOff="50", threshold="200", productGroupCode="cakes")
    lines = [{"sku": "IC0600", "amount": "150"}, {"sku": "TD0001", "amount": "100"}]
    verdict = check_coupon(cakes_only, order("250", lines=lines), WEDNESDAY_NOON, ZONE, CATALOG)
    assert reasons(verdict) == ["BELOW_THRESHOLD"]  # 150 of cakes, although the order is 250
    none_in_scope = check_coupon(
        cakes_only, order("100", lines=[{"sku": "TD0001", "amount": "100"}]), WEDNESDAY_NOON, ZONE, CATALOG
    )
    assert "NO_PRODUCT_IN_SCOPE" in reasons(none_in_scope)


def test_an_exchange_coupon_takes_one_unit_of_its_product():
    cake = coupon(type="exchange", exchangeProductCode="IC0600")
    lines = [{"sku": "IC0600", "quantity": "2", "amount": "396"}]
    assert check_coupon(cake, order("396", lines=lines), WEDNESDAY_NOON, ZONE, CATALOG).discount == Decimal("198.00")
    missing = check_coupon(cake, order("10", lines=[{"sku": "TD0001", "amount": "10"}]), WEDNESDAY_NOON, ZONE, CATALOG)
    assert reasons(missing) == ["EXCHANGE_PRODUCT_MISSING"]


def test_a_coupon_that_does_not_stack_is_refused_beside_another_code():
    alone = coupon(type="amountOff", amountOff="10")
    verdict = check_coupon(
        alone, order("100", codes=["1086321312752127", "1000000000000009"]), WEDNESDAY_NOON, ZONE, CATALOG
    )
    assert reasons(verdict) == ["NOT_STACKABLE"]
    stacking = coupon(type="amountOff", amountOff="10", stackable=True)
    assert check_coupon(
        stacking, order("100", codes=["1086321312752127", "1000000000000009"]), WEDNESDAY_NOON, ZONE, CATALOG
    ).usable


def test_status_and_validity_are_checked_even_before_any_sweep():
    used = CouponState(
        "1086321312752127", "used", "M1", WEDNESDAY_NOON, WEDNESDAY_NOON, coupon(type="amountOff", amountOff="1").terms
    )
    verdict = check_coupon(used, order("10"), datetime(2026, 11, 19, 12, tzinfo=ZONE), ZONE, CATALOG)
    assert reasons(verdict) == ["STATUS_USED", "VALIDITY_ENDED"]


def test_the_three_validity_shapes_at_issue():
    received = datetime(2026, 11, 22, 15, 30, tzinfo=ZONE)
    assert window_at_issue(FixedDates(start_date=date(2021, 6, 9), end_date=date(2021, 6, 12)), received, ZONE) == (
        datetime(2021, 6, 9, tzinfo=ZONE),
        datetime(2021, 6, 12, 23, 59, 59, 999999, tzinfo=ZONE),
    )
    now_for_3_days = window_at_issue(AfterReceipt(starts_after_days=0, days=3), received, ZONE)
    assert now_for_3_days == (received, datetime(2026, 11, 24, 23, 59, 59, 999999, tzinfo=ZONE))
    next_day_until = window_at_issue(
        AfterReceiptUntil(starts_after_days=1, end_date=date(2026, 12, 31)), received, ZONE
    )
    assert next_day_until == (
        datetime(2026, 11, 23, tzinfo=ZONE),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=ZONE),
    )


def test_codes_are_16_digits_with_a_check_digit():
    codes = {new_code() for _ in range(1000)}
    assert len(codes) == 1000 and all(len(c) == 16 and c.isdigit() and well_formed(c) for c in codes)
    code = codes.pop()
    assert not well_formed(code[:-1] + str((int(code[-1]) + 1) % 10))


def test_claim_periods_are_calendar_periods_in_the_program_zone():
    labels = period_labels(datetime(2026, 6, 30, 16, 30, tzinfo=ZoneInfo("UTC")), ZONE)  # 00:30 on 1 July there
    assert {k: v[0] for k, v in labels.items()} == {
        "D": "2026-07-01",
        "W": "2026-W27",
        "M": "2026-07",
        "H": "2026-H2",
        "Y": "2026",
    }


def test_stock_splits_into_shares_that_add_up():
    assert split(200, 10) == [20] * 10
    assert split(7, 3) == [3, 2, 2] and sum(split(1_000_003, 10)) == 1_000_003


RULE = {
    "name": "满1000减500",
    "type": "amountOff",
    "amountOff": "500",
    "threshold": "1000",
    "programCode": "DEMO",
    "costCenterCode": "marketing",
    "totalStock": 200,
    "validity": {"type": "afterReceipt", "days": 30},
}


def test_a_rule_needs_the_benefit_of_its_type_and_only_that():
    assert CouponRuleInput.model_validate(RULE).terms().amount_off == Decimal("500")
    without_amount = {k: v for k, v in RULE.items() if k != "amountOff"}
    with pytest.raises(ValidationError, match="payablePercent"):
        CouponRuleInput.model_validate({**without_amount, "type": "discount"})
    with pytest.raises(ValidationError, match="amountOff"):
        CouponRuleInput.model_validate({**RULE, "type": "discount", "payablePercent": 80})
    with pytest.raises(ValidationError, match="a limit is -1"):
        CouponRuleInput.model_validate({**RULE, "claimLimits": {"perDay": 0}})


def test_a_time_window_is_a_time_of_day_in_the_program_zone_without_an_offset():
    window = TimeWindow.model_validate({"start": "14:00:00", "end": "17:00"})
    assert (window.start.isoformat(), window.end.isoformat()) == ("14:00:00", "17:00:00")
    with pytest.raises(ValidationError, match="without an offset"):
        TimeWindow.model_validate({"start": "00:00:00Z"})  # an offset was a 500: aware and naive times compared
