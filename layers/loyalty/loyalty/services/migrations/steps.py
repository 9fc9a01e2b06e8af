"""The migrations, in the order they run (D-112). Each brings one stored item forward, idempotently: an item
already in the current shape is left alone, and every write is conditioned on what was read, so a write of
the running code meanwhile wins and the step says it changed nothing. Add a migration at the end, with a
later id, and name it in template.yaml's MigrationsOnDeploy (a test checks both lists agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from loyalty.api.principal import Principal
from loyalty.clock import Clock
from loyalty.domain.members import new_card_number
from loyalty.domain.orders import naming_member
from loyalty.domain.personal_data import masked
from loyalty.ids import ulid_bound
from loyalty.services.auth import key_record
from loyalty.services.migrations.runner import Migration
from loyalty.store import keys
from loyalty.store.table import Item, Table, TransactionCancelled, put, update

ATTEMPTS = 3
_PROFILES = ("SK = :profile AND begins_with(PK, :tenant)", {":profile": keys.MEMBER_SK, ":tenant": "T#"})
_KINDS = {name: kind for kind, name in keys.ENDS.items()}  # EXPIRES -> LOT, COUPON_ENDS -> COUPON, ...


def _member_of(profile: Item) -> tuple[str, str]:
    """(tenant, member id) of a profile item (`T#<tenant>#M#<id>`)."""
    _, tenant, _, member_id = profile["PK"].split("#", 3)
    return tenant, member_id


def ends_index(table: Table, item: Item, clock: Clock) -> bool:
    """An item in a day's partition of what ends (`...#<program>#<day>#<shard>`) moves to its program's
    partition of the shard, the day first in its sort key (D-109)."""
    old_pk, old_sk = item["GSI1PK"], item["GSI1SK"]
    parts = old_pk.split("#")
    if len(parts) != 6 or parts[2] not in _KINDS:
        return False  # already in the current shape
    _, tenant, name, program, day, shard = parts
    new = {":pk": keys.ends_index(tenant, program, _KINDS[name], int(shard)), ":sk": f"{day}#{old_sk}"}
    try:
        table.transact(
            [
                update(
                    item["PK"],
                    item["SK"],
                    "SET GSI1PK = :pk, GSI1SK = :sk",
                    {**new, ":oldPk": old_pk, ":oldSk": old_sk},
                    "GSI1PK = :oldPk AND GSI1SK = :oldSk",
                )
            ]
        )
    except TransactionCancelled:
        return False  # moved by the running code meanwhile
    return True


def member_list_entries(table: Table, profile: Item, clock: Clock) -> bool:
    """A member without a 注册 entry gets one (the member list, D-082, and the member index, D-111); one that
    has it without the index keys gets them."""
    tenant, member_id = _member_of(profile)
    registered = datetime.fromisoformat(profile["registeredAt"])
    pk, at = keys.member(tenant, member_id), keys.ACTIVITY_PREFIX + keys.stamp(registered)
    found = [i for i in table.query_prefix(pk, at, consistent=True).items if i.get("type") == "register"]
    if found:
        entry = found[0]
        if "GSI1PK" in entry and "GSI2PK" in entry:
            return False
        index = {
            **keys.registration_index(tenant, member_id, registered, entry["activityId"]),
            **keys.member_index_entry(tenant, member_id),
        }
        sets = ", ".join(f"{name} = :{name}" for name in index)
        values = {f":{name}": value for name, value in index.items()} | {":m": member_id}
        table.transact([update(pk, entry["SK"], f"SET {sets}, memberId = :m", values, "attribute_exists(PK)")])
        return True
    activity_id = ulid_bound(int(registered.timestamp() * 1000), upper=False)  # the same on every run
    entry = {
        "PK": pk,
        "SK": keys.activity_sk(registered, activity_id),
        "activityId": activity_id,
        "type": "register",
        "source": "migration",
        "channel": profile.get("channel", "unknown"),
        "occurredAt": registered.isoformat(),
        "memberId": member_id,
        **({"storeCode": profile["storeCode"]} if profile.get("storeCode") else {}),
        **keys.registration_index(tenant, member_id, registered, activity_id),
        **keys.member_index_entry(tenant, member_id),
    }
    try:
        table.transact([put(entry, "attribute_not_exists(PK)")])
    except TransactionCancelled:
        return False
    return True


def card_numbers(table: Table, profile: Item, clock: Clock) -> bool:
    """A member without a card number (会员卡号) gets one, with its guard; a number taken is drawn again."""
    tenant, member_id = _member_of(profile)
    for _ in range(ATTEMPTS):
        card = new_card_number()
        guard = {"PK": keys.card_guard(tenant, card), "SK": keys.GUARD_SK, "memberId": member_id}
        try:
            table.transact(
                [
                    update(
                        profile["PK"],
                        keys.MEMBER_SK,
                        "SET cardNo = :card",
                        {":card": card},
                        "attribute_exists(PK) AND attribute_not_exists(cardNo)",
                    ),
                    put(guard, "attribute_not_exists(PK)"),
                ]
            )
            return True
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False  # the member has one now, or is gone
    raise RuntimeError("no free card number was drawn")


def spend_metrics(table: Table, profile: Item, clock: Clock) -> bool:
    """A member whose earlier orders are not in their spend metrics (D-076) gets them from their sales:
    the accrued orders' paid amounts (实收), count, first and last times, and what processed returns gave
    back. Written on condition that no accrual wrote metrics meanwhile (it would have counted one order)."""
    tenant, member_id = _member_of(profile)
    sales, start = [], None
    while True:
        items, start = table.query_index(
            "GSI2", keys.member_sales(tenant, member_id), limit=500, start=start, pk_attribute="GSI2PK"
        )
        sales += items
        if not start:
            break
    orders = [s for s in sales if s["SK"] == keys.ORDER_SK and s.get("status") == "accrued"]
    if not orders:
        return False
    times = [datetime.fromisoformat(o["submission"]["orderedAt"]).astimezone(UTC).isoformat() for o in orders]
    returned = sum(
        (Decimal(str(s.get("returnedAmount", 0))) for s in sales if s["SK"] == keys.RETURN_SK),
        Decimal(0),
    )
    gross = sum((Decimal(str(line["paid"])) for o in orders for line in o["submission"]["lines"]), Decimal(0))
    metrics = {
        ":gross": gross,
        ":orders": len(orders),
        ":returned": returned,
        ":first": min(times),
        ":last": max(times),
    }
    try:
        table.transact(
            [
                update(
                    profile["PK"],
                    keys.MEMBER_SK,
                    "SET grossSpend = :gross, orderCount = :orders, returnedAmount = :returned,"
                    " firstPurchaseAt = :first, lastPurchaseAt = :last",
                    metrics,
                    "attribute_exists(PK) AND attribute_not_exists(orderCount) AND attribute_not_exists(grossSpend)",
                )
            ]
        )
    except TransactionCancelled:
        return False
    return True


def api_key_records(table: Table, item: Item, clock: Clock) -> bool:
    """A key issued before D-120 (its global digest item) gets its record and its secret item in its
    tenant, and its global item then only points there: the tenant's operators can list, rotate and revoke
    it, and revoking it writes inside the tenant only."""
    tenant, key_id, hashed = item["tenant"], item["keyId"], item["PK"].removeprefix("APIKEY#")
    secret = {**item, "PK": keys.api_key_secret(tenant, hashed)}
    revoked = {"status": "revoked", "revokedAt": item["revokedAt"]} if item.get("revokedAt") else {}
    who = Principal(tenant, item["role"], item["channel"], key_id)
    record = key_record(who, item.get("name", ""), item.get("createdAt", clock.now().isoformat()), hashed, **revoked)
    try:
        table.transact(
            [
                put(secret, "attribute_not_exists(PK)"),
                put(record, "attribute_not_exists(PK)"),
                update(
                    item["PK"],
                    item["SK"],
                    "SET moved = :yes",
                    {":yes": True},
                    "attribute_exists(PK) AND attribute_not_exists(moved)",
                ),
            ]
        )
    except TransactionCancelled:
        return False  # moved already
    return True


def personal_data_out_of_records(table: Table, item: Item, clock: Clock) -> bool:
    """Records written before D-123 keep no personal data an erasure cannot reach: a member's sale names the
    member by id only, a coupon transfer its parties by card number only, and a profile-change record shows
    every declared personal field masked (the masks are idempotent: a masked value stays as it is)."""
    if item["SK"] == keys.ORDER_SK:
        old = item["submission"].get("member")
        new = naming_member(item["submission"], item["memberId"])["member"]
        if old == new:
            return False
        return _replace(table, item, "submission.#m", {"#m": "member"}, old, new)
    if item["SK"].startswith(keys.transfer_sk("")):
        changed = False
        for role in ("giver", "receiver"):
            party = item.get(role)
            if party and set(party) - {"cardNo"}:
                kept = {"cardNo": party["cardNo"]} if party.get("cardNo") else {}
                changed = _replace(table, item, "#p", {"#p": role}, party, kept) or changed
        return changed
    changes = item.get("changes", [])
    masked_changes = [{k: masked(c["field"], v) if k in ("old", "new") else v for k, v in c.items()} for c in changes]
    return masked_changes != changes and _replace(table, item, "changes", {}, changes, masked_changes)


def _replace(table: Table, item: Item, path: str, names: dict[str, str], old: Any, new: Any) -> bool:
    """Set one attribute (or map entry) of an item to `new` if it still holds `old`; False if it changed."""
    condition = f"{path} = :old" if old is not None else f"attribute_not_exists({path})"
    values = {":new": new, **({":old": old} if old is not None else {})}
    try:
        table.transact([update(item["PK"], item["SK"], f"SET {path} = :new", values, condition, names or None)])
    except TransactionCancelled:
        return False  # changed by the running code meanwhile
    return True


MIGRATIONS = (
    Migration(
        "001-ends-index",
        "Index items of what ends by the day move to their program's shard, sorted by day (D-109)",
        "begins_with(GSI1PK, :tenant) AND (contains(GSI1PK, :lots) OR contains(GSI1PK, :ends))",
        {":tenant": "T#", ":lots": "#EXPIRES#", ":ends": "_ENDS#"},
        ends_index,
    ),
    Migration(
        "002-member-list-entries",
        "Members without a 注册 entry get one; entries without the member index's keys get them (D-111)",
        *_PROFILES,
        member_list_entries,
    ),
    Migration(
        "003-card-numbers",
        "Members without a card number get one (D-074)",
        _PROFILES[0] + " AND attribute_not_exists(cardNo)",
        _PROFILES[1],
        card_numbers,
    ),
    Migration(
        "004-spend-metrics",
        "Members whose orders predate the spend metrics get them from their accrued orders and returns (D-076)",
        _PROFILES[0] + " AND attribute_not_exists(orderCount)",
        _PROFILES[1],
        spend_metrics,
    ),
    Migration(
        "005-api-key-records",
        "API keys issued before their records get one in their tenant, to be listed, rotated and revoked (D-120)",
        "SK = :key AND begins_with(PK, :global) AND attribute_not_exists(moved)",
        {":key": keys.API_KEY_SK, ":global": "APIKEY#"},
        api_key_records,
    ),
    Migration(
        "006-personal-data-out-of-records",
        "Sales name their member by id, transfers their parties by card number, change records mask personal "
        "fields (D-123)",
        "(SK = :order AND attribute_exists(memberId)) OR begins_with(SK, :transfer) OR begins_with(SK, :change)",
        {":order": keys.ORDER_SK, ":transfer": keys.transfer_sk(""), ":change": keys.PROFILE_CHANGE_PREFIX},
        personal_data_out_of_records,
    ),
)
