"""Cost per operation: DynamoDB round trips by API, items read and written, and the capacity they cost
by DynamoDB's published rules, computed from the real item sizes. Counted by hooking the boto3 client,
so the figures are exact and the same on any machine (`make bench`; docs/performance.md).

Rules applied: a write costs 1 unit per started KB of the item (the larger of before and after), a
strongly consistent read 1 unit per started 4 KB (eventually consistent: half), a Query reads the sum
of the returned items' sizes, and transactional reads and writes cost double. An item written with the
keys of an index (GSI1, GSI2: both project whole items) also costs its index 1 unit per started KB; an
index entry moved to another key (2 units) or deleted with its item is not counted, so index figures are
a lower bound.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

WRITE_PRICE = Decimal("0.625")  # USD per million write request units, on-demand, us-east-1 (see docs/performance.md)
READ_PRICE = Decimal("0.125")  # USD per million read request units


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size in bytes for an item in wire format ({"S": ...} values)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


INDEX_KEYS = ("GSI1PK", "GSI2PK")


def index_units(item: dict[str, Any]) -> int:
    """What writing this item costs the indexes it is in (1 unit per started KB for each)."""
    return sum(math.ceil(item_size(item) / 1024) for key in INDEX_KEYS if key in item)


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = len(data.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v)) for v in data)
    raise ValueError(kind)


@dataclass
class Meter:
    """What one operation cost: filled by the client hooks while it runs."""

    calls: Counter = field(default_factory=Counter)
    items_read: int = 0
    items_written: int = 0
    read_units: Decimal = Decimal(0)
    write_units: Decimal = Decimal(0)
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    storage_seconds: float = 0.0  # wall time inside client calls (serialising, the emulator, parsing)
    writes_by_key: Counter = field(default_factory=Counter)  # items written per partition key

    def price_per_million(self) -> Decimal:
        return self.write_units * WRITE_PRICE + self.read_units * READ_PRICE

    def row(self, name: str) -> str:
        calls = ", ".join(f"{api} {n}" for api, n in sorted(self.calls.items()))
        return (
            f"| {name} | {calls} | {self.items_read} | {self.items_written} | {self.read_units} | "
            f"{self.write_units} | ${self.price_per_million():.3f} |"
        )


class CostHook:
    """Hooks a botocore client: counts every API call, and sizes what DynamoDB calls read and write."""

    def __init__(self) -> None:
        self.meter = Meter()
        self._consistent_read = False
        self._started: list[float] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        client.meta.events.register("after-call-error.*.*", self._stop_clock)

    def _stop_clock(self, **_: Any) -> None:
        if self._started:
            self.meter.storage_seconds += time.perf_counter() - self._started.pop()

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._started.append(time.perf_counter())
        service = model.service_model.service_name
        self.meter.calls[f"{service}:{model.name}"] += 1
        batch = next(iter(params.get("RequestItems", {}).values()), {}) if model.name == "BatchGetItem" else params
        self._consistent_read = bool(batch.get("ConsistentRead"))
        if service != "dynamodb":
            return
        if model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((action, body),) = entry.items()
                self._write(body, transactional=True, action=action)
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self._write(params, transactional=False, action=model.name.replace("Item", ""))

    def _write(self, body: dict[str, Any], transactional: bool, action: str) -> None:
        factor = 2 if transactional else 1
        if action == "ConditionCheck":
            self.meter.read_units += factor  # a condition check reads (1 unit, doubled in a transaction)
            self.meter.items_read += 1
            return
        self.meter.items_written += 1
        self.meter.writes_by_key[(body.get("Item") or body["Key"])["PK"]["S"]] += 1
        if action == "Put":
            self.meter.write_units += factor * math.ceil(item_size(body["Item"]) / 1024) + index_units(body["Item"])
        else:  # Update / Delete: sized after the call from the item as it is (or was) in the table
            self.meter.pending.append((body["TableName"], {**body["Key"], "__factor": {"N": str(factor)}}))

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self._stop_clock()
        if model.service_model.service_name != "dynamodb":
            return
        if model.name in ("Query", "Scan"):
            items = parsed.get("Items", [])
            self.meter.items_read += len(items)
            size = sum(item_size(i) for i in items)
            self.meter.read_units += Decimal(max(1, math.ceil(size / 4096))) / (1 if self._consistent_read else 2)
        elif model.name == "BatchGetItem":  # each item is rounded up to 4 KB on its own
            for items in parsed.get("Responses", {}).values():
                self.meter.items_read += len(items)
                for item in items:
                    units = Decimal(max(1, math.ceil(item_size(item) / 4096)))
                    self.meter.read_units += units / (1 if self._consistent_read else 2)
        elif model.name == "GetItem":
            self.meter.items_read += 1 if "Item" in parsed else 0
            size = item_size(parsed.get("Item", {}))
            self.meter.read_units += Decimal(max(1, math.ceil(size / 4096))) / (1 if self._consistent_read else 2)

    def settle(self, dynamodb: Any) -> None:
        """Size the updated and deleted items (read without counting; a deleted item counts 1 unit)."""
        for table, key in self.meter.pending:
            factor = int(key.pop("__factor")["N"])
            found = dynamodb.get_item(TableName=table, Key=key).get("Item")
            self.meter.write_units += factor * (math.ceil(item_size(found) / 1024) if found else 1)
            self.meter.write_units += index_units(found) if found else 0
        self.meter.pending.clear()


def as_json(rows: dict[str, Meter]) -> str:
    return json.dumps(
        {
            name: {
                "calls": dict(m.calls),
                "itemsRead": m.items_read,
                "itemsWritten": m.items_written,
                "readUnits": str(m.read_units),
                "writeUnits": str(m.write_units),
            }
            for name, m in rows.items()
        },
        indent=2,
    )
