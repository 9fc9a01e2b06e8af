"""Program configuration and master data (忠诚度配置, 基础数据): the shapes, their rules and their links.

Each kind of configuration is described once by a `Kind`: where it lives (tenant or program), which other
items it references (each reference is counted on the target so a referenced item cannot be deleted),
and which of its values must be unique (kept by guard items). The store layer turns a Kind into
conditional transactions; the API turns it into five routes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from loyalty.domain.validity import CamelModel, ExpiringValidity, FixedPeriod, NoExpiry, Validity, invalid_field

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Code = Field(pattern=CODE_PATTERN, description="Stable identifier chosen by the operator, unique in its scope")
Name = Field(min_length=1, max_length=200)


class ConfigItem(CamelModel):
    code: str = Code
    name: str = Name


# --- program and its structure (programme-scoped) ---------------------------------------------------


class Program(ConfigItem):
    """A loyalty program (会员忠诚度计划): groups tiers, rules, point groups and cost centers."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "DEMO", "name": "品牌会员计划", "timeZone": "Asia/Shanghai"}]

    time_zone: str = Field(default="Asia/Shanghai", description="IANA zone; dates and sweeps follow it")
    max_order_amount: Decimal | None = Field(
        default=Decimal("100000.00"),
        ge=0,
        max_digits=14,
        decimal_places=2,
        description="每单金额上限: an order whose paid (or points) amount is above it is refused with 422 "
        "ORDER_AMOUNT_OVER_CEILING; null for none",
    )
    daily_points_ceiling: int | None = Field(
        default=100_000,
        ge=1,
        le=1_000_000_000,
        description="Points of any one group a member may earn from orders in a day (the program's zone); an "
        "order that would pass it is held for an operator's review, not accrued; null for none",
    )
    channel_daily_points_ceiling: int | None = Field(
        default=10_000_000,
        ge=1,
        le=100_000_000_000,
        description="Points of any one group all of one channel's orders may earn in a day (the program's zone): "
        "a till or an integration that misbehaves is stopped there; an order that would pass it is held for "
        "review (CHANNEL_DAILY_POINTS_CEILING); null for none",
    )
    attach_window_days: int = Field(
        default=30,
        ge=0,
        le=400,
        description="How old a non-member sale may be when an operator attaches it to a member (0: never)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


class Tier(ConfigItem):
    """A tier (等级). Higher `order` is better; exactly one base tier per program, and it never expires."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"code": "gold", "name": "金卡会员", "order": 3, "validity": {"type": "fixedPeriod", "days": 365}}
    ]

    order: int = Field(ge=1, le=999)
    base: bool = False
    validity: Validity = Field(default_factory=NoExpiry)

    @model_validator(mode="after")
    def _base_never_expires(self) -> Tier:
        if self.base and not isinstance(self.validity, NoExpiry):
            raise invalid_field(
                "Tier", "validity", "the base tier never expires: its validity must be type 'none'", self.validity.type
            )
        if not self.base and isinstance(self.validity, NoExpiry):
            raise invalid_field(
                "Tier", "validity", "a non-base tier needs a validity (fixedPeriod or fixedDate)", self.validity.type
            )
        return self


SPEND, ORDERS = "#spend", "#orders"  # the member-level measures beside the point groups' accumulators


class TierRule(ConfigItem):
    """A tier rule (等级升降级规则): a measure in [lowerBound, upperBound) reaches `tierCode`. The measure is
    the point group's qualifying points (累计积分), or the member's spend (消费金额, whole yuan) or accrued
    orders (消费次数) within the current tier's period (§4.3, §5.1-5.2). A rolling window (最近X天,
    `windowDays`) is refused, not stored and ignored (D-085)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "code": "gold",
            "name": "金卡会员条件",
            "tierCode": "gold",
            "pointGroupCode": "points",
            "lowerBound": 1000,
            "upperBound": 5000,
        }
    ]

    tier_code: str = Code
    point_group_code: str | None = Field(
        default=None, pattern=CODE_PATTERN, description="For `points` rules: whose qualifying points count"
    )
    condition: Literal["points", "spend", "orders"] = Field(
        default="points", description="累计积分 (a point group's), 消费金额 or 消费次数 (the member's)"
    )
    lower_bound: int = Field(ge=0)
    upper_bound: int | None = Field(default=None, ge=1, description="Exclusive; null = no upper limit")

    @property
    def measure(self) -> str:
        """The key of what the rule measures: its point group, or the member's spend or orders."""
        if self.condition == "points":
            assert self.point_group_code is not None
            return self.point_group_code
        return SPEND if self.condition == "spend" else ORDERS

    @model_validator(mode="after")
    def _group_for_points(self) -> TierRule:
        if self.condition == "points" and self.point_group_code is None:
            raise invalid_field("TierRule", "pointGroupCode", "a points rule names its point group", None)
        if self.condition != "points" and self.point_group_code is not None:
            raise invalid_field(
                "TierRule", "pointGroupCode", f"a {self.condition} rule counts no point group", self.point_group_code
            )
        return self

    @model_validator(mode="after")
    def _bounds_ordered(self) -> TierRule:
        if self.upper_bound is not None and self.upper_bound <= self.lower_bound:
            raise invalid_field(
                "TierRule", "upperBound", "upperBound must be greater than lowerBound", self.upper_bound
            )
        return self


