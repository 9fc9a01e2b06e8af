"""Bulk jobs (批量操作): an operator uploads rows, the rows travel through the bulk-job queue in chunks, and
each row ends in exactly one outcome, kept as a per-row report (D-083). Two kinds:

- members: attach or detach a tag, or add a note (备注), for each member a CSV names by memberId, phone or
  cardNo;
- master data: upsert stores, products or product categories by code, from CSV or JSON lines.

Tags and master data are idempotent by their business key (a member holds a tag once; an item has one
code), so a redelivered chunk does them again harmlessly and its row reports what it found. A note is not,
so it is written in one transaction with its row's result, under `attribute_not_exists`: once per row.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import CODE_PATTERN, KINDS, ConfigItem
from loyalty.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalty.domain.members import NoteInput, normalize_phone, valid_card_number
from loyalty.domain.validity import CamelModel, View
from loyalty.ids import new_ulid
from loyalty.services.config import ConfigService, config_service
from loyalty.services.members import Editor, MemberService, member_service
from loyalty.services.queues import send_all
from loyalty.services.uploads import csv_records, json_line
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import Stored
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Table, TransactionCancelled, put

MAX_ROWS = 20_000
CODE = re.compile(CODE_PATTERN)
CHUNK = 50  # rows per queue message: well within the worker's timeout and SQS's 256 KB
MEMBER_COLUMNS = ("memberId", "phone", "cardNo")


CSV_FIELD = Field(
    min_length=1,
    max_length=1_000_000,
    description="A header line naming a memberId, phone or cardNo column, then one member per line",
    examples=["phone\n13800138000\n13900139000\n"],
)


class TagJobRequest(CamelModel):
    """Give every member of a CSV a tag, or take it from them."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"action": "attachTag", "tagCode": "high-value", "csv": "phone\n13800138000\n13900139000\n"}
    ]

    action: Literal["attachTag", "detachTag"]
    tag_code: str = Field(pattern=CODE_PATTERN)
    csv: str = CSV_FIELD


class NoteJobRequest(CamelModel):
    """Add the same note (备注) to every member of a CSV."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"action": "addNote", "comment": "双十一回访", "csv": "cardNo\n100000000009\n"}
    ]

    action: Literal["addNote"]
    comment: str = Field(min_length=1, max_length=2000)
    csv: str = CSV_FIELD


MemberJobRequest = Annotated[TagJobRequest | NoteJobRequest, Field(discriminator="action")]


class MasterDataJobRequest(CamelModel):
    """Create or replace stores, products or product categories by code (an unchanged row changes nothing);
    or put stores (products) in draft groups, a row naming `groupCode` and `storeCode` (`productCode`)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"kind": "product", "format": "csv", "data": "code,name,categoryCode\nTD0001,咸味薯条,SNACK\n"},
        {"kind": "storeGroupMember", "format": "csv", "data": "groupCode,storeCode\noffline,SH001\n"},
    ]

    kind: Literal["store", "product", "productCategory", "storeGroupMember", "productGroupMember"]
    format: Literal["csv", "jsonl"] = Field(description="csv: a header of field names; jsonl: one object per line")
    data: str = Field(
        min_length=1,
        max_length=4_000_000,
        examples=["code,name,categoryCode\nTD0001,薯条,SNACK\n"],
    )


class RowResult(View):
    row: int
    outcome: str = Field(description="e.g. TAGGED, UNCHANGED, NOTED, CREATED, UPDATED, UNKNOWN_MEMBER, INVALID")
    member_id: str | None = None
    code: str | None = None
    detail: str | None = Field(default=None, description="Why a row was refused, and the field at fault")


class BulkJobReport(View):
    job_id: str
    kind: Literal["members", "masterData"]
    action: str = Field(description="attachTag, detachTag, addNote; or upsert:<kind>")
    total: int
    done: int
    outcomes: dict[str, int]
    created_at: datetime
    created_by: str


class RowPage(View):
    items: list[RowResult]
    next_cursor: str | None = None


