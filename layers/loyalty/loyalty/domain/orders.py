"""Orders (交易单) as channels post them: header, lines, payments and discounts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import InvalidInput
from loyalty.domain.members import CARD_PATTERN, PHONE_PATTERN, ChannelIdentity
from loyalty.domain.validity import CamelModel, View, invalid_field

MAX_LINES = 200  # the whole order travels in one event (EventBridge and SQS carry up to 256 KB)


class MemberReference(CamelModel):
    """Who bought: a member id, a phone number, a card number, or an identity on the calling channel (exactly
    one)."""

    id: str | None = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    phone: str | None = Field(default=None, max_length=30, pattern=PHONE_PATTERN)
    card_no: str | None = Field(default=None, pattern=CARD_PATTERN, description="会员卡号")
    identity: ChannelIdentity | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberReference:
        if sum(value is not None for value in (self.id, self.phone, self.card_no, self.identity)) != 1:
            raise ValueError("name the member by exactly one of id, phone, cardNo or identity")
        return self


def naming_member(submission: dict[str, Any], member_id: str) -> dict[str, Any]:
    """A member's sale as it is kept: it names the member by id. The phone, card number or identity that found
    the member was only the way to them, and personal data the sale must not keep past an erasure (D-123)."""
    return {**submission, "member": {"id": member_id}}


class OrderLine(CamelModel):
    line_no: int = Field(ge=1, le=10_000)
    sku: str = Field(pattern=CODE_PATTERN, description="Product code (商品编码)")
    category_code: str | None = Field(default=None, pattern=CODE_PATTERN)
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=3)
    receivable: Decimal = Field(ge=0, max_digits=14, decimal_places=2, description="应收金额")
    discount: Decimal = Field(default=Decimal(0), ge=0, max_digits=14, decimal_places=2, description="总优惠金额")
    paid: Decimal = Field(ge=0, max_digits=14, decimal_places=2, description="实收金额")
    points_amount: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=14,
        decimal_places=2,
        description="计算积分金额; when absent, paid less non-earning tenders",
    )


class Payment(CamelModel):
    method_code: str = Field(pattern=CODE_PATTERN)
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class Discount(CamelModel):
    code: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class OrderSubmission(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "programCode": "DEMO",
            "orderNo": "roy202103230000000041",
            "member": {"phone": "13800138000"},
            "storeCode": "SH001",
            "orderedAt": "2026-11-20T14:52:00+08:00",
            "orderType": "堂食",
            "lines": [
                {
                    "lineNo": 1,
                    "sku": "TD0001",
                    "quantity": "1",
                    "receivable": "500",
                    "paid": "500",
                    "pointsAmount": "500",
                }
            ],
            "payments": [{"methodCode": "1001", "amount": "500"}],
        }
    ]
    program_code: str = Field(pattern=CODE_PATTERN)
    order_no: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$", description="Unique per channel")
    member: MemberReference | None = Field(
        default=None,
        description="Who bought; absent, or a phone, card or identity that is no member, makes a non-member sale "
        "(no points; an operator can attach it to the buyer after they register)",
    )
    store_code: str = Field(pattern=CODE_PATTERN)
    ordered_at: AwareDatetime
    order_type: str | None = Field(default=None, max_length=50, description="e.g. 堂食, 外带")
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    payments: list[Payment] = Field(default_factory=list, max_length=20)
    discounts: list[Discount] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _distinct_lines(self) -> OrderSubmission:
        numbers = [line.line_no for line in self.lines]
        if len(numbers) != len(set(numbers)):
            raise invalid_field("OrderSubmission", "lines", "line numbers must be distinct", numbers)
        return self

    def check_money(self) -> None:
        """Points only for money paid (issue 25): a line pays at most what it costs, earns on at most what it paid,
        and the tenders, when listed, add up to what the lines paid. One code per rule, on the field at fault."""
        for index, line in enumerate(self.lines):
            if line.paid > line.receivable:
                raise InvalidInput(
                    f"line {line.line_no} paid {line.paid}, more than its receivable {line.receivable}",
                    code="PAID_OVER_RECEIVABLE",
                    field=f"lines/{index}/paid",
                )
            if line.points_amount is not None and line.points_amount > line.paid:
                raise InvalidInput(
                    f"line {line.line_no} earns on {line.points_amount}, more than it paid ({line.paid})",
                    code="POINTS_AMOUNT_OVER_PAID",
                    field=f"lines/{index}/pointsAmount",
                )
        paid = sum((line.paid for line in self.lines), Decimal(0))
        tendered = sum((payment.amount for payment in self.payments), Decimal(0))
        if self.payments and tendered != paid:
            raise InvalidInput(
                f"the payments add up to {tendered}, the lines paid {paid}",
                code="PAYMENTS_NOT_EQUAL_TO_PAID",
                field="payments",
            )

    def fractional_lines(self) -> list[tuple[int, OrderLine]]:
        """The lines (with their index) whose quantity is not whole: only a product sold by weight may."""
        return [(index, line) for index, line in enumerate(self.lines) if line.quantity != line.quantity.to_integral()]

    def amount(self) -> Decimal:
        """What the order is worth for the amount ceiling: the larger of its paid and its points amounts."""
        paid = sum((line.paid for line in self.lines), Decimal(0))
        points = sum((line.points_amount for line in self.lines if line.points_amount is not None), Decimal(0))
        return max(paid, points)


OrderStatus = Literal["received", "accrued", "held", "rejected", "unattached"]


class OrderAccepted(View):
    order_id: str
    order_no: str
    channel: str
    member_id: str | None = Field(default=None, description="Absent for a non-member sale (status unattached)")
    status: OrderStatus = Field(
        description="held: waiting for an operator's review (see heldReason); unattached: a non-member sale"
    )
    received_at: datetime


class EarnedView(View):
    """What the order earned in a group: by a point rule (交易积分), or by a promotion (交易促销积分)."""

    point_group_code: str
    points: int
    rule_code: str | None = Field(default=None, description="the point rule's, for the order's own points")
    campaign_id: str | None = Field(default=None, description="the promotion's, for its points")


class OrderView(OrderAccepted):
    accrued_at: datetime | None = None
    earned: list[EarnedView] = Field(default_factory=list, description="Points per group, once accrued")
    held_reason: str | None = Field(default=None, description="Why accrual waits for review, e.g. DAILY_POINTS_CEILING")
    held_at: datetime | None = None
    held_points: dict[str, int] | None = Field(
        default=None, description="What the order would earn per point group, as computed when held"
    )
    reviewed_at: datetime | None = None
    reviewed_by: str | None = Field(default=None, description="The operator key that released or rejected it")
    review_note: str | None = None
    attached_at: datetime | None = Field(default=None, description="When an operator attached the non-member sale")
    attached_by: str | None = Field(default=None, description="The operator key that attached it")


class HeldOrderPage(View):
    items: list[OrderView]
    next_cursor: str | None = None


class OrderRelease(CamelModel):
    """An operator accrues a held order as it is (past the ceiling); the note is kept with the order."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"note": "核实为团购订单"}]

    note: str | None = Field(default=None, min_length=1, max_length=500)


class OrderRejection(CamelModel):
    """An operator refuses a held order's points for good; the reason is kept with the order."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"note": "测试订单"}]

    note: str = Field(min_length=1, max_length=500)


class OrderAttachment(CamelModel):
    """An operator attaches a non-member sale of the buyer, made before they registered, to the member."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"channel": "POS", "orderNo": "roy202103230000000041"}]

    channel: str = Field(pattern=CODE_PATTERN, description="The channel that posted the order")
    order_no: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class SaleView(View):
    """One of a member's orders or returns, as the member's purchase history shows it."""

    kind: Literal["order", "return"]
    channel: str
    number: str = Field(description="The order's or the return's number on its channel")
    original_order_no: str | None = Field(default=None, description="For a return: the order it returns")
    store_code: str | None = None
    at: datetime = Field(description="When it was bought or returned (business time)")
    amount: Decimal | None = Field(
        default=None, description="实收: paid for an order; for a return, the paid amount it gave back once processed"
    )
    status: str
    points: dict[str, int] = Field(
        default_factory=dict, description="Per point group: earned by the order, taken back by the return (negative)"
    )


class SalePage(View):
    items: list[SaleView]
    next_cursor: str | None = None
