"""Configuration items in the single table, with referential integrity kept by the writes themselves.

Every reference an item makes is counted on its target (`refs`), incremented in the same transaction
that writes the referencing item, under the condition that the target exists (and is enabled, for
groups). A delete is conditioned on `refs = 0`. Unique values are guard items written alongside. So a
missing target, a duplicate or a delete of something in use is refused by DynamoDB itself, atomically,
whatever runs at the same time; nothing is read first and then trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.config import GROUP_MEMBER_KINDS, KINDS, ConfigItem, Kind, Ref, changed_refs, distinct_refs
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.store import keys
from loyalty.store.table import Item, Page, Table, TransactionCancelled, delete, put, update

ENABLED = "enabled"
DRAFT = "draft"


@dataclass(frozen=True)
class Stored:
    kind: Kind
    item: ConfigItem
    version: int
    status: str | None
    created_at: str
    updated_at: str
    refs: int = 0
    has_members: bool = False
    members: int = 0  # a store or product group's stores or products


def _location(tenant: str, kind: Kind, program: str | None, code: str) -> tuple[str, str]:
    pk = keys.program(tenant, program) if kind.scope == "program" and program else keys.tenant_config(tenant)
    return pk, keys.config_sk(kind.name, code)


def _ref_location(tenant: str, program: str | None, ref: Ref) -> tuple[str, str]:
    return _location(tenant, KINDS[ref.kind], program, ref.code)


class ConfigRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- reads ---------------------------------------------------------------------------------------

    def get(self, tenant: str, kind: Kind, program: str | None, code: str) -> Stored:
        item = self.table.get(*_location(tenant, kind, program, code))
        if item is None:
            raise NotFound(f"no {kind.name} {code!r}", code=f"{_upper(kind)}_NOT_FOUND")
        return self._stored(kind, item)

    @staticmethod
    def location(tenant: str, kind: Kind, code: str, program: str | None = None) -> tuple[str, str]:
        """Where an item of a kind lives (for reads batched with other items)."""
        return _location(tenant, kind, program, code)

    def get_many(self, tenant: str, kind: Kind, program: str | None, codes: list[str]) -> dict[str, Stored]:
        """The items of these codes that exist, by code: one round trip per 100 codes."""
        found: dict[str, Stored] = {}
        distinct = list(dict.fromkeys(codes))
        for start in range(0, len(distinct), 100):
            locations = [_location(tenant, kind, program, code) for code in distinct[start : start + 100]]
            for record in self.table.get_many(locations, consistent=False).values():
                stored = self._stored(kind, record)
                found[stored.item.code] = stored
        return found

    def list_page(
        self, tenant: str, kind: Kind, program: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Stored], str | None]:
        pk, _ = _location(tenant, kind, program, "")
        page: Page = self.table.query_prefix(pk, f"{kind.name}#", limit=limit, cursor=cursor)
        return [self._stored(kind, item) for item in page.items], page.next_cursor

    def all_programs(self) -> list[tuple[str, str]]:
        """(tenant, program code) of every program, for the sweeps."""
        found: list[tuple[str, str]] = []
        start = None
        while True:
            items, start = self.table.query_index("GSI1", keys.PROGRAMS_INDEX, limit=1000, start=start)
            found += [(item["tenant"], item["code"]) for item in items]
            if not start:
                return found

    def program_items(self, tenant: str, program: str) -> list[Item]:
        """Every item of one program's structure, in one query (a program is small)."""
        return self.table.query_prefix(keys.program(tenant, program), "").items

    # --- writes --------------------------------------------------------------------------------------

    def create(self, tenant: str, kind: Kind, program: str | None, item: ConfigItem, now: datetime) -> Stored:
        pk, sk = _location(tenant, kind, program, item.code)
        stamp = now.isoformat()
        record = {
            "PK": pk,
            "SK": sk,
            "kind": kind.name,
            "code": item.code,
            "data": _data(item),
            "version": 1,
            "refs": 0,
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        if kind.enableable:
            record["status"] = DRAFT
        if kind.name == "program":
            record.update(GSI1PK=keys.PROGRAMS_INDEX, GSI1SK=f"{tenant}#{item.code}", tenant=tenant)
        operations: list[dict] = [put(record, "attribute_not_exists(PK)")]
        guards = kind.unique(item)
        operations += [put(_guard(pk, name, item.code), "attribute_not_exists(PK)") for name in guards]
        if kind.scope == "program":
            operations.append(_count_on_program(tenant, program, +1))
        targets = list(distinct_refs(kind.refs(item)).values())
        operations += [count_ref(tenant, program, ref, +1) for ref in targets]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            offset = 1 + len(guards) + (1 if kind.scope == "program" else 0)
            if cancelled.failed(0):
                raise Conflict(
                    f"{kind.name} {item.code!r} already exists", code="ALREADY_EXISTS", field="code"
                ) from None
            self._raise_for_guard(kind, cancelled, 1, guards)
            if kind.scope == "program" and cancelled.failed(1 + len(guards)):
                raise NotFound(f"no program {program!r}", code="PROGRAM_NOT_FOUND") from None
            self.raise_for_refs(cancelled, offset, targets)
            raise
        return self._stored(kind, record)

    def replace(
        self, tenant: str, kind: Kind, program: str | None, code: str, item: ConfigItem, now: datetime
    ) -> Stored:
        """Replace an item whole (PUT). Guarded by its version, so a concurrent change is refused, not lost."""
        if item.code != code:
            raise InvalidInput("the code in the body differs from the one in the path", field="code")
        current = self.get(tenant, kind, program, code)
        if current.status == ENABLED and getattr(current.item, "everything", None) != getattr(item, "everything", None):
            raise Conflict(f"{kind.name} {code!r} is enabled: its members are frozen", code="GROUP_ENABLED")
        pk, sk = _location(tenant, kind, program, code)
        record = {
            "PK": pk,
            "SK": sk,
            "kind": kind.name,
            "code": code,
            "data": _data(item),
            "version": current.version + 1,
            "refs": current.refs,
            "createdAt": current.created_at,
            "updatedAt": now.isoformat(),
        }
        if current.status:
            record["status"] = current.status
        if current.has_members:  # a replace keeps what registrations recorded
            record["hasMembers"] = True
        if current.members:  # and a group's count of members (each change of them moves the version)
            record["members"] = current.members
        if kind.name == "program":
            record.update(GSI1PK=keys.PROGRAMS_INDEX, GSI1SK=f"{tenant}#{code}", tenant=tenant)
        operations = [put(record, "version = :v", {":v": current.version})]
        old_guards, new_guards = set(kind.unique(current.item)), kind.unique(item)
        added_guards = [name for name in new_guards if name not in old_guards]
        operations += [put(_guard(pk, name, code), "attribute_not_exists(PK)") for name in added_guards]
        operations += [delete(pk, keys.guard_sk(name)) for name in old_guards - set(new_guards)]
        added, removed = changed_refs(kind.refs(current.item), kind.refs(item))
        ref_offset = len(operations)
        operations += [count_ref(tenant, program, ref, +1) for ref in added]
        operations += [count_ref(tenant, program, ref, -1) for ref in removed]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise Conflict(
                    f"{kind.name} {code!r} changed meanwhile; read it again", code="CONCURRENT_UPDATE"
                ) from None
            self._raise_for_guard(kind, cancelled, 1, added_guards)
            self.raise_for_refs(cancelled, ref_offset, added)
            raise
        return self._stored(kind, record)

    def delete(self, tenant: str, kind: Kind, program: str | None, code: str) -> None:
        current = self.get(tenant, kind, program, code)
        pk, sk = _location(tenant, kind, program, code)
        condition = "version = :v AND refs = :zero"
        if kind.name == "program":
            condition += " AND attribute_not_exists(hasMembers)"
        if kind.enableable:
            condition += " AND (attribute_not_exists(members) OR members = :zero)"
        operations = [delete(pk, sk, condition, {":v": current.version, ":zero": 0})]
        operations += [delete(pk, keys.guard_sk(name)) for name in kind.unique(current.item)]
        if kind.scope == "program":
            operations.append(_count_on_program(tenant, program, -1, unless_members=kind.frozen_once_members))
        operations += [count_ref(tenant, program, ref, -1) for ref in distinct_refs(kind.refs(current.item)).values()]
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                old = cancelled.items[0] or {}
                if old.get("hasMembers"):
                    raise Conflict(f"program {code!r} has members", code="PROGRAM_IN_USE") from None
                if old.get("members", 0) > 0:
                    raise Conflict(
                        f"{kind.name} {code!r} still holds {old['members']} members: take them out first",
                        code="GROUP_NOT_EMPTY",
                        members=old["members"],
                    ) from None
                if old.get("refs", 0) > 0:
                    raise Conflict(
                        f"{kind.name} {code!r} is still referenced ({old['refs']})",
                        code="STILL_REFERENCED",
                        references=old["refs"],
                    ) from None
                raise Conflict(
                    f"{kind.name} {code!r} changed meanwhile; read it again", code="CONCURRENT_UPDATE"
                ) from None
            if kind.scope == "program":
                raise Conflict(
                    f"program {program!r} has members: its {kind.plural} cannot be deleted", code="PROGRAM_IN_USE"
                ) from None
            raise

    def enable(self, tenant: str, kind: Kind, code: str, now: datetime) -> Stored:
        """Enable a group. Enabling an enabled group changes nothing, so a retry is harmless."""
        pk, sk = _location(tenant, kind, None, code)
        try:
            self.table.transact(
                [
                    update(
                        pk,
                        sk,
                        "SET #status = :enabled, enabledAt = if_not_exists(enabledAt, :now)",
                        {":enabled": ENABLED, ":now": now.isoformat()},
                        "attribute_exists(PK)",
                        {"#status": "status"},
                    )
                ]
            )
        except TransactionCancelled:
            raise NotFound(f"no {kind.name} {code!r}", code=f"{_upper(kind)}_NOT_FOUND") from None
        return self.get(tenant, kind, None, code)

    # --- the members of store and product groups --------------------------------------------------

    def change_member(self, tenant: str, group_kind: str, group_code: str, code: str, add: bool, now: datetime) -> bool:
        """Put a store (product) in a draft group or take it out, counted on the group and on the store as a
        reference; False when it was in (out) already: nothing written."""
        kind, held = KINDS[group_kind], KINDS[GROUP_MEMBER_KINDS[group_kind]]
        group_pk, group_sk = _location(tenant, kind, None, group_code)
        member_pk, member_sk = keys.group_members(tenant, group_kind, group_code), keys.group_member_sk(code)
        if not add and self.table.get(member_pk, member_sk) is None:  # nothing to take out (nor to uncount)
            self.get(tenant, kind, None, group_code)  # 404 for a group this tenant does not have
            return False
        membership = (
            put(
                {"PK": member_pk, "SK": member_sk, "code": code, "addedAt": now.isoformat()}, "attribute_not_exists(PK)"
            )
            if add
            else delete(member_pk, member_sk, "attribute_exists(PK)")
        )
        operations = [
            update(
                group_pk,
                group_sk,
                "SET version = version + :one, members = if_not_exists(members, :zero) + :delta",
                {":one": 1, ":zero": 0, ":delta": 1 if add else -1, ":draft": DRAFT},
                "attribute_exists(PK) AND #status = :draft",
                {"#status": "status"},
            ),
            membership,
            count_ref(tenant, None, Ref(held.name, code, "code"), 1 if add else -1),
        ]
        for attempt in range(3):
            try:
                self.table.transact(operations)
                return True
            except TransactionCancelled as cancelled:
                if cancelled.failed(0) and cancelled.items[0] is None:
                    raise NotFound(f"no {kind.name} {group_code!r}", code=f"{_upper(kind)}_NOT_FOUND") from None
                if cancelled.failed(1):
                    return False  # in (out) already: a repeat
                if cancelled.failed(0):
                    raise Conflict(
                        f"{kind.name} {group_code!r} is enabled: its members are frozen", code="GROUP_ENABLED"
                    ) from None
                if cancelled.failed(2):
                    raise InvalidInput(f"no {held.name} {code!r}", code="UNKNOWN_REFERENCE", field="code") from None
                if "TransactionConflict" not in cancelled.reasons or attempt == 2:
                    raise  # another chunk adding to the same group at once: try again, then give up
        return False  # pragma: no cover - the loop returns or raises

    def members_page(
        self, tenant: str, group_kind: str, group_code: str, limit: int, cursor: str | None
    ) -> tuple[list[Item], str | None]:
        self.get(tenant, KINDS[group_kind], None, group_code)  # 404 for a group this tenant does not have
        page = self.table.query_prefix(
            keys.group_members(tenant, group_kind, group_code), keys.GROUP_MEMBER_PREFIX, limit=limit, cursor=cursor
        )
        return page.items, page.next_cursor

    # --- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _stored(kind: Kind, record: Item) -> Stored:
        return Stored(
            kind,
            kind.model.stored(record["data"]),
            record["version"],
            record.get("status"),
            record["createdAt"],
            record["updatedAt"],
            record.get("refs", 0),
            bool(record.get("hasMembers")),
            record.get("members", 0),
        )

    @staticmethod
    def _raise_for_guard(kind: Kind, cancelled: TransactionCancelled, offset: int, guards: list[str]) -> None:
        for index, name in enumerate(guards):
            if cancelled.failed(offset + index):
                owner = (cancelled.items[offset + index] or {}).get("owner")
                field = "base" if name == "BASE_TIER" else "order"
                raise InvalidInput(  # a rule across the program's tiers, like every cross-field rule: 422
                    f"{kind.name} {owner!r} already has this {field}",
                    code=f"DUPLICATE_{field.upper()}",
                    field=field,
                    existing=owner,
                )

    @staticmethod
    def raise_for_refs(cancelled: TransactionCancelled, offset: int, refs: list[Ref]) -> None:
        for index, ref in enumerate(refs):
            if cancelled.failed(offset + index):
                exists = cancelled.items[offset + index] is not None
                detail = f"{ref.kind} {ref.code!r} is not enabled" if exists else f"no {ref.kind} {ref.code!r}"
                raise InvalidInput(detail, code="NOT_ENABLED" if exists else "UNKNOWN_REFERENCE", field=ref.field)


def _data(item: ConfigItem) -> dict[str, Any]:
    return item.model_dump(mode="python", by_alias=True, exclude_none=True)


def _guard(pk: str, name: str, owner: str) -> Item:
    return {"PK": pk, "SK": keys.guard_sk(name), "owner": owner}


def count_ref(tenant: str, program: str | None, ref: Ref, delta: int) -> dict:
    pk, sk = _ref_location(tenant, program, ref)
    if delta < 0:
        return update(pk, sk, "SET refs = refs - :one", {":one": 1})
    condition = "attribute_exists(PK)" + (" AND #status = :enabled" if ref.must_be_enabled else "")
    values: dict[str, Any] = {":one": 1, ":zero": 0}
    names = None
    if ref.must_be_enabled:
        values[":enabled"] = ENABLED
        names = {"#status": "status"}
    return update(pk, sk, "SET refs = if_not_exists(refs, :zero) + :one", values, condition, names)


def _count_on_program(tenant: str, program: str | None, delta: int, unless_members: bool = False) -> dict:
    pk, sk = keys.tenant_config(tenant), keys.config_sk("program", program or "")
    condition = "attribute_exists(PK)" + (" AND attribute_not_exists(hasMembers)" if unless_members else "")
    return update(pk, sk, "SET refs = refs + :delta", {":delta": delta}, condition)


def _upper(kind: Kind) -> str:
    return "".join("_" + c if c.isupper() else c.upper() for c in kind.name)
