"""POST /v1/members: enrol a member (channel key)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from loyalty.api.params import IdempotencyKey
from loyalty.api.problems import PROBLEM_RESPONSES
from loyalty.api.resolver import principal
from loyalty.domain.members import MemberView, Registration
from loyalty.services.idempotency import run_once
from loyalty.services.members import MemberService, member_service

router = Router()


@lru_cache(maxsize=1)
def service() -> MemberService:
    return member_service()


@router.post(
    "/v1/members",
    operation_id="registerMember",
    status_code=201,
    tags=["members"],
    summary="Register a member with the base tier and one zero account per point group",
    responses={**PROBLEM_RESPONSES, 201: {"description": "Registered"}},
)
def register_member(body: Annotated[Registration, Body()], idempotency_key: IdempotencyKey = None) -> MemberView:
    caller = principal(router)
    payload = body.model_dump(mode="json")
    result = run_once(
        caller.tenant,
        "registerMember",
        idempotency_key,
        payload,
        lambda request: service().register(caller.tenant, caller.channel, body, request).model_dump(mode="json"),
    )
    return MemberView.model_validate(result)
