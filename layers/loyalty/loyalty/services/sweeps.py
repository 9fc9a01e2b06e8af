"""What the daily sweeps share: buckets, each one shard of a program's sparse index of what ends by the day
(keys.ends_index, sorted by the last day), swept through a day; planned per program and worked off a queue
a page per message (see services/expiry.py and services/tier_sweep.py).

A bucket is "everything of one kind and shard that ended on its day or before": the index holds only what is
still open, so a sweep that missed days (a failed run, a clock moved a year on) reads what they left in the
same one range, and what arrives with an end already past (an order dated back) is swept by the next run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from loyalty.domain.errors import InvalidInput
from loyalty.domain.validity import CamelModel
from loyalty.services.program_jobs import Progress, next_local
from loyalty.services.queues import send_all
from loyalty.store import keys
from loyalty.store.table import Table

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
    day: str  # ISO date in the program's time zone: the bucket holds what ended on it or before
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


def buckets_through(tenant: str, program: str, day: date, kinds: tuple[str, ...]) -> list[Bucket]:
    """Every shard of each kind, through `day`."""
    return [
        Bucket(tenant, program, day.isoformat(), s, None, kind) for kind in kinds for s in range(keys.EXPIRY_SHARDS)
    ]


def probed(table: Table, buckets: list[Bucket], partition: Callable[[Bucket], str]) -> list[Bucket]:
    """The buckets that hold something (a Query of one item each): a scheduled run queues work for what is
    due, not a message per shard that may be empty."""
    found = []
    for bucket in buckets:
        items, _ = table.query_index("GSI1", partition(bucket), limit=1, sk_between=keys.through_day(bucket.day))
        if items:
            found.append(bucket)
    return found


def scheduled_sweep(
    table: Table,
    queue_url: str,
    plan: tuple[str, str, tuple[str, ...]],
    partition: Callable[[Bucket], str],
    now: datetime,
    zone: ZoneInfo,
) -> Progress:
    """A program's scheduled run of a sweep (services/program_jobs.py), `plan` = (tenant, program, kinds):
    the buckets through yesterday that hold something; due again at the program's next midnight."""
    tenant, program, kinds = plan
    yesterday = now.astimezone(zone).date() - timedelta(days=1)
    enqueue(queue_url, probed(table, buckets_through(tenant, program, yesterday, kinds), partition))
    return Progress(yesterday, next_local(now, zone))


def enqueue(queue_url: str, buckets: list[Bucket]) -> None:
    send_all(queue_url, [bucket.message() for bucket in buckets])
