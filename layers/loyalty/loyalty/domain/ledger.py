"""Point records (积分记录) and the three account formulas of spec social-hub §8.2.

Records carry a signed change: earnings positive, deductions negative. The formulas subtract magnitudes,
so with signed changes every formula is a plain sum over the types it names:

    cumulative (累计积分) = sum of changes of the CUMULATIVE types
    available  (可用积分) = sum of changes of all types
    expired    (过期积分) = -(sum of changes of EXPIRY records)

and the tier accumulator (保级累计积分) is the cumulative sum over records that count toward upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from loyalty.domain.validity import View


class RecordType(StrEnum):
    TRANSACTION = "TRANSACTION"  # 交易积分 +
    TRANSACTION_PROMOTION = "TRANSACTION_PROMOTION"  # 交易促销积分 +
    MANUAL_INCREASE = "MANUAL_INCREASE"  # 人工积分调整增加 +
    MANUAL_DECREASE = "MANUAL_DECREASE"  # 人工积分调整积分减少 -
    REDEEM_GIFT = "REDEEM_GIFT"  # 积分兑换礼品 -
    REDEEM_COUPON = "REDEEM_COUPON"  # 积分兑换优惠券 -
    BEHAVIOUR_INCREASE = "BEHAVIOUR_INCREASE"  # 行为增加积分 +
    BEHAVIOUR_DECREASE = "BEHAVIOUR_DECREASE"  # 行为减少积分 -
    RETURN_REVERSAL = "RETURN_REVERSAL"  # 退货积分冲销 -
    REDEEM_CANCEL_RETURN = "REDEEM_CANCEL_RETURN"  # 积分兑换取消积分返回 +
    EXPIRY = "EXPIRY"  # 积分过期 -


POSITIVE = {
    RecordType.TRANSACTION,
    RecordType.TRANSACTION_PROMOTION,
    RecordType.MANUAL_INCREASE,
    RecordType.BEHAVIOUR_INCREASE,
    RecordType.REDEEM_CANCEL_RETURN,
}
CUMULATIVE = {
    RecordType.TRANSACTION,
    RecordType.TRANSACTION_PROMOTION,
    RecordType.MANUAL_INCREASE,
    RecordType.MANUAL_DECREASE,
    RecordType.RETURN_REVERSAL,
    RecordType.BEHAVIOUR_INCREASE,
}
EARNING = {
    RecordType.TRANSACTION,
    RecordType.TRANSACTION_PROMOTION,
    RecordType.MANUAL_INCREASE,
    RecordType.BEHAVIOUR_INCREASE,
}  # records that open a lot of their own


@dataclass(frozen=True)
class BalanceDelta:
    cumulative: int = 0
    available: int = 0
    expired: int = 0
    qualifying: int = 0

    def __add__(self, other: BalanceDelta) -> BalanceDelta:
        return BalanceDelta(
            self.cumulative + other.cumulative,
            self.available + other.available,
            self.expired + other.expired,
            self.qualifying + other.qualifying,
        )


def delta(record_type: RecordType, change: int, counts_toward_upgrade: bool) -> BalanceDelta:
    """What one record does to its account, by the formulas of §8.2 (and §5.1 for the accumulator)."""
    if (change > 0) != (record_type in POSITIVE) or change == 0:
        raise ValueError(f"a {record_type.value} record cannot change points by {change}")
    cumulative = change if record_type in CUMULATIVE else 0
    return BalanceDelta(
        cumulative=cumulative,
        available=change,
        expired=-change if record_type is RecordType.EXPIRY else 0,
        qualifying=cumulative if counts_toward_upgrade else 0,
    )


def balances(records: list[tuple[RecordType, int, bool]]) -> BalanceDelta:
    """The account implied by its records: the formulas, summed. Reconciliation compares with it."""
    total = BalanceDelta()
    for record_type, change, counts in records:
        total = total + delta(record_type, change, counts)
    return total


class LinePointsView(View):
    line_no: int
    points: int


class RelationView(View):
    """积分关系: a lot this record drew from or gave back to, and how many points."""

    record_id: str = Field(description="The source (earning) record of the lot")
    points: int
    expires_at: datetime | None = None


class PointRecordView(View):
    """A point record as the API shows it; `remaining` (本笔交易积分可用余额) for earning records only."""

    id: str
    type: RecordType
    point_group_code: str
    change: int = Field(description="积分值变动值: signed")
    remaining: int | None = None
    effective_at: datetime
    expires_at: datetime | None = None
    counts_toward_upgrade: bool
    channel: str | None = None
    order_id: str | None = None
    order_no: str | None = None
    rule_code: str | None = None
    cost_center_code: str | None = None
    purpose: str | None = Field(default=None, description="What a spend was for: gift, coupon, orderPayment")
    reference: str | None = None
    reason: str | None = Field(default=None, description="Why an operator adjusted the points")
    coupon_code: str | None = Field(default=None, description="积分兑换优惠券: the coupon the points bought")
    coupon_rule_id: str | None = None
    campaign_id: str | None = Field(default=None, description="营销活动: the campaign that gave these points")
    campaign_name: str | None = None
    lines: list[LinePointsView] = Field(default_factory=list)
    relations: list[RelationView] = Field(default_factory=list)
    created_at: datetime


class PointRecordPage(View):
    items: list[PointRecordView]
    next_cursor: str | None = None


class LotView(View):
    """An open earning lot, in FIFO order: earliest expiry first, then earliest earned."""

    record_id: str
    point_group_code: str
    points: int
    remaining: int
    effective_at: datetime
    expires_at: datetime
    order_id: str | None = None


class LotPage(View):
    items: list[LotView]
    next_cursor: str | None = None
