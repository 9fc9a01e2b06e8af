"""Coupons, for channels: a member claims one, buys one with points, lists theirs, gives one to a friend."""

from functools import lru_cache
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import ULID_PATTERN, CouponCode, Cursor, IdempotencyKey, Limit, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.services.coupons import (
    AcceptRequest,
    ClaimRequest,
    CouponPage,
    CouponService,
    CouponView,
    TransferStarted,
    coupon_service,
)
from loyalty.services.idempotency import run_once

router = Router()
TransferId = Annotated[str, Path(pattern=ULID_PATTERN)]


@lru_cache(maxsize=1)
def service() -> CouponService:
    return coupon_service()


@router.post(
    "/v1/members/<memberId>/coupons",
    operation_id="claimCoupon",
    tags=["coupons"],
    status_code=201,
    responses=responses(201),
    summary="公开领取: claim a coupon; 409 OUT_OF_STOCK, CLAIM_LIMIT_REACHED, DAILY_CAP_REACHED",
)
def claim_coupon(
    memberId: MemberId, body: Annotated[ClaimRequest, Body()], idempotency_key: IdempotencyKey = None
) -> CouponView:
    tenant = principal(router).tenant
    result = run_once(
        tenant,
        "claimCoupon",
        idempotency_key,
        {"member": memberId, **body.model_dump(mode="json")},
        lambda request: service().claim(tenant, memberId, body.rule_id, request).model_dump(mode="json"),
    )
    return CouponView.model_validate(result)


@router.post(
    "/v1/members/<memberId>/coupon-exchanges",
    operation_id="exchangePointsForCoupon",
    tags=["coupons"],
    status_code=201,
    responses=responses(201),
    summary="积分兑换优惠券: the points and the coupon in one transaction, both or neither",
)
def exchange_points(
    memberId: MemberId, body: Annotated[ClaimRequest, Body()], idempotency_key: IdempotencyKey = None
) -> CouponView:
    tenant = principal(router).tenant
    result = run_once(
        tenant,
        "exchangePointsForCoupon",
        idempotency_key,
        {"member": memberId, **body.model_dump(mode="json")},
        lambda request: service().exchange(tenant, memberId, body.rule_id, request).model_dump(mode="json"),
    )
    return CouponView.model_validate(result)


@router.get(
    "/v1/members/<memberId>/coupons",
    operation_id="listMemberCoupons",
    tags=["coupons"],
    responses=responses(),
    summary="The member's coupons, optionally of one status",
)
def member_coupons(
    memberId: MemberId,
    status: Annotated[Literal["issued", "used", "expired", "transferring", "revoked"] | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CouponPage:
    return service().of_member(principal(router).tenant, memberId, status, limit, cursor)


@router.post(
    "/v1/members/<memberId>/coupons/<code>/transfers",
    operation_id="startCouponTransfer",
    tags=["coupons"],
    status_code=201,
    responses=responses(201),
    summary="发起转赠: the coupon waits for a friend until the rule's friend-claim period lapses",
)
def start_transfer(memberId: MemberId, code: CouponCode) -> TransferStarted:
    return service().start_transfer(principal(router).tenant, memberId, code)


@router.post(
    "/v1/coupons/<code>/transfers/<transferId>/accept",
    operation_id="acceptCouponTransfer",
    tags=["coupons"],
    responses=responses(),
    summary="接受转赠: the friend becomes the owner; 409 TRANSFER_NOT_OPEN once lapsed",
)
def accept_transfer(code: CouponCode, transferId: TransferId, body: Annotated[AcceptRequest, Body()]) -> CouponView:
    return service().accept_transfer(principal(router).tenant, code, transferId, body.member_id)
