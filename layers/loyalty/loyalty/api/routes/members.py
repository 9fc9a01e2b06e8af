"""Members, for channels: read, look up, bind channel identities (One ID), erase personal data."""

from datetime import datetime
from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from loyalty.api.params import IdempotencyKey, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import InvalidInput
from loyalty.domain.ledger import LotView, PointRecordPage, RecordType
from loyalty.domain.members import PHONE_PATTERN, ChannelIdentity, MemberView, TierRecordView, normalize_phone
from loyalty.services.idempotency import run_once
from loyalty.services.ledger import LedgerService, ledger_service
from loyalty.services.members import MemberService, member_service

router = Router()


@lru_cache(maxsize=1)
def service() -> MemberService:
    return member_service()


@lru_cache(maxsize=1)
def ledger() -> LedgerService:
    return ledger_service()


@router.get(
    "/v1/members/lookup",
    operation_id="lookupMember",
    tags=["members"],
    responses=responses(),
    summary="Find a member by phone, or by an identity on the calling channel",
)
def lookup_member(
    phone: Annotated[str | None, Query(min_length=1, max_length=30, pattern=PHONE_PATTERN)] = None,
    identity_type: Annotated[str | None, Query(alias="identityType", pattern=CODE_PATTERN)] = None,
    identity_value: Annotated[str | None, Query(alias="identityValue", min_length=1, max_length=200)] = None,
) -> MemberView:
    caller = principal(router)
    if phone is not None:
        try:
            normalized = normalize_phone(phone)
        except ValueError as error:
            raise InvalidInput(str(error), field="phone") from None
        return service().find_by_phone(caller.tenant, normalized)
    if identity_type and identity_value:
        return service().find_by_identity(caller.tenant, caller.channel, identity_type, identity_value)
    raise InvalidInput("give phone, or identityType and identityValue", code="LOOKUP_KEY_MISSING", field="phone")


@router.get(
    "/v1/members/<memberId>",
    operation_id="getMember",
    tags=["members"],
    responses=responses(),
    summary="A member: profile, current tier and its validity, every point account",
)
def get_member(memberId: MemberId) -> MemberView:
    return service().get(principal(router).tenant, memberId)


@router.post(
    "/v1/members/<memberId>/identities",
    operation_id="bindIdentity",
    tags=["members"],
    responses=responses(),
    summary="Bind an identity on the calling channel to the member (One ID)",
)
def bind_identity(
    memberId: MemberId,
    body: Annotated[ChannelIdentity, Body()],
    idempotency_key: IdempotencyKey = None,
) -> MemberView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "bindIdentity",
        idempotency_key,
        {"member": memberId, **body.model_dump()},
        lambda _: service().bind_identity(caller.tenant, caller.channel, memberId, body).model_dump(mode="json"),
    )
    return MemberView.model_validate(result)


@router.delete(
    "/v1/members/<memberId>/personal-data",
    operation_id="erasePersonalData",
    tags=["members"],
    responses=responses(),
    summary="Blank name, phone, email and birthday; the ledger is kept",
)
def erase_personal_data(memberId: MemberId) -> MemberView:
    return service().erase_personal_data(principal(router).tenant, memberId)


@router.get(
    "/v1/members/<memberId>/point-records",
    operation_id="listPointRecords",
    tags=["points"],
    responses=responses(),
    summary="The member's point records, oldest first, filtered and paged",
)
def list_point_records(
    memberId: MemberId,
    point_group: Annotated[str | None, Query(alias="pointGroup", pattern=CODE_PATTERN)] = None,
    record_type: Annotated[RecordType | None, Query(alias="type")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 with offset; records created at or after")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601 with offset; records created before")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> PointRecordPage:
    return ledger().records(principal(router).tenant, memberId, point_group, record_type, since, until, limit, cursor)


@router.get(
    "/v1/members/<memberId>/lots",
    operation_id="listOpenLots",
    tags=["points"],
    responses=responses(),
    summary="The member's open earning lots, in the order they are spent",
)
def list_open_lots(
    memberId: MemberId, point_group: Annotated[str | None, Query(alias="pointGroup", pattern=CODE_PATTERN)] = None
) -> list[LotView]:
    return ledger().open_lots(principal(router).tenant, memberId, point_group)


@router.get(
    "/v1/members/<memberId>/tiers",
    operation_id="listTierHistory",
    tags=["members"],
    responses=responses(),
    summary="The member's tier history, oldest first; one entry is valid",
)
def list_tier_history(memberId: MemberId) -> list[TierRecordView]:
    return service().tier_history(principal(router).tenant, memberId)
