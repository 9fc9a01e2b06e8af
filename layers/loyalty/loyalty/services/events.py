"""Domain events through a transactional outbox (docs/decisions.md, D-016).

A use case adds `outbox_entry(...)` to the transaction that makes the change, so the event exists if and
only if the change does. The table's stream carries each new entry to the publish_events function, which
puts it on the `loyalty` bus. Delivery is at least once; `detail.eventId` is stable, so consumers dedupe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import boto3

from loyalty.ids import new_ulid
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.table import Item, put

SOURCE = "loyalty"
OUTBOX_RETENTION = timedelta(days=7)  # entries expire by TTL once the stream has long carried them


@dataclass(frozen=True)
class DomainEvent:
    detail_type: str  # MemberRegistered, OrderAccrued, ...
    detail: dict[str, Any]


def outbox_entry(tenant: str, event: DomainEvent, now: datetime) -> dict:
    """The transaction entry that records `event` beside the change it announces."""
    event_id = new_ulid()
    return put(
        {
            "PK": keys.outbox(tenant, event_id),
            "SK": keys.OUTBOX_SK,
            "eventId": event_id,
            "tenant": tenant,
            "detailType": event.detail_type,
            "detail": json.dumps(event.detail, default=str, ensure_ascii=False),
            "createdAt": now.isoformat(),
            "expiration": int((now + OUTBOX_RETENTION).timestamp()),
        },
        "attribute_not_exists(PK)",
    )


@lru_cache(maxsize=1)
def _events_client() -> Any:
    return boto3.client("events")


def publish_stored(entry: Item) -> None:
    """Put one outbox entry on the bus; raises if EventBridge refused it, so the stream retries it."""
    detail = {"tenant": entry["tenant"], "eventId": entry["eventId"], **json.loads(entry["detail"])}
    response = _events_client().put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": entry["detailType"],
                "Detail": json.dumps(detail, ensure_ascii=False),
                "EventBusName": get_settings().event_bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused {entry['eventId']}: {response['Entries'][0].get('ErrorCode')}")
