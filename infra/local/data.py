"""The local stack's data between runs (`make run KEEP=1`, D-112): the table's items written to a file when the
stack stops and read back when it starts, so a brand keeps what it tried yesterday, and a stack started by a
newer version of the code on that file runs the migrations it has not run yet. Only the table is kept: what
waited in queues, one-time schedules and what messages went out start empty."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def save(dynamodb: Any, table: str, path: Path) -> int:
    """Every item of the table, one DynamoDB JSON line each, to `path` (written beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written, start = 0, None
    temporary = path.with_name(f".{path.name}.tmp")
    with gzip.open(temporary, "wt", encoding="utf-8") as out:
        while True:
            response = dynamodb.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
            for item in response.get("Items", []):
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
                written += 1
            start = response.get("LastEvaluatedKey")
            if not start:
                break
    temporary.replace(path)
    return written


def load(dynamodb: Any, table: str, path: Path) -> int:
    """Write every item of `path` into the table, 25 per call."""
    loaded, batch = 0, []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            batch.append({"PutRequest": {"Item": json.loads(line)}})
            if len(batch) == 25:
                loaded += _write(dynamodb, table, batch)
                batch = []
    return loaded + (_write(dynamodb, table, batch) if batch else 0)


def _write(dynamodb: Any, table: str, batch: list[dict[str, Any]]) -> int:
    request = {table: batch}
    while request:
        request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return len(batch)
