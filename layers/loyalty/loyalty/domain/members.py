"""Members (会员): registration input, the One ID channel identities, and what a member looks like."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import Conflict
from loyalty.domain.personal_data import mask_phone
from loyalty.domain.validity import CamelModel, ExpiringValidity, View, refused_characters

# Spaces (Unicode's, not control characters: those are refused before), dashes, dots and parentheses.
_NOISE = r"[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000().-]"
_PHONE_NOISE = re.compile(_NOISE)
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_EMAIL_PART = rf"[^@\s{refused_characters('')}]+"  # no control or format characters either
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$"
AVATAR_PATTERN = rf"^https://[^\s{refused_characters('')}]+$"
PHONE_PATTERN = rf"^{_NOISE}*\+?(?:{_NOISE}*[0-9]){{6,15}}{_NOISE}*$"  # what normalize_phone accepts


def normalize_phone(raw: str) -> str:
    """One spelling per number, so the uniqueness guard cannot be dodged with spaces or dashes."""
    phone = _PHONE_NOISE.sub("", raw)
    if not _PHONE.match(phone):
        raise ValueError("a phone number has 6 to 15 digits, optionally after a leading +")
    return phone


CARD_DIGITS = 12  # 11 random digits and a Luhn check digit: printable, and a typo is caught at the till
CARD_PATTERN = rf"^[0-9]{{{CARD_DIGITS}}}$"


def luhn_digit(digits: str) -> str:
    """The check digit that makes `digits` + it pass the Luhn test (ISO/IEC 7812)."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    """A member card number (会员卡号): random, so the numbers of a tenant's members cannot be walked."""
    body = f"{secrets.randbelow(10 ** (CARD_DIGITS - 1)):0{CARD_DIGITS - 1}d}"
    return body + luhn_digit(body)


def valid_card_number(card_no: str) -> bool:
    return bool(re.fullmatch(CARD_PATTERN, card_no)) and luhn_digit(card_no[:-1]) == card_no[-1]


def inactive_member(status: str) -> Conflict:
    """The refusal of earning, spending or a claim by a member who is not active."""
    if status == "frozen":
        return Conflict("the member is frozen: no earning, spending or claims", code="MEMBER_FROZEN")
    return Conflict(f"the member is {status}", code="MEMBER_NOT_ACTIVE")


def name_key(name: str) -> str:
    """A name as the member list matches it: compatibility forms folded, case and white space ignored, so
    "Zhang  San", "zhang san" and full-width letters find the same member (exact, not a text search)."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


def merged_address(current: dict[str, Any] | None, patch: dict[str, Any] | None) -> dict[str, Any] | None:
    """RFC 7396 on the address: null removes it, a field given as null removes that field."""
    if patch is None:
        return None
    merged = {**(current or {}), **patch}
    kept = {k: v for k, v in merged.items() if v is not None}
    return kept or None


class ChannelIdentity(CamelModel):
    """An account of the member's on a channel (第三方账号), e.g. a WeChat OpenID. The channel is the caller's."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"type": "wechatOpenId", "value": "oX1a2b3c4d5e"}]

    type: str = Field(pattern=CODE_PATTERN, examples=["wechatOpenId"])
    value: str = Field(min_length=1, max_length=200)


class Registration(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "programCode": "DEMO",
            "phone": "13800138000",
            "name": "张三",
            "storeCode": "SH001",
            "identity": {"type": "wechatOpenId", "value": "oX1a2b3c4d5e"},
        }
    ]
    program_code: str = Field(pattern=CODE_PATTERN)
    phone: str = Field(pattern=PHONE_PATTERN, description="Unique per tenant; spaces and dashes are ignored")
    name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    birthday: date | None = None
    gender: Literal["female", "male", "other", "unknown"] | None = None
    store_code: str | None = Field(default=None, pattern=CODE_PATTERN, description="Registration store (注册门店)")
    identity: ChannelIdentity | None = Field(default=None, description="Bound to the calling channel at once")

    _phone = field_validator("phone")(lambda cls, value: normalize_phone(value))


class Address(CamelModel):
    province: str | None = Field(default=None, max_length=50)
    city: str | None = Field(default=None, max_length=50)
    district: str | None = Field(default=None, max_length=50)
    line: str | None = Field(default=None, max_length=200, description="Street and number (personal data)")