@dataclass
class BulkJobService:
    table: Table
    members: MemberService
    config: ConfigService
    clock: Clock

    def create_member_job(
        self, tenant: str, request: TagJobRequest | NoteJobRequest, by: str, key: RequestKey | None = None
    ) -> BulkJobReport:
        if isinstance(request, TagJobRequest):
            try:
                self.config.get(tenant, KINDS["tag"], None, request.tag_code)
            except NotFound:
                raise InvalidInput(f"no tag {request.tag_code!r}", code="UNKNOWN_TAG", field="tagCode") from None
        rows = _member_rows(request.csv)
        params = {"tagCode": request.tag_code} if isinstance(request, TagJobRequest) else {"comment": request.comment}
        return self._start(tenant, "members", request.action, params, rows, by, key)

    def create_master_data_job(
        self, tenant: str, request: MasterDataJobRequest, by: str, key: RequestKey | None = None
    ) -> BulkJobReport:
        rows = _data_rows(request.data, request.format)
        return self._start(tenant, "masterData", f"upsert:{request.kind}", {"itemKind": request.kind}, rows, by, key)

    def report(self, tenant: str, job_id: str) -> BulkJobReport:
        job = self._job(tenant, job_id)
        outcomes = Counter(item["outcome"] for item in self.table.query_all(keys.bulk_job(tenant, job_id), "ROW#"))
        return BulkJobReport.model_validate({**job, "done": sum(outcomes.values()), "outcomes": dict(outcomes)})

    def rows(self, tenant: str, job_id: str, limit: int, cursor: str | None) -> RowPage:
        self._job(tenant, job_id)
        page = self.table.query_prefix(keys.bulk_job(tenant, job_id), "ROW#", limit=limit, cursor=cursor)
        return RowPage(items=[_result(item) for item in page.items], next_cursor=page.next_cursor)

    def work(self, message: dict[str, Any]) -> int:
        """Do one chunk; rows done before (a redelivery) are skipped. Returns the rows done now."""
        tenant, job_id = message["tenant"], message["jobId"]
        job = self._job(tenant, job_id)
        pk = keys.bulk_job(tenant, job_id)
        numbers = [row["row"] for row in message["rows"]]
        bounds = (keys.job_row_sk(min(numbers)), keys.job_row_sk(max(numbers)))
        done_before = {item["SK"] for item in self.table.query_prefix(pk, "ROW#", between=bounds).items}
        todo = [row for row in message["rows"] if keys.job_row_sk(row["row"]) not in done_before]
        if job["kind"] == "members":
            tag = self._tag_name(tenant, job) if job["action"] == "attachTag" else None
            results = [self._member_row(tenant, job, row, tag) for row in todo]
        else:
            results = self._master_data_rows(tenant, job, todo)
        written = [{"PK": pk, "SK": keys.job_row_sk(r.pop("row")), **r} for r in results if r and "noted" not in r]
        self.table.put_many(written)  # one write per 25 rows; a redelivery would write the same outcomes
        return len(written) + sum(1 for r in results if r and "noted" in r)

    # --- rows: each gives its result, or None when an earlier delivery did it ---------------------------

    def _tag_name(self, tenant: str, job: Item) -> str | None:
        """The tag's name, read once a chunk (None: deleted since the upload)."""
        try:
            return self.config.get(tenant, KINDS["tag"], None, job["tagCode"]).item.name
        except NotFound:
            return None

    def _member_row(self, tenant: str, job: Item, row: dict[str, Any], tag: str | None) -> dict[str, Any] | None:
        number = row["row"]
        if job["action"] == "attachTag" and tag is None:
            return {"row": number, "outcome": "UNKNOWN_TAG"}
        try:
            member_id = self._member_id(tenant, row)
            if job["action"] == "addNote":  # not idempotent: written with its row's result, once
                editor = Editor("operator", "operator", job["createdBy"])
                result = put(
                    {
                        "PK": keys.bulk_job(tenant, job["jobId"]),
                        "SK": keys.job_row_sk(number),
                        "outcome": "NOTED",
                        "memberId": member_id,
                    },
                    "attribute_not_exists(PK)",
                )
                try:
                    self.members.add_note(tenant, editor, member_id, NoteInput(comment=job["comment"]), (result,))
                except TransactionCancelled:
                    return None
                return {"noted": True}
            if job["action"] == "attachTag":
                attached = self.members.members.attach_tag(
                    tenant, member_id, (job["tagCode"], str(tag)), self.clock.now()
                )
                outcome = "TAGGED" if attached else "UNCHANGED"
            else:
                outcome = "UNTAGGED" if self.members.untag(tenant, member_id, job["tagCode"]) else "UNCHANGED"
        except (NotFound, ValueError):
            return {"row": number, "outcome": "UNKNOWN_MEMBER"}
        except DomainError as refused:  # e.g. the tag was deleted meanwhile
            return {"row": number, "outcome": refused.code or "REFUSED", "detail": str(refused)}
        return {"row": number, "outcome": outcome, "memberId": member_id}

    def _member_id(self, tenant: str, row: dict[str, Any]) -> str:
        repository = self.members.members
        if "memberId" in row:
            return str(repository.profile(tenant, row["memberId"])["memberId"])
        if "phone" in row:
            return repository.id_by_phone(tenant, normalize_phone(row["phone"]))
        return repository.id_by_card(tenant, row["cardNo"])

    def _master_data_rows(self, tenant: str, job: Item, rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Validate each row, read what exists of the chunk's codes in one batch, then create, replace or
        leave each item."""
        if job["itemKind"].endswith("GroupMember"):
            return [self._group_member_row(tenant, job["itemKind"].removesuffix("Member"), row) for row in rows]
        kind = KINDS[job["itemKind"]]
        items: dict[int, ConfigItem] = {}
        results: dict[int, dict[str, Any]] = {}
        for row in rows:
            if "invalid" in row:  # a line that is no JSON object: its own outcome
                results[row["row"]] = {"row": row["row"], "outcome": "INVALID", "detail": row["invalid"]}
                continue
            try:
                items[row["row"]] = kind.model.model_validate(row["data"])
            except ValidationError as invalid:
                error = invalid.errors()[0]
                where = "/".join(str(part) for part in error["loc"]) or "row"
                results[row["row"]] = {"row": row["row"], "outcome": "INVALID", "detail": f"{where}: {error['msg']}"}
        existing = self.config.repository.get_many(tenant, kind, None, [item.code for item in items.values()])
        for number, item in items.items():
            try:
                outcome = self._upsert(tenant, kind.name, item, existing.get(item.code))
            except DomainError as refused:
                detail = f"{refused.field}: {refused}" if refused.field else str(refused)
                outcome = refused.code or "REFUSED"
                results[number] = {"row": number, "outcome": outcome, "code": item.code, "detail": detail}
                continue
            results[number] = {"row": number, "outcome": outcome, "code": item.code}
        return [results[row["row"]] for row in rows]

    def _group_member_row(self, tenant: str, group_kind: str, row: dict[str, Any]) -> dict[str, Any]:
        if "invalid" in row:
            return {"row": row["row"], "outcome": "INVALID", "detail": row["invalid"]}
        column = "storeCode" if group_kind == "storeGroup" else "productCode"
        group, code = row["data"].get("groupCode"), row["data"].get(column)
        if not (isinstance(group, str) and isinstance(code, str)) or not all(map(CODE.fullmatch, (group, code))):
            return {"row": row["row"], "outcome": "INVALID", "detail": f"a row names a groupCode and a {column}"}
        try:
            added = self.config.add_member(tenant, group_kind, group, code)
        except DomainError as refused:
            return {"row": row["row"], "outcome": refused.code or "REFUSED", "code": code, "detail": str(refused)}
        return {"row": row["row"], "outcome": "ADDED" if added else "UNCHANGED", "code": code}

    def _upsert(self, tenant: str, kind_name: str, item: ConfigItem, current: Stored | None) -> str:
        kind = KINDS[kind_name]
        if current is None:
            try:
                self.config.create(tenant, kind, None, item)
                return "CREATED"
            except Conflict as taken:
                if taken.code != "ALREADY_EXISTS":
                    raise
                current = self.config.get(tenant, kind, None, item.code)  # another chunk created it meanwhile
        if current.item == item:
            return "UNCHANGED"
        self.config.replace(tenant, kind, None, item.code, item)
        return "UPDATED"

    # --- the job ----------------------------------------------------------------------------------------

    def _start(
        self,
        tenant: str,
        kind: str,
        action: str,
        params: dict[str, Any],
        rows: list[dict[str, Any]],
        by: str,
        key: RequestKey | None,
    ) -> BulkJobReport:
        """Record the job and queue its chunks. A retry with the same Idempotency-Key after a lost answer
        queues the first job's chunks again (its rows happen once), never a second job."""
        job_id = new_ulid()
        job = {
            "PK": keys.bulk_job(tenant, job_id),
            "SK": keys.JOB_SK,
            "jobId": job_id,
            "kind": kind,
            "action": action,
            **params,
            "total": len(rows),
            "createdAt": self.clock.now().isoformat(),
            "createdBy": by,
        }
        try:
            self.table.transact([put(job, "attribute_not_exists(PK)"), *([key.marker(jobId=job_id)] if key else [])])
        except TransactionCancelled as cancelled:
            if not (key and cancelled.failed(1)):
                raise
            job_id = key.first_effect(self.table)["jobId"]
        bodies = [
            json.dumps({"tenant": tenant, "jobId": job_id, "rows": rows[i : i + CHUNK]}, ensure_ascii=False)
            for i in range(0, len(rows), CHUNK)
        ]
        send_all(get_settings().bulk_job_queue_url, bodies)
        return self.report(tenant, job_id)

    def _job(self, tenant: str, job_id: str) -> Item:
        job = self.table.get(keys.bulk_job(tenant, job_id), keys.JOB_SK)
        if job is None:
            raise NotFound(f"no bulk job {job_id!r}", code="JOB_NOT_FOUND")
        return job


def _result(item: Item) -> RowResult:
    return RowResult(
        row=int(item["SK"][4:]), **{k: item[k] for k in ("outcome", "memberId", "code", "detail") if k in item}
    )


def _member_rows(text: str) -> list[dict[str, Any]]:
    """Rows numbered from 1 (the line after the header); each names a member in the one member column."""
    names, reader = csv_records(text, "csv")
    columns = [name.strip() for name in names if name.strip() in MEMBER_COLUMNS]
    if len(columns) != 1:
        raise InvalidInput("the header must name one of memberId, phone or cardNo", code="CSV_HEADER", field="csv")
    (column,) = columns
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(reader, start=1):
        value = next((v or "" for k, v in raw.items() if k and k.strip() == column), "").strip()
        if not value:
            raise InvalidInput(f"row {number} names no member", code="CSV_ROW", field="csv")
        if column == "cardNo" and not valid_card_number(value):
            raise InvalidInput(f"row {number}: the card number's check digit is wrong", code="CSV_ROW", field="csv")
        rows.append({"row": number, column: value})
        _bounded(rows, "csv")
    return _some(rows, "csv")


def _data_rows(text: str, fmt: str) -> list[dict[str, Any]]:
    """Rows numbered from 1; each carries the fields of one item (validated per row when done, so one bad row
    is reported, not the whole upload refused)."""
    rows: list[dict[str, Any]] = []
    if fmt == "jsonl":
        for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
            data = json_line(line, number)
            rows.append({"row": number, "data": data} if isinstance(data, dict) else {"row": number, "invalid": data})
            _bounded(rows, "data")
        return _some(rows, "data")
    names, reader = csv_records(text, "data")
    if not {"code", "groupCode"} & {name.strip() for name in names}:
        raise InvalidInput("the header must name a code (or a groupCode) column", code="CSV_HEADER", field="data")
    for number, raw in enumerate(reader, start=1):
        rows.append({"row": number, "data": {k.strip(): v.strip() for k, v in raw.items() if k and v and v.strip()}})
        _bounded(rows, "data")
    return _some(rows, "data")


def _bounded(rows: list, field: str) -> None:
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} rows per upload", code="CSV_TOO_LONG", field=field)


def _some(rows: list, field: str) -> list:
    if not rows:
        raise InvalidInput("the upload has no rows", code="CSV_EMPTY", field=field)
    return rows


def bulk_job_service(table: Table | None = None, clock: Clock | None = None) -> BulkJobService:
    table = table or Table()
    clock = clock or SystemClock()
    return BulkJobService(table, member_service(table, clock), config_service(table, clock), clock)
