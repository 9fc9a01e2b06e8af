"""Campaigns (营销活动, social-hub §10.4-10.5, anxin A.7): one shape for every campaign, and the pure rules
of whether an event makes a member take part. Effects are applied by the points and coupon engines
(services/campaigns/); here is only what a campaign says and when it applies.

A campaign has a program, a trigger, conditions on the member and on the triggering order, limits (per
member, and a budget in points and in count), effects, an active window and a cost center. Its life is
that of everything approved: draft -> pending (submitted to a named approver) -> scheduled or running
(approved) <-> paused -> ended, or rejected back to draft.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Union
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationInfo, model_validator

from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.coupons import period_labels
from loyalty.domain.redemption import MAX_POINTS
from loyalty.domain.validity import CamelModel, ExpiringValidity, FixedPeriod, for_requests, invalid_field

CampaignStatus = Literal["draft", "pending", "scheduled", "running", "paused", "ended"]
LIVE = ("scheduled", "running", "paused")  # approved and not ended: what an end or a pause acts on
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
# A draft's write checks every code it names in one transaction of at most 100 items: a replaced draft's
# old and new references, and its tags, stay under 100 with these bounds.
Code = Annotated[str, Field(pattern=CODE_PATTERN)]
Codes = Annotated[list[Code], Field(max_length=10)]


# --- triggers ---------------------------------------------------------------------------------------------


class OrderConditions(CamelModel):
    """What the triggering order must be (购买): all that are given hold."""

    min_amount: Money | None = Field(default=None, description="整单实收 (paid) at least this, yuan")
    store_group_code: str | None = Field(default=None, pattern=CODE_PATTERN, description="bought in this group")
    channels: Codes = Field(default_factory=list, description="through one of these channels (any if empty)")
    payment_methods: Codes = Field(default_factory=list, description="paid partly by one of these (any if empty)")
    product_group_code: str | None = Field(
        default=None, pattern=CODE_PATTERN, description="bought something of this product group"
    )
    min_product_amount: Money | None = Field(
        default=None, description="and paid (实收) at least this for the group's lines, yuan (needs productGroupCode)"
    )

    @model_validator(mode="after")
    def _group_named(self) -> OrderConditions:
        if self.min_product_amount is not None and not self.product_group_code:
            raise invalid_field("OrderConditions", "minProductAmount", "an amount of a product group names it", None)
        return self


class RegistrationTrigger(CamelModel):
    """注册: the member registered in the campaign's program."""

    type: Literal["registration"]


class FirstPurchaseTrigger(CamelModel):
    """首购: the member's first order that accrued."""

    type: Literal["firstPurchase"]
    order: OrderConditions = Field(default_factory=OrderConditions)


class PurchaseTrigger(CamelModel):
    """购买: any order of the member that accrued and meets the conditions."""

    type: Literal["purchase"]
    order: OrderConditions = Field(default_factory=OrderConditions)


class BirthdayTrigger(CamelModel):
    """生日: run daily in the program's time zone; members whose birthday is that day (`day`), or, on the first
    of a month, those born in that month (`month`), take part once a year. Born on 29 February: the 28th in
    a year without one."""

    type: Literal["birthday"]
    on: Literal["day", "month"] = "day"


class DaysAfterRegistrationTrigger(CamelModel):
    """注册后 N 天: run daily in the program's time zone; the members who registered `days` days before that
    day (in the program's calendar) take part, once."""

    type: Literal["daysAfterRegistration"]
    days: int = Field(ge=1, le=3650)


class NoPurchaseTrigger(CamelModel):
    """N 天未购: run daily in the program's time zone; the members whose last purchase was `days` days before
    that day (in the program's calendar) take part, once for that last purchase (a member who buys again and
    goes quiet again is won back again, within the per-member limit)."""

    type: Literal["noPurchase"]
    days: int = Field(ge=1, le=3650)


TierChangeKind = Literal["upgrade", "retention", "downgrade"]


def _upgrades() -> list[TierChangeKind]:
    return ["upgrade"]


class TierChangeTrigger(CamelModel):
    """会员等级变化: the member's tier changed (an upgrade, a renewal or a downgrade, by rule or by hand)."""

    type: Literal["tierChange"]
    to_tier_codes: Codes = Field(default_factory=list, description="into one of these tiers (any if empty)")
    changes: list[TierChangeKind] = Field(
        default_factory=_upgrades, min_length=1, max_length=3, description="which kinds of change"
    )


class BehaviourTrigger(CamelModel):
    """行为: a channel reported one of these behaviours of the member (签到, 分享...)."""

    type: Literal["behaviour"]
    behaviour_types: Codes = Field(min_length=1)


