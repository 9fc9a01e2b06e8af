"""The points ledger of one member: records (append-only), open lots (FIFO by sort key), the account
balances and the tier, changed together in one conditional transaction per business event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loyalty.store import keys
from loyalty.store.table import Item, Page, Table, TransactionCancelled, put, update


@dataclass(frozen=True)
class AccountChange:
    point_group: str
    name: str
    cumulative: int
    available: int
    expired: int
    qualifying: int
    seen_qualifying: int | None  # the accumulator a tier decision read (-1: the account did not exist); None: unguarded


@dataclass(frozen=True)
class TierChange:
    old_record_id: str
    new_record: Item  # the new tier record (also copied onto the profile as its current tier)


@dataclass
class LedgerWrite:
    """Everything one business event writes to a member's ledger."""

    tenant: str
    member_id: str
    records: list[Item] = field(default_factory=list)  # each with "recordId"
    lots: list[Item] = field(default_factory=list)  # each with "SK" from keys.lot_sk
    accounts: list[AccountChange] = field(default_factory=list)
    tier: TierChange | None = None
    guard: dict | None = None  # the first entry: the business key's once-only condition (e.g. order status)
    outbox: list[dict] = field(default_factory=list)


class Conflict(Exception):
    """The guard held (the event was applied before) or a read it relied on changed; see `already_applied`."""

    def __init__(self, already_applied: bool) -> None:
        super().__init__("already applied" if already_applied else "changed meanwhile")
        self.already_applied = already_applied


class LedgerRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def write(self, change: LedgerWrite) -> None:
        pk = keys.member(change.tenant, change.member_id)
        operations: list[dict[str, Any]] = [change.guard] if change.guard else []
        operations += [
            put({"PK": pk, "SK": keys.record_sk(r["recordId"]), **r}, "attribute_not_exists(PK)")
            for r in change.records
        ]
        operations += [put({"PK": pk, **lot}, "attribute_not_exists(PK)") for lot in change.lots]
        operations += [self._account(pk, account) for account in change.accounts]
        if change.tier:
            record = change.tier.new_record
            operations += [
                update(
                    pk,
                    keys.tier_record_sk(change.tier.old_record_id),
                    "SET #status = :invalid",
                    {":invalid": "invalid", ":valid": "valid"},
                    "#status = :valid",
                    {"#status": "status"},
                ),
                put({"PK": pk, "SK": keys.tier_record_sk(record["recordId"]), **record}, "attribute_not_exists(PK)"),
                update(
                    pk,
                    keys.MEMBER_SK,
                    "SET tier = :tier",
                    {
                        ":tier": {k: v for k, v in record.items() if k not in ("status", "change", "createdAt")},
                        ":old": change.tier.old_record_id,
                    },
                    "tier.recordId = :old",
                ),
            ]
        operations += change.outbox
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            raise Conflict(already_applied=change.guard is not None and cancelled.failed(0)) from None

    @staticmethod
    def _account(pk: str, account: AccountChange) -> dict:
        values: dict[str, Any] = {
            ":c": account.cumulative,
            ":a": account.available,
            ":e": account.expired,
            ":q": account.qualifying,
            ":zero": 0,
            ":group": account.point_group,
            ":name": account.name,
        }
        condition = None
        if account.seen_qualifying == -1:
            condition = "attribute_not_exists(PK)"
        elif account.seen_qualifying is not None:
            values[":seen"] = account.seen_qualifying
            condition = "qualifying = :seen"
        return update(
            pk,
            keys.account_sk(account.point_group),
            "SET cumulative = if_not_exists(cumulative, :zero) + :c, available = if_not_exists(available, :zero) + :a,"
            " expired = if_not_exists(expired, :zero) + :e, qualifying = if_not_exists(qualifying, :zero) + :q,"
            " pointGroupCode = if_not_exists(pointGroupCode, :group), #name = if_not_exists(#name, :name)",
            values,
            condition,
            {"#name": "name"},
        )

    def records(
        self, tenant: str, member_id: str, limit: int, cursor: str | None, between: tuple[str, str] | None = None
    ) -> Page:
        """A page of the ledger in time order; `between` takes two record ids (ULID bounds of a period)."""
        bounds = (keys.record_sk(between[0]), keys.record_sk(between[1])) if between else None
        return self.table.query_prefix(
            keys.member(tenant, member_id), keys.RECORD_PREFIX, limit=limit, cursor=cursor, between=bounds
        )

    def open_lots(self, tenant: str, member_id: str, point_group: str | None = None) -> list[Item]:
        prefix = keys.LOT_PREFIX + (f"{point_group}#" if point_group else "")
        items: list[Item] = []
        cursor = None
        while True:
            page = self.table.query_prefix(keys.member(tenant, member_id), prefix, limit=1000, cursor=cursor)
            items += page.items
            if not page.next_cursor:
                return items
            cursor = page.next_cursor
