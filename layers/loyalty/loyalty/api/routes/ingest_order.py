"""Orders, for channels: post one (answered 202 before any points are computed) and read its status."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from loyalty.api.params import IdempotencyKey
from loyalty.api.problems import PROBLEM_RESPONSES, responses
from loyalty.api.resolver import principal
from loyalty.domain.orders import OrderAccepted, OrderSubmission, OrderView
from loyalty.services.orders import OrderService, order_service

router = Router()
OrderNo = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]


@lru_cache(maxsize=1)
def service() -> OrderService:
    return order_service()


@router.post(
    "/v1/orders",
    operation_id="postOrder",
    tags=["orders"],
    status_code=202,
    summary="Post an order; points follow asynchronously. A repeat of the same order gets the first answer",
    responses={
        **PROBLEM_RESPONSES,
        202: {"description": "Accepted", "content": {"application/json": {"model": OrderAccepted}}},
        200: {
            "description": "A repeat of the same order without the key that posted it: its state now",
            "content": {"application/json": {"model": OrderAccepted}},
        },
    },
)
def post_order(
    body: Annotated[OrderSubmission, Body()], idempotency_key: IdempotencyKey = None
) -> Response[OrderAccepted]:
    caller = principal(router)
    accepted, created = service().ingest(caller.tenant, caller.channel, body, idempotency_key)
    return Response(
        status_code=202 if created else 200,
        content_type="application/json",
        body=accepted,
    )


@router.get(
    "/v1/orders/<orderNo>",
    operation_id="getOrder",
    tags=["orders"],
    responses=responses(),
    summary="An order of the calling channel: received or accrued, with the points it earned",
)
def get_order(orderNo: OrderNo) -> OrderView:
    caller = principal(router)
    return service().get(caller.tenant, caller.channel, orderNo)
