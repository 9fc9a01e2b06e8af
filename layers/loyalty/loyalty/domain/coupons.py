"""Coupons (卡券中心): rule shapes, the concrete validity of an issued coupon, whether a coupon is usable on
an order and what it takes off. Pure, so every rule of social-hub §9 and anxin A.8 has a unit test.

A coupon carries a copy of its rule's terms (`CouponTerms`) from the moment it is issued, so checking it
needs no rule read and an operator's later edit of a copy of the rule never changes coupons out there.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, ClassVar, Literal, Union
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, Field, WithJsonSchema, model_validator

from loyalty.domain.accrual import Catalog
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.validity import END_OF_DAY, CamelModel, View, invalid_field, within_window

CouponType = Literal["amountOff", "discount", "exchange"]
Status = Literal["issued", "used", "expired", "transferring", "revoked"]
CENT = Decimal("0.01")
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
Limit = Annotated[int, Field(ge=-1, le=1_000_000, description="-1 = unlimited")]


# --- the rule (优惠券规则) ---------------------------------------------------------------------------------


class FixedDates(CamelModel):
    """固定日期段: from the first instant of `startDate` to the last of `endDate` (program time zone)."""

    type: Literal["fixedDates"] = "fixedDates"
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> FixedDates:
        if self.end_date < self.start_date:
            raise invalid_field("FixedDates", "endDate", "the end date is before the start date", self.end_date)
        return self


class AfterReceipt(CamelModel):
    """固定时长: valid `startsAfterDays` days after receipt (0 = at once), for `days` calendar days."""

    type: Literal["afterReceipt"] = "afterReceipt"
    starts_after_days: int = Field(default=0, ge=0, le=3650)
    days: int = Field(ge=1, le=3650)


class AfterReceiptUntil(CamelModel):
    """开始有限-日期截止: valid `startsAfterDays` days after receipt, until the end of `endDate`."""

    type: Literal["afterReceiptUntil"] = "afterReceiptUntil"
    starts_after_days: int = Field(default=0, ge=0, le=3650)
    end_date: date


CouponValidity = Annotated[Union[FixedDates, AfterReceipt, AfterReceiptUntil], Field(discriminator="type")]


def _without_offset(moment: time) -> time:
    if moment.tzinfo is not None:
        raise ValueError("give the time of day without an offset: it is read in the program's time zone")
    return moment


LocalTime = Annotated[
    time,
    AfterValidator(_without_offset),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?$",
            "description": "A time of day in the program's time zone, HH:MM[:SS], without an offset",
        }
    ),
]


class TimeWindow(CamelModel):
    """可使用时间段: the time of day (program time zone) a coupon can be used, both ends included."""

    start: LocalTime = time(0, 0, 0)
    end: LocalTime = time(23, 59, 59)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end < self.start:
            raise invalid_field("TimeWindow", "end", "the window ends before it starts", self.end)
        return self


class ClaimLimits(CamelModel):
    """Per-member claim limits (领取限制) per calendar period in the program's time zone; -1 = unlimited."""

    per_day: Limit = -1
    per_week: Limit = -1
    per_month: Limit = -1
    per_half_year: Limit = -1
    per_year: Limit = -1

    def by_period(self) -> dict[str, int]:
        """Period letter -> limit, for the limited periods only (D, W, M, H, Y)."""
        limits = zip(
            "DWMHY", (self.per_day, self.per_week, self.per_month, self.per_half_year, self.per_year), strict=True
        )
        return {period: limit for period, limit in limits if limit != -1}


class ReturnPolicy(CamelModel):
    """退单返券: a coupon used on an order that is returned comes back for `validityDays` days."""

    enabled: bool = False
    validity_days: int = Field(default=7, ge=1, le=3650)


class TransferPolicy(CamelModel):
    """转赠设置: may the owner give it to a friend, who must accept within `claimHours` (好友领取有效期)."""

    allowed: bool = False
    claim_hours: int = Field(default=24, ge=1, le=24 * 90)


