"""Operators run the expiry sweep of a program for a given day (today or earlier)."""

import datetime as dt
from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import Field

from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.validity import CamelModel
from loyalty.services.expiry import ExpiryService, expiry_service

router = Router()


class SweepRequest(CamelModel):
    date: dt.date | None = Field(
        default=None, description="Expire lots whose expiry day is before this day; default today"
    )


class SweepAccepted(CamelModel):
    program_code: str
    buckets: int = Field(description="Index partitions queued for expiry")


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
