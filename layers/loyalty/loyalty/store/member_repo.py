"""Member items: the profile, one account per point group, identities and tier records, all in the
member's partition, so one query reads a member whole. Phone and channel identities are unique per
tenant through guard items written in the same transaction as what they guard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loyalty.domain.config import Ref
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.personal_data import ERASED_ATTRIBUTES, PERSONAL
from loyalty.store import keys
from loyalty.store.config_repo import count_ref
from loyalty.store.table import Item, Page, Table, TransactionCancelled, check, delete, put, update


class AlreadyRegistered(Exception):
    """The request's Idempotency-Key registered a member before (its answer was lost)."""


class CardNumberTaken(Exception):
    """The random card number drawn for a registration is another member's: draw again."""


@dataclass(frozen=True)
class NewMember:
    tenant: str
    member_id: str
    profile: Item  # attributes of the profile item, without keys
    tier_record: Item
    accounts: list[Item]  # one per point group: {"pointGroupCode", "name"}
    identity: tuple[str, str, str] | None  # (channel, type, value)
    outbox: list[dict]  # event entries, written with the member
    first_of_program: Any = None  # (program code, base tier code) while the program has no members yet
    request: dict | None = None  # the Idempotency-Key's marker (store/requests.py), written last
    activities: list[dict] = field(default_factory=list)  # timeline entries (注册), written with the member


class StaleProfile(Exception):
    """The profile is no longer the version the change was based on (or no longer active)."""


@dataclass
class ProfileUpdate:
    tenant: str
    member_id: str
    version: int  # the version the change is based on
    versioned: bool  # False for a profile written before versions (it is version 1)
    sets: dict[str, Any]
    removes: list[str]
    phone: tuple[str, str] | None  # (old, new) when the phone changes
    record: Item  # the profile-change record
    outbox: list[dict]
    program_code: str = ""  # the member's: a changed birthday moves its index entry (keys.birthday_entry)


@dataclass
class StatusUpdate:
    tenant: str
    member_id: str
    status: str  # the new status
    allowed: tuple[str, ...]  # the statuses it may come from
    reason: str
    free_phone: str | None  # cancelling: the phone whose guard goes
    record: Item
    outbox: list[dict]


def _release_phone(tenant: str, phone: str, member_id: str) -> dict:
    """Free a phone number for another registration: its guard goes, if it is still this member's."""
    return delete(keys.phone_guard(tenant, phone), keys.GUARD_SK, "memberId = :id", {":id": member_id})


def _blanked(change: dict[str, Any]) -> dict[str, Any]:
    """A change record's line with a personal field's values gone (its name stays: that it changed)."""
    if change.get("field") in PERSONAL and (change.get("old") is not None or change.get("new") is not None):
        return {**change, "old": None, "new": None}
    return change


def accounts_by_group(items: list[Item]) -> dict[str, Item]:
    """The point accounts among a member's summary items (MemberRepository.items), by point group."""
    return {i["pointGroupCode"]: i for i in items[1:] if i["SK"].startswith(keys.ACCOUNT_PREFIX)}


def tags_of(items: list[Item]) -> set[str]:
    """The codes of the tags among a member's summary items (MemberRepository.items)."""
    return {i["SK"][len(keys.TAG_PREFIX) :] for i in items if i["SK"].startswith(keys.TAG_PREFIX)}


class MemberRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def register(self, new: NewMember, now: datetime) -> list[Item]:
        """Write the member; returns its summary items as `items` would read them, so nobody reads them back."""
        tenant, member_id = new.tenant, new.member_id
        pk, stamp = keys.member(tenant, member_id), now.isoformat()
        phone = new.profile["phone"]
        operations = [
            put({"PK": pk, "SK": keys.MEMBER_SK, **new.profile}, "attribute_not_exists(PK)"),
            put(
                {"PK": keys.phone_guard(tenant, phone), "SK": keys.GUARD_SK, "memberId": member_id},
                "attribute_not_exists(PK)",
            ),
            put({"PK": pk, "SK": keys.tier_record_sk(new.tier_record["recordId"]), **new.tier_record}),
        ]
        operations += [
            put(
                {
                    "PK": pk,
                    "SK": keys.account_sk(a["pointGroupCode"]),
                    **a,
                    "cumulative": 0,
                    "available": 0,
                    "expired": 0,
                    "qualifying": 0,
                    "debt": 0,
                    "createdAt": stamp,
                }
            )
            for a in new.accounts
        ]
        if new.identity:
            operations += self._bind_operations(tenant, member_id, new.identity, stamp)
        card = None
        if new.profile.get("cardNo"):
            card = len(operations)
            operations.append(
                put(
                    {"PK": keys.card_guard(tenant, new.profile["cardNo"]), "SK": keys.GUARD_SK, "memberId": member_id},
                    "attribute_not_exists(PK)",
                )
            )
        operations += new.activities
        if new.profile.get("birthday"):
            entry = keys.birthday_entry(tenant, new.profile["programCode"], member_id, new.profile["birthday"])
            operations.append(put(entry))
        if new.first_of_program:
            program_code, base_tier = new.first_of_program
            operations += [
                update(
                    keys.tenant_config(tenant),
                    keys.config_sk("program", program_code),
                    "SET hasMembers = :yes",
                    {":yes": True},
                    "attribute_exists(PK)",
                ),
                check(keys.program(tenant, program_code), keys.config_sk("tier", base_tier), "attribute_exists(PK)"),
            ]
        operations += new.outbox
        if new.request:
            operations.append(new.request)
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if new.request and cancelled.failed(len(operations) - 1):
                raise AlreadyRegistered() from None
            if cancelled.failed(1):
                existing = (cancelled.items[1] or {}).get("memberId")
                raise Conflict(
                    "a member with this phone number exists",
                    code="PHONE_TAKEN",
                    field="phone",
                    existingMemberId=existing,
                ) from None
            if new.identity and cancelled.failed(3 + len(new.accounts)):
                raise self._identity_taken(cancelled.items[3 + len(new.accounts)]) from None
            if card is not None and cancelled.failed(card):
                raise CardNumberTaken() from None
            if new.first_of_program and cancelled.first_failed() is not None:
                raise Conflict("the program changed meanwhile; retry", code="PROGRAM_CHANGED") from None
            raise
        written = [op["Put"]["Item"] for op in operations if "Put" in op and op["Put"]["Item"]["PK"] == pk]
        return sorted((i for i in written if i["SK"].startswith(keys.MEMBER_SK)), key=lambda i: i["SK"])

    def bind_identity(self, tenant: str, member_id: str, identity: tuple[str, str, str], now: datetime) -> bool:
        """Bind a channel identity; False if it was already bound to this member (a harmless repeat)."""
        pk = keys.member(tenant, member_id)
        operations = [
            check(
                pk,
                keys.MEMBER_SK,
                "attribute_exists(PK) AND #status = :active",
                {":active": "active"},
                {"#status": "status"},
            )
        ]
        operations += self._bind_operations(tenant, member_id, identity, now.isoformat())
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise NotFound(f"no member {member_id!r}", code="MEMBER_NOT_FOUND") from None
            if cancelled.failed(1):
                owner = (cancelled.items[1] or {}).get("memberId")
                if owner == member_id:
                    return False
                raise self._identity_taken(cancelled.items[1]) from None
            raise
        return True

    def index_page(
        self, tenant: str, shard: int, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[str], dict[str, Any] | None]:
        """One page of one shard of the tenant's member index: member ids, and where the next page starts."""
        entries, more = self.table.query_index("GSI1", keys.members_index(tenant, shard), limit=limit, start=start)
        return [entry["memberId"] for entry in entries], more

    def items(self, tenant: str, member_id: str) -> list[Item]:
        """Profile, accounts and identities: one query, since their sort keys share the MEMBER prefix."""
        items = self.table.query_prefix(keys.member(tenant, member_id), keys.MEMBER_SK).items
        if not items or items[0]["SK"] != keys.MEMBER_SK:
            raise NotFound(f"no member {member_id!r}", code="MEMBER_NOT_FOUND")
        return items

    def profile(self, tenant: str, member_id: str, *, consistent: bool = False) -> Item:
        found = self.table.get(keys.member(tenant, member_id), keys.MEMBER_SK, consistent=consistent)
        if found is None:
            raise NotFound(f"no member {member_id!r}", code="MEMBER_NOT_FOUND")
        return found

    def overdue_points(self, tenant: str, member_id: str, point_group: str, now: datetime) -> int:
        """Points left in lots whose expiry has passed but that the expiry sweep has not closed yet: one
        query over the lots that sort before `now` (usually none)."""
        prefix = f"{keys.LOT_PREFIX}{point_group}#"
        lots = self.table.query_all(keys.member(tenant, member_id), prefix, before=f"{prefix}{keys.stamp(now)}")
        return sum(int(lot["remaining"]) for lot in lots)

    def tier_history(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> Page:
        """A page of the member's tier records, oldest first."""
        return self.table.query_prefix(
            keys.member(tenant, member_id), keys.tier_record_sk(""), limit=limit, cursor=cursor
        )

    def id_by_phone(self, tenant: str, phone: str) -> str:
        guard = self.table.get(keys.phone_guard(tenant, phone), keys.GUARD_SK)
        if guard is None:
            raise NotFound("no member with this phone number", code="MEMBER_NOT_FOUND")
        return str(guard["memberId"])

    def attach_tag(self, tenant: str, member_id: str, tag: tuple[str, str], now: datetime) -> bool:
        """Give the member a tag, counted on the tag; False if the member had it (nothing written)."""
        code, name = tag
        pk = keys.member(tenant, member_id)
        item = {
            "PK": pk,
            "SK": keys.member_tag_sk(code),
            "tagCode": code,
            "name": name,
            "attachedAt": now.isoformat(),
            "GSI1PK": keys.tag_members(tenant, code),
            "GSI1SK": member_id,
        }
        try:
            self.table.transact(
                [
                    put(item, "attribute_not_exists(PK)"),
                    count_ref(tenant, None, Ref("tag", code, "tagCode"), 1),
                    check(pk, keys.MEMBER_SK, "attribute_exists(PK)"),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False
            if cancelled.failed(1):
                raise InvalidInput(f"no tag {code!r}", code="UNKNOWN_TAG", field="tagCode") from None
            if cancelled.failed(2):
                raise NotFound(f"no member {member_id!r}", code="MEMBER_NOT_FOUND") from None
            raise
        return True

    def detach_tag(self, tenant: str, member_id: str, code: str) -> bool:
        """Take a tag from the member, uncounted on the tag; False if the member did not have it."""
        try:
            self.table.transact(
                [
                    delete(keys.member(tenant, member_id), keys.member_tag_sk(code), "attribute_exists(PK)"),
                    count_ref(tenant, None, Ref("tag", code, "tagCode"), -1),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False
            raise
        return True

    def with_tag(self, tenant: str, code: str, limit: int, after: str | None) -> tuple[list[Item], str | None]:
        """The tag items of the members holding a tag (GSI1SK = member id), a page at a time, from `after`."""
        start = (
            {
                "PK": {"S": keys.member(tenant, after)},
                "SK": {"S": keys.member_tag_sk(code)},
                "GSI1PK": {"S": keys.tag_members(tenant, code)},
                "GSI1SK": {"S": after},
            }
            if after
            else None
        )
        items, last = self.table.query_index("GSI1", keys.tag_members(tenant, code), limit=limit, start=start)
        return items, (last["GSI1SK"]["S"] if last else None)

    def id_by_card(self, tenant: str, card_no: str) -> str:
        guard = self.table.get(keys.card_guard(tenant, card_no), keys.GUARD_SK)
        if guard is None:
            raise NotFound("no member with this card number", code="MEMBER_NOT_FOUND")
        return str(guard["memberId"])

    def unbind_identity(self, tenant: str, member_id: str, identity: tuple[str, str, str], now: datetime) -> bool:
        """Free a channel identity (解绑), keeping its record with the time; False if it was not bound to
        this member (a harmless repeat, or someone else's identity: nothing is written either way)."""
        channel, identity_type, value = identity
        try:
            self.table.transact(
                [
                    delete(
                        keys.identity_guard(tenant, channel, identity_type, value),
                        keys.GUARD_SK,
                        "memberId = :id",
                        {":id": member_id},
                    ),
                    update(
                        keys.member(tenant, member_id),
                        keys.identity_sk(channel, identity_type, value),
                        "SET unboundAt = :now",
                        {":now": now.isoformat()},
                        "attribute_exists(PK) AND attribute_not_exists(unboundAt)",
                    ),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.first_failed() is not None:
                return False
            raise
        return True

    def id_by_identity(self, tenant: str, channel: str, identity_type: str, value: str) -> str:
        guard = self.table.get(keys.identity_guard(tenant, channel, identity_type, value), keys.GUARD_SK)
        if guard is None:
            raise NotFound("no member with this channel identity", code="MEMBER_NOT_FOUND")
        return str(guard["memberId"])

    def erase_profile(self, tenant: str, member_id: str, phone: str | None, now: datetime, outbox: list[dict]) -> None:
        """Remove the profile's personal fields and the operators' reason (D-123), mark it erased and free its
        phone number, together; accounts, tiers and the ledger stay. Cancelled if it is erased already."""
        pk = keys.member(tenant, member_id)
        names = {f"#e{i}": name for i, name in enumerate(ERASED_ATTRIBUTES)} | {"#status": "status"}
        removes = ", ".join(name for name in names if name != "#status")
        self.table.transact(
            [
                update(
                    pk,
                    keys.MEMBER_SK,
                    f"REMOVE {removes} SET #status = :erased, erasedAt = :now",
                    {":erased": "erased", ":now": now.isoformat()},
                    "attribute_exists(PK) AND #status <> :erased",
                    names,
                ),
                *([_release_phone(tenant, phone, member_id)] if phone else []),
                delete(pk, keys.BIRTHDAY_SK),
                delete(pk, keys.LAST_PURCHASE_SK),  # an erased member is no campaign's to win back
                *outbox,
            ]
        )

    def erase_records(self, tenant: str, member_id: str) -> None:
        """What else the member's partition says of the person (D-123): channel identities are unbound and
        forgotten (their guards and items go: the value is in the item's key), tags detached, notes and the
        reasons and personal values of change records blanked. Each write stands alone and a repeat finds
        nothing left, so an erasure cut short is finished by the next."""
        pk = keys.member(tenant, member_id)
        for identity in self.table.query_all(pk, keys.IDENTITY_PREFIX):
            self._forget_identity(tenant, member_id, identity)
        for tag in self.table.query_all(pk, keys.TAG_PREFIX):
            self.detach_tag(tenant, member_id, tag["tagCode"])
        for note in self.table.query_all(pk, keys.NOTE_PREFIX):
            if note.get("comment"):
                blank = update(pk, note["SK"], "SET #c = :blank", {":blank": ""}, None, {"#c": "comment"})
                self.table.transact([blank])
        for record in self.table.query_all(pk, keys.PROFILE_CHANGE_PREFIX):
            changes = [_blanked(change) for change in record.get("changes", [])]
            if changes != record.get("changes", []) or "reason" in record:
                self.table.transact(
                    [update(pk, record["SK"], "SET changes = :changes REMOVE reason", {":changes": changes})]
                )

    def _forget_identity(self, tenant: str, member_id: str, identity: Item) -> None:
        """The identity's item goes, and its guard with it if the guard is still this member's (an identity
        unbound earlier may be another member's by now)."""
        guard = keys.identity_guard(tenant, identity["channel"], identity["type"], identity["value"])
        item = delete(identity["PK"], identity["SK"])
        try:
            self.table.transact([delete(guard, keys.GUARD_SK, "memberId = :id", {":id": member_id}), item])
        except TransactionCancelled as cancelled:
            if not cancelled.failed(0):
                raise
            self.table.transact([item])

    def update_profile(self, change: ProfileUpdate) -> None:
        """The profile's new values, its version moved on, the phone guard moved with a new phone, the change
        record and the outbox entry: all or nothing. The version read is the condition."""
        pk = keys.member(change.tenant, change.member_id)
        names = {"#status": "status", "#version": "version"}
        values: dict[str, Any] = {":active": "active", ":frozen": "frozen", ":next": change.version + 1}
        sets, removes = ["#version = :next"], []
        for i, (name, value) in enumerate(change.sets.items()):
            names[f"#s{i}"], values[f":s{i}"] = name, value
            sets.append(f"#s{i} = :s{i}")
        for i, name in enumerate(change.removes):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        if change.versioned:
            condition, values[":expected"] = "#status IN (:active, :frozen) AND #version = :expected", change.version
        else:  # a profile from before versions: version 1 until its first change
            condition = "#status IN (:active, :frozen) AND attribute_not_exists(#version)"
        operations = [update(pk, keys.MEMBER_SK, expression, values, condition, names)]
        if change.phone:
            old, new = change.phone
            operations += [
                put(
                    {"PK": keys.phone_guard(change.tenant, new), "SK": keys.GUARD_SK, "memberId": change.member_id},
                    "attribute_not_exists(PK)",
                ),
                _release_phone(change.tenant, old, change.member_id),
            ]
        operations += [put({"PK": pk, "SK": keys.profile_change_sk(change.record["changeId"]), **change.record})]
        if "birthday" in change.sets:  # set by the member once, or changed by an operator
            entry = keys.birthday_entry(change.tenant, change.program_code, change.member_id, change.sets["birthday"])
            operations.append(put(entry))
        elif "birthday" in change.removes:
            operations.append(delete(pk, keys.BIRTHDAY_SK))
        operations += change.outbox
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise StaleProfile() from None
            if change.phone and cancelled.failed(1):
                raise Conflict(
                    "a member with this phone number exists",
                    code="PHONE_TAKEN",
                    field="phone",
                    existingMemberId=(cancelled.items[1] or {}).get("memberId"),
                ) from None
            raise

    def change_status(self, change: StatusUpdate) -> None:
        """Move the profile from one of `change.allowed` to `change.status`, with its reason, version moved
        on, the change record and the event; cancelling also frees the phone (its guard goes, and the
        profile forgets the number). Raises StaleProfile when the status was not one of those allowed."""
        pk = keys.member(change.tenant, change.member_id)
        values: dict[str, Any] = {
            ":to": change.status,
            ":reason": change.reason,
            ":at": change.record["changedAt"],
            ":one": 1,
            **{f":from{i}": status for i, status in enumerate(change.allowed)},
        }
        allowed = ", ".join(f":from{i}" for i in range(len(change.allowed)))
        expression = "SET #status = :to, statusReason = :reason, statusChangedAt = :at ADD #version :one"
        if change.free_phone:
            expression += " REMOVE phone"
        operations = [
            update(
                pk,
                keys.MEMBER_SK,
                expression,
                values,
                f"#status IN ({allowed})",
                {"#status": "status", "#version": "version"},
            )
        ]
        if change.free_phone:
            operations.append(_release_phone(change.tenant, change.free_phone, change.member_id))
        operations += [put({"PK": pk, "SK": keys.profile_change_sk(change.record["changeId"]), **change.record})]
        operations += change.outbox
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise StaleProfile() from None
            raise

    def profile_changes(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> Page:
        pk = keys.member(tenant, member_id)
        return self.table.query_prefix(pk, keys.PROFILE_CHANGE_PREFIX, limit=limit, cursor=cursor, newest_first=True)

    @staticmethod
    def _bind_operations(tenant: str, member_id: str, identity: tuple[str, str, str], stamp: str) -> list[dict]:
        channel, identity_type, value = identity
        return [
            put(
                {
                    "PK": keys.identity_guard(tenant, channel, identity_type, value),
                    "SK": keys.GUARD_SK,
                    "memberId": member_id,
                },
                "attribute_not_exists(PK)",
            ),
            put(
                {
                    "PK": keys.member(tenant, member_id),
                    "SK": keys.identity_sk(channel, identity_type, value),
                    "channel": channel,
                    "type": identity_type,
                    "value": value,
                    "boundAt": stamp,
                }
            ),
        ]

    @staticmethod
    def _identity_taken(guard: Item | None) -> Conflict:
        return Conflict(
            "this channel identity is bound to another member",
            code="IDENTITY_TAKEN",
            field="identity",
            existingMemberId=(guard or {}).get("memberId"),
        )