class CouponRedeemedTrigger(CamelModel):
    """核销: the member redeemed a coupon (of one of these rules; any if none)."""

    type: Literal["couponRedeemed"]
    rule_ids: list[Annotated[str, Field(pattern=r"^[0-9]{13}$")]] = Field(default_factory=list, max_length=10)


Trigger = Annotated[
    Union[
        CouponRedeemedTrigger,
        RegistrationTrigger,
        FirstPurchaseTrigger,
        PurchaseTrigger,
        BirthdayTrigger,
        DaysAfterRegistrationTrigger,
        NoPurchaseTrigger,
        TierChangeTrigger,
        BehaviourTrigger,
    ],
    Field(discriminator="type"),
]


# --- conditions, limits, effects --------------------------------------------------------------------------


class MemberConditions(CamelModel):
    """Who may take part: all that are given hold (everyone of the program if none)."""

    tier_codes: Codes = Field(default_factory=list, description="in one of these tiers")
    tag_codes: Codes = Field(default_factory=list, description="has every one of these tags")
    registration_store_codes: list[Code] = Field(
        default_factory=list, max_length=20, description="registered in one of these stores"
    )
    registration_channels: Codes = Field(default_factory=list, description="registered through one of these")
    audience_id: str | None = Field(
        default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="in this frozen audience (目标人群)"
    )
    employees: Literal["include", "exclude", "only"] = Field(
        default="include", description="员工: may employees take part (include), not (exclude), or only they"
    )
    test_members: Literal["include", "exclude", "only"] = Field(
        default="include",
        description="测试会员: whether test members take part; their participations never count in the "
        "campaign's results, costs or budget (D-131)",
    )


class PerMemberLimit(CamelModel):
    """How often one member may take part: `count` times per calendar `period` (program time zone)."""

    count: int = Field(default=1, ge=1, le=1000)
    period: Literal["ever", "day", "week", "month", "year"] = "ever"


class Budget(CamelModel):
    """What the campaign may give in all; when either runs out the campaign ends itself."""

    points: int | None = Field(default=None, ge=1, le=10_000_000_000, description="points granted in all")
    count: int | None = Field(default=None, ge=1, le=100_000_000, description="participations in all")
    shards: int = Field(
        default=1,
        ge=1,
        le=8,
        description="items the budget (and what the campaign gave) is split over: more for a campaign that "
        "thousands take part in at once (a flash sale), as coupon stock is (D-098)",
    )


class Limits(CamelModel):
    per_member: PerMemberLimit = Field(default_factory=PerMemberLimit)
    budget: Budget = Field(default_factory=Budget)


class GrantPoints(CamelModel):
    """Points into a group of the program, with their validity and the campaign's cost center."""

    type: Literal["grantPoints"]
    point_group_code: str = Field(pattern=CODE_PATTERN)
    points: int = Field(ge=1, le=MAX_POINTS)
    validity: ExpiringValidity = Field(default_factory=lambda: FixedPeriod(days=365))
    counts_toward_upgrade: bool = Field(default=False, description="是否参与升级")


class OrderPoints(CamelModel):
    """交易促销积分 for the order itself, written in its accrual beside its base points (D-088): one of
    `multiplier` (double points: the points the order earns in the group, times `multiplier` - 1 more),
    `pointsPerYuan` (on what the lines paid) or `fixedPoints` (once per order, e.g. over the trigger's
    `minAmount`). The first two count only the lines of `productGroupCode` when it is given. Fractions of
    a point are dropped; the caps are on the points of one order and of one member over the campaign."""

    type: Literal["orderPoints"]
    point_group_code: str = Field(pattern=CODE_PATTERN)
    multiplier: Decimal | None = Field(
        default=None, gt=1, max_digits=3, decimal_places=2, description="more than 1 (2: double points), below 10"
    )
    points_per_yuan: Decimal | None = Field(default=None, gt=0, max_digits=4, decimal_places=2)
    fixed_points: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    product_group_code: str | None = Field(default=None, pattern=CODE_PATTERN)
    max_per_order: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    max_per_member: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    validity: ExpiringValidity = Field(default_factory=lambda: FixedPeriod(days=365))
    counts_toward_upgrade: bool = Field(default=False, description="是否参与升级")

    @model_validator(mode="after")
    def _one_kind(self) -> OrderPoints:
        kinds = {"multiplier": self.multiplier, "pointsPerYuan": self.points_per_yuan, "fixedPoints": self.fixed_points}
        given = [name for name, value in kinds.items() if value is not None]
        if len(given) != 1:
            raise invalid_field("OrderPoints", "multiplier", "one of multiplier, pointsPerYuan, fixedPoints", given)
        if self.fixed_points is not None and self.product_group_code:
            raise invalid_field("OrderPoints", "productGroupCode", "fixedPoints are for the whole order", None)
        return self

    def bonus(self, base: dict[int, int], paid: dict[int, Decimal], in_group: set[int] | None) -> tuple[int, dict]:
        """The points before the caps, and the weights of the lines they are shared over (what each line
        earned in the group for a multiplier, what it paid otherwise). `in_group`: the order's lines in
        `productGroupCode`, None when the effect names no group."""
        lines = sorted(paid if in_group is None else in_group & set(paid))
        if self.multiplier is not None:
            weights = {n: Decimal(base.get(n, 0)) for n in lines if base.get(n, 0)}
            return int(sum(weights.values(), Decimal(0)) * (self.multiplier - 1)), weights
        weights = {n: paid[n] for n in lines}
        if self.points_per_yuan is not None:
            return int(sum(weights.values(), Decimal(0)) * self.points_per_yuan), weights
        return int(self.fixed_points or 0), weights


