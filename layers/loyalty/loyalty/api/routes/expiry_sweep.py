"""Operators run the expiry sweep of a program for a given day (today or earlier)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.services.expiry import ExpiryService, expiry_service
from loyalty.services.sweeps import SweepAccepted, SweepRequest

router = Router()


@lru_cache(maxsize=1)
def service() -> ExpiryService:
    return expiry_service()


@router.post(
    "/v1/admin/programs/<programCode>/expiry-sweeps",
    operation_id="runExpirySweep",
    tags=["points"],
    status_code=202,
    responses=responses(202),
    summary="Expire the program's lots whose expiry day is before the given day (safe to repeat)",
)
def run_expiry_sweep(
    programCode: Annotated[str, Path(pattern=CODE_PATTERN)], body: Annotated[SweepRequest, Body()]
) -> SweepAccepted:
    queued = service().plan(principal(router).tenant, programCode, body.date)
    return SweepAccepted(program_code=programCode, buckets=queued)
