"""What the daily sweeps share: buckets of a sparse, day-bucketed index, planned per program and worked
off a queue a page per message (see services/expiry.py and services/tier_sweep.py)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, ClassVar

import boto3
from pydantic import Field

from loyalty.domain.errors import InvalidInput
from loyalty.domain.validity import CamelModel
from loyalty.store import keys

LOOKBACK_DAYS = 3  # each run also covers the two days before yesterday, in case a run was missed
PAGE = 50


class SweepRequest(CamelModel):
    """An operator's run of a sweep for one program."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"date": "2026-11-30"}]

    date: dt.date | None = Field(default=None, description="Sweep what ended before this day; default today")


class SweepAccepted(CamelModel):
    program_code: str
    buckets: int = Field(description="Index partitions queued")


@dataclass(frozen=True)
class Bucket:
    tenant: str
    program: str
    day: str  # ISO date in the program's time zone
    shard: int
    start: dict[str, Any] | None = None
    kind: str = "LOT"  # what the bucket holds: LOT (point lots), COUPON (coupons), TRANSFER (open transfers)

    def message(self) -> str:
        return json.dumps(
            {
                "tenant": self.tenant,
                "program": self.program,
                "day": self.day,
                "shard": self.shard,
                "start": self.start,
                "kind": self.kind,
            }
        )

    @classmethod
    def from_message(cls, body: str) -> Bucket:
        return cls(**json.loads(body))

    def next(self, start: dict[str, Any]) -> Bucket:
        return Bucket(self.tenant, self.program, self.day, self.shard, start, self.kind)


def sweep_day(as_of: date | None, today: date) -> date:
    """The day an operator's sweep runs for: today by default, never a day still to come."""
    if as_of is not None and as_of > today:
        raise InvalidInput("a sweep may run for today or an earlier day", code="FUTURE_DATE", field="date")
    return as_of or today


def due_buckets(tenant: str, program: str, as_of: date, kinds: tuple[str, ...] = ("LOT",)) -> list[Bucket]:
    """Every shard of the days before `as_of`, back LOOKBACK_DAYS days, for each kind."""
    return [
        Bucket(tenant, program, (as_of - timedelta(days=back)).isoformat(), shard, None, kind)
        for kind in kinds
        for back in range(1, LOOKBACK_DAYS + 1)
        for shard in range(keys.EXPIRY_SHARDS)
    ]


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs")


def send_all(queue_url: str, bodies: list[str]) -> None:
    """Send every body, ten per call; raises if SQS refused any, so the caller's work is retried."""
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        response = _sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused {len(response['Failed'])} messages")


def enqueue(queue_url: str, buckets: list[Bucket]) -> None:
    send_all(queue_url, [bucket.message() for bucket in buckets])
