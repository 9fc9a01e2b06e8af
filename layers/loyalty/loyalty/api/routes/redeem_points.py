"""Spending points (channels) and adjusting them by hand (operators)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from loyalty.api.params import ULID_PATTERN, IdempotencyKey, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.redemption import AdjustmentRequest, RedemptionRequest, SpendView
from loyalty.services.idempotency import run_once
from loyalty.services.redemption import RedemptionService, redemption_service

router = Router()
SpendId = Annotated[str, Path(pattern=ULID_PATTERN)]


@lru_cache(maxsize=1)
def service() -> RedemptionService:
    return redemption_service()


@router.post(
    "/v1/members/<memberId>/redemptions",
    operation_id="redeemPoints",
    tags=["points"],
    status_code=201,
    responses=responses(201),
    summary="Spend points first in, first out; 409 INSUFFICIENT_POINTS and nothing written when short",
)
def redeem_points(
    memberId: MemberId, body: Annotated[RedemptionRequest, Body()], idempotency_key: IdempotencyKey = None
) -> SpendView:
    caller = principal(router)
    payload = {"member": memberId, **body.model_dump(mode="json")}
    result = run_once(
        caller.tenant,
        "redeemPoints",
        idempotency_key,
        payload,
        lambda request: (
            service().redeem(caller.tenant, caller.channel, memberId, body, request).model_dump(mode="json")
        ),
    )
    return SpendView.model_validate(result)


@router.get(
    "/v1/members/<memberId>/redemptions/<redemptionId>",
    operation_id="getRedemption",
    tags=["points"],
    responses=responses(),
    summary="A redemption and the lots it drew from",
)
def get_redemption(memberId: MemberId, redemptionId: SpendId) -> SpendView:
    return service().get(principal(router).tenant, memberId, redemptionId)


@router.post(
    "/v1/members/<memberId>/redemptions/<redemptionId>/cancel",
    operation_id="cancelRedemption",
    tags=["points"],
    responses=responses(),
    summary="Give a redemption's points back to their lots, with their expiry; "
    "409 REDEMPTION_ALREADY_CANCELLED on a repeat with another key",
)
def cancel_redemption(memberId: MemberId, redemptionId: SpendId, idempotency_key: IdempotencyKey = None) -> SpendView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "cancelRedemption",
        idempotency_key,
        {"member": memberId, "redemption": redemptionId},
        lambda request: service().cancel(caller.tenant, memberId, redemptionId, request).model_dump(mode="json"),
    )
    return SpendView.model_validate(result)


@router.post(
    "/v1/admin/members/<memberId>/point-adjustments",
    operation_id="adjustPoints",
    tags=["points"],
    status_code=201,
    responses=responses(201),
    summary="Add (a new lot) or take away (first in, first out) points by hand, with a reason",
)
def adjust_points(
    memberId: MemberId, body: Annotated[AdjustmentRequest, Body()], idempotency_key: IdempotencyKey = None
) -> SpendView:
    caller = principal(router)
    payload = {"member": memberId, **body.model_dump(mode="json")}
    result = run_once(
        caller.tenant,
        "adjustPoints",
        idempotency_key,
        payload,
        lambda request: service().adjust(caller.tenant, memberId, body, caller.key_id, request).model_dump(mode="json"),
    )
    return SpendView.model_validate(result)
