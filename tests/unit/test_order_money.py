"""Points only for money paid (issue 25): the audit's one-yuan order with `pointsAmount: 99999` earned 99,999
points and platinum. Each rule has its code and points at its field."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.domain.errors import InvalidInput
from loyalty.domain.orders import OrderSubmission


def order(lines: list[dict[str, Any]], payments: list[dict[str, Any]] | None = None) -> OrderSubmission:
    return OrderSubmission.model_validate(
        {
            "programCode": "DEMO",
            "orderNo": "A1",
            "storeCode": "SH001",
            "orderedAt": "2026-11-20T14:52:00+08:00",
            "lines": [{"sku": "TD0001", "quantity": "1", **line} for line in lines],
            "payments": payments or [],
        }
    )


def refusal(submission: OrderSubmission) -> tuple[str, str | None]:
    with pytest.raises(InvalidInput) as raised:
        submission.check_money()
    return raised.value.code, raised.value.field


def test_a_one_yuan_line_cannot_earn_on_99999():
    one_yuan = order([{"lineNo": 1, "receivable": "1", "paid": "1", "pointsAmount": "99999"}])
    assert refusal(one_yuan) == ("POINTS_AMOUNT_OVER_PAID", "lines/0/pointsAmount")


def test_a_line_may_earn_on_all_it_paid_or_less_and_not_a_fen_more():
    order([{"lineNo": 1, "receivable": "500", "paid": "500", "pointsAmount": "500"}]).check_money()
    order([{"lineNo": 1, "receivable": "500", "paid": "450", "pointsAmount": "300"}]).check_money()
    over = order(
        [
            {"lineNo": 1, "receivable": "10", "paid": "10"},
            {"lineNo": 2, "receivable": "500", "paid": "450", "pointsAmount": "450.01"},
        ]
    )
    assert refusal(over) == ("POINTS_AMOUNT_OVER_PAID", "lines/1/pointsAmount")


def test_a_line_pays_at_most_its_receivable():
    assert refusal(order([{"lineNo": 1, "receivable": "100", "paid": "100.01"}])) == (
        "PAID_OVER_RECEIVABLE",
        "lines/0/paid",
    )


def test_listed_payments_add_up_to_what_the_lines_paid():
    lines = [{"lineNo": 1, "receivable": "500", "paid": "480"}, {"lineNo": 2, "receivable": "20", "paid": "20"}]
    order(lines, [{"methodCode": "1001", "amount": "400"}, {"methodCode": "1002", "amount": "100.00"}]).check_money()
    order(lines).check_money()  # no tenders listed: nothing to add up (D-119)
    short = order(lines, [{"methodCode": "1001", "amount": "499.99"}])
    assert refusal(short) == ("PAYMENTS_NOT_EQUAL_TO_PAID", "payments")
    assert refusal(order(lines, [{"methodCode": "1001", "amount": "500.01"}]))[0] == "PAYMENTS_NOT_EQUAL_TO_PAID"


def test_only_fractional_quantities_are_picked_for_the_weight_check():
    submission = order(
        [
            {"lineNo": 1, "quantity": "2", "receivable": "10", "paid": "10"},
            {"lineNo": 2, "quantity": "2.000", "receivable": "10", "paid": "10"},
            {"lineNo": 3, "quantity": "2.35", "receivable": "10", "paid": "10"},
        ]
    )
    assert [(index, line.line_no) for index, line in submission.fractional_lines()] == [(2, 3)]
