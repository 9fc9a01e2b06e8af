"""Audiences (群组): operators write a condition tree, preview who it finds (a count and a sample of 20), and
enable it, which freezes it: a snapshot of the member ids it finds then, kept with its time and count, that
batch campaigns reach. Copying makes a new draft; an enabled audience no longer changes (D-093).

A preview and a snapshot are the same scan: the shards of the tenant's member index (keys.members_index,
never the whole table, D-111) read in parallel through the campaign queue, one page per message, each
shard's next page sent by the page before. A page reads the summary items (profile, accounts, tags) of its
members, one query each, evaluates the tree (reading a member's timeline or another audience's list only
when a condition needs it) and, in one transaction, writes its marker and adds its counts to the run: a page
delivered twice counts once. What it costs grows with the tenant's members, whatever the others hold. The
snapshot's members are written as items (one per member, idempotent) into shards that batch runs read in
parallel.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Literal

from pydantic import Field, ValidationError

from loyalty.clock import Clock, SystemClock
from loyalty.domain.audiences import (
    AllOf,
    AnyOf,
    AudienceInput,
    AvailablePoints,
    HasTags,
    MemberFacts,
    NoneOf,
    ProfileIn,
    TierIs,
    audiences_named,
    matches,
)
from loyalty.domain.config import KINDS
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.validity import View
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services.config import ProgramLoader
from loyalty.services.queues import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository, accounts_by_group, tags_of
from loyalty.store.table import (
    Item,
    Table,
    TransactionCancelled,
    delete,
    metered,
    put,
    update,
)

SEGMENTS = keys.MEMBER_SHARDS  # the member index's shards, read at once: each is a scan's "segment"
SCAN_LIMIT = 100  # members a scan page reads (a query each): well within a worker's timeout
SAMPLE = 20
AudienceStatus = Literal["draft", "freezing", "frozen", "failed"]
# What a scan page cannot get past by trying again (a stored condition the code cannot evaluate): the run is
# marked failed, not retried into the dead-letter queue (D-127)
NOT_RETRYABLE = (ValueError, TypeError, ArithmeticError, KeyError)


class ScanView(View):
    """A preview or snapshot: running until every segment has been read."""

    run_id: str
    kind: Literal["preview", "snapshot"]
    status: Literal["running", "done", "failed"]
    failure: str | None = Field(default=None, description="Why a failed run stopped")
    started_at: datetime
    finished_at: datetime | None = None
    segments: int
    segments_done: int = 0
    members_scanned: int = Field(default=0, description="the program's members read so far")
    matched: int = Field(default=0, description="of those, who meet the condition (预估人数)")
    sample: list[str] = Field(default_factory=list, description=f"up to {SAMPLE} member ids it found")
    read_units: Decimal = Field(default=Decimal(0), description="read capacity the scan took, as DynamoDB reported it")


class AudienceView(View):
    audience_id: str
    status: AudienceStatus = Field(
        description="draft (editable), freezing (enabling), frozen (enabled), failed (enabling failed: return it "
        "to draft, or delete it)"
    )
    version: int
    created_at: datetime
    created_by: str
    audience: AudienceInput
    count: int | None = Field(default=None, description="members in the frozen list (群组人数)")
    frozen_at: datetime | None = None
    preview: ScanView | None = Field(default=None, description="the latest preview")
    snapshot: ScanView | None = Field(default=None, description="the scan that froze it")


class AudiencePage(View):
    items: list[AudienceView]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ScanPage:
    """One page of one segment of an audience's scan: a queue message."""

    tenant: str
    audience_id: str
    run_id: str
    segment: int
    segments: int
    page: int = 0
    start: dict[str, Any] | None = None

    def message(self) -> str:
        return json.dumps({"audienceScan": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ScanPage:
        return cls(**body["audienceScan"])


@dataclass
class AudienceService:
    table: Table
    programs: ProgramLoader
    config: ConfigRepository
    members: MemberRepository
    clock: Clock

    # --- drafts ---------------------------------------------------------------------------------------

    def create(self, tenant: str, audience: AudienceInput, by: str) -> AudienceView:
        self._check_references(tenant, audience)
        audience_id, now = new_ulid(), self.clock.now()
        item = {
            "PK": keys.audience(tenant, audience_id),
            "SK": keys.AUDIENCE_SK,
            "audienceId": audience_id,
            "status": "draft",
            "version": 1,
            "createdAt": now.isoformat(),
            "createdBy": by,
            "audience": _data(audience),
            "GSI1PK": keys.audiences_index(tenant),
            "GSI1SK": audience_id,
        }
        self.table.transact([put(item, "attribute_not_exists(PK)")])
        return self._view(item)

    def replace(self, tenant: str, audience_id: str, audience: AudienceInput) -> AudienceView:
        current = self._item(tenant, audience_id)
        if audience.program_code != current["audience"]["programCode"]:
            raise InvalidInput("an audience stays in its program", code="AUDIENCE_PROGRAM_CHANGED", field="programCode")
        self._check_references(tenant, audience, audience_id)
        item = {**current, "audience": _data(audience), "version": current["version"] + 1}
        item.pop("preview", None)  # a preview of the old condition says nothing of the new one
        try:
            self.table.transact([put(item, *_draft_at(current["version"]))])
        except TransactionCancelled as cancelled:
            raise _not_draft(cancelled.items[0]) from None
        return self._view(item)

    def delete(self, tenant: str, audience_id: str) -> None:
        """A draft, or an audience whose enabling failed, may be deleted."""
        current = self._item(tenant, audience_id)
        condition = "#status IN (:draft, :failed) AND version = :v"
        values = {**_draft_values(current["version"]), ":failed": "failed"}
        try:
            self.table.transact([delete(current["PK"], keys.AUDIENCE_SK, condition, values, _STATUS)])
        except TransactionCancelled as cancelled:
            raise _not_draft(cancelled.items[0]) from None

    def copy(self, tenant: str, audience_id: str, by: str) -> AudienceView:
        source = AudienceInput.stored(self._item(tenant, audience_id)["audience"])
        return self.create(tenant, source.model_copy(update={"name": source.name[:95] + " (副本)"}), by)

    # --- scans ----------------------------------------------------------------------------------------

    def preview(self, tenant: str, audience_id: str, by: str) -> AudienceView:
        """预览: count who the condition finds now (and name 20), without freezing anything."""
        current = self._item(tenant, audience_id)
        run = self._start(tenant, audience_id, "preview", by)
        item = {**current, "preview": run["runId"]}
        try:  # the run and the audience naming it as its latest preview, on condition it did not change
            self.table.transact(
                [
                    update(
                        current["PK"],
                        keys.AUDIENCE_SK,
                        "SET preview = :run",
                        {":run": run["runId"], ":v": current["version"]},
                        "version = :v",
                    ),
                    put(run, "attribute_not_exists(PK)"),
                ]
            )
        except TransactionCancelled:
            raise Conflict("the audience changed meanwhile; retry", code="CONCURRENT_UPDATE") from None
        self._queue(tenant, audience_id, run)
        return self._view(item)

    def enable(self, tenant: str, audience_id: str, by: str) -> AudienceView:
        """启用: freeze who the condition finds now; the audience no longer changes."""
        current = self._item(tenant, audience_id)
        try:
            stored = AudienceInput.model_validate(current["audience"])
        except ValidationError as error:  # written before a rule it breaks (a date past D-127's bounds)
            reason = error.errors()[0]["msg"]
            raise InvalidInput(f"the audience breaks a rule: {reason}; change it", code="AUDIENCE_INVALID") from None
        self._check_references(tenant, stored, audience_id)
        run = self._start(tenant, audience_id, "snapshot", by)
        try:
            self.table.transact(
                [
                    update(
                        current["PK"],
                        keys.AUDIENCE_SK,
                        "SET #status = :freezing, #snapshot = :run, version = version + :one",
                        {":freezing": "freezing", ":run": run["runId"], ":one": 1, **_draft_values(current["version"])},
                        _DRAFT,
                        {**_STATUS, "#snapshot": "snapshot"},
                    ),
                    put(run, "attribute_not_exists(PK)"),
                ]
            )
        except TransactionCancelled as cancelled:
            raise _not_draft(cancelled.items[0]) from None
        self._queue(tenant, audience_id, run)
        return self.get(tenant, audience_id)

    def _start(self, tenant: str, audience_id: str, kind: str, by: str) -> Item:
        """A scan's run item (written by the caller with the audience's change): its counts start at 0."""
        now = self.clock.now()
        run = {
            "PK": keys.audience(tenant, audience_id),
            "SK": keys.scan_run_sk(run_id := new_ulid()),
            "runId": run_id,
            "kind": kind,
            "status": "running",
            "segments": SEGMENTS,
            "segmentsDone": 0,
            "membersScanned": 0,
            "matched": 0,
            "readUnits": 0,
            "at": now.isoformat(),  # the moment relative windows count back from, the same for every page
            "startedAt": now.isoformat(),
            "startedBy": by,
        }
        return run

    @staticmethod
    def _queue(tenant: str, audience_id: str, run: Item) -> None:
        pages = [ScanPage(tenant, audience_id, run["runId"], s, run["segments"]) for s in range(run["segments"])]
        send_all(get_settings().campaign_queue_url, [page.message() for page in pages])

    def scan_page(self, page: ScanPage) -> int:
        """Read one page of a segment, count who matches (and keep them, for a snapshot), send the next
        page. Returns how many matched."""
        pk = keys.audience(page.tenant, page.audience_id)
        marker_sk = keys.scan_page_sk(page.run_id, page.segment, page.page)
        marker = self.table.get(pk, marker_sk)
        if marker is not None:  # done before: only the segment's end may be left to record
            if marker.get("last"):
                self._finish(page)
            return 0
        audience = self.table.get(pk, keys.AUDIENCE_SK)
        run = self.table.get(pk, keys.scan_run_sk(page.run_id), consistent=False)
        if audience is None or run is None or run["status"] == "failed":
            return 0
        with metered() as units:
            member_ids, more = self.members.index_page(page.tenant, page.segment, SCAN_LIMIT, page.start)
            try:
                definition = AudienceInput.model_validate(audience["audience"])
                scanned, matched = self._evaluate(page, definition, member_ids, datetime.fromisoformat(run["at"]))
            except NOT_RETRYABLE as error:
                self._fail(page, run, f"{type(error).__name__}: {str(error)[:200]}")
                return 0
        if run["kind"] == "snapshot":
            self.table.put_many(
                [
                    {
                        "PK": keys.audience_members(page.tenant, page.audience_id, keys.audience_shard(m)),
                        "SK": m,
                        "memberId": m,
                    }
                    for m in matched
                ]
            )
        if more:  # sent before the marker: a failure between the two sends it again, never loses it
            send_all(
                get_settings().campaign_queue_url,
                [ScanPage(**{**asdict(page), "page": page.page + 1, "start": more}).message()],
            )
        counts = {":scanned": scanned, ":matched": len(matched), ":units": units[0]}
        adds = "ADD membersScanned :scanned, matched :matched, readUnits :units"
        if not more:
            counts[":one"] = 1
            adds += ", segmentsDone :one"
        try:
            self.table.transact(
                [
                    put(
                        {
                            "PK": pk,
                            "SK": marker_sk,
                            "matched": len(matched),
                            "last": not more,
                            "expiration": _in_days(30, self.clock),
                        },
                        "attribute_not_exists(PK)",
                    ),
                    update(pk, keys.scan_run_sk(page.run_id), adds, counts),
                ]
            )
        except TransactionCancelled:
            return 0  # another delivery of this page counted it
        if run["kind"] == "preview" and matched:
            with suppress(TransactionCancelled):  # the sample is full
                self.table.transact(
                    [
                        update(
                            pk,
                            keys.scan_run_sk(page.run_id),
                            "SET #sample = list_append(if_not_exists(#sample, :none), :ids)",
                            {":none": [], ":ids": matched[:SAMPLE], ":full": SAMPLE},
                            "attribute_not_exists(#sample) OR size(#sample) < :full",
                            {"#sample": "sample"},
                        )
                    ]
                )
        if not more:
            self._finish(page)
        logger.info(
            "audience page", extra={"audienceId": page.audience_id, "scanned": scanned, "matched": len(matched)}
        )
        return len(matched)

    def _evaluate(
        self, page: ScanPage, definition: AudienceInput, member_ids: list[str], at: datetime
    ) -> tuple[int, list[str]]:
        """(members of the program read, ids of those who match): each member's summary items in one query."""
        program = self.programs.load(page.tenant, definition.program_code)
        scanned, matched = 0, []
        for member_id in member_ids:
            try:
                summary = self.members.items(page.tenant, member_id)
            except NotFound:  # an index entry that outlived its member
                continue
            if summary[0].get("programCode") != definition.program_code:
                continue
            scanned += 1
            facts = MemberFacts(
                at,
                program.zone,
                summary[0],
                tags_of(summary),
                {group: int(a.get("available", 0)) for group, a in accounts_by_group(summary).items()},
                partial(self._activities, page.tenant, member_id),
                partial(self._in_audience, page.tenant, member_id=member_id),
            )
            if matches(definition.condition, facts):
                matched.append(member_id)
        return scanned, matched

    def _activities(self, tenant: str, member_id: str, starts: datetime | None, ends: datetime | None) -> list[Item]:
        low = keys.ACTIVITY_PREFIX + (keys.stamp(starts) if starts else "")
        high = keys.ACTIVITY_PREFIX + (keys.stamp(ends) if ends else "~")
        pk, found, cursor = keys.member(tenant, member_id), [], None
        while True:
            page = self.table.query_prefix(pk, keys.ACTIVITY_PREFIX, between=(low, high), cursor=cursor)
            found += page.items
            if not (cursor := page.next_cursor):
                return found

    def _in_audience(self, tenant: str, audience_id: str, *, member_id: str) -> bool:
        return in_audience(self.table, tenant, audience_id, member_id)

    def _finish(self, page: ScanPage) -> None:
        """Once every segment has been read: the run is done; a snapshot freezes its audience."""
        pk = keys.audience(page.tenant, page.audience_id)
        run = self.table.get(pk, keys.scan_run_sk(page.run_id))
        if run is None or run["status"] != "running" or run["segmentsDone"] < run["segments"]:
            return
        now = self.clock.now().isoformat()
        self._end_run(
            page,
            run,
            ("#status = :done, finishedAt = :now", {":done": "done", ":now": now}),
            (
                "#status = :frozen, frozenAt = :now, #count = :count",
                {":frozen": "frozen", ":now": now, ":count": run["matched"]},
            ),
            {"#count": "count"},
        )

    def _fail(self, page: ScanPage, run: Item, reason: str) -> None:
        """The run stops as failed, with why; a snapshot's audience is failed with it (its operator returns
        it to draft or deletes it). The other segments' pages find the run failed and stop."""
        now = self.clock.now().isoformat()
        self._end_run(
            page,
            run,
            (
                "#status = :failed, failure = :why, finishedAt = :now",
                {":failed": "failed", ":why": reason, ":now": now},
            ),
            ("#status = :failed, version = version + :one", {":failed": "failed", ":one": 1}),
        )
        logger.warning("audience scan failed", extra={"audienceId": page.audience_id, "failure": reason})

    def _end_run(
        self,
        page: ScanPage,
        run: Item,
        run_set: tuple[str, Item],
        audience_set: tuple[str, Item],
        audience_names: dict[str, str] | None = None,
    ) -> None:
        """The run ends, if it is still running, and a snapshot's audience moves with it, if it is still freezing
        for this run: one transaction, so the segments' last pages (or a failing one) end it once."""
        pk = keys.audience(page.tenant, page.audience_id)
        (run_expression, run_values), (audience_expression, audience_values) = run_set, audience_set
        operations = [
            update(
                pk,
                keys.scan_run_sk(page.run_id),
                f"SET {run_expression}",
                {**run_values, ":running": "running"},
                "#status = :running",
                _STATUS,
            )
        ]
        if run["kind"] == "snapshot":
            operations.append(
                update(
                    pk,
                    keys.AUDIENCE_SK,
                    f"SET {audience_expression}",
                    {**audience_values, ":freezing": "freezing", ":run": page.run_id},
                    "#status = :freezing AND #snapshot = :run",
                    {**_STATUS, "#snapshot": "snapshot", **(audience_names or {})},
                )
            )
        with suppress(TransactionCancelled):  # ended meanwhile by another segment's page
            self.table.transact(operations)

    def return_to_draft(self, tenant: str, audience_id: str) -> AudienceView:
        """回到草稿: an audience whose enabling failed becomes an editable draft again."""
        current = self._item(tenant, audience_id)
        try:
            self.table.transact(
                [
                    update(
                        current["PK"],
                        keys.AUDIENCE_SK,
                        "SET #status = :draft, version = version + :one REMOVE #snapshot",
                        {":draft": "draft", ":one": 1, ":failed": "failed", ":v": current["version"]},
                        "#status = :failed AND version = :v",
                        {**_STATUS, "#snapshot": "snapshot"},
                    )
                ]
            )
        except TransactionCancelled:
            raise Conflict(
                f"the audience is {current['status']}: only a failed one returns to draft",
                code="AUDIENCE_STATUS",
                audienceStatus=current["status"],
            ) from None
        return self.get(tenant, audience_id)

    # --- reading --------------------------------------------------------------------------------------

    def get(self, tenant: str, audience_id: str) -> AudienceView:
        return self._view(self._item(tenant, audience_id))

    def list_page(self, tenant: str, limit: int, cursor: str | None) -> AudiencePage:
        items, next_cursor = self.table.listing(
            keys.audiences_index(tenant), lambda id_: (keys.audience(tenant, id_), keys.AUDIENCE_SK), limit, cursor
        )
        return AudiencePage(items=[self._view(item, with_runs=False) for item in items], next_cursor=next_cursor)

    def frozen(self, tenant: str, audience_id: str, program_code: str, field: str) -> Item:
        return named_audience(self.table, tenant, audience_id, program_code, field)

    def _item(self, tenant: str, audience_id: str) -> Item:
        item = self.table.get(keys.audience(tenant, audience_id), keys.AUDIENCE_SK)
        if item is None:
            raise NotFound(f"no audience {audience_id!r}", code="AUDIENCE_NOT_FOUND")
        return item

    def _view(self, item: Item, with_runs: bool = True) -> AudienceView:
        runs: dict[str, Any] = {}
        for name in ("preview", "snapshot") if with_runs else ():
            if item.get(name):
                run = self.table.get(item["PK"], keys.scan_run_sk(item[name]))
                if run is not None:
                    run["sample"] = list(dict.fromkeys(run.get("sample", [])))[:SAMPLE]
                    runs[name] = run
        return AudienceView.model_validate({**item, "preview": None, "snapshot": None, **runs})

    def _check_references(self, tenant: str, audience: AudienceInput, own_id: str | None = None) -> None:
        """Every tier, point group, tag, store and other audience the tree names exists (422 with its
        pointer); another audience must be of the program and frozen."""
        program = self.programs.load(tenant, audience.program_code)
        for pointer, leaf in _pointed_leaves(audience.condition):
            if isinstance(leaf, TierIs):
                for index, code in enumerate(leaf.values):
                    if code not in program.tiers:
                        raise _unknown(f"no tier {code!r}", f"{pointer}/values/{index}")
            elif isinstance(leaf, AvailablePoints) and leaf.point_group_code not in program.point_groups:
                raise _unknown(f"no point group {leaf.point_group_code!r}", f"{pointer}/pointGroupCode")
            elif isinstance(leaf, HasTags) or (isinstance(leaf, ProfileIn) and leaf.attribute == "registrationStore"):
                kind = KINDS["tag" if isinstance(leaf, HasTags) else "store"]
                found = self.config.get_many(tenant, kind, audience.program_code, list(leaf.values))
                for index, code in enumerate(leaf.values):
                    if code not in found:
                        raise _unknown(f"no {kind.name} {code!r}", f"{pointer}/values/{index}")
        for other, pointer in audiences_named(audience.condition):
            if other == own_id:
                raise InvalidInput("an audience cannot name itself", code="UNKNOWN_REFERENCE", field=pointer)
            self.frozen(tenant, other, audience.program_code, pointer)


def in_audience(table: Table, tenant: str, audience_id: str, member_id: str) -> bool:
    """Is the member in the audience's frozen list: one GetItem of their shard."""
    shard = keys.audience_members(tenant, audience_id, keys.audience_shard(member_id))
    return table.get(shard, member_id, consistent=False) is not None


def named_audience(
    table: Table, tenant: str, audience_id: str, program_code: str, field: str, *, frozen: bool = True
) -> Item:
    """The audience a campaign or another audience names: of the program (422 at `field` otherwise) and,
    unless `frozen` is False (a draft campaign may name one still being built), frozen (409)."""
    item = table.get(keys.audience(tenant, audience_id), keys.AUDIENCE_SK, consistent=False)
    if item is None or item["audience"]["programCode"] != program_code:
        raise InvalidInput(f"no audience {audience_id!r} in this program", code="UNKNOWN_REFERENCE", field=field)
    if frozen and item["status"] != "frozen":
        raise Conflict(
            f"audience {audience_id} is {item['status']}: enable it first",
            code="AUDIENCE_NOT_FROZEN",
            field=field,
            audienceStatus=item["status"],
        )
    return item


def _pointed_leaves(node: Any, path: str = "condition") -> list[tuple[str, Any]]:
    if isinstance(node, AllOf | AnyOf):
        name = "all" if isinstance(node, AllOf) else "any"
        return [
            pair for i, kid in enumerate(getattr(node, name)) for pair in _pointed_leaves(kid, f"{path}/{name}/{i}")
        ]
    if isinstance(node, NoneOf):
        return _pointed_leaves(node.not_, f"{path}/not")
    return [(path, node)]


_STATUS = {"#status": "status"}
_DRAFT = "#status = :draft AND version = :v"


def _draft_values(version: int) -> dict[str, Any]:
    return {":draft": "draft", ":v": version}


def _draft_at(version: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    return _DRAFT, _draft_values(version), _STATUS


def _not_draft(found: Item | None) -> Exception:
    if found is None:
        return NotFound("no such audience", code="AUDIENCE_NOT_FOUND")
    if found["status"] == "draft":
        return Conflict("the audience changed meanwhile; retry", code="CONCURRENT_UPDATE")
    return Conflict(
        f"the audience is {found['status']}: only drafts can be changed, enabled or deleted",
        code="AUDIENCE_STATUS",
        audienceStatus=found["status"],
    )


def _unknown(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, code="UNKNOWN_REFERENCE", field=field)


def _in_days(days: int, clock: Clock) -> int:
    return int(clock.now().timestamp()) + days * 86400


def _data(audience: AudienceInput) -> dict[str, Any]:
    return audience.model_dump(mode="json", by_alias=True, exclude_none=True)


def audience_service(table: Table | None = None, clock: Clock | None = None) -> AudienceService:
    table = table or Table()
    config = ConfigRepository(table)
    return AudienceService(table, ProgramLoader(config), config, MemberRepository(table), clock or SystemClock())