def capped(points: int, effect: OrderPoints, member_so_far: int) -> int:
    """The points an order gets after the per-order cap and what is left of the member's cap."""
    if effect.max_per_order is not None:
        points = min(points, effect.max_per_order)
    if effect.max_per_member is not None:
        points = min(points, max(effect.max_per_member - member_so_far, 0))
    return max(points, 0)


class IssueCoupon(CamelModel):
    """One coupon of a listed rule that campaigns may issue (活动发券), through the coupon engine."""

    type: Literal["issueCoupon"]
    rule_id: str = Field(pattern=r"^[0-9]{13}$")
    take_back_on_full_return: bool = Field(
        default=False, description="收回: an unused coupon goes when the order that earned it is returned in full"
    )


class AddTag(CamelModel):
    type: Literal["addTag"]
    tag_code: str = Field(pattern=CODE_PATTERN)


class RemoveTag(CamelModel):
    type: Literal["removeTag"]
    tag_code: str = Field(pattern=CODE_PATTERN)


class SendMessage(CamelModel):
    """A message of a program's template to the member, sent once by the message sender (issue 15)."""

    type: Literal["sendMessage"]
    template_code: str = Field(pattern=CODE_PATTERN)


Effect = Annotated[
    Union[GrantPoints, OrderPoints, IssueCoupon, AddTag, RemoveTag, SendMessage], Field(discriminator="type")
]