class MemberPatch(CamelModel):
    """A change to a member's profile, as JSON Merge Patch (RFC 7396): a field given is set, a field given
    as null is removed, a field left out is kept; `address` merges the same way, field by field. Employee
    and test-data flags are an operator's; so is a birthday once set."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "张小三",
            "email": "zhang@example.com",
            "marketingOptIn": True,
            "address": {"province": "上海", "city": "上海", "district": "黄浦区"},
        }
    ]

    phone: str | None = Field(default=None, pattern=PHONE_PATTERN, description="Moves the uniqueness guard; never null")
    name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    birthday: date | None = None
    gender: Literal["female", "male", "other", "unknown"] | None = None
    address: Address | None = None
    marketing_opt_in: bool | None = Field(
        default=None, description="是否接收营销信息; the time and channel of the consent are kept with it"
    )
    employee: bool | None = Field(default=None, description="Operators only")
    test_data: bool | None = Field(default=None, description="Operators only: a test member, left out of reports")
    nickname: str | None = Field(default=None, max_length=50)
    avatar_url: str | None = Field(default=None, max_length=500, pattern=AVATAR_PATTERN)
    home_store_code: str | None = Field(default=None, pattern=CODE_PATTERN, description="所属门店")

    _phone = field_validator("phone")(lambda cls, value: normalize_phone(value) if value is not None else None)


class ManualTierChange(CamelModel):
    """An operator sets a member's tier (变动类型 手动), up or down, with a reason; the validity is the
    tier's unless given. The next tier sweep treats it like any tier."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"tierCode": "gold", "reason": "门店补录: 线下消费凭证"}]

    tier_code: str = Field(pattern=CODE_PATTERN)
    reason: str = Field(min_length=1, max_length=500)
    validity: ExpiringValidity | None = Field(default=None, description="Instead of the tier's own validity")


class StatusChange(CamelModel):
    """An operator freezes, unfreezes or cancels a member, saying why."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"reason": "风控核查: 异常积分"}]

    reason: str = Field(min_length=1, max_length=500)


class MemberTagView(View):
    code: str = Field(validation_alias="tagCode")
    name: str = Field(description="The tag's name when it was attached")
    attached_at: datetime


class TaggedMember(View):
    member_id: str = Field(validation_alias="GSI1SK")
    attached_at: datetime


class TaggedMemberPage(View):
    items: list[TaggedMember]
    next_cursor: str | None = None


class NoteInput(CamelModel):
    """A remark on a member (备注) by an operator or advisor; it may span lines."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"comment": "来电咨询积分过期时间"}]

    comment: str = Field(min_length=1, max_length=2000)


class NoteView(View):
    note_id: str
    comment: str
    written_by: str = Field(description="The key id of who wrote it")
    written_at: datetime


class NotePage(View):
    items: list[NoteView]
    next_cursor: str | None = None


class ActivityView(View):
    """One entry of the member's timeline (行为记录): register, firstPurchase, purchase, or a channel's
    behaviour type (e.g. checkIn)."""

    activity_id: str
    type: str
    source: Literal["system", "channel"]
    channel: str
    occurred_at: datetime
    store_code: str | None = None
    order_no: str | None = None
    behaviour_id: str | None = None
    amount: Decimal | None = Field(default=None, description="An order's paid amount (实收)")
    points: dict[str, int] | None = Field(default=None, description="Points earned, per point group")


class ActivityPage(View):
    items: list[ActivityView]
    next_cursor: str | None = None


class SpendMetrics(CamelModel):
    """Kept on the profile by accrual and returns, in their transactions (never recomputed by a scan)."""

    total_spend: Decimal = Field(description="Paid on accrued orders, less what returns gave back")
    order_count: int = Field(description="Accrued orders")
    returned_amount: Decimal
    average_order_value: Decimal | None = Field(description="totalSpend / orderCount; null before an order")
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class ProfileChangeView(View):
    """One change of a member's profile: who, when, and each field's old and new value (personal data
    masked, as a record shows it)."""

    change_id: str
    changed_at: datetime
    changed_by: str = Field(description="The key id of the operator, or the channel")
    role: Literal["channel", "operator"]
    reason: str | None = Field(default=None, description="An operator's reason (freezing, cancelling)")
    changes: list[dict[str, Any]] = Field(description="{field, old, new} per field")


class ProfileChangePage(View):
    items: list[ProfileChangeView]
    next_cursor: str | None = None


class TierView(CamelModel):
    code: str
    name: str
    record_id: str
    type: Literal["base", "upgrade", "retention", "downgrade"]
    valid_from: datetime
    valid_until: datetime | None


class AccountView(CamelModel):
    point_group_code: str
    name: str
    cumulative: int = Field(description="累计积分")
    available: int = Field(description="可用积分")
    expired: int = Field(description="过期积分")
    debt: int = Field(
        default=0,
        description="Points owed beyond the open lots (a return whose points were spent); "
        "paid off first by later earnings",
    )


class TierTargetView(CamelModel):
    code: str
    name: str
    points_needed: int = Field(
        description="What is still missing in the entry's measure: qualifying points, whole yuan (rounded up) or "
        "orders; 0 = reached"
    )


