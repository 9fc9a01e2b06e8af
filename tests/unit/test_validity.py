"""Validity periods (tiers now; lots and coupons later): when does a period that starts now end?"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from loyalty.domain.validity import END_OF_DAY, FixedDate, FixedPeriod, NoExpiry, Validity, end_of_validity

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_fixed_period_of_365_days_ends_at_the_end_of_the_365th_day_in_the_program_zone():
    # 2026-11-22 20:30 UTC is already 2026-11-23 04:30 in Shanghai
    start = datetime(2026, 11, 22, 20, 30, tzinfo=UTC)
    end = end_of_validity(FixedPeriod(days=365), start, SHANGHAI)
    assert end == datetime(2027, 11, 23, 23, 59, 59, 999999, tzinfo=SHANGHAI)


def test_a_fixed_date_ends_on_month_and_day_x_years_on():
    start = datetime(2021, 3, 23, 14, 52, tzinfo=SHANGHAI)  # the spec's sample record: valid to 2024-01-01 23:59:59
    assert end_of_validity(FixedDate(years=3, month=1, day=1), start, SHANGHAI) == datetime(
        2024, 1, 1, 23, 59, 59, 999999, tzinfo=SHANGHAI
    )
    assert end_of_validity(FixedDate(years=0, month=12, day=31), start, SHANGHAI).date().isoformat() == "2021-12-31"


def test_february_29_falls_back_to_the_28th_in_common_years():
    start = datetime(2026, 6, 1, tzinfo=SHANGHAI)
    assert end_of_validity(FixedDate(years=1, month=2, day=29), start, SHANGHAI).date().isoformat() == "2027-02-28"
    assert end_of_validity(FixedDate(years=2, month=2, day=29), start, SHANGHAI).date().isoformat() == "2028-02-29"


def test_no_expiry_never_ends():
    assert end_of_validity(NoExpiry(), datetime(2026, 1, 1, tzinfo=SHANGHAI), SHANGHAI) is None
    assert END_OF_DAY.microsecond == 999999


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "fixedDate", "years": 1, "month": 2, "day": 30},
        {"type": "fixedDate", "years": 1, "month": 4, "day": 31},
        {"type": "fixedPeriod", "days": 0},
        {"type": "sometimes"},
    ],
)
def test_impossible_validities_are_refused(raw):
    with pytest.raises(ValidationError):
        TypeAdapter(Validity).validate_python(raw)