class CampaignInput(CamelModel):
    """A campaign as an operator writes it. Editable only while it is a draft."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "programCode": "DEMO",
            "name": "新会员入会礼",
            "trigger": {"type": "registration"},
            "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}],
            "limits": {"budget": {"points": 100000}},
            "startsAt": "2026-12-01T00:00:00+08:00",
            "endsAt": "2027-12-31T23:59:59+08:00",
            "costCenterCode": "marketing",
        },
        {
            "programCode": "DEMO",
            "name": "90 天未购金卡会员回馈 100 积分",
            "kind": "batch",
            "audienceId": "01JQ3Z8K6V4W7X2Y9A5B1C0D3E",
            "launchAt": "2026-12-12T10:00:00",
            "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": 100}],
            "limits": {"budget": {"points": 500000}},
            "startsAt": "2026-12-01T00:00:00+08:00",
            "endsAt": "2026-12-31T23:59:59+08:00",
            "costCenterCode": "marketing",
        },
    ]
    program_code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    code: str | None = Field(default=None, pattern=CODE_PATTERN, description="编码, the brand's own")
    description: str | None = Field(default=None, max_length=2000)
    kind: Literal["trigger", "batch"] = Field(
        default="trigger", description="trigger: 个体营销活动, run by an event; batch: 群体营销活动, to an audience"
    )
    trigger: Trigger | None = Field(default=None, description="What makes a member take part (trigger campaigns)")
    audience_id: str | None = Field(
        default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="The frozen audience a batch campaign reaches"
    )
    launch_at: datetime | None = Field(
        default=None,
        description="定时: when a batch campaign runs, within its window; if not given, on approval (or at its start)",
    )
    conditions: MemberConditions = Field(default_factory=MemberConditions)
    limits: Limits = Field(default_factory=Limits)
    effects: list[Effect] = Field(min_length=1, max_length=10)
    starts_at: datetime = Field(description="With an offset, or local time of the program's zone")
    ends_at: datetime
    cost_center_code: str = Field(pattern=CODE_PATTERN)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> CampaignInput:
        if self.kind == "batch":
            if self.trigger is not None or self.audience_id is None:
                raise invalid_field("Campaign", "audienceId", "a batch campaign names an audience, not a trigger", None)
        elif self.trigger is None or self.audience_id is not None or self.launch_at is not None:
            raise invalid_field("Campaign", "trigger", "a trigger campaign names a trigger, not an audience", None)
        grants = [e for e in self.effects if isinstance(e, GrantPoints | OrderPoints)]
        if len(grants) > 1:
            raise invalid_field("Campaign", "effects", "at most one grantPoints or orderPoints effect", len(grants))
        if self.limits.budget.points is not None and not grants:
            raise invalid_field("Campaign", "limits", "a points budget needs a points effect", None)
        if grants and self.limits.budget.points is None and for_requests(info):  # points are money (issue 25)
            raise invalid_field("Campaign", "limits", "a campaign that gives points needs a points budget", None)
        if isinstance(self.trigger, BirthdayTrigger) and "per_member" not in self.limits.model_fields_set:
            self.limits.per_member = PerMemberLimit(count=1, period="year")  # a gift every birthday, not once
        if self.promotion() is not None:
            if self.trigger is None or self.trigger.type not in ("purchase", "firstPurchase"):
                raise invalid_field("Campaign", "trigger", "orderPoints are given for a purchase", self.kind)
            if len(self.effects) > 1:  # the accrual writes them; other effects of a purchase are another campaign
                raise invalid_field("Campaign", "effects", "an orderPoints campaign has no other effect", None)
        starts, ends = self.starts_at.replace(tzinfo=None), self.ends_at.replace(tzinfo=None)
        if (self.starts_at.tzinfo is None) == (self.ends_at.tzinfo is None) and ends <= starts:
            raise invalid_field("Campaign", "endsAt", "the end comes after the start", str(self.ends_at))
        if self.launch_at is not None:
            zone = ZoneInfo("UTC")  # any zone: only a time without an offset is read in the program's
            opens, closes = self.window(zone)
            launch = self.launched(zone)
            same_kind = {t.tzinfo is None for t in (self.starts_at, self.ends_at, self.launch_at)}
            if len(same_kind) == 1 and not opens <= launch < closes:
                raise invalid_field("Campaign", "launchAt", "the launch is within the window", str(self.launch_at))
        return self

    def grant(self) -> GrantPoints | None:
        return next((e for e in self.effects if isinstance(e, GrantPoints)), None)

    def promotion(self) -> OrderPoints | None:
        """The points for the order itself, given in its accrual (a 促销 campaign), if it gives them."""
        return next((e for e in self.effects if isinstance(e, OrderPoints)), None)

    def launched(self, zone: ZoneInfo) -> datetime:
        """When a batch campaign runs: its launch time, or its start."""
        moment = self.launch_at or self.starts_at
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)

    def window(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The active window as instants: a time without an offset is the program's local time."""
        starts = self.starts_at if self.starts_at.tzinfo else self.starts_at.replace(tzinfo=zone)
        ends = self.ends_at if self.ends_at.tzinfo else self.ends_at.replace(tzinfo=zone)
        return starts, ends


# --- when a campaign applies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occasion:
    """What happened, as a campaign's conditions read it: a registration or an accrued order."""

    kind: Literal[
        "registration",
        "order",
        "birthday",
        "daysAfterRegistration",
        "noPurchase",
        "tierChange",
        "behaviour",
        "couponRedeemed",
        "batch",
    ]
    key: str  # the business key of the triggering event: the member (registration) or the order id
    at: datetime  # when it happened (registered, ordered): the campaign's window is about this
    first_purchase: bool = False
    amount: Decimal = Decimal(0)
    store_code: str | None = None
    channel: str | None = None
    payment_methods: frozenset[str] = frozenset()
    order_no: str | None = None
    tier_code: str | None = None  # a tier change's new tier
    tier_change: str | None = None  # upgrade, retention, downgrade
    behaviour_type: str | None = None
    coupon_rule_id: str | None = None  # a redeemed coupon's rule


