"""Returns, for channels: post one against an order of the same channel (answered 202; processed async)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from loyalty.api.params import IdempotencyKey
from loyalty.api.problems import PROBLEM_RESPONSES
from loyalty.api.resolver import principal
from loyalty.domain.returns import ReturnAccepted, ReturnSubmission
from loyalty.services.returns import ReturnService, return_service

router = Router()


@lru_cache(maxsize=1)
def service() -> ReturnService:
    return return_service()


@router.post(
    "/v1/returns",
    operation_id="postReturn",
    tags=["orders"],
    status_code=202,
    summary="Post a return of lines (or the whole) of an order; points are reversed asynchronously",
    responses={
        **PROBLEM_RESPONSES,
        202: {"description": "Accepted", "content": {"application/json": {"model": ReturnAccepted}}},
        200: {
            "description": "A repeat of the same return without the key that posted it: its state now",
            "content": {"application/json": {"model": ReturnAccepted}},
        },
    },
)
def post_return(
    body: Annotated[ReturnSubmission, Body()], idempotency_key: IdempotencyKey = None
) -> Response[ReturnAccepted]:
    caller = principal(router)
    accepted, created = service().ingest(caller.tenant, caller.channel, body, idempotency_key)
    return Response(status_code=202 if created else 200, content_type="application/json", body=accepted)
