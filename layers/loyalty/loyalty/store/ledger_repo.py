"""The points ledger of one member: records (append-only), open lots (FIFO by sort key), the account
balances and the tier, changed together in one conditional transaction per business event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loyalty.domain.fifo import OpenLot
from loyalty.store import keys
from loyalty.store.table import Item, Page, Table, TransactionCancelled, check, delete, put, update


@dataclass(frozen=True)
class AccountChange:
    point_group: str
    name: str
    cumulative: int
    available: int
    expired: int
    qualifying: int
    seen_qualifying: int | None  # the accumulator a tier decision read (-1: the account did not exist); None: unguarded
    require_available: int | None = None  # a spend: refused unless at least this much is available
    debt: int = 0  # change to the points owed beyond the lots (a return that found its points spent)
    seen_debt: int | None = None  # the debt a decision read (an earning paying it off); None: unguarded


@dataclass(frozen=True)
class ProfileMetrics:
    """Attributes a write adds to or sets on the profile (spend metrics), and the condition that guards
    the values it read (ExpressionAttributeValues named by the caller, `:m...`)."""

    adds: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    condition: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LotDraw:
    sort_key: str
    seen: int  # the lot's remaining points when read: the draw is refused if it changed
    take: int


@dataclass(frozen=True)
class TierChange:
    old_record_id: str
    new_record: Item  # the new tier record (also copied onto the profile as its current tier)
    index: dict[str, str] = field(default_factory=dict)  # the profile's tier-end bucket (keys.tier_index)


@dataclass
class LedgerWrite:
    """Everything one business event writes to a member's ledger."""

    tenant: str
    member_id: str
    records: list[Item] = field(default_factory=list)  # each with "recordId"
    lots: list[Item] = field(default_factory=list)  # new lots, each with "SK" from keys.lot_sk
    draws: list[LotDraw] = field(default_factory=list)  # points taken from open lots
    returns: list[Item] = field(default_factory=list)  # points given back to lots (re-opened if closed)
    accounts: list[AccountChange] = field(default_factory=list)
    tier: TierChange | None = None
    guard: dict | None = None  # the first entry: the business key's once-only condition (e.g. order status)
    extra: list[dict] = field(default_factory=list)  # further guarded entries outside the member's partition
    count_order: bool = False  # an order accrued: the profile counts it (coupons tell first purchases)
    outbox: list[dict] = field(default_factory=list)
    member_active: bool = False  # earning or spending by the member: refused while frozen or cancelled
    profile: ProfileMetrics | None = None  # the member's purchase metrics moved with this write


INACTIVE = ("frozen", "cancelled")  # a member in these neither earns nor spends


def _while_active(operation: dict) -> dict:
    """The profile operation, also conditional on the member being neither frozen nor cancelled."""
    ((action, body),) = operation.items()
    condition = body.get("ConditionExpression")
    active = "NOT #mstatus IN (:frozen, :cancelled)"
    body = {
        **body,
        "ConditionExpression": f"({condition}) AND {active}" if condition else active,
        "ExpressionAttributeValues": {
            **body.get("ExpressionAttributeValues", {}),
            ":frozen": "frozen",
            ":cancelled": "cancelled",
        },
        "ExpressionAttributeNames": {**body.get("ExpressionAttributeNames", {}), "#mstatus": "status"},
    }
    return {action: body}


class Conflict(Exception):
    """The write was refused: `already_applied` (the guard held), `short` (a balance would go below what the
    spend requires), or neither (something read changed meanwhile: read again and retry)."""

    def __init__(
        self,
        already_applied: bool,
        short: bool = False,
        failed_extras: tuple[int, ...] = (),
        extra_items: tuple[Item | None, ...] = (),
        guarded: Item | None = None,
    ) -> None:
        super().__init__("already applied" if already_applied else "short" if short else "changed meanwhile")
        self.already_applied = already_applied
        self.short = short
        self.inactive: str | None = None  # the member's status, when a frozen or cancelled member refused it
        self.failed_extras = failed_extras  # positions in `extra` whose conditions failed
        self.extra_items = extra_items  # what each `extra` entry found, where its condition failed
        self.guarded = guarded  # what the guard's item held, where the guard failed