def triggered_by(trigger: Any, occasion: Occasion) -> bool:
    if isinstance(trigger, RegistrationTrigger):
        return occasion.kind == "registration"
    if isinstance(trigger, BirthdayTrigger | DaysAfterRegistrationTrigger | NoPurchaseTrigger):
        return occasion.kind == trigger.type
    if isinstance(trigger, TierChangeTrigger):
        return (
            occasion.kind == "tierChange"
            and occasion.tier_change in trigger.changes
            and (not trigger.to_tier_codes or occasion.tier_code in trigger.to_tier_codes)
        )
    if isinstance(trigger, BehaviourTrigger):
        return occasion.kind == "behaviour" and occasion.behaviour_type in trigger.behaviour_types
    if isinstance(trigger, CouponRedeemedTrigger):
        return occasion.kind == "couponRedeemed" and (
            not trigger.rule_ids or occasion.coupon_rule_id in trigger.rule_ids
        )
    if isinstance(trigger, FirstPurchaseTrigger):
        return occasion.kind == "order" and occasion.first_purchase
    return occasion.kind == "order"


def order_misses(
    conditions: OrderConditions, occasion: Occasion, store_in_group: bool, group_paid: Decimal | None = None
) -> str | None:
    """Why the order does not meet the trigger's conditions, or None when it does. `group_paid`: what the
    order's lines of the conditions' product group paid (None: it has none of them)."""
    if conditions.min_amount is not None and occasion.amount < conditions.min_amount:
        return "amount"
    if conditions.store_group_code and not store_in_group:
        return "store"
    if conditions.channels and occasion.channel not in conditions.channels:
        return "channel"
    if conditions.payment_methods and not occasion.payment_methods & set(conditions.payment_methods):
        return "paymentMethod"
    if conditions.product_group_code and (
        group_paid is None or (conditions.min_product_amount is not None and group_paid < conditions.min_product_amount)
    ):
        return "productGroup"
    return None


def member_misses(conditions: MemberConditions, profile: dict[str, Any], tags: set[str]) -> str | None:
    """Why the member may not take part, or None when they may."""
    if conditions.tier_codes and (profile.get("tier") or {}).get("code") not in conditions.tier_codes:
        return "tier"
    if not set(conditions.tag_codes) <= tags:
        return "tags"
    if conditions.registration_store_codes and profile.get("storeCode") not in conditions.registration_store_codes:
        return "registrationStore"
    if conditions.registration_channels and profile.get("channel") not in conditions.registration_channels:
        return "registrationChannel"
    for name, rule, flag in (
        ("employees", conditions.employees, "employee"),
        ("testMembers", conditions.test_members, "testData"),
    ):
        if (rule == "exclude" and profile.get(flag)) or (rule == "only" and not profile.get(flag)):
            return name
    return None


PERIOD_LETTERS = {"day": "D", "week": "W", "month": "M", "year": "Y"}


def limit_period(limit: PerMemberLimit, moment: datetime, zone: ZoneInfo) -> tuple[str, datetime | None]:
    """The label of the calendar period a participation at `moment` counts in, and when it ends (None:
    ever)."""
    if limit.period == "ever":
        return "ever", None
    label, ends = period_labels(moment, zone)[PERIOD_LETTERS[limit.period]]
    return label, ends


def share_by(points: int, weights: dict[int, Decimal]) -> dict[int, int]:
    """`points` over the order's lines in proportion to what each paid (largest remainder, ties to the
    first line), so that a return of some lines reverses their part of a purchase campaign's points."""
    total = sum(weights.values(), Decimal(0))
    if total <= 0:
        first = min(weights) if weights else 1
        return {first: points}
    exact = {line: points * weight / total for line, weight in weights.items()}
    shares = {line: int(value) for line, value in exact.items()}
    left = points - sum(shares.values())
    for line in sorted(exact, key=lambda n: (-(exact[n] - shares[n]), n))[:left]:
        shares[line] += 1
    return shares


DAILY = (BirthdayTrigger, DaysAfterRegistrationTrigger, NoPurchaseTrigger)  # run by the day, not by an event


def daily_key(trigger: Any, day: date) -> str:
    """The business key of a participation in a daily campaign's run of `day`: a birthday once a year, a
    win-back once per last purchase, days after registration once."""
    if isinstance(trigger, BirthdayTrigger):
        return f"birthday:{day.year}"
    if isinstance(trigger, NoPurchaseTrigger):
        return f"noPurchase:{(day - timedelta(days=trigger.days)).isoformat()}"
    return str(trigger.type)


def birthday_days(trigger: BirthdayTrigger, day: date) -> list[tuple[int, str]] | None:
    """The (month, day prefix of the index's sort key) a birthday run on `day` reads; None when it reads
    nothing that day (a month campaign runs on the 1st). The prefix "" is the whole month."""
    if trigger.on == "month":
        return [(day.month, "")] if day.day == 1 else None
    days = [(day.month, f"{day.day:02d}#")]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        days.append((2, "29#"))
    return days
