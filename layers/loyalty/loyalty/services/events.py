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
    """The transaction entry that records `event` beside the change it announces. A transaction with several
    events writes them as one entry (store/ledger_repo.py merges them): one item write, not one per event."""
    event_id = new_ulid()
    return put(
        {
            "PK": keys.outbox(tenant, event_id),
            "SK": keys.OUTBOX_SK,
            "tenant": tenant,
            "events": [
                {
                    "eventId": event_id,
                    "detailType": event.detail_type,
                    "detail": json.dumps(event.detail, default=str, ensure_ascii=False),
                }
            ],
            "createdAt": now.isoformat(),
            "expiration": int((now + OUTBOX_RETENTION).timestamp()),
        },
        "attribute_not_exists(PK)",
    )


def outbox_entries(tenant: str, events: list[DomainEvent], now: datetime) -> dict:
    """Several events of one transaction in one outbox entry."""
    entries = [outbox_entry(tenant, event, now) for event in events]
    first = entries[0]["Put"]
    return {"Put": {**first, "Item": {**first["Item"], "events": [e["Put"]["Item"]["events"][0] for e in entries]}}}


@lru_cache(maxsize=1)
def _events_client() -> Any:
    return boto3.client("events")


def publish_stored(entry: Item) -> None:
    """Put an outbox entry's events on the bus, ten per call; raises if EventBridge refused any, so the
    stream retries the entry (consumers dedupe the repeats by eventId)."""
    events = entry["events"]
    for start in range(0, len(events), 10):
        batch = [
            {
                "Source": SOURCE,
                "DetailType": event["detailType"],
                "EventBusName": get_settings().event_bus_name,
                "Detail": json.dumps(
                    {"tenant": entry["tenant"], "eventId": event["eventId"], **json.loads(event["detail"])},
                    ensure_ascii=False,
                ),
            }
            for event in events[start : start + 10]
        ]
        response = _events_client().put_events(Entries=batch)
        if response.get("FailedEntryCount"):
            codes = [e.get("ErrorCode") for e in response["Entries"] if e.get("ErrorCode")]
            raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} events: {codes}")