class TierProgressView(CamelModel):
    """ "300 points to gold", "¥100 to VIP": one entry per measure tier rules read."""

    condition: Literal["points", "spend", "orders"] = Field(
        default="points", description="累计积分 of a point group, or the tier period's 消费金额 or 消费次数"
    )
    point_group_code: str | None = Field(default=None, description="For points: whose accumulator")
    qualifying: int = Field(
        description="The measure the tier rules read: 保级累计积分, or the spend (whole yuan, rounded down) or "
        "orders of the tier's period"
    )
    next_tier: TierTargetView | None = Field(description="The next tier up that this group reaches; null at the top")
    retention_target: int | None = Field(
        description="What keeps the current tier when it ends (保级), in the entry's measure; null for the base tier"
    )
    retention_points_needed: int | None
    retention_by: datetime | None = Field(description="When the current tier ends and the target is checked")


class IdentityView(CamelModel):
    channel: str
    type: str
    value: str
    bound_at: datetime
    unbound_at: datetime | None = Field(default=None, description="解绑: set once unbound; lookups no longer find it")


class MemberView(CamelModel):
    id: str
    program_code: str
    status: Literal["active", "frozen", "cancelled", "erased"] = Field(
        description="frozen: no earning, spending or claims until unfrozen; cancelled: for good, phone freed"
    )
    status_reason: str | None = Field(default=None, description="Why it was frozen or cancelled")
    version: int = Field(description="The profile's version; its ETag, for If-Match on a change")
    card_no: str | None = Field(default=None, description="会员卡号: 12 digits, the last a Luhn check digit")
    phone: str | None
    name: str | None
    email: str | None
    birthday: date | None
    gender: str | None
    address: Address | None = None
    marketing_opt_in: bool | None = None
    marketing_consent_at: datetime | None = Field(default=None, description="When the opt-in last changed")
    marketing_consent_channel: str | None = None
    employee: bool = False
    test_data: bool = False
    nickname: str | None = None
    avatar_url: str | None = None
    home_store_code: str | None = None
    metrics: SpendMetrics | None = None
    registered_at: datetime
    registration_channel: str
    registration_store_code: str | None
    tier: TierView
    tier_progress: list[TierProgressView]
    accounts: list[AccountView]
    identities: list[IdentityView]
    tags: list[MemberTagView] = Field(default_factory=list, description="会员标签")


class TierRecordView(View):
    """One entry of the member's tier history (会员等级); `valid` marks the member's current tier, so exactly
    one entry is valid."""

    # Derived when read (the record the profile holds as current), not stored: D-042

    record_id: str
    code: str
    name: str
    type: Literal["BASE", "UPGRADE", "RETENTION", "DOWNGRADE"]
    status: Literal["valid", "invalid"]
    valid_from: datetime
    valid_until: datetime | None = None
    from_code: str | None = None
    tier_rule_code: str | None = Field(default=None, description="The tier rule whose bound decided it, if one did")
    change: Literal["automatic", "manual"] = Field(default="automatic", description="变动类型: 自动 or 手动")
    reason: str | None = Field(default=None, description="A manual change's reason")
    changed_by: str | None = Field(default=None, description="The operator key that made a manual change")
    created_at: datetime


class TierRecordPage(View):
    items: list[TierRecordView]
    next_cursor: str | None = None


MemberStatus = Literal["active", "frozen", "cancelled", "erased"]


class MemberFilter(CamelModel):
    """What the operators' member list narrows by; every given condition must hold (AND)."""

    program_code: str | None = None
    tier: str | None = None
    status: MemberStatus | None = None
    store_code: str | None = Field(default=None, description="Registration store (注册门店)")
    channel: str | None = Field(default=None, description="Registration channel")
    registered_from: datetime | None = None
    registered_to: datetime | None = None
    name: str | None = None

    @field_validator("registered_from", "registered_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A time without an offset is read as UTC."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    def matches(self, profile: dict[str, Any]) -> bool:
        registered = datetime.fromisoformat(profile["registeredAt"])
        wanted = {
            "programCode": self.program_code,
            "status": self.status,
            "storeCode": self.store_code,
            "channel": self.channel,
            "nameKey": name_key(self.name) if self.name else None,
        }
        return (
            all(value is None or profile.get(field) == value for field, value in wanted.items())
            and (self.tier is None or profile["tier"]["code"] == self.tier)
            and (self.registered_from is None or registered >= self.registered_from)
            and (self.registered_to is None or registered < self.registered_to)
        )


class MemberSummary(View):
    """One row of the operators' member list: enough to pick the member; the phone masked."""

    id: str = Field(validation_alias="memberId")
    program_code: str
    status: str
    card_no: str | None = None
    phone: str | None = Field(default=None, description="Masked: 138****8000")
    name: str | None = None
    tier_code: str
    store_code: str | None = None
    channel: str | None = None
    registered_at: datetime

    @classmethod
    def of(cls, profile: dict[str, Any]) -> MemberSummary:
        return cls.model_validate(
            {
                **profile,
                "phone": mask_phone(profile["phone"]) if profile.get("phone") else None,
                "tierCode": profile["tier"]["code"],
            }
        )


class MemberSummaryPage(View):
    items: list[MemberSummary]
    next_cursor: str | None = Field(
        default=None, description="More may follow (a page can be short: it reads a bounded number of members)"
    )
