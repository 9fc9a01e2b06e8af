"""Operators' bulk jobs (services/bulk_jobs.py): tag, untag or note members from a CSV; upsert stores,
products and categories from CSV or JSON lines. Each answers 202 with the job; its rows are done through a
queue, and the job's report and per-row results say how each ended."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import IdempotencyKey
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.services.bulk_jobs import (
    BulkJobReport,
    BulkJobService,
    MasterDataJobRequest,
    MemberJobRequest,
    RowPage,
    bulk_job_service,
)
from loyalty.services.idempotency import run_once

router = Router()
JobId = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


@lru_cache(maxsize=1)
def service() -> BulkJobService:
    return bulk_job_service()


@router.post(
    "/v1/admin/member-jobs",
    operation_id="createMemberJob",
    tags=["members"],
    status_code=202,
    responses=responses(202),
    summary="批量打标签 / 批量备注: tag, untag or note every member of a CSV (memberId, phone or cardNo column)",
)
def create_member_job(
    body: Annotated[MemberJobRequest, Body()], idempotency_key: IdempotencyKey = None
) -> BulkJobReport:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "createMemberJob",
        idempotency_key,
        body.model_dump(mode="json"),
        lambda request: (
            service().create_member_job(caller.tenant, body, caller.key_id, request).model_dump(mode="json")
        ),
    )
    return BulkJobReport.model_validate(result)


@router.post(
    "/v1/admin/master-data-jobs",
    operation_id="createMasterDataJob",
    tags=["configuration"],
    status_code=202,
    responses=responses(202),
    summary="Upsert stores, products or product categories by code, up to 20,000 rows (CSV or JSON lines)",
)
def create_master_data_job(
    body: Annotated[MasterDataJobRequest, Body()], idempotency_key: IdempotencyKey = None
) -> BulkJobReport:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "createMasterDataJob",
        idempotency_key,
        body.model_dump(mode="json"),
        lambda request: (
            service().create_master_data_job(caller.tenant, body, caller.key_id, request).model_dump(mode="json")
        ),
    )
    return BulkJobReport.model_validate(result)


@router.get(
    "/v1/admin/bulk-jobs/<jobId>",
    operation_id="getBulkJob",
    tags=["members"],
    responses=responses(),
    summary="A bulk job: how many rows are done, and their outcomes counted",
)
def get_bulk_job(jobId: JobId) -> BulkJobReport:
    return service().report(principal(router).tenant, jobId)


@router.get(
    "/v1/admin/bulk-jobs/<jobId>/rows",
    operation_id="listBulkJobRows",
    tags=["members"],
    responses=responses(),
    summary="A bulk job's per-row results, in row order",
)
def list_bulk_job_rows(
    jobId: JobId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> RowPage:
    return service().rows(principal(router).tenant, jobId, limit, cursor)
