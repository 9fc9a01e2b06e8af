"""Behaviours, for channels: report one (e.g. a check-in) and get the points its rules add."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from loyalty.api.params import MemberId
from loyalty.api.problems import PROBLEM_RESPONSES
from loyalty.api.resolver import principal
from loyalty.services.behaviours import BehaviourReport, BehaviourResult, BehaviourService, behaviour_service

router = Router()


@lru_cache(maxsize=1)
def service() -> BehaviourService:
    return behaviour_service()


@router.post(
    "/v1/members/<memberId>/behaviours",
    operation_id="recordBehaviour",
    tags=["points"],
    status_code=201,
    summary="Report a behaviour (e.g. a check-in); its rules add 行为增加积分, once per behaviour id",
    responses={
        **PROBLEM_RESPONSES,
        201: {"description": "Recorded", "content": {"application/json": {"model": BehaviourResult}}},
        200: {
            "description": "A repeat: the same behaviour again: its first answer",
            "content": {"application/json": {"model": BehaviourResult}},
        },
    },
)
def record_behaviour(memberId: MemberId, body: Annotated[BehaviourReport, Body()]) -> Response[BehaviourResult]:
    caller = principal(router)
    result, created = service().report(caller.tenant, caller.channel, memberId, body)
    return Response(status_code=201 if created else 200, content_type="application/json", body=result)
