"""Audiences (群组, social-hub §10.3): who a batch campaign reaches, as a condition tree over what a member
is (tier, tags, registration, birthday month, gender, city, consent, status), has (available points in a
group) and did (orders, spend or a behaviour in a time window, the last purchase), combined with and / or /
not, and other frozen audiences included or excluded (目标人群列表).

The tree is pure: `matches` asks a `Facts` for what it needs, cheapest first, and stops as soon as the
answer is known, so a member whose tier already rules them out costs no query of their timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union
from zoneinfo import ZoneInfo

from pydantic import Discriminator, Field, Tag, model_validator

from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.validity import CamelModel, invalid_field

Code = Annotated[str, Field(pattern=CODE_PATTERN)]
Codes = Annotated[list[Code], Field(min_length=1, max_length=50)]
MAX_CONDITIONS = 30  # leaves in one tree: each may cost a read per member
MAX_DEPTH = 5


class Window(CamelModel):
    """A time window in the program's calendar: the days `from`..`to` (both included; either may be open),
    or the last `lastDays` days up to the moment the audience is evaluated (相对时间)."""

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    last_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        absolute = self.from_ is not None or self.to is not None
        if absolute == (self.last_days is not None):
            raise invalid_field("Window", "from", "either from/to or lastDays", None)
        if self.from_ and self.to and self.to < self.from_:
            raise invalid_field("Window", "to", "the window ends after it starts", str(self.to))
        return self

    def instants(self, now: datetime, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """[start, end) as instants; None where open."""
        if self.last_days is not None:
            return now - timedelta(days=self.last_days), now
        starts = datetime.combine(self.from_, time(0), zone) if self.from_ else None
        ends = datetime.combine(self.to + timedelta(days=1), time(0), zone) if self.to else None
        return starts, ends


# --- leaves: one condition each ---------------------------------------------------------------------------


class TierIs(CamelModel):
    attribute: Literal["tier"]
    values: Codes


class HasTags(CamelModel):
    """Holds any (or, with `match: all`, every) one of these tags."""

    attribute: Literal["tags"]
    values: Codes
    match: Literal["any", "all"] = "any"


class ProfileIn(CamelModel):
    """A profile attribute is one of `values`: registration store (入会门店) or channel, gender, city, status."""

    attribute: Literal["registrationStore", "registrationChannel", "gender", "city", "status"]
    values: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(min_length=1, max_length=50)


class BirthdayMonth(CamelModel):
    attribute: Literal["birthdayMonth"]
    values: list[Annotated[int, Field(ge=1, le=12)]] = Field(min_length=1, max_length=12)


class Registered(CamelModel):
    attribute: Literal["registered"]
    window: Window


class MarketingOptIn(CamelModel):
    """Said yes (`value: true`) to marketing; `false` is everyone who did not."""

    attribute: Literal["marketingOptIn"]
    value: bool


class MemberFlag(CamelModel):
    """An employee (员工) or a test member (测试会员), `value: true`; `false` is everyone who is not (D-131)."""

    attribute: Literal["employee", "testData"]
    value: bool


class AvailablePoints(CamelModel):
    """Available points in a point group, within [min, max]."""

    attribute: Literal["points"]
    point_group_code: str = Field(pattern=CODE_PATTERN)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class Activity(CamelModel):
    """What the member did in a window (目标人群行为), counted from their timeline: `orders` (accrued orders),
    `spend` (what they paid, yuan) or `behaviour` (a behaviour type a channel reported), within [min, max]."""

    attribute: Literal["orders", "spend", "behaviour"]
    window: Window
    behaviour_type: str | None = Field(default=None, pattern=CODE_PATTERN, description="for behaviour")
    min: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    max: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)

    @model_validator(mode="after")
    def _behaviour_named(self) -> Activity:
        if (self.attribute == "behaviour") != (self.behaviour_type is not None):
            raise invalid_field("Activity", "behaviourType", "named for behaviour, and only for it", None)
        if self.min is None and self.max is None:
            self.min = Decimal(1) if self.attribute != "spend" else Decimal("0.01")  # "did" by default (有过)
        return self


class LastPurchase(CamelModel):
    """The last purchase fell in the window (before a date: `to`; after: `from`). A member who never bought
    has none: `not` of this is "no purchase in the window", never-buyers included."""

    attribute: Literal["lastPurchase"]
    window: Window


class InAudience(CamelModel):
    """A member of another audience's frozen list (include; under `not`, exclude)."""

    attribute: Literal["audience"]
    audience_id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")