class CouponTerms(CamelModel):
    """What a coupon is worth and where and when it can be used: copied onto every coupon at issue."""

    type: CouponType
    amount_off: PositiveMoney | None = Field(default=None, description="满减: yuan taken off (减免 X 元)")
    payable_percent: int | None = Field(
        default=None, ge=1, le=99, description="折扣: the percentage paid, 打8折 = 80 (anxin A.8.3)"
    )
    exchange_product_code: str | None = Field(
        default=None, pattern=CODE_PATTERN, description="兑换: the product given free (one unit)"
    )
    threshold: PositiveMoney | None = Field(default=None, description="订单满 X 元可用; null = 无门槛")
    usable_time: TimeWindow = Field(default_factory=TimeWindow)
    usable_weekdays: list[int] = Field(
        default=[1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7, description="ISO weekdays, 1 = Monday"
    )
    store_group_code: str | None = Field(default=None, pattern=CODE_PATTERN, description="null = every store")
    product_group_code: str | None = Field(default=None, pattern=CODE_PATTERN, description="null = every product")
    stackable: bool = Field(default=False, description="叠加: may be used with other coupons on one order")
    return_on_refund: ReturnPolicy = Field(default_factory=ReturnPolicy)
    transfer: TransferPolicy = Field(default_factory=TransferPolicy)

    @model_validator(mode="after")
    def _benefit_of_its_type(self) -> CouponTerms:
        needed = {"amountOff": "amount_off", "discount": "payable_percent", "exchange": "exchange_product_code"}
        for kind, attribute in needed.items():
            given = getattr(self, attribute) is not None
            wire = attribute.split("_")[0] + "".join(w.title() for w in attribute.split("_")[1:])
            if kind == self.type and not given:
                raise invalid_field("CouponRule", wire, f"a {kind} coupon needs {wire}", None)
            if kind != self.type and given:
                raise invalid_field("CouponRule", wire, f"a {self.type} coupon has no {wire}", getattr(self, attribute))
        if len(set(self.usable_weekdays)) != len(self.usable_weekdays) or not all(
            1 <= d <= 7 for d in self.usable_weekdays
        ):
            raise invalid_field("CouponRule", "usableWeekdays", "distinct ISO weekdays 1-7", self.usable_weekdays)
        return self


class CouponRuleInput(CouponTerms):
    """A coupon rule as an operator writes it (§9.1). Editable only while it is a draft."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "满100减20",
            "type": "amountOff",
            "amountOff": "20",
            "threshold": "100",
            "programCode": "DEMO",
            "costCenterCode": "marketing",
            "costPerCoupon": "20",
            "totalStock": 1000,
            "validity": {"type": "afterReceipt", "days": 30},
            "usageText": "全部门店可用, 订单满100元减20元",
        }
    ]
    name: str = Field(min_length=1, max_length=100)
    program_code: str = Field(pattern=CODE_PATTERN)
    cost_center_code: str = Field(pattern=CODE_PATTERN)
    cost_per_coupon: Money = Field(default=Decimal(0), description="成本费用 per coupon, yuan")
    total_stock: int = Field(ge=1, le=10_000_000, description="总库存量")
    public_claim: bool = Field(default=True, description="公开领取: members may claim it themselves")
    campaign_issue: bool = Field(default=True, description="活动发券: operators and campaigns may issue it")
    points_price: int | None = Field(default=None, ge=1, le=100_000_000, description="积分兑换: points per coupon")
    points_group_code: str | None = Field(default=None, pattern=CODE_PATTERN, description="the group paid from")
    usage_text: str | None = Field(default=None, max_length=2000, description="使用说明")
    validity: CouponValidity
    claim_limits: ClaimLimits = Field(default_factory=ClaimLimits)
    daily_issue_cap: Limit = Field(default=-1, description="每天数量限制: coupons issued per day, all members")

    @model_validator(mode="after")
    def _consistent(self) -> CouponRuleInput:
        if not (self.public_claim or self.campaign_issue or self.points_price):
            raise invalid_field("CouponRule", "publicClaim", "choose at least one way to issue it", False)
        if (self.points_price is None) != (self.points_group_code is None):
            raise invalid_field(
                "CouponRule", "pointsGroupCode", "a points price needs its point group, and only then", None
            )
        if 0 in self.claim_limits.by_period().values() or self.daily_issue_cap == 0:
            raise invalid_field("CouponRule", "claimLimits", "a limit is -1 (none) or at least 1", 0)
        return self

    def terms(self) -> CouponTerms:
        return CouponTerms.model_validate(self.model_dump(include=set(CouponTerms.model_fields)))


# --- an issued coupon (优惠券) -----------------------------------------------------------------------------


def new_code() -> str:
    """A 16-digit coupon code (券码): 15 random digits (about 50 bits, not guessable) and a Luhn check
    digit, so a mistyped code is refused before any lookup."""
    body = str(10**14 + secrets.randbelow(9 * 10**14))
    return body + _luhn_digit(body)


def well_formed(code: str) -> bool:
    return len(code) == 16 and code.isdigit() and _luhn_digit(code[:-1]) == code[-1]


def _luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str((10 - total % 10) % 10)


def window_at_issue(
    validity: FixedDates | AfterReceipt | AfterReceiptUntil, received: datetime, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """The concrete validity of a coupon received at `received`: (first instant, last instant), aware.
    A relative start of N > 0 days begins at midnight N days later; the M days of 固定时长 are calendar days
    counted from the first valid day (docs/decisions.md, D-032)."""
    local = received.astimezone(zone)
    if isinstance(validity, FixedDates):
        return (
            datetime.combine(validity.start_date, time(0), tzinfo=zone),
            datetime.combine(validity.end_date, END_OF_DAY, tzinfo=zone),
        )
    first_day = local.date() + timedelta(days=validity.starts_after_days)
    start = local if validity.starts_after_days == 0 else datetime.combine(first_day, time(0), tzinfo=zone)
    if isinstance(validity, AfterReceipt):
        last_day = first_day + timedelta(days=validity.days - 1)
    else:
        last_day = validity.end_date
    return start, datetime.combine(last_day, END_OF_DAY, tzinfo=zone)


def window_on_return(days: int, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A coupon given back by a return (退单返券) is valid from now for `days` calendar days."""
    last_day = now.astimezone(zone).date() + timedelta(days=days - 1)
    return now, datetime.combine(last_day, END_OF_DAY, tzinfo=zone)


def period_labels(moment: datetime, zone: ZoneInfo) -> dict[str, tuple[str, datetime]]:
    """The calendar periods a claim at `moment` counts in (program zone): letter -> (label, period end)."""
    day = moment.astimezone(zone).date()
    iso_year, iso_week, iso_day = day.isocalendar()
    month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    half = 1 if day.month <= 6 else 2
    half_end = date(day.year, 6, 30) if half == 1 else date(day.year, 12, 31)
    week_end = day + timedelta(days=7 - iso_day)

    def end(last: date) -> datetime:
        return datetime.combine(last, END_OF_DAY, tzinfo=zone)

    return {
        "D": (day.isoformat(), end(day)),
        "W": (f"{iso_year}-W{iso_week:02d}", end(week_end)),
        "M": (f"{day.year}-{day.month:02d}", end(month_end)),
        "H": (f"{day.year}-H{half}", end(half_end)),
        "Y": (str(day.year), end(date(day.year, 12, 31))),
    }


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares differing by at most one, the larger ones first (stock and caps per shard)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- verification (核销) --------------------------------------------------------------------------------


class OrderLineInput(CamelModel):
    sku: str = Field(pattern=CODE_PATTERN)
    quantity: Decimal = Field(default=Decimal(1), gt=0, max_digits=12, decimal_places=3)
    amount: Money = Field(description="What the line costs before coupons (its 应收)")


ORDER_TIME_PAST_DAYS = 7  # how late an offline till may sync a sale's coupons (D-052)


def check_time(order: CouponOrder, now: datetime) -> datetime:
    """The moment a coupon is checked at: the order's time when given, bounded to the past few days."""
    if order.ordered_at is None:
        return now
    return min(within_window(order.ordered_at, now, timedelta(days=ORDER_TIME_PAST_DAYS), "orderedAt"), now)


class CouponOrder(CamelModel):
    """The order a coupon is presented on: where, how much, and (for product scopes and 兑换) its lines."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"codes": ["1086321312752127"], "orderNo": "roy202103230000000041", "storeCode": "SH001", "orderAmount": "100"}
    ]

    codes: list[str] = Field(
        min_length=1,
        max_length=10,
        json_schema_extra={"uniqueItems": True},
        description="Every coupon code presented on this order, each once",
    )
    order_no: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    store_code: str = Field(pattern=CODE_PATTERN)
    order_amount: PositiveMoney = Field(description="The order's amount before coupons (订单金额)")
    lines: list[OrderLineInput] = Field(default_factory=list, max_length=200)
    member_id: str | None = Field(
        default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="If given, the coupons must be this member's"
    )
    ordered_at: AwareDatetime | None = Field(
        default=None,
        description="When the sale happened, for a till that syncs later: the coupons are checked as of then "
        f"(at most {ORDER_TIME_PAST_DAYS} days ago); default now",
    )

    @model_validator(mode="after")
    def _distinct_codes(self) -> CouponOrder:
        if len(set(self.codes)) != len(self.codes):
            raise invalid_field("CouponOrder", "codes", "a code is presented twice", self.codes)
        return self


@dataclass(frozen=True)
class CouponState:
    """What a check needs of a stored coupon."""

    code: str
    status: str
    owner_id: str
    valid_from: datetime
    valid_until: datetime
    terms: CouponTerms


class Reason(View):
    code: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    code: str
    discount: Decimal
    reasons: tuple[Reason, ...]

    @property
    def usable(self) -> bool:
        return not self.reasons


def check(coupon: CouponState, order: CouponOrder, now: datetime, zone: ZoneInfo, catalog: Catalog) -> Verdict:
    """Every reason `coupon` cannot be used on `order` at `now`, and the discount it gives if it can."""
    terms, local = coupon.terms, now.astimezone(zone)
    reasons: list[tuple[str, str]] = []
    if coupon.status != "issued":
        reasons.append((f"STATUS_{coupon.status.upper()}", f"the coupon is {coupon.status}"))
    if order.member_id and order.member_id != coupon.owner_id:
        reasons.append(("NOT_OWNER", "the coupon belongs to another member"))
    if now < coupon.valid_from:
        reasons.append(("NOT_YET_VALID", f"valid from {coupon.valid_from.isoformat()}"))
    if now > coupon.valid_until:
        reasons.append(("VALIDITY_ENDED", f"valid until {coupon.valid_until.isoformat()}"))
    if not terms.usable_time.start <= local.time().replace(tzinfo=None) <= terms.usable_time.end:
        window = f"{terms.usable_time.start.isoformat()}-{terms.usable_time.end.isoformat()}"
        reasons.append(("OUTSIDE_TIME_WINDOW", f"usable {window} only"))
    if local.isoweekday() not in terms.usable_weekdays:
        reasons.append(("WEEKDAY_NOT_USABLE", f"usable on ISO weekdays {terms.usable_weekdays} only"))
    if not _store_in_scope(terms, order.store_code, catalog):
        reasons.append(("STORE_NOT_IN_SCOPE", f"not usable at store {order.store_code}"))
    eligible = _eligible_amount(terms, order, catalog)
    if eligible is None:
        reasons.append(("NO_PRODUCT_IN_SCOPE", "no line of the order is in the coupon's product group"))
        eligible = Decimal(0)
    if terms.threshold is not None and eligible < terms.threshold:
        reasons.append(("BELOW_THRESHOLD", f"needs an order of at least {terms.threshold}, this one is {eligible}"))
    others = [c for c in order.codes if c != coupon.code]
    if others and not terms.stackable:
        reasons.append(("NOT_STACKABLE", "this coupon cannot be used with other coupons on one order"))
    discount = benefit(terms, eligible, order)
    if discount is None:
        reasons.append(("EXCHANGE_PRODUCT_MISSING", f"the order has no {terms.exchange_product_code}"))
    return Verdict(coupon.code, Decimal(0) if reasons else (discount or Decimal(0)), _reasons(reasons))


def benefit(terms: CouponTerms, eligible: Decimal, order: CouponOrder) -> Decimal | None:
    """What the coupon takes off the eligible amount; None when a 兑换 product is not on the order.
    满减 takes its amount (never more than the eligible amount); 折扣 takes what is not payable,
    rounded half up to the fen; 兑换 takes the price of one unit of its product."""
    if terms.type == "amountOff":
        assert terms.amount_off is not None
        return min(terms.amount_off, eligible)
    if terms.type == "discount":
        assert terms.payable_percent is not None
        return (eligible * (100 - terms.payable_percent) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    line = next((line for line in order.lines if line.sku == terms.exchange_product_code), None)
    if line is None:
        return None
    return (line.amount / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def _store_in_scope(terms: CouponTerms, store_code: str, catalog: Catalog) -> bool:
    if terms.store_group_code is None:
        return True
    return catalog.store_in(terms.store_group_code, store_code)


def _eligible_amount(terms: CouponTerms, order: CouponOrder, catalog: Catalog) -> Decimal | None:
    """The amount a threshold and a discount apply to: the whole order, or its lines in the product group
    (None when none is)."""
    if terms.product_group_code is None:
        return order.order_amount
    group = catalog.product_groups.get(terms.product_group_code)
    if group is not None and group.all_products:
        return order.order_amount
    lines = [line for line in order.lines if catalog.product_in(terms.product_group_code, line.sku)]
    return sum((line.amount for line in lines), Decimal(0)) if lines else None


def _reasons(pairs: list[tuple[str, str]]) -> tuple[Reason, ...]:
    return tuple(Reason(code=code, detail=detail) for code, detail in pairs)


# --- the dashboard (数据分析, §9.2) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The counters kept on a rule's stock shards, summed."""

    remaining: int = 0
    issued: int = 0
    claimers: int = 0
    used: int = 0
    users: int = 0
    new_customers: int = 0
    returning_customers: int = 0
    order_total: Decimal = Decimal(0)
    discount_total: Decimal = Decimal(0)

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


def roi(totals: Totals) -> Decimal | None:
    """优惠券ROI: what orders using the coupon paid, per yuan of coupon value given (None before any use)."""
    if totals.discount_total == 0:
        return None
    return (totals.order_total / totals.discount_total).quantize(CENT, rounding=ROUND_HALF_UP)


def lapsed(coupon: dict[str, Any], now: datetime) -> bool:
    """A transfer whose friend-claim period has passed (转赠超时): the coupon is the giver's again from that
    moment, whether or not the sweep has recorded it yet (D-114)."""
    ends = (coupon.get("transfer") or {}).get("endsAt")
    return coupon.get("status") == "transferring" and ends is not None and datetime.fromisoformat(ends) < now


def as_of(coupon: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A stored coupon as it stands at `now`: a lapsed transfer is over, the coupon issued to the giver (or
    expired, if its validity ended too). Reads show this; writes record the lapse first (CouponService)."""
    if not lapsed(coupon, now):
        return coupon
    status = "issued" if datetime.fromisoformat(coupon["validUntil"]) >= now else "expired"
    return {**{k: v for k, v in coupon.items() if k != "transfer"}, "status": status}
