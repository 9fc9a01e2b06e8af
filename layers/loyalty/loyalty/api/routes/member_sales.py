"""A member's orders and returns (purchase history), and the non-member sales an operator attaches to a member
who registered after buying (services/sales.py)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from loyalty.api.params import Cursor, IdempotencyKey, Limit, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.orders import OrderAttachment, OrderView, SalePage
from loyalty.services.idempotency import run_once
from loyalty.services.sales import SalesService, sales_service

router = Router()


@lru_cache(maxsize=1)
def service() -> SalesService:
    return sales_service()


@router.get(
    "/v1/members/<memberId>/orders",
    operation_id="listMemberOrders",
    tags=["orders"],
    responses=responses(),
    summary="The member's orders and returns, newest first, with the points each earned or took back",
)
def list_member_orders(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> SalePage:
    return service().history(principal(router).tenant, memberId, limit, cursor)


@router.get(
    "/v1/admin/members/<memberId>/orders",
    operation_id="listMemberOrdersAsOperator",
    tags=["orders"],
    responses=responses(),
    summary="The member's orders and returns, newest first, for the service desk",
)
def list_member_orders_as_operator(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> SalePage:
    return service().history(principal(router).tenant, memberId, limit, cursor)


@router.get(
    "/v1/admin/members/<memberId>/unattached-orders",
    operation_id="listUnattachedOrders",
    tags=["orders"],
    responses=responses(),
    summary="Non-member sales that named the member's phone and are nobody's yet, newest first",
)
def list_unattached_orders(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> SalePage:
    return service().unattached(principal(router).tenant, memberId, limit, cursor)


@router.post(
    "/v1/admin/members/<memberId>/attached-orders",
    operation_id="attachOrder",
    tags=["orders"],
    responses=responses(),
    summary="补录: make a non-member sale the member's, within the program's window; it accrues then, once",
)
def attach_order(
    memberId: MemberId, body: Annotated[OrderAttachment, Body()], idempotency_key: IdempotencyKey = None
) -> OrderView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "attachOrder",
        idempotency_key,
        {"member": memberId, **body.model_dump(mode="json")},
        lambda request: service().attach(caller.tenant, memberId, body, caller.key_id, request).model_dump(mode="json"),
    )
    return OrderView.model_validate(result)