Leaf = Annotated[
    Union[
        TierIs,
        HasTags,
        ProfileIn,
        BirthdayMonth,
        Registered,
        MarketingOptIn,
        MemberFlag,
        AvailablePoints,
        Activity,
        LastPurchase,
        InAudience,
    ],
    Field(discriminator="attribute"),
]


# --- groups ---------------------------------------------------------------------------------------------


class AllOf(CamelModel):
    """且: every condition holds."""

    all: list[Node] = Field(min_length=1, max_length=MAX_CONDITIONS)


class AnyOf(CamelModel):
    """或: at least one holds."""

    any: list[Node] = Field(min_length=1, max_length=MAX_CONDITIONS)


class NoneOf(CamelModel):
    """Exclude: the condition does not hold."""

    not_: Node = Field(alias="not")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return next((k for k in ("all", "any", "not") if k in value), "leaf")
    kinds: dict[type, str] = {AllOf: "all", AnyOf: "any", NoneOf: "not"}
    return kinds.get(type(value), "leaf")


Node = Annotated[
    Union[
        Annotated[AllOf, Tag("all")],
        Annotated[AnyOf, Tag("any")],
        Annotated[NoneOf, Tag("not")],
        Annotated[Leaf, Tag("leaf")],
    ],
    Discriminator(_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NoneOf.model_rebuild()


def children(node: Any) -> list[Any]:
    if isinstance(node, AllOf):
        return list(node.all)
    if isinstance(node, AnyOf):
        return list(node.any)
    if isinstance(node, NoneOf):
        return [node.not_]
    return []


def leaves(node: Any) -> list[Any]:
    kids = children(node)
    return [leaf for kid in kids for leaf in leaves(kid)] if kids else [node]


def depth(node: Any) -> int:
    kids = children(node)
    return 1 + max(map(depth, kids)) if kids else 0


class AudienceInput(CamelModel):
    """An audience as an operator writes it; editable until it is enabled (frozen)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "programCode": "DEMO",
            "name": "90 天未购的金卡会员",
            "condition": {
                "all": [
                    {"attribute": "tier", "values": ["gold"]},
                    {"not": {"attribute": "lastPurchase", "window": {"lastDays": 90}}},
                    {"attribute": "status", "values": ["active"]},
                ]
            },
        }
    ]

    program_code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    code: str | None = Field(default=None, pattern=CODE_PATTERN, description="编码, the brand's own")
    description: str | None = Field(default=None, max_length=2000)
    condition: Node

    @model_validator(mode="after")
    def _bounded(self) -> AudienceInput:
        if len(leaves(self.condition)) > MAX_CONDITIONS:
            raise invalid_field("Audience", "condition", f"at most {MAX_CONDITIONS} conditions", None)
        if depth(self.condition) > MAX_DEPTH:
            raise invalid_field("Audience", "condition", f"nested at most {MAX_DEPTH} deep", None)
        return self


# --- evaluation -------------------------------------------------------------------------------------------


class Facts(Protocol):
    """What a member is, has and did, as the tree asks; a store answers, reading only what is asked."""

    now: datetime
    zone: ZoneInfo

    def profile(self) -> dict[str, Any]: ...

    def tags(self) -> set[str]: ...

    def available(self, point_group: str) -> int: ...

    def activities(self, starts: datetime | None, ends: datetime | None) -> list[dict[str, Any]]: ...

    def in_audience(self, audience_id: str) -> bool: ...


# What a leaf costs to answer: the profile and summary items are in hand; another audience is one read; the
# timeline is one query. Cheaper children are asked first, so a costly one is asked only when it decides.
COST: dict[type, int] = {InAudience: 1, Activity: 2}


def cost(node: Any) -> int:
    kids = children(node)
    return max(map(cost, kids)) if kids else COST.get(type(node), 0)


def matches(node: Any, facts: Facts) -> bool:
    if isinstance(node, AllOf):
        return all(matches(kid, facts) for kid in sorted(node.all, key=cost))
    if isinstance(node, AnyOf):
        return any(matches(kid, facts) for kid in sorted(node.any, key=cost))
    if isinstance(node, NoneOf):
        return not matches(node.not_, facts)
    return LEAVES[type(node)](node, facts)


def _between(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _within(moment: str | None, window: Window, facts: Facts) -> bool:
    if not moment:
        return False
    at = datetime.fromisoformat(moment)
    starts, ends = window.instants(facts.now, facts.zone)
    return (starts is None or at >= starts) and (ends is None or at < ends)


def _profile_value(leaf: ProfileIn, profile: dict[str, Any]) -> Any:
    if leaf.attribute == "city":
        return (profile.get("address") or {}).get("city")
    name = {"registrationStore": "storeCode", "registrationChannel": "channel"}.get(leaf.attribute, leaf.attribute)
    return profile.get(name)


def _activity(leaf: Activity, facts: Facts) -> bool:
    starts, ends = leaf.window.instants(facts.now, facts.zone)
    entries = facts.activities(starts, ends)
    if leaf.attribute == "behaviour":
        measure = Decimal(
            sum(1 for e in entries if e.get("type") == "behaviour" and e.get("behaviourType") == leaf.behaviour_type)
        )
    elif leaf.attribute == "orders":
        measure = Decimal(sum(1 for e in entries if e.get("type") == "purchase"))
    else:
        measure = sum((Decimal(str(e.get("amount", 0))) for e in entries if e.get("type") == "purchase"), Decimal(0))
    return _between(measure, leaf.min, leaf.max)


def _birthday_month(profile: dict[str, Any]) -> int | None:
    birthday = profile.get("birthday")
    return int(birthday[5:7]) if birthday else None


LEAVES: dict[type, Callable[[Any, Facts], bool]] = {
    TierIs: lambda leaf, f: (f.profile().get("tier") or {}).get("code") in leaf.values,
    HasTags: lambda leaf, f: (
        (set(leaf.values) <= f.tags()) if leaf.match == "all" else bool(set(leaf.values) & f.tags())
    ),
    ProfileIn: lambda leaf, f: _profile_value(leaf, f.profile()) in leaf.values,
    BirthdayMonth: lambda leaf, f: _birthday_month(f.profile()) in leaf.values,
    Registered: lambda leaf, f: _within(f.profile().get("registeredAt"), leaf.window, f),
    MarketingOptIn: lambda leaf, f: bool(f.profile().get("marketingOptIn")) == leaf.value,
    MemberFlag: lambda leaf, f: bool(f.profile().get(leaf.attribute)) == leaf.value,
    AvailablePoints: lambda leaf, f: _between(f.available(leaf.point_group_code), leaf.min, leaf.max),
    Activity: _activity,
    LastPurchase: lambda leaf, f: _within(f.profile().get("lastPurchaseAt"), leaf.window, f),
    InAudience: lambda leaf, f: f.in_audience(leaf.audience_id),
}


@dataclass
class MemberFacts:
    """Facts from what is in hand (the profile, tags and accounts, read with the profile) and two loaders for
    the rest, each asked at most once per window or audience."""

    now: datetime
    zone: ZoneInfo
    member: dict[str, Any]  # the profile
    tag_codes: set[str]
    balances: dict[str, int]  # available points by point group
    load_activities: Callable[[datetime | None, datetime | None], list[dict[str, Any]]]
    load_membership: Callable[[str], bool]

    def __post_init__(self) -> None:
        self._activities: dict[tuple, list[dict[str, Any]]] = {}
        self._audiences: dict[str, bool] = {}

    def profile(self) -> dict[str, Any]:
        return self.member

    def tags(self) -> set[str]:
        return self.tag_codes

    def available(self, point_group: str) -> int:
        return self.balances.get(point_group, 0)

    def activities(self, starts: datetime | None, ends: datetime | None) -> list[dict[str, Any]]:
        if (starts, ends) not in self._activities:
            self._activities[(starts, ends)] = self.load_activities(starts, ends)
        return self._activities[(starts, ends)]

    def in_audience(self, audience_id: str) -> bool:
        if audience_id not in self._audiences:
            self._audiences[audience_id] = self.load_membership(audience_id)
        return self._audiences[audience_id]


def audiences_named(node: Any) -> list[tuple[str, str]]:
    """(audience id, JSON pointer) of every other audience the tree names, for the reference check."""
    found: list[tuple[str, str]] = []

    def walk(current: Any, path: str) -> None:
        if isinstance(current, AllOf | AnyOf):
            name = "all" if isinstance(current, AllOf) else "any"
            for index, kid in enumerate(children(current)):
                walk(kid, f"{path}/{name}/{index}")
        elif isinstance(current, NoneOf):
            walk(current.not_, f"{path}/not")
        elif isinstance(current, InAudience):
            found.append((current.audience_id, f"{path}/audienceId"))

    walk(node, "condition")
    return found
