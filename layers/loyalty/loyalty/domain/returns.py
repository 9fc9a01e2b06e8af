"""Returns (退单): what a channel posts, and how much of each line's points a return reverses (§8.5).

A line's points are reversed in proportion to the quantity returned so far, rounded down, so the last
return of a line reverses exactly what is left: over all returns, a line gives back precisely what it
earned.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any, ClassVar

from pydantic import AwareDatetime, Field, model_validator

from loyalty.domain.validity import CamelModel, invalid_field

ORDER_NO = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class ReturnLine(CamelModel):
    line_no: int = Field(ge=1, le=10_000)
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=3)


class ReturnSubmission(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "returnNo": "R202103230000000041",
            "originalOrderNo": "roy202103230000000041",
            "returnedAt": "2026-11-21T10:00:00+08:00",
            "lines": [{"lineNo": 1, "quantity": "1"}],
        }
    ]
    return_no: str = Field(pattern=ORDER_NO, description="Unique per channel")
    original_order_no: str = Field(pattern=ORDER_NO, description="原交易单号, an order of the same channel")
    returned_at: AwareDatetime
    whole_order: bool = Field(default=False, description="Return every line still held")
    lines: list[ReturnLine] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _lines_or_whole(self) -> ReturnSubmission:
        if self.whole_order == bool(self.lines):
            raise invalid_field("ReturnSubmission", "lines", "give lines, or wholeOrder true without lines", None)
        numbers = [line.line_no for line in self.lines]
        if len(numbers) != len(set(numbers)):
            raise invalid_field("ReturnSubmission", "lines", "line numbers must be distinct", numbers)
        return self


class ReturnAccepted(CamelModel):
    return_id: str
    return_no: str
    original_order_no: str
    status: str


def points_to_reverse(
    earned: int, quantity: Decimal, returned_before: Decimal, returned_now: Decimal, reversed_before: int
) -> int:
    """Points this return reverses on one line: earned x returned so far / quantity, floor; all that is
    left when the line is now wholly returned."""
    returned = min(returned_before + returned_now, quantity)
    if returned >= quantity:
        return earned - reversed_before
    target = int((Decimal(earned) * returned / quantity).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, target - reversed_before)


def share_to_give_back(used: int, paid_total: Decimal, returned_paid: Decimal, given_before: int, whole: bool) -> int:
    """Points the order paid with that this return gives back: in proportion to the paid amount
    returned so far (floor), all that is left once the whole order has come back."""
    if whole or paid_total <= 0:
        return used - given_before
    target = int((Decimal(used) * min(returned_paid / paid_total, Decimal(1))).to_integral_value(rounding=ROUND_FLOOR))
    return max(0, target - given_before)
