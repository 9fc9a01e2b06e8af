"""Run the pending migrations of a table, in their order, one at a time, a page per queue message.

A migration is a walk over the table (a parallel Scan in SEGMENTS segments, filtered to the items it may
change: a migration must see every stored item once, the one other whole-table reader besides the nightly
reconciliation) and a function that brings one item forward and says whether it changed anything. The
function is idempotent: an item already in the new shape is left alone, so a page delivered twice, a run
started twice or a migration run again changes nothing more. Every write is conditioned on what was read.

The run's state (`MIGRATIONS` / the migration's id) counts what was read and changed, page by page: each
page writes its marker and adds its counts in one transaction, so a page delivered twice counts once. When
its last segment ends, the migration is done and the next pending one starts. A page whose items fail for
a reason other than a changed item goes back to the queue and, after the queue's retries, to its
dead-letter queue: the run waits (status `running`) until the cause is fixed and the page redriven.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services.queues import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.table import Item, Table, TransactionCancelled, put, update

SEGMENTS = 8
PAGE_ITEMS = 200  # items a page reads before its filter: well within the function's timeout


@dataclass(frozen=True)
class Migration:
    """`id` orders the migrations (a number and a name); `condition`/`values` filter the scan to the items the
    step may change; `step(table, item, clock)` brings one forward and returns whether it wrote."""

    id: str
    description: str
    condition: str
    values: dict[str, Any]
    step: Callable[[Table, Item, Clock], bool]


@dataclass(frozen=True)
class MigrationPage:
    migration: str
    run: str  # a run of the migration (it may be run again: its pages are counted again)
    segment: int
    segments: int
    page: int = 0
    start: dict[str, Any] | None = None

    def message(self) -> str:
        return json.dumps({"migrationPage": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> MigrationPage:
        return cls(**body["migrationPage"])


@dataclass
class MigrationRunner:
    table: Table
    clock: Clock
    migrations: Sequence[Migration]

    def status(self) -> list[Item]:
        """Every migration of the code, with its run state (`pending` when it never started)."""
        found = {item["SK"]: item for item in self.table.query_all(keys.MIGRATIONS)}
        return [
            {
                "id": m.id,
                "description": m.description,
                **{k: v for k, v in found.get(m.id, {"status": "pending"}).items() if k not in ("PK", "SK")},
            }
            for m in self.migrations
        ]

    def baseline(self) -> int:
        """Mark every migration done without running it: a table this code has just created holds nothing
        older (the local stack's fresh start). Returns how many were marked."""
        now, marked = self.clock.now().isoformat(), 0
        for migration in self.migrations:
            state = {"PK": keys.MIGRATIONS, "SK": migration.id, "status": "done", "baseline": True, "finishedAt": now}
            with suppress(TransactionCancelled):
                self.table.transact([put(state, "attribute_not_exists(PK)")])
                marked += 1
        return marked

    def start_pending(self) -> str | None:
        """Start the first migration that never ran, unless one is running; returns the one running, if any."""
        states = {item["id"]: item for item in self.status()}
        for migration in self.migrations:
            status = states[migration.id]["status"]
            if status == "done":
                continue
            if status == "running":
                return migration.id
            run_id = new_ulid()
            state = {
                "PK": keys.MIGRATIONS,
                "SK": migration.id,
                "runId": run_id,
                "status": "running",
                "segments": SEGMENTS,
                "segmentsDone": 0,
                "scanned": 0,
                "changed": 0,
                "startedAt": self.clock.now().isoformat(),
            }
            try:
                self.table.transact([put(state, "attribute_not_exists(PK)")])
            except TransactionCancelled:
                return migration.id  # another start won: it sends the pages
            pages = [MigrationPage(migration.id, run_id, s, SEGMENTS) for s in range(SEGMENTS)]
            send_all(get_settings().migration_queue_url, [page.message() for page in pages])
            logger.info("migration started", extra={"migration": migration.id})
            return migration.id
        return None

    def run_page(self, page: MigrationPage) -> int:
        """One page of one segment: each item the filter lets through brought forward; returns how many
        changed. The next page is sent before the counts, so a failure between the two loses nothing."""
        migration = next(m for m in self.migrations if m.id == page.migration)
        marker = {
            "PK": keys.migration_pages(page.migration, page.run),
            "SK": keys.migration_page_sk(page.segment, page.page),
        }
        if self.table.get(marker["PK"], marker["SK"]) is not None:
            self._finish(page.migration)  # counted before; only the migration's end may be left
            return 0
        items, more, _ = self.table.scan_page(
            migration.condition,
            migration.values,
            segment=page.segment,
            segments=page.segments,
            limit=PAGE_ITEMS,
            start=page.start,
        )
        changed = sum(migration.step(self.table, item, self.clock) for item in items)
        if more:
            send_all(
                get_settings().migration_queue_url,
                [MigrationPage(page.migration, page.run, page.segment, page.segments, page.page + 1, more).message()],
            )
        adds = "ADD scanned :scanned, changed :changed" + ("" if more else ", segmentsDone :one")
        counts = {":scanned": len(items), ":changed": changed, **({} if more else {":one": 1})}
        expires = int((self.clock.now() + timedelta(days=30)).timestamp())
        with suppress(TransactionCancelled):  # another delivery of this page counted it
            self.table.transact(
                [
                    put({**marker, "expiration": expires}, "attribute_not_exists(PK)"),
                    update(keys.MIGRATIONS, page.migration, adds, counts),
                ]
            )
        if not more:
            self._finish(page.migration)
        logger.info("migration page", extra={"migration": page.migration, "read": len(items), "changed": changed})
        return changed

    def _finish(self, migration_id: str) -> None:
        """Once every segment has ended: the migration is done, and the next pending one starts."""
        state = self.table.get(keys.MIGRATIONS, migration_id)
        if state is None or state["status"] != "running" or state["segmentsDone"] < state["segments"]:
            return
        try:
            self.table.transact(
                [
                    update(
                        keys.MIGRATIONS,
                        migration_id,
                        "SET #status = :done, finishedAt = :now",
                        {":done": "done", ":now": self.clock.now().isoformat(), ":running": "running"},
                        "#status = :running",
                        {"#status": "status"},
                    )
                ]
            )
        except TransactionCancelled:
            return  # the segments' last pages finish it at once: one wins, and starts the next
        logger.info("migration done", extra={"migration": migration_id})
        self.start_pending()


def migration_runner(table: Table | None = None, clock: Clock | None = None) -> MigrationRunner:
    from loyalty.services.migrations.steps import MIGRATIONS

    return MigrationRunner(table or Table(), clock or SystemClock(), MIGRATIONS)
