"""Spending points (积分兑换) and adjusting them by hand (人工积分调整): requests and what the API shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.ledger import RecordType
from loyalty.domain.validity import CamelModel, ExpiringValidity, FixedPeriod, View, invalid_field

MAX_POINTS = 100_000_000


class RedemptionRequest(CamelModel):
    """Spend points for a gift, a coupon or to pay (part of) an order. Paying an order is recorded as
    积分兑换礼品 so the account formulas hold (issue 3)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"pointGroupCode": "points", "points": 300, "purpose": "gift", "reference": "GIFT-20261122-01"}
    ]

    point_group_code: str = Field(pattern=CODE_PATTERN)
    points: int = Field(ge=1, le=MAX_POINTS)
    purpose: Literal["gift", "coupon", "orderPayment"]
    reference: str | None = Field(default=None, max_length=100, description="Gift, coupon rule or other reference")
    order_no: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")

    @property
    def record_type(self) -> RecordType:
        return RecordType.REDEEM_COUPON if self.purpose == "coupon" else RecordType.REDEEM_GIFT


class AdjustmentRequest(CamelModel):
    """An operator's manual adjustment: positive adds a lot, negative spends first in, first out."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"pointGroupCode": "points", "points": 200, "reason": "客诉补偿", "countsTowardUpgrade": True}
    ]

    point_group_code: str = Field(pattern=CODE_PATTERN)
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS, description="Signed, not zero")
    reason: str = Field(min_length=1, max_length=500)
    cost_center_code: str | None = Field(default=None, pattern=CODE_PATTERN)
    counts_toward_upgrade: bool = False
    validity: ExpiringValidity = Field(
        default_factory=lambda: FixedPeriod(days=365), description="For an increase: when the added points expire"
    )

    @model_validator(mode="after")
    def _not_zero(self) -> AdjustmentRequest:
        if self.points == 0:
            raise invalid_field("AdjustmentRequest", "points", "an adjustment changes points", 0)
        return self


class RelationView(View):
    """One lot a spend drew from (积分关系): the source record and how many points."""

    record_id: str
    points: int
    expires_at: datetime


class SpendView(View):
    id: str
    type: RecordType
    point_group_code: str
    points: int
    purpose: str | None = None
    reference: str | None = None
    order_no: str | None = None
    reason: str | None = None
    counts_toward_upgrade: bool = Field(default=False, description="An adjustment that moves 保级累计积分")
    status: Literal["active", "cancelled"]
    created_at: datetime
    cancelled_at: datetime | None = None
    relations: list[RelationView]
