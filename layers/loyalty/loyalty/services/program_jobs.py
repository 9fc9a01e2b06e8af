"""Scheduled work by program (D-109): no invocation's work grows with the number of tenants.

A schedule's invocation only queues the first page of the programs index. A page (100 programs) reads
their job marks in one batch and queues a message for each program whose job is due; the next page follows
as a message of its own. A program's message does that program's work in its own invocation (for a clock
moved far ahead, a week of days at a time, queuing itself again for the rest) and then moves its mark: the
day it has done work through, and when it is due next (its next midnight, or morning). So an hourly run
re-plans no day already done, reads a mark per program and queues nothing for a program with nothing due.

A page or a program message delivered twice plans its days twice: every job's work is idempotent by its
business keys (a lot is expired once, a campaign's day gives once), so that costs reads, never effects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from loyalty.clock import Clock, SystemClock
from loyalty.observability import logger
from loyalty.services.queues import send_all
from loyalty.store import keys
from loyalty.store.table import Item, Table, TransactionCancelled, update

PROGRAMS_PAGE = 100  # programs a page message looks at (a BatchGetItem of their marks)
DAYS_PER_RUN = 7  # days of catch-up one program message does before it queues itself again
CATCH_UP_DAYS = 400  # a program's job never reaches back further than this (a clock moved years ahead)


@dataclass(frozen=True)
class JobMark:
    """Where a program's job stands: the last day done, when it is next due, release times waiting."""

    through: date | None = None
    next_due_at: datetime | None = None
    waiting: frozenset[str] = frozenset()  # held messages' release times (UTC ISO), for the release job

    @classmethod
    def of(cls, item: Item | None) -> JobMark:
        if item is None:
            return cls()
        through, due = item.get("through"), item.get("nextDueAt")
        return cls(
            date.fromisoformat(through) if through else None,
            datetime.fromisoformat(due) if due else None,
            frozenset(item.get("waiting", ())),
        )

    def is_due(self, now: datetime) -> bool:
        if self.next_due_at is None or self.next_due_at <= now:
            return True
        return any(datetime.fromisoformat(moment) <= now for moment in self.waiting)


@dataclass(frozen=True)
class Progress:
    """What a program's run did: its mark moves to `through` and `next_due_at`; `more` queues the program
    again at once (catch-up left); `released` leaves the mark's waiting times."""

    through: date | None
    next_due_at: datetime
    more: bool = False
    released: frozenset[str] = field(default_factory=frozenset)


class ProgramJob(Protocol):
    """One kind of scheduled work, done a program at a time."""

    name: str

    def queue_url(self) -> str: ...

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress: ...


@dataclass
class ProgramJobs:
    table: Table
    clock: Clock

    def start(self, job: ProgramJob) -> int:
        """The schedule's invocation: the first page of programs, as one message."""
        send_all(job.queue_url(), [json.dumps({"programsPage": {"job": job.name, "start": None}})])
        return 1

    def handles(self, job: ProgramJob, message: dict[str, Any]) -> bool:
        """Work a queue message if it is one of `job`'s pages or programs; False for any other message."""
        if message.get("programsPage", {}).get("job") == job.name:
            self.page(job, message["programsPage"]["start"])
            return True
        if message.get("programDue", {}).get("job") == job.name:
            due = message["programDue"]
            self.run(job, due["tenant"], due["program"])
            return True
        return False

    def page(self, job: ProgramJob, start: dict[str, Any] | None) -> int:
        """Queue the due programs of one page of the index, and the next page; returns how many were due."""
        programs, more = self.table.query_index("GSI1", keys.PROGRAMS_INDEX, limit=PROGRAMS_PAGE, start=start)
        marks = self.table.get_many([mark_key(p["tenant"], p["code"], job.name) for p in programs], consistent=False)
        now = self.clock.now()
        due = [p for p in programs if JobMark.of(marks.get(mark_key(p["tenant"], p["code"], job.name))).is_due(now)]
        bodies = [_program_message(job.name, p["tenant"], p["code"]) for p in due]
        if more:
            bodies.append(json.dumps({"programsPage": {"job": job.name, "start": more}}))
        send_all(job.queue_url(), bodies)
        logger.info("programs page", extra={"job": job.name, "programs": len(programs), "due": len(due)})
        return len(due)

    def run(self, job: ProgramJob, tenant: str, program_code: str) -> Progress:
        """One program's due work, then its mark moved forward (never back: a late duplicate keeps it)."""
        key = mark_key(tenant, program_code, job.name)
        mark = JobMark.of(self.table.get(*key))
        progress = job.run(tenant, program_code, mark)
        self._save(key, progress)
        if progress.more:
            send_all(job.queue_url(), [_program_message(job.name, tenant, program_code)])
        return progress

    def _save(self, key: tuple[str, str], progress: Progress) -> None:
        names = {"#through": "through"}
        expression = "SET nextDueAt = :next, updatedAt = :now"
        values: dict[str, Any] = {":next": progress.next_due_at.isoformat(), ":now": self.clock.now().isoformat()}
        condition = None
        if progress.through is not None:
            expression += ", #through = :through"
            values[":through"] = progress.through.isoformat()
            condition = "attribute_not_exists(#through) OR #through <= :through"
        if progress.released:
            expression += " DELETE waiting :released"
            values[":released"] = set(progress.released)
        try:
            self.table.transact([update(*key, expression, values, condition, names if condition else None)])
        except TransactionCancelled:
            logger.info("a later run moved the mark already", extra={"mark": key[1]})


def mark_key(tenant: str, program_code: str, job: str) -> tuple[str, str]:
    return keys.program_jobs(tenant, program_code), job


def due_now(tenant: str, program_code: str, job: str, now: datetime) -> dict:
    """The transaction entry that makes a program's job due at the next run (a daily campaign approved, the
    message settings changed: today's work is planned again, its own markers keeping each part once)."""
    pk, sk = mark_key(tenant, program_code, job)
    return update(pk, sk, "SET nextDueAt = :now", {":now": now.isoformat()})


def release_waiting(tenant: str, program_code: str, moment: datetime) -> dict:
    """The transaction entry that tells the release job a held message waits until `moment`."""
    pk, sk = mark_key(tenant, program_code, "release")
    return update(pk, sk, "ADD waiting :at", {":at": {moment.isoformat()}})


def _program_message(job: str, tenant: str, program_code: str) -> str:
    return json.dumps({"programDue": {"job": job, "tenant": tenant, "program": program_code}})


def days_to_do(mark: JobMark, last: date, first_run_from: date) -> tuple[list[date], bool]:
    """The days after the mark up to `last` (from `first_run_from` when the job never ran for the program),
    at most DAYS_PER_RUN of them and none before CATCH_UP_DAYS ago; and whether days are left after them."""
    first = mark.through + timedelta(days=1) if mark.through else first_run_from
    first = max(first, last - timedelta(days=CATCH_UP_DAYS))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return days[:DAYS_PER_RUN], len(days) > DAYS_PER_RUN


def next_local(moment: datetime, zone: ZoneInfo, at: time = time(0)) -> datetime:
    """The next time of day `at` in `zone` after `moment` (its next midnight by default)."""
    local = moment.astimezone(zone)
    candidate = datetime.combine(local.date(), at, zone)
    return candidate if candidate > local else datetime.combine(local.date() + timedelta(days=1), at, zone)


def program_jobs(table: Table | None = None, clock: Clock | None = None) -> ProgramJobs:
    return ProgramJobs(table or Table(), clock or SystemClock())
