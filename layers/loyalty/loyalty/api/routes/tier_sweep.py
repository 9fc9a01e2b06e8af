"""Operators run the tier sweep (会员降级服务) of a program for a given day (today or earlier)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.services.sweeps import SweepAccepted, SweepRequest
from loyalty.services.tier_sweep import TierSweepService, tier_sweep_service

router = Router()


@lru_cache(maxsize=1)
def service() -> TierSweepService:
    return tier_sweep_service()


@router.post(
    "/v1/admin/programs/<programCode>/tier-sweeps",
    operation_id="runTierSweep",
    tags=["tiers"],
    status_code=202,
    responses=responses(202),
    summary="Keep or lower the tiers of the program that ended before the given day (safe to repeat)",
)
def run_tier_sweep(
    programCode: Annotated[str, Path(pattern=CODE_PATTERN)], body: Annotated[SweepRequest, Body()]
) -> SweepAccepted:
    queued = service().plan(principal(router).tenant, programCode, body.date)
    return SweepAccepted(program_code=programCode, buckets=queued)
