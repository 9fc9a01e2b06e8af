"""Verification (核销) at the till: validate without side effects, redeem, roll back."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from loyalty.api.params import CouponCode, IdempotencyKey
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.coupons import CouponOrder
from loyalty.services.coupon_verification import (
    CouponVerifier,
    RedeemRequest,
    RedemptionResult,
    RollbackRequest,
    ValidationResult,
    coupon_verifier,
)
from loyalty.services.coupons import CouponView, coupon_view
from loyalty.services.idempotency import run_once

router = Router()


@lru_cache(maxsize=1)
def service() -> CouponVerifier:
    return coupon_verifier()


@router.post(
    "/v1/coupons/validate",
    operation_id="validateCoupons",
    tags=["coupons"],
    responses=responses(),
    summary="Would these coupons work on this order? Every reason each would not, and the discount; no effect",
)
def validate(body: Annotated[CouponOrder, Body()]) -> ValidationResult:
    return service().validate(principal(router).tenant, body)


@router.post(
    "/v1/coupons/redemptions",
    operation_id="redeemCoupons",
    tags=["coupons"],
    status_code=201,
    summary="核销: use every code on the order, all or none; the same order again gets the first answer, 201 too",
    responses=responses(201),
)
def redeem(body: Annotated[RedeemRequest, Body()]) -> RedemptionResult:
    caller = principal(router)
    result, _ = service().redeem(caller.tenant, caller.channel, body)  # a replay: the first answer, as it was
    return result


@router.post(
    "/v1/coupons/<code>/rollback",
    operation_id="rollbackCouponRedemption",
    tags=["coupons"],
    responses=responses(),
    summary="Undo a redemption (the sale was voided): usable again; 409 COUPON_NOT_REDEEMED on a repeat "
    "with another key",
)
def rollback(
    code: CouponCode, body: Annotated[RollbackRequest, Body()], idempotency_key: IdempotencyKey = None
) -> CouponView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "rollbackCouponRedemption",
        idempotency_key,
        {"code": code, **body.model_dump(mode="json")},
        lambda request: coupon_view(service().rollback(caller.tenant, code, body.order_no, request)).model_dump(
            mode="json"
        ),
    )
    return CouponView.model_validate(result)
