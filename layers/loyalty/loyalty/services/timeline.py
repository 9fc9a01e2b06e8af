"""The member's timeline (行为记录, spec social-hub §6.5): what the member did, written with the change it
records, in the member's partition: registering (注册), the first accrued order (首购), every accrued order
(购买), and each behaviour a channel reports. Sorted by when it happened (not when it was written: an
order accrues after its sale), read newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loyalty.domain.members import ActivityPage, ActivityView
from loyalty.ids import new_ulid
from loyalty.store import keys
from loyalty.store.member_repo import MemberRepository
from loyalty.store.table import put

REGISTER, FIRST_PURCHASE, PURCHASE = "register", "firstPurchase", "purchase"


def activity(
    tenant: str, member_id: str, kind: str, channel: str, at: datetime, source: str = "system", **details: Any
) -> dict:
    """The put of one timeline entry, for the transaction of what it records."""
    entry = {
        "activityId": new_ulid(),
        "type": kind,
        "source": source,
        "channel": channel,
        "occurredAt": at.isoformat(),
        **{k: v for k, v in details.items() if v is not None},
    }
    sort_key = keys.activity_sk(at, entry["activityId"])
    return put({"PK": keys.member(tenant, member_id), "SK": sort_key, **entry})


def registration(tenant: str, member_id: str, channel: str, at: datetime, store_code: str | None) -> dict:
    """The 注册 entry, which is also the member's place in the registrations index (the operators' member
    list, D-082) and in the tenant's member index (walks over the tenant's members, D-111): an item written
    once and never changed, so indexing it costs nothing later."""
    entry = activity(tenant, member_id, REGISTER, channel, at, storeCode=store_code)
    item = entry["Put"]["Item"]
    item.update(keys.registration_index(tenant, member_id, at, item["activityId"]), memberId=member_id)
    item.update(keys.member_index_entry(tenant, member_id))
    return entry


def timeline(members: MemberRepository, tenant: str, member_id: str, limit: int, cursor: str | None) -> ActivityPage:
    members.profile(tenant, member_id)  # 404 for a member this tenant does not have
    page = members.table.query_prefix(
        keys.member(tenant, member_id), keys.ACTIVITY_PREFIX, limit=limit, cursor=cursor, newest_first=True
    )
    return ActivityPage(items=[ActivityView.model_validate(i) for i in page.items], next_cursor=page.next_cursor)
