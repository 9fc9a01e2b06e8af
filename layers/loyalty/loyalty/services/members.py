"""Member use cases: register, change the profile (If-Match on its version), bind identities (One ID), read,
look up, erase personal data."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import KINDS, ORDERS, SPEND
from loyalty.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed, PreconditionRequired
from loyalty.domain.members import (
    AccountView,
    Address,
    ChannelIdentity,
    IdentityView,
    ManualTierChange,
    MemberPatch,
    MemberTagView,
    MemberView,
    NoteInput,
    NotePage,
    NoteView,
    ProfileChangePage,
    ProfileChangeView,
    Registration,
    SpendMetrics,
    TaggedMember,
    TaggedMemberPage,
    TierProgressView,
    TierRecordPage,
    TierRecordView,
    TierTargetView,
    TierView,
    merged_address,
    name_key,
    new_card_number,
)
from loyalty.domain.personal_data import masked
from loyalty.domain.program import ProgramConfig
from loyalty.domain.tiers import progress
from loyalty.domain.validity import end_of_validity
from loyalty.ids import new_ulid
from loyalty.services import events, timeline
from loyalty.services.accrual import tier_change
from loyalty.services.config import ProgramLoader, open_store
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import Conflict as WriteConflict
from loyalty.store.ledger_repo import LedgerRepository, LedgerWrite
from loyalty.store.member_repo import (
    AlreadyRegistered,
    CardNumberTaken,
    MemberRepository,
    NewMember,
    ProfileUpdate,
    StaleProfile,
    StatusUpdate,
)
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Table, TransactionCancelled, check, decode_cursor, encode_cursor, put

TIER_TYPES: dict[str, Literal["base", "upgrade", "retention", "downgrade"]] = {
    "BASE": "base",
    "UPGRADE": "upgrade",
    "RETENTION": "retention",
    "DOWNGRADE": "downgrade",
}


OPERATOR_ONLY = ("employee", "testData")  # flags a channel may not set
CHANGE_ATTEMPTS = 3  # a manual tier change decides again this often when an accrual moved the tier
CARD_DRAWS = 3  # random card numbers drawn before a registration gives up


@dataclass(frozen=True)
class Editor:
    """Who changes a profile: an operator (by key id) or a channel."""

    role: Literal["channel", "operator"]
    channel: str
    key_id: str

    @property
    def name(self) -> str:
        return self.key_id if self.role == "operator" else self.channel


@dataclass
class MemberService:
    members: MemberRepository
    programs: ProgramLoader
    config: ConfigRepository
    ledger: LedgerRepository
    clock: Clock

    def register(self, tenant: str, channel: str, request: Registration, key: RequestKey | None = None) -> MemberView:
        """One transaction: profile, base-tier record (基础), one zero account per point group, the
        channel identity and the uniqueness guards. A taken phone is a 409 naming the existing member."""
        program = self.programs.load(tenant, request.program_code)
        base = program.base_tier()
        now, member_id = self.clock.now(), new_ulid()
        _plausible_birthday(request.birthday, now)
        if request.store_code:
            open_store(self.config, tenant, request.store_code)
        record_id = new_ulid()
        tier = {
            "code": base.code,
            "name": base.name,
            "recordId": record_id,
            "type": "BASE",
            "validFrom": now.isoformat(),
            "validUntil": _iso(end_of_validity(base.validity, now, program.zone)),
        }
        profile = {
            "memberId": member_id,
            "programCode": program.program.code,
            "status": "active",
            "phone": request.phone,
            "name": request.name,
            "email": request.email,
            "gender": request.gender,
            "birthday": request.birthday.isoformat() if request.birthday else None,
            "registeredAt": now.isoformat(),
            "version": 1,
            "cardNo": new_card_number(),
            "channel": channel,
            "storeCode": request.store_code,
            "tier": tier,
            "nameKey": name_key(request.name) if request.name else None,
        }
        registered = events.DomainEvent(
            "MemberRegistered",
            {
                "memberId": member_id,
                "programCode": program.program.code,
                "channel": channel,
                "tierCode": base.code,
                "registeredAt": now.isoformat(),
            },
        )
        new = NewMember(
            tenant=tenant,
            member_id=member_id,
            profile={k: v for k, v in profile.items() if v is not None},
            tier_record={**tier, "change": "automatic", "createdAt": now.isoformat()},
            accounts=[{"pointGroupCode": g.code, "name": g.name} for g in program.point_groups.values()],
            identity=(channel, request.identity.type, request.identity.value) if request.identity else None,
            outbox=[events.outbox_entry(tenant, registered, now)],
            first_of_program=None if program.has_members else (program.program.code, base.code),
            request=key.marker(memberId=member_id) if key else None,
            activities=[timeline.registration(tenant, member_id, channel, now, request.store_code)],
        )
        for _ in range(CARD_DRAWS):
            try:
                written = self.members.register(new, now)
                break
            except AlreadyRegistered:
                assert key is not None
                return self.get(tenant, key.first_effect(self.members.table)["memberId"])
            except CardNumberTaken:  # one in tens of millions per draw at a million members
                new = replace(new, profile={**new.profile, "cardNo": new_card_number()})
        else:
            raise Conflict("no free card number was drawn; try again", code="CARD_NUMBER_EXHAUSTED")
        if not program.has_members:
            self.programs.forget(tenant, program.program.code)
        return _view(written, program)

    def update_profile(
        self, tenant: str, editor: Editor, member_id: str, if_match: str | None, patch: MemberPatch
    ) -> MemberView:
        """Apply a merge patch to the profile if it is still the version the caller read (412 if not, 428
        without If-Match). Nothing changes, nothing is written; else one transaction (D-073)."""
        if not if_match or if_match.strip() == "*":  # "*" names no version: it would protect nothing
            raise PreconditionRequired(
                "send If-Match with the ETag of the member you read", code="PRECONDITION_REQUIRED", field="If-Match"
            )
        profile = self.members.profile(tenant, member_id, consistent=True)
        if profile["status"] not in ("active", "frozen"):
            raise Conflict(f"the member is {profile['status']}", code="MEMBER_NOT_ACTIVE")
        version = int(profile.get("version", 1))
        if if_match.strip().strip('"') != str(version):  # strong comparison (RFC 9110 §13.1.1): W/"3" is no match
            raise PreconditionFailed(
                f"the member changed meanwhile: it is at version {version}",
                code="VERSION_MISMATCH",
                field="If-Match",
                currentVersion=version,
            )
        given = patch.model_dump(mode="json", by_alias=True, exclude_unset=True)
        self._allowed(tenant, editor, profile, given)
        now = self.clock.now()
        _plausible_birthday(patch.birthday, now)
        new = dict(given)
        if "address" in given:
            new["address"] = merged_address(profile.get("address"), given["address"])
        if "marketingOptIn" in given and given["marketingOptIn"] != profile.get("marketingOptIn"):
            new["marketingConsentAt"], new["marketingConsentChannel"] = now.isoformat(), editor.channel
        changed = {name: value for name, value in new.items() if profile.get(name) != value}
        if not changed:
            return self.get(tenant, member_id)
        fields = [name for name in changed if not name.startswith("marketingConsent")]
        record = _change_record(
            editor,
            now,
            [{"field": n, "old": masked(n, profile.get(n)), "new": masked(n, changed[n])} for n in fields],
        )
        announced = events.DomainEvent("MemberProfileChanged", {"memberId": member_id, "fields": fields})
        try:
            self.members.update_profile(
                ProfileUpdate(
                    tenant=tenant,
                    member_id=member_id,
                    version=version,
                    versioned="version" in profile,
                    sets={k: v for k, v in changed.items() if v is not None} | _name_key(changed),
                    removes=[k for k, v in changed.items() if v is None] + (["nameKey"] if _no_name(changed) else []),
                    phone=(profile["phone"], changed["phone"]) if "phone" in changed else None,
                    record=record,
                    outbox=[events.outbox_entry(tenant, announced, now)],
                    program_code=profile["programCode"],
                )
            )
        except StaleProfile:
            stale = "the member changed meanwhile"
            raise PreconditionFailed(stale, code="VERSION_MISMATCH", field="If-Match") from None
        return self.get(tenant, member_id)

    def freeze(self, tenant: str, editor: Editor, member_id: str, reason: str) -> MemberView:
        """冻结: no earning, spending or claims until unfrozen (409 MEMBER_FROZEN for each)."""
        return self._move(tenant, editor, member_id, "frozen", ("active",), reason, "MemberFrozen")

    def unfreeze(self, tenant: str, editor: Editor, member_id: str, reason: str) -> MemberView:
        return self._move(tenant, editor, member_id, "active", ("frozen",), reason, "MemberUnfrozen")

    def cancel(self, tenant: str, editor: Editor, member_id: str, reason: str) -> MemberView:
        """注销, for good: the phone is freed for a new registration; the ledger and the card number stay."""
        return self._move(tenant, editor, member_id, "cancelled", ("active", "frozen"), reason, "MemberCancelled")

    def _move(
        self,
        tenant: str,
        editor: Editor,
        member_id: str,
        status: str,
        allowed: tuple[str, ...],
        reason: str,
        event: str,
    ) -> MemberView:
        profile = self.members.profile(tenant, member_id, consistent=True)
        if profile["status"] not in allowed and allowed == ("frozen",):
            raise Conflict(f"the member is {profile['status']}, not frozen", code="MEMBER_NOT_FROZEN")
        if profile["status"] not in allowed:
            raise Conflict(f"the member is {profile['status']}", code="MEMBER_NOT_ACTIVE")
        now = self.clock.now()
        changes = [{"field": "status", "old": profile["status"], "new": status}]
        free_phone = profile.get("phone") if status == "cancelled" else None
        if free_phone:
            changes.append({"field": "phone", "old": masked("phone", free_phone), "new": None})
        record = _change_record(editor, now, changes, reason)
        announced = events.DomainEvent(event, {"memberId": member_id})  # the reason is free text: not on the bus
        try:
            self.members.change_status(
                StatusUpdate(
                    tenant=tenant,
                    member_id=member_id,
                    status=status,
                    allowed=allowed,
                    reason=reason,
                    free_phone=free_phone,
                    record=record,
                    outbox=[events.outbox_entry(tenant, announced, now)],
                )
            )
        except StaleProfile:
            raise Conflict("the member's status changed meanwhile", code="MEMBER_NOT_ACTIVE") from None
        return self.get(tenant, member_id)

    def attach_tag(self, tenant: str, member_id: str, code: str) -> MemberView:
        """打标签; repeatable (the member keeps one of each tag, and the tag counts it once)."""
        self.tag(tenant, member_id, code)
        return self.get(tenant, member_id)

    def detach_tag(self, tenant: str, member_id: str, code: str) -> MemberView:
        self.members.profile(tenant, member_id)  # 404 for an unknown member
        self.untag(tenant, member_id, code)
        return self.get(tenant, member_id)

    def tag(self, tenant: str, member_id: str, code: str) -> bool:
        """Give the member a tag; False if they had it."""
        try:
            tag = self.config.get(tenant, KINDS["tag"], None, code)
        except NotFound:
            raise InvalidInput(f"no tag {code!r}", code="UNKNOWN_TAG", field="tagCode") from None
        return self.members.attach_tag(tenant, member_id, (code, tag.item.name), self.clock.now())

    def untag(self, tenant: str, member_id: str, code: str) -> bool:
        """Take a tag from the member; False if they did not have it."""
        return self.members.detach_tag(tenant, member_id, code)

    def with_tag(self, tenant: str, code: str, limit: int, cursor: str | None) -> TaggedMemberPage:
        try:
            self.config.get(tenant, KINDS["tag"], None, code)
        except NotFound:
            raise NotFound(f"no tag {code!r}", code="TAG_NOT_FOUND") from None
        items, last = self.members.with_tag(tenant, code, limit, decode_cursor(cursor, "") if cursor else None)
        return TaggedMemberPage(
            items=[TaggedMember.model_validate(item) for item in items],
            next_cursor=encode_cursor(last) if last else None,
        )

    def add_note(
        self, tenant: str, editor: Editor, member_id: str, note: NoteInput, with_: tuple[dict, ...] = ()
    ) -> NoteView:
        """备注: a remark kept on the member, with who wrote it and when; a member this tenant lacks is 404.
        `with_` are writes of the same transaction (a bulk job's row: the note is written once)."""
        pk = keys.member(tenant, member_id)
        item = {
            "noteId": new_ulid(),
            "comment": note.comment,
            "writtenBy": editor.key_id,
            "writtenAt": self.clock.now().isoformat(),
        }
        try:
            self.members.table.transact(
                [
                    put({"PK": pk, "SK": keys.NOTE_PREFIX + item["noteId"], **item}),
                    check(pk, keys.MEMBER_SK, "attribute_exists(PK)"),
                    *with_,
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(1):
                raise NotFound(f"no member {member_id!r}", code="MEMBER_NOT_FOUND") from None
            raise
        return NoteView.model_validate(item)

    def notes(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> NotePage:
        self.members.profile(tenant, member_id)
        page = self.members.table.query_prefix(
            keys.member(tenant, member_id), keys.NOTE_PREFIX, limit=limit, cursor=cursor, newest_first=True
        )
        return NotePage(items=[NoteView.model_validate(i) for i in page.items], next_cursor=page.next_cursor)

    def profile_changes(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> ProfileChangePage:
        self.members.profile(tenant, member_id)  # 404 for an unknown member
        page = self.members.profile_changes(tenant, member_id, limit, cursor)
        return ProfileChangePage(
            items=[ProfileChangeView.model_validate(item) for item in page.items], next_cursor=page.next_cursor
        )

    def _allowed(self, tenant: str, editor: Editor, profile: Item, given: dict) -> None:
        """Who may change what: the flags are an operator's, and so is a birthday once set; a phone cannot
        be removed; a home store must exist."""
        if editor.role == "channel":
            for name in OPERATOR_ONLY:
                if name in given:
                    raise Forbidden(f"only an operator may change {name}", code="OPERATOR_ONLY_FIELD", field=name)
            if "birthday" in given and profile.get("birthday") and given["birthday"] != profile["birthday"]:
                raise Conflict(
                    "the birthday is set; only an operator may change it", code="BIRTHDAY_ALREADY_SET", field="birthday"
                )
        if "phone" in given and given["phone"] is None:
            raise InvalidInput("a member keeps a phone number; change it instead", code="PHONE_REQUIRED", field="phone")
        for name in OPERATOR_ONLY:
            if name in given and given[name] is None:
                given[name] = False  # null resets a flag
        if given.get("homeStoreCode"):
            try:
                self.config.get(tenant, KINDS["store"], None, given["homeStoreCode"])
            except NotFound:
                raise InvalidInput(
                    f"no store {given['homeStoreCode']!r}", code="UNKNOWN_STORE", field="homeStoreCode"
                ) from None

    def bind_identity(self, tenant: str, channel: str, member_id: str, identity: ChannelIdentity) -> MemberView:
        self.members.bind_identity(tenant, member_id, (channel, identity.type, identity.value), self.clock.now())
        return self.get(tenant, member_id)

    def get(self, tenant: str, member_id: str) -> MemberView:
        """The member as they can use their points now: a lot past its expiry is not spendable, so it counts
        as expired, not available, even before the sweep closes it (D-051)."""
        items = self.members.items(tenant, member_id)
        now = self.clock.now()
        for account in (i for i in items[1:] if i["SK"].startswith(keys.ACCOUNT_PREFIX)):
            if account["available"] + account.get("debt", 0) > 0:  # it has open lots (= available + debt)
                overdue = self.members.overdue_points(tenant, member_id, account["pointGroupCode"], now)
                account["available"] -= overdue
                account["expired"] += overdue
        return _view(items, self.programs.load(tenant, items[0]["programCode"]))

    def change_tier(self, tenant: str, editor: Editor, member_id: str, request: ManualTierChange) -> TierRecordView:
        """手动 tier change: a tier record like an automatic one (up, down, or the same tier renewed), with
        the operator and the reason; accumulators stay as they are."""
        for _ in range(CHANGE_ATTEMPTS):
            items = self.members.items(tenant, member_id)
            profile = items[0]
            if profile["status"] not in ("active", "frozen"):
                raise Conflict(f"the member is {profile['status']}", code="MEMBER_NOT_ACTIVE")
            program = self.programs.load(tenant, profile["programCode"])
            tier = program.tiers.get(request.tier_code)
            if tier is None:
                raise InvalidInput(f"no tier {request.tier_code!r}", code="UNKNOWN_TIER", field="tierCode")
            if tier.base and request.validity is not None:
                raise InvalidInput("the base tier never expires", code="BASE_TIER_VALIDITY", field="validity")
            current = program.tiers.get(profile["tier"]["code"])
            order = current.order if current else 0
            kind = "UPGRADE" if tier.order > order else "DOWNGRADE" if tier.order < order else "RETENTION"
            now = self.clock.now()
            change = tier_change(
                tenant,
                profile,
                tier,
                kind,
                program,
                now,
                manual={"reason": request.reason, "changedBy": editor.key_id},
                validity=request.validity,
            )
            announced = events.DomainEvent(
                "TierChanged",
                {
                    "memberId": member_id,
                    "from": profile["tier"]["code"],
                    "to": tier.code,
                    "type": kind.lower(),
                    "change": "manual",
                    "recordId": change.new_record["recordId"],
                    "programCode": program.program.code,
                    "changedAt": now.isoformat(),
                },
            )
            try:
                self.ledger.write(
                    LedgerWrite(tenant, member_id, tier=change, outbox=[events.outbox_entry(tenant, announced, now)])
                )
            except WriteConflict:
                continue  # the tier changed meanwhile (an accrual's upgrade): decide again on what is now
            return TierRecordView.model_validate({**change.new_record, "status": "valid"})
        raise Conflict("the member's tier kept changing; retry", code="CONCURRENT_UPDATE")

    def tier_history(self, tenant: str, member_id: str, limit: int = 100, cursor: str | None = None) -> TierRecordPage:
        """Oldest first: base, then each upgrade, retention or downgrade, a page at a time."""
        current = self.members.items(tenant, member_id)[0]["tier"]["recordId"]  # 404 for an unknown member
        page = self.members.tier_history(tenant, member_id, limit, cursor)
        records = [
            TierRecordView.model_validate({**record, "status": "valid" if record["recordId"] == current else "invalid"})
            for record in page.items
        ]
        return TierRecordPage(items=records, next_cursor=page.next_cursor)

    def find_by_phone(self, tenant: str, phone: str) -> MemberView:
        return self.get(tenant, self.members.id_by_phone(tenant, phone))

    def find_by_card(self, tenant: str, card_no: str) -> MemberView:
        return self.get(tenant, self.members.id_by_card(tenant, card_no))

    def unbind_identity(self, tenant: str, channel: str, member_id: str, identity_type: str, value: str) -> MemberView:
        """解绑: the calling channel's identity leaves the member (its record keeps both times). Repeatable;
        another member's identity is a 404 for this one."""
        member = self.get(tenant, member_id)
        bound = [i for i in member.identities if (i.channel, i.type, i.value) == (channel, identity_type, value)]
        if not bound:
            raise NotFound("the member has no such identity on this channel", code="IDENTITY_NOT_FOUND")
        self.members.unbind_identity(tenant, member_id, (channel, identity_type, value), self.clock.now())
        return self.get(tenant, member_id)

    def find_by_identity(self, tenant: str, channel: str, identity_type: str, value: str) -> MemberView:
        return self.get(tenant, self.members.id_by_identity(tenant, channel, identity_type, value))

    def erase_personal_data(self, tenant: str, member_id: str) -> MemberView:
        """一键删除隐私 (D-123): the declared personal fields, the channel identities, tags, notes and the
        personal values of change records go; points, tiers, the ledger and the card number stay. Any status
        (a cancelled member too); repeatable, and a repeat finishes an erasure cut short."""
        profile = self.members.profile(tenant, member_id, consistent=True)  # 404 for an unknown member
        if profile["status"] != "erased":
            now = self.clock.now()
            erased = events.outbox_entry(
                tenant, events.DomainEvent("MemberPersonalDataErased", {"memberId": member_id}), now
            )
            with contextlib.suppress(TransactionCancelled):  # erased meanwhile by a concurrent request
                self.members.erase_profile(tenant, member_id, profile.get("phone"), now, [erased])
        self.members.erase_records(tenant, member_id)
        return self.get(tenant, member_id)


def _plausible_birthday(birthday: date | None, now: datetime) -> None:
    """A birthday is a day of the last 130 years, not one to come (D-127)."""
    today = now.date()
    if birthday is not None and not today.replace(year=today.year - 130, day=min(today.day, 28)) <= birthday <= today:
        raise InvalidInput(
            "a birthday is a day of the last 130 years, not in the future",
            code="BIRTHDAY_OUT_OF_RANGE",
            field="birthday",
        )


def _change_record(editor: Editor, now: datetime, changes: list[dict], reason: str | None = None) -> Item:
    """A profile-change record: who, when, why (for an operator's status change) and each field's change."""
    record = {"changeId": new_ulid(), "changedAt": now.isoformat(), "changedBy": editor.name, "role": editor.role}
    return {**record, **({"reason": reason} if reason else {}), "changes": changes}


def _tier_measures(profile: Item) -> dict[str, int]:
    """The member-level measures tier rules read: the tier period's spend (whole yuan, as the rules' bounds
    are: rounded down, so what is still needed is rounded up) and accrued orders."""
    spend = Decimal(str(profile.get("tierSpend", 0))).to_integral_value(rounding=ROUND_FLOOR)
    return {SPEND: int(spend), ORDERS: int(profile.get("tierOrders", 0))}


def _name_key(changed: dict) -> dict:
    """The member list's key of a changed name, set with it."""
    return {"nameKey": name_key(changed["name"])} if changed.get("name") else {}


def _no_name(changed: dict) -> bool:
    return "name" in changed and changed["name"] is None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _view(items: list[Item], program: ProgramConfig) -> MemberView:
    profile, rest = items[0], items[1:]
    tier = profile["tier"]
    accounts = [i for i in rest if i["SK"].startswith(keys.ACCOUNT_PREFIX)]
    qualifying = {a["pointGroupCode"]: a.get("qualifying", 0) for a in accounts}
    return MemberView(
        id=profile["memberId"],
        program_code=profile["programCode"],
        status=profile["status"],
        status_reason=profile.get("statusReason"),
        version=int(profile.get("version", 1)),
        card_no=profile.get("cardNo"),
        phone=profile.get("phone"),
        name=profile.get("name"),
        email=profile.get("email"),
        birthday=date.fromisoformat(profile["birthday"]) if profile.get("birthday") else None,
        gender=profile.get("gender"),
        address=Address.model_validate(profile["address"]) if profile.get("address") else None,
        marketing_opt_in=profile.get("marketingOptIn"),
        marketing_consent_at=profile.get("marketingConsentAt"),
        marketing_consent_channel=profile.get("marketingConsentChannel"),
        employee=bool(profile.get("employee")),
        test_data=bool(profile.get("testData")),
        nickname=profile.get("nickname"),
        avatar_url=profile.get("avatarUrl"),
        home_store_code=profile.get("homeStoreCode"),
        metrics=_metrics(profile),
        registered_at=profile["registeredAt"],
        registration_channel=profile["channel"],
        registration_store_code=profile.get("storeCode"),
        tier=TierView(
            code=tier["code"],
            name=tier["name"],
            record_id=tier["recordId"],
            type=TIER_TYPES[tier["type"]],
            valid_from=tier["validFrom"],
            valid_until=tier.get("validUntil"),
        ),
        tier_progress=[
            TierProgressView(
                condition=p.condition,
                point_group_code=p.point_group_code,
                qualifying=p.qualifying,
                next_tier=TierTargetView(code=p.next_tier.code, name=p.next_tier.name, points_needed=p.next_tier_needs)
                if p.next_tier and p.next_tier_needs is not None
                else None,
                retention_target=p.retention_target,
                retention_points_needed=p.retention_needs,
                retention_by=tier.get("validUntil") if p.retention_target is not None else None,
            )
            for p in progress(program, tier["code"], {**qualifying, **_tier_measures(profile)})
        ],
        accounts=[
            AccountView(
                point_group_code=i["pointGroupCode"],
                name=i["name"],
                cumulative=i["cumulative"],
                available=i["available"],
                expired=i["expired"],
                debt=i.get("debt", 0),
            )
            for i in accounts
        ],
        tags=[MemberTagView.model_validate(i) for i in rest if i["SK"].startswith(keys.TAG_PREFIX)],
        identities=[
            IdentityView(
                channel=i["channel"],
                type=i["type"],
                value=i["value"],
                bound_at=i["boundAt"],
                unbound_at=i.get("unboundAt"),
            )
            for i in rest
            if i["SK"].startswith(keys.IDENTITY_PREFIX)
        ],
    )


def _metrics(profile: Item) -> SpendMetrics:
    gross, returned = Decimal(str(profile.get("grossSpend", 0))), Decimal(str(profile.get("returnedAmount", 0)))
    orders = int(profile.get("orderCount", 0))
    cent = Decimal("0.01")
    total = gross - returned
    return SpendMetrics(
        total_spend=total.quantize(cent),
        order_count=orders,
        returned_amount=returned.quantize(cent),
        average_order_value=(total / orders).quantize(cent) if orders else None,
        first_purchase_at=profile.get("firstPurchaseAt"),
        last_purchase_at=profile.get("lastPurchaseAt"),
    )


def member_service(table: Table | None = None, clock: Clock | None = None) -> MemberService:
    table = table or Table()
    config = ConfigRepository(table)
    return MemberService(
        MemberRepository(table), ProgramLoader(config), config, LedgerRepository(table), clock or SystemClock()
    )
