"""Return arithmetic (§8.5, behaviours 44-47): proportional, floor, the last return takes the rest."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from loyalty.domain.returns import ReturnSubmission, points_to_reverse, share_to_give_back


def test_a_whole_line_reverses_everything_it_earned():
    # the spec's sample: 500 积分 and 1 成长值 on one line of quantity 1
    assert points_to_reverse(500, Decimal(1), Decimal(0), Decimal(1), 0) == 500
    assert points_to_reverse(1, Decimal(1), Decimal(0), Decimal(1), 0) == 1


def test_partial_returns_floor_and_the_last_one_reverses_exactly_what_is_left():
    reversed_so_far, returned = 0, Decimal(0)
    steps = []
    for _ in range(3):  # 100 points on 3 units, returned one at a time
        step = points_to_reverse(100, Decimal(3), returned, Decimal(1), reversed_so_far)
        steps.append(step)
        reversed_so_far += step
        returned += 1
    assert steps == [33, 33, 34] and reversed_so_far == 100


def test_returning_more_than_was_bought_reverses_no_more_than_was_earned():
    assert points_to_reverse(100, Decimal(2), Decimal(1), Decimal(5), 50) == 50


def test_used_points_come_back_in_proportion_then_in_full():
    assert share_to_give_back(300, Decimal(1000), Decimal(400), 0, whole=False) == 120
    assert share_to_give_back(300, Decimal(1000), Decimal(1000), 120, whole=False) == 180
    assert share_to_give_back(300, Decimal(1000), Decimal(10), 120, whole=True) == 180


@pytest.mark.parametrize(
    "body",
    [
        {"wholeOrder": True, "lines": [{"lineNo": 1, "quantity": "1"}]},
        {"wholeOrder": False, "lines": []},
        {"lines": [{"lineNo": 1, "quantity": "1"}, {"lineNo": 1, "quantity": "2"}]},
    ],
)
def test_a_return_names_lines_or_the_whole_order(body):
    with pytest.raises(ValidationError):
        ReturnSubmission.model_validate(
            {"returnNo": "r1", "originalOrderNo": "o1", "returnedAt": "2021-03-24T10:00:00+08:00", **body}
        )