def _one_outbox_entry(entries: list[dict]) -> list[dict]:
    """All the events of one transaction in one outbox item (the first entry's), so each costs no write."""
    if len(entries) <= 1:
        return entries
    first = entries[0]["Put"]
    item = {**first["Item"], "events": [event for entry in entries for event in entry["Put"]["Item"]["events"]]}
    return [{"Put": {**first, "Item": item}}]


def open_lot(lot: Item) -> OpenLot:
    """A stored lot as the FIFO rules see it."""
    return OpenLot(
        lot["SK"],
        lot["recordId"],
        lot["remaining"],
        datetime.fromisoformat(lot["expiresAt"]),
        datetime.fromisoformat(lot["effectiveAt"]),
    )


def spend_relation(lot: Item, points: int) -> Item:
    """A relation (积分关系) from a consuming record to the lot it drew `points` from, with the lot's
    attributes, so that giving the points back can re-open the lot as it was."""
    return {
        "recordId": lot["recordId"],
        "points": points,
        "expiresAt": lot["expiresAt"],
        "lot": {k: v for k, v in lot.items() if k not in ("PK", "remaining")},
    }


class LedgerRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def write(self, change: LedgerWrite) -> None:
        pk = keys.member(change.tenant, change.member_id)
        operations: list[dict[str, Any]] = [change.guard] if change.guard else []
        operations += change.extra
        operations += [
            put({"PK": pk, "SK": keys.record_sk(r["recordId"]), **r}, "attribute_not_exists(PK)")
            for r in change.records
        ]
        operations += [put({"PK": pk, **lot}, "attribute_not_exists(PK)") for lot in change.lots]
        operations += [self._draw(pk, draw) for draw in change.draws]
        operations += [self._return(pk, lot) for lot in change.returns]
        first_account = len(operations)
        operations += [self._account(pk, account) for account in change.accounts]
        if change.tier:
            record = change.tier.new_record
            operations.append(
                put({"PK": pk, "SK": keys.tier_record_sk(record["recordId"]), **record}, "attribute_not_exists(PK)")
            )
        profile_update = self._profile(pk, change)
        profile = None
        if profile_update:
            profile = len(operations)
            operations.append(profile_update)
        operations += _one_outbox_entry(change.outbox)
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            status = (cancelled.items[profile] or {}).get("status") if profile is not None else None
            if profile is not None and cancelled.failed(profile) and status in INACTIVE:
                refused = Conflict(already_applied=False)
                refused.inactive = status
                raise refused from None
            short = any(
                cancelled.failed(first_account + i)
                for i, a in enumerate(change.accounts)
                if a.require_available is not None
            )
            first_extra = 1 if change.guard else 0
            failed_extras = tuple(i for i in range(len(change.extra)) if cancelled.failed(first_extra + i))
            raise Conflict(
                already_applied=change.guard is not None and cancelled.failed(0),
                short=short,
                failed_extras=failed_extras,
                extra_items=tuple(cancelled.items[first_extra : first_extra + len(change.extra)]),
                guarded=cancelled.items[0] if change.guard is not None else None,
            ) from None

    @staticmethod
    def _profile(pk: str, change: LedgerWrite) -> dict | None:
        """The write's one operation on the profile: its new current tier (and place in the tier-end index),
        the order counted, the purchase metrics and their guard, and, for a member's own earning or
        spending, that the member is neither frozen nor cancelled. None when the write leaves it alone."""
        sets, adds, removes, conditions = [], [], [], []
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        if change.tier:
            current = {k: v for k, v in change.tier.new_record.items() if k not in ("change", "createdAt")}
            values.update({":tier": current, ":old": change.tier.old_record_id})
            sets.append("tier = :tier")
            conditions.append("tier.recordId = :old")
            if change.tier.index:
                values.update({":gpk": change.tier.index["GSI1PK"], ":gsk": change.tier.index["GSI1SK"]})
                sets += ["GSI1PK = :gpk", "GSI1SK = :gsk"]
            else:
                removes += ["GSI1PK", "GSI1SK"]
        if change.count_order:
            values[":one"] = 1
            adds.append("orderCount :one")
        metrics = change.profile
        if metrics:
            for i, (name, value) in enumerate(metrics.adds.items()):
                names[f"#pa{i}"], values[f":pa{i}"] = name, value
                adds.append(f"#pa{i} :pa{i}")
            for i, (name, value) in enumerate(metrics.sets.items()):
                names[f"#ps{i}"], values[f":ps{i}"] = name, value
                sets.append(f"#ps{i} = :ps{i}")
            if metrics.condition:
                conditions.append(metrics.condition)
                values.update(metrics.values)
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "ADD " + ", ".join(adds) if adds else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        if expression:
            operation = update(pk, keys.MEMBER_SK, expression, values, " AND ".join(conditions) or None, names or None)
        elif change.member_active:
            operation = check(pk, keys.MEMBER_SK, "attribute_exists(PK)")
        else:
            return None
        return _while_active(operation) if change.member_active else operation

    @staticmethod
    def _draw(pk: str, draw: LotDraw) -> dict:
        values = {":seen": draw.seen}
        if draw.take == draw.seen:  # emptied: the lot closes (its record keeps the history)
            return delete(pk, draw.sort_key, "remaining = :seen", values)
        return update(
            pk, draw.sort_key, "SET remaining = remaining - :take", {**values, ":take": draw.take}, "remaining = :seen"
        )

    @staticmethod
    def _return(pk: str, lot: Item) -> dict:
        """Add `remaining` back to a lot, re-creating it with its attributes if it had closed."""
        attributes = {k: v for k, v in lot.items() if k not in ("SK", "remaining")}
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values: dict[str, Any] = {f":a{i}": value for i, value in enumerate(attributes.values())}
        values.update({":back": lot["remaining"], ":zero": 0})
        sets = [f"#a{i} = if_not_exists(#a{i}, :a{i})" for i in range(len(attributes))]
        return update(
            pk,
            lot["SK"],
            "SET remaining = if_not_exists(remaining, :zero) + :back, " + ", ".join(sets),
            values,
            None,
            names,
        )

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
        conditions = []
        if account.require_available is not None:
            values[":need"] = account.require_available
            conditions.append("available >= :need")
        if account.seen_qualifying == -1:
            conditions.append("attribute_not_exists(PK)")
        elif account.seen_qualifying is not None:
            values[":seen"] = account.seen_qualifying
            conditions.append("qualifying = :seen")
        if account.seen_debt is not None:
            values[":seenDebt"] = account.seen_debt
            conditions.append("(attribute_not_exists(debt) OR debt = :seenDebt)")
        values[":d"] = account.debt
        return update(
            pk,
            keys.account_sk(account.point_group),
            "SET cumulative = if_not_exists(cumulative, :zero) + :c, available = if_not_exists(available, :zero) + :a,"
            " expired = if_not_exists(expired, :zero) + :e, qualifying = if_not_exists(qualifying, :zero) + :q,"
            " debt = if_not_exists(debt, :zero) + :d,"
            " pointGroupCode = if_not_exists(pointGroupCode, :group), #name = if_not_exists(#name, :name)",
            values,
            " AND ".join(conditions) or None,
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

    def record(self, tenant: str, member_id: str, record_id: str) -> Item | None:
        return self.table.get(keys.member(tenant, member_id), keys.record_sk(record_id))

    def open_lots(self, tenant: str, member_id: str, point_group: str | None = None) -> list[Item]:
        prefix = keys.LOT_PREFIX + (f"{point_group}#" if point_group else "")
        return self.table.query_all(keys.member(tenant, member_id), prefix)

    def lots_page(
        self, tenant: str, member_id: str, point_group: str | None, after: datetime, limit: int, cursor: str | None
    ) -> Page:
        """A page of the member's open lots in FIFO order; of one point group, only those that end `after` (a
        lot's sort key starts with its expiry), else every group's, which the caller filters."""
        pk = keys.member(tenant, member_id)
        if point_group is None:
            return self.table.query_prefix(pk, keys.LOT_PREFIX, limit=limit, cursor=cursor)
        prefix = f"{keys.LOT_PREFIX}{point_group}#"
        between = (prefix + keys.stamp(after), prefix + "~")
        return self.table.query_prefix(pk, prefix, limit=limit, cursor=cursor, between=between)
