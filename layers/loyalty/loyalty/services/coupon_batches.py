"""Batch issuance (批量发券, whale B.3): an operator uploads a CSV of members; the rows travel through the
coupon-issue queue in chunks and each row ends in exactly one outcome, kept as a per-row report.

A row's outcome is written by the same transaction that issues its coupon (or alone, when it cannot be
issued), under `attribute_not_exists`, so a redelivered chunk skips the rows it has done.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.validity import CamelModel, View
from loyalty.ids import new_ulid
from loyalty.services.coupons import CouponService, coupon_service
from loyalty.services.queues import send_all
from loyalty.services.uploads import csv_records
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.requests import RequestKey
from loyalty.store.table import Table, TransactionCancelled, put

MAX_ROWS = 20_000
CHUNK = 25  # rows per queue message: a chunk finishes well within the function's timeout
OUTCOMES = {
    "MEMBER_NOT_FOUND": "UNKNOWN_MEMBER",
    "CLAIM_LIMIT_REACHED": "LIMIT_REACHED",
    "OUT_OF_STOCK": "OUT_OF_STOCK",
    "DAILY_CAP_REACHED": "DAILY_CAP_REACHED",
    "RULE_NOT_LISTED": "RULE_NOT_LISTED",
    "RULE_VALIDITY_ENDED": "RULE_VALIDITY_ENDED",
}


class JobRequest(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"csv": "phone\n13800138000\n13900139000\n"}]
    csv: str = Field(
        min_length=1,
        max_length=250_000,
        description="A header line naming a memberId or phone column, then one member per line",
        examples=["phone\n13800138000\n13900139000\n"],
    )


class RowResult(View):
    row: int
    outcome: str = Field(description="ISSUED, UNKNOWN_MEMBER, LIMIT_REACHED, OUT_OF_STOCK, ...")
    member_id: str | None = None
    code: str | None = None


class JobReport(View):
    job_id: str
    rule_id: str
    total: int
    done: int
    outcomes: dict[str, int]
    created_at: datetime
    rows: list[RowResult]


@dataclass
class CouponBatchService:
    table: Table
    coupons: CouponService
    clock: Clock

    def create(
        self, tenant: str, rule_id: str, request: JobRequest, by: str, key: RequestKey | None = None
    ) -> JobReport:
        """Record the job and queue its chunks. A retry with the same Idempotency-Key after a lost answer
        queues the first job's chunks again (its rows happen once), never a second job."""
        rule = self.coupons.rules.load(tenant, rule_id)
        if not rule["rule"].get("campaignIssue"):
            raise Conflict("this coupon is not issued by operators or campaigns", code="NOT_ISSUABLE")
        rows = _parse(request.csv)
        job_id, now = new_ulid(), self.clock.now()
        job = {
            "PK": keys.coupon_job(tenant, job_id),
            "SK": keys.JOB_SK,
            "jobId": job_id,
            "ruleId": rule_id,
            "total": len(rows),
            "createdAt": now.isoformat(),
            "createdBy": by,
        }
        try:
            self.table.transact([put(job, "attribute_not_exists(PK)"), *([key.marker(jobId=job_id)] if key else [])])
        except TransactionCancelled as cancelled:
            if not (key and cancelled.failed(1)):
                raise
            job_id = key.first_effect(self.table)["jobId"]
        bodies = [
            json.dumps({"tenant": tenant, "jobId": job_id, "ruleId": rule_id, "rows": rows[i : i + CHUNK]})
            for i in range(0, len(rows), CHUNK)
        ]
        send_all(get_settings().coupon_issue_queue_url, bodies)
        return self.report(tenant, job_id)

    def work(self, message: dict[str, Any]) -> int:
        """Issue one chunk; rows done before (a redelivery) are skipped. Returns the rows done now."""
        tenant, job_id = message["tenant"], message["jobId"]
        rule = self.coupons.rules.load(tenant, message["ruleId"])
        pk = keys.coupon_job(tenant, job_id)
        numbers = [row["row"] for row in message["rows"]]
        bounds = (keys.job_row_sk(min(numbers)), keys.job_row_sk(max(numbers)))
        done_before = {item["SK"] for item in self.table.query_prefix(pk, "ROW#", between=bounds).items}
        done = 0
        for row in message["rows"]:
            if keys.job_row_sk(row["row"]) in done_before:
                continue
            try:
                member_id = row.get("memberId") or self.coupons.members.id_by_phone(tenant, row["phone"])
                self.coupons.issue(tenant, member_id, rule, "batch", row=(job_id, row["row"]))
                done += 1
            except (Conflict, NotFound) as refused:
                if refused.code == "ALREADY_ISSUED":
                    continue
                if refused.code not in OUTCOMES:
                    raise
                done += self._record(pk, row, OUTCOMES[refused.code], row.get("memberId"))
        return done

    def report(self, tenant: str, job_id: str) -> JobReport:
        pk = keys.coupon_job(tenant, job_id)
        job = self.table.get(pk, keys.JOB_SK)
        if job is None:
            raise NotFound(f"no issuance job {job_id!r}", code="JOB_NOT_FOUND")
        rows = self.table.query_all(pk, "ROW#")
        results = [RowResult(row=int(item["SK"][4:]), **_fields(item)) for item in rows]
        return JobReport(
            job_id=job_id,
            rule_id=job["ruleId"],
            total=job["total"],
            done=len(results),
            outcomes=dict(Counter(r.outcome for r in results)),
            created_at=job["createdAt"],
            rows=results,
        )

    def _record(self, pk: str, row: dict[str, Any], outcome: str, member_id: str | None) -> int:
        item = {"PK": pk, "SK": keys.job_row_sk(row["row"]), "outcome": outcome}
        if member_id:
            item["memberId"] = member_id
        try:
            self.table.transact([put(item, "attribute_not_exists(PK)")])
        except TransactionCancelled:
            return 0  # recorded by an earlier delivery
        return 1


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("outcome", "memberId", "code") if k in item}


def _parse(text: str) -> list[dict[str, Any]]:
    """Rows numbered from 1 (the line after the header); each names a member by memberId or phone."""
    names, reader = csv_records(text, "csv")
    columns = {name.strip() for name in names}
    if not columns & {"memberId", "phone"}:
        raise InvalidInput("the header must name a memberId or a phone column", code="CSV_HEADER", field="csv")
    rows = []
    for number, raw in enumerate(reader, start=1):
        values = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        member_id, phone = values.get("memberId", ""), values.get("phone", "")
        if bool(member_id) == bool(phone):
            raise InvalidInput(
                f"row {number} must give a memberId or a phone, not both or neither", code="CSV_ROW", field="csv"
            )
        rows.append({"row": number, **({"memberId": member_id} if member_id else {"phone": phone})})
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} rows per upload", code="CSV_TOO_LONG", field="csv")
    if not rows:
        raise InvalidInput("the file has no rows", code="CSV_EMPTY", field="csv")
    return rows


def coupon_batch_service(table: Table | None = None, clock: Clock | None = None) -> CouponBatchService:
    table = table or Table()
    clock = clock or SystemClock()
    return CouponBatchService(table, coupon_service(table, clock), clock)