class PointGroup(ConfigItem):
    """A point group (积分组), e.g. 积分 or 成长值: every member gets one account per group."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "points", "name": "积分"}]


class CostCenter(ConfigItem):
    """A cost center (成本中心): every point record carries one so point costs can be attributed."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "member", "name": "会员成本中心"}]


class StoreScope(CamelModel):
    """Stores a rule applies to: listed stores, or one enabled store group; empty = every store."""

    store_codes: list[str] = Field(default_factory=list, max_length=20)
    store_group_code: str | None = Field(default=None, pattern=CODE_PATTERN)

    @model_validator(mode="after")
    def _one_way(self) -> StoreScope:
        if self.store_codes and self.store_group_code:
            raise ValueError("name stores or a store group, not both")
        return self


class ProductScope(CamelModel):
    """Products a rule applies to: listed products, categories, or one enabled product group; empty = all."""

    product_codes: list[str] = Field(default_factory=list, max_length=20)
    category_codes: list[str] = Field(default_factory=list, max_length=20)
    product_group_code: str | None = Field(default=None, pattern=CODE_PATTERN)

    @model_validator(mode="after")
    def _one_way(self) -> ProductScope:
        if sum(map(bool, (self.product_codes, self.category_codes, self.product_group_code))) > 1:
            raise ValueError("name products, categories or a product group, only one of them")
        return self


class PointRule(ConfigItem):
    """A base point rule (基础积分规则): floor(base / unit) x pointsPerUnit points per order line."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "code": "offline-1-per-yuan",
            "name": "线下门店1元1积分",
            "pointGroupCode": "points",
            "awardMode": "amount",
            "unit": "1",
            "pointsPerUnit": 1,
            "countsTowardUpgrade": True,
            "costCenterCode": "member",
            "storeScope": {"storeGroupCode": "offline"},
            "validity": {"type": "fixedPeriod", "days": 365},
        }
    ]

    point_group_code: str = Code
    award_mode: Literal["amount", "quantity"] = Field(description="amount: by points amount; quantity: by units")
    unit: Decimal = Field(gt=0, max_digits=12, decimal_places=2, description="Yuan (amount) or units per step")
    points_per_unit: int = Field(default=1, ge=1, le=1_000_000)
    counts_toward_upgrade: bool = Field(description="是否可升级: copied onto every record the rule creates")
    cost_center_code: str = Code
    tier_codes: list[str] = Field(default_factory=list, max_length=20, description="Empty = every tier")
    store_scope: StoreScope = Field(default_factory=StoreScope)
    product_scope: ProductScope = Field(default_factory=ProductScope)
    validity: ExpiringValidity


class BehaviourRule(ConfigItem):
    """A behaviour rule: a behaviour (e.g. a check-in, 签到) adds points (行为增加积分) or, with direction
    `decrease`, takes them first in, first out (行为减少积分, e.g. a cancelled check-in); at most
    `maxPerDay` times per member and day when set."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "code": "daily-check-in",
            "name": "每日签到",
            "behaviourType": "checkIn",
            "pointGroupCode": "points",
            "points": 5,
            "costCenterCode": "marketing",
            "maxPerDay": 1,
        }
    ]

    behaviour_type: str = Field(pattern=CODE_PATTERN, examples=["checkIn"])
    point_group_code: str = Code
    direction: Literal["increase", "decrease"] = "increase"
    points: int = Field(ge=1, le=1_000_000)
    counts_toward_upgrade: bool = False
    cost_center_code: str = Code
    validity: ExpiringValidity = Field(default_factory=lambda: FixedPeriod(days=365))
    max_per_day: int | None = Field(default=None, ge=1, le=1000, description="Per member and day; null = no limit")


