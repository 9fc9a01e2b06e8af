"""Orders held for review, for operators: list them, release them (they accrue past the daily points
ceiling) or reject them (they never earn). The accrual function serves these, as it owns accrual."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import IdempotencyKey
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.orders import HeldOrderPage, OrderRejection, OrderRelease, OrderView
from loyalty.services.idempotency import run_once
from loyalty.services.order_reviews import OrderReviewService, order_review_service
from loyalty.store.requests import RequestKey

router = Router()
Channel = Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9_]{0,31}$", description="The channel that posted the order")]
OrderNo = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]


@lru_cache(maxsize=1)
def service() -> OrderReviewService:
    return order_review_service()


@router.get(
    "/v1/admin/held-orders",
    operation_id="listHeldOrders",
    tags=["orders"],
    responses=responses(),
    summary="Orders held for review (the daily points ceiling), longest waiting first",
)
def list_held_orders(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> HeldOrderPage:
    return service().held(principal(router).tenant, limit, cursor)


@router.post(
    "/v1/admin/orders/<channel>/<orderNo>/release",
    operation_id="releaseHeldOrder",
    tags=["orders"],
    responses=responses(),
    summary="Accrue a held order as it is, past the ceiling; 409 ORDER_NOT_HELD once decided",
)
def release_held_order(
    channel: Channel, orderNo: OrderNo, body: Annotated[OrderRelease, Body()], idempotency_key: IdempotencyKey = None
) -> OrderView:
    return _decide("releaseHeldOrder", channel, orderNo, body, idempotency_key)


@router.post(
    "/v1/admin/orders/<channel>/<orderNo>/reject",
    operation_id="rejectHeldOrder",
    tags=["orders"],
    responses=responses(),
    summary="Refuse a held order's points for good, with the reason; 409 ORDER_NOT_HELD once decided",
)
def reject_held_order(
    channel: Channel, orderNo: OrderNo, body: Annotated[OrderRejection, Body()], idempotency_key: IdempotencyKey = None
) -> OrderView:
    return _decide("rejectHeldOrder", channel, orderNo, body, idempotency_key)


def _decide(op: str, channel: str, order_no: str, body: OrderRelease | OrderRejection, key: str | None) -> OrderView:
    """An operator's decision on a held order, once per Idempotency-Key."""
    caller = principal(router)

    def decide(request: RequestKey | None) -> dict:
        if isinstance(body, OrderRelease):
            view = service().release(caller.tenant, channel, order_no, body, caller.key_id, request)
        else:
            view = service().reject(caller.tenant, channel, order_no, body, caller.key_id, request)
        return view.model_dump(mode="json")

    payload = {"channel": channel, "orderNo": order_no, **body.model_dump(mode="json")}
    return OrderView.model_validate(run_once(caller.tenant, op, key, payload, decide))