# --- master data (tenant-scoped) ---------------------------------------------------------------------


class Store(ConfigItem):
    """A store (门店), physical or virtual (官网虚拟门店)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"code": "SH001", "name": "上海南京路店", "type": "offline", "city": "上海"}
    ]

    type: str | None = Field(default=None, max_length=50)
    status: Literal["open", "closed"] = "open"
    province: str | None = Field(default=None, max_length=50)
    city: str | None = Field(default=None, max_length=50)


class ProductCategory(ConfigItem):
    """A product category (商品分类), optionally under a parent category."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "SNACK", "name": "小食"}]

    parent_code: str | None = Field(default=None, pattern=CODE_PATTERN)

    @model_validator(mode="after")
    def _not_own_parent(self) -> ProductCategory:
        if self.parent_code == self.code:
            raise invalid_field(
                "ProductCategory", "parentCode", "a category cannot be its own parent", self.parent_code
            )
        return self


class Product(ConfigItem):
    """A product (商品) in one category."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "TD0001", "name": "咸味薯条", "categoryCode": "SNACK"}]

    category_code: str | None = Field(default=None, pattern=CODE_PATTERN)
    sold_by_weight: bool = Field(
        default=False, description="称重商品: an order line may sell a fractional quantity of it (2.35 kg)"
    )


class PaymentMethod(ConfigItem):
    """A payment method (付款方式); amounts paid with one that does not earn points earn none."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "1001", "name": "现金", "earnsPoints": True}]

    earns_points: bool = True


class Tag(ConfigItem):
    """A member tag (会员标签, spec social-hub §6.6): defined by operators, attached to members."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"code": "high-value", "name": "高净值会员", "colour": "#E4572E", "category": "人群"}
    ]

    colour: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$", examples=["#E4572E"])
    description: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=50, description="标签分类, e.g. 人群, 偏好")


class StoreGroup(ConfigItem):
    """A static store group (门店组): its stores are items of their own (thousands of them), added and taken
    away only before it is enabled; only enabled groups are usable."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "offline", "name": "线下门店", "description": "实体门店"}]

    description: str = Field(min_length=1, max_length=500)
    all_stores: bool = Field(default=False, description="Every store, present and future: it holds no members")

    @property
    def everything(self) -> bool:
        return self.all_stores


class ProductGroup(ConfigItem):
    """A static product group (商品组), with the same life as a store group."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"code": "cakes", "name": "蛋糕", "description": "生日蛋糕与冰淇淋蛋糕"}
    ]

    description: str = Field(min_length=1, max_length=500)
    all_products: bool = Field(default=False, description="Every product: it holds no members")

    @property
    def everything(self) -> bool:
        return self.all_products


GROUP_MEMBER_KINDS = {"storeGroup": "store", "productGroup": "product"}  # what each kind of group holds


# --- the kinds -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """One reference from an item to another item (`kind`, `code`), reported on `field` when broken."""

    kind: str
    code: str
    field: str
    must_be_enabled: bool = False


@dataclass(frozen=True)
class Kind:
    name: str  # singular, camelCase: used in operation ids and error messages
    plural: str  # the URL segment
    model: type[ConfigItem]
    scope: Literal["tenant", "program"]
    refs: Callable[[ConfigItem], list[Ref]] = lambda item: []
    unique: Callable[[ConfigItem], list[str]] = lambda item: []  # guard names, unique per scope
    enableable: bool = False  # groups: draft until enabled, then frozen
    frozen_once_members: bool = False  # members hold records of it: no delete once the program has members
    operation_plural: str = ""  # operationId suffix for lists, e.g. "Tiers"
    counts_members: bool = False  # members hold it (tags): its references are its member count

    @property
    def title(self) -> str:
        return self.name[0].upper() + self.name[1:]


def _point_rule_refs(rule: ConfigItem) -> list[Ref]:
    assert isinstance(rule, PointRule)
    refs = [
        Ref("pointGroup", rule.point_group_code, "pointGroupCode"),
        Ref("costCenter", rule.cost_center_code, "costCenterCode"),
    ]
    refs += [Ref("tier", code, f"tierCodes/{i}") for i, code in enumerate(rule.tier_codes)]
    stores, products = rule.store_scope, rule.product_scope
    refs += [Ref("store", code, f"storeScope/storeCodes/{i}") for i, code in enumerate(stores.store_codes)]
    if stores.store_group_code:
        refs.append(Ref("storeGroup", stores.store_group_code, "storeScope/storeGroupCode", must_be_enabled=True))
    refs += [Ref("product", code, f"productScope/productCodes/{i}") for i, code in enumerate(products.product_codes)]
    refs += [
        Ref("productCategory", c, f"productScope/categoryCodes/{i}") for i, c in enumerate(products.category_codes)
    ]
    if products.product_group_code:
        refs.append(
            Ref("productGroup", products.product_group_code, "productScope/productGroupCode", must_be_enabled=True)
        )
    return refs


def _tier_rule_refs(rule: ConfigItem) -> list[Ref]:
    assert isinstance(rule, TierRule)
    refs = [Ref("tier", rule.tier_code, "tierCode")]
    if rule.point_group_code:
        refs.append(Ref("pointGroup", rule.point_group_code, "pointGroupCode"))
    return refs


def _behaviour_rule_refs(rule: ConfigItem) -> list[Ref]:
    assert isinstance(rule, BehaviourRule)
    return [
        Ref("pointGroup", rule.point_group_code, "pointGroupCode"),
        Ref("costCenter", rule.cost_center_code, "costCenterCode"),
    ]


def _tier_guards(tier: ConfigItem) -> list[str]:
    assert isinstance(tier, Tier)
    return [f"TIER_ORDER#{tier.order:04d}"] + (["BASE_TIER"] if tier.base else [])


def _optional_ref(kind: str, attribute: str, field_name: str) -> Callable[[ConfigItem], list[Ref]]:
    def refs(item: ConfigItem) -> list[Ref]:
        code = getattr(item, attribute)
        return [Ref(kind, code, field_name)] if code else []

    return refs


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("program", "programs", Program, "tenant"),
        Kind("tier", "tiers", Tier, "program", unique=_tier_guards, frozen_once_members=True),
        Kind("tierRule", "tier-rules", TierRule, "program", refs=_tier_rule_refs),
        Kind("pointGroup", "point-groups", PointGroup, "program", frozen_once_members=True),
        Kind("costCenter", "cost-centers", CostCenter, "program"),
        Kind("pointRule", "point-rules", PointRule, "program", refs=_point_rule_refs),
        Kind("behaviourRule", "behaviour-rules", BehaviourRule, "program", refs=_behaviour_rule_refs),
        Kind("store", "stores", Store, "tenant"),
        Kind(
            "productCategory",
            "product-categories",
            ProductCategory,
            "tenant",
            refs=_optional_ref("productCategory", "parent_code", "parentCode"),
            operation_plural="ProductCategories",
        ),
        Kind(
            "product",
            "products",
            Product,
            "tenant",
            refs=_optional_ref("productCategory", "category_code", "categoryCode"),
        ),
        Kind("paymentMethod", "payment-methods", PaymentMethod, "tenant"),
        Kind("tag", "tags", Tag, "tenant", counts_members=True),
        Kind("storeGroup", "store-groups", StoreGroup, "tenant", enableable=True),
        Kind("productGroup", "product-groups", ProductGroup, "tenant", enableable=True),
    )
}


def distinct_refs(refs: list[Ref]) -> dict[tuple[str, str], Ref]:
    """One reference per target: an item naming the same store twice counts it once."""
    return {(ref.kind, ref.code): ref for ref in reversed(refs)}


def changed_refs(old: list[Ref], new: list[Ref]) -> tuple[list[Ref], list[Ref]]:
    """What a new version of an item refers to that the old did not (added), and the reverse (removed)."""
    old_refs, new_refs = distinct_refs(old), distinct_refs(new)
    added = [ref for key, ref in new_refs.items() if key not in old_refs]
    removed = [ref for key, ref in old_refs.items() if key not in new_refs]
    return added, removed
