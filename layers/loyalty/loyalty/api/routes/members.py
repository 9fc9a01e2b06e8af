"""Members, for channels (and the operator's profile changes): read, look up, change the profile with
If-Match, bind channel identities (One ID), erase personal data, the profile's change history."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from loyalty.api.params import Cursor, IdempotencyKey, Limit, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import InvalidInput
from loyalty.domain.ledger import LotPage, PointRecordPage, RecordType
from loyalty.domain.members import (
    CARD_PATTERN,
    PHONE_PATTERN,
    ActivityPage,
    ChannelIdentity,
    ManualTierChange,
    MemberFilter,
    MemberPatch,
    MemberStatus,
    MemberSummaryPage,
    MemberView,
    NoteInput,
    NotePage,
    NoteView,
    ProfileChangePage,
    StatusChange,
    TaggedMemberPage,
    TierRecordPage,
    TierRecordView,
    normalize_phone,
    valid_card_number,
)
from loyalty.domain.validity import BusinessTime, text_pattern
from loyalty.services.idempotency import run_once
from loyalty.services.ledger import LedgerService, ledger_service
from loyalty.services.member_directory import MemberDirectory, member_directory
from loyalty.services.members import Editor, MemberService, member_service
from loyalty.services.timeline import timeline

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
    summary="Find a member by phone, by card number, or by an identity on the calling channel",
)
def lookup_member(
    phone: Annotated[str | None, Query(min_length=1, max_length=30, pattern=PHONE_PATTERN)] = None,
    card_no: Annotated[str | None, Query(alias="cardNo", pattern=CARD_PATTERN, description="会员卡号")] = None,
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
    if card_no is not None:
        return service().find_by_card(caller.tenant, _checked(card_no))
    if identity_type and identity_value:
        return service().find_by_identity(caller.tenant, caller.channel, identity_type, identity_value)
    raise InvalidInput(
        "give phone, cardNo, or identityType and identityValue", code="LOOKUP_KEY_MISSING", field="phone"
    )


def _checked(card_no: str) -> str:
    """A card number whose check digit is right (a typo is a 422, not a 404)."""
    if not valid_card_number(card_no):
        raise InvalidInput("the card number's check digit is wrong", code="INVALID_CARD_NO", field="cardNo")
    return card_no


IfMatch = Annotated[
    str | None,
    Header(alias="if-match", max_length=100, description='The ETag of the member as read (e.g. "3"); required'),
]


def _with_etag(member: MemberView) -> Response[MemberView]:
    """The member and its version as an ETag, for the If-Match of the next change."""
    return Response(200, "application/json", member, headers={"ETag": f'"{member.version}"'})


@router.get(
    "/v1/members/<memberId>",
    operation_id="getMember",
    tags=["members"],
    responses=responses(),
    summary="A member: profile, current tier and its validity, every point account; its version as ETag",
)
def get_member(memberId: MemberId) -> Response[MemberView]:
    return _with_etag(service().get(principal(router).tenant, memberId))


def _update(memberId: str, body: MemberPatch, if_match: str | None, idempotency_key: str | None, op: str) -> Response:
    caller = principal(router)
    editor = Editor(caller.role, caller.channel, caller.key_id)
    result = run_once(
        caller.tenant,
        op,
        idempotency_key,
        {"member": memberId, "ifMatch": if_match, **body.model_dump(mode="json", exclude_unset=True)},
        lambda _: service().update_profile(caller.tenant, editor, memberId, if_match, body).model_dump(mode="json"),
    )
    return _with_etag(MemberView.model_validate(result))


@router.patch(
    "/v1/members/<memberId>",
    operation_id="updateMember",
    tags=["members"],
    responses=responses(versioned=True),
    summary="Change the profile (JSON Merge Patch) if it is still the version in If-Match: 412 if not",
)
def update_member(
    memberId: MemberId,
    body: Annotated[MemberPatch, Body()],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[MemberView]:
    return _update(memberId, body, if_match, idempotency_key, "updateMember")


@router.patch(
    "/v1/admin/members/<memberId>",
    operation_id="updateMemberAsOperator",
    tags=["members"],
    responses=responses(versioned=True),
    summary="An operator changes the profile, flags and a set birthday included (If-Match as for channels)",
)
def update_member_as_operator(
    memberId: MemberId,
    body: Annotated[MemberPatch, Body()],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[MemberView]:
    return _update(memberId, body, if_match, idempotency_key, "updateMemberAsOperator")


def _status(memberId: str, body: StatusChange, key: str | None, op: str) -> MemberView:
    caller = principal(router)
    editor = Editor(caller.role, caller.channel, caller.key_id)
    move = {"freezeMember": service().freeze, "unfreezeMember": service().unfreeze, "cancelMember": service().cancel}
    result = run_once(
        caller.tenant,
        op,
        key,
        {"member": memberId, **body.model_dump(mode="json")},
        lambda _: move[op](caller.tenant, editor, memberId, body.reason).model_dump(mode="json"),
    )
    return MemberView.model_validate(result)


@router.post(
    "/v1/admin/members/<memberId>/freeze",
    operation_id="freezeMember",
    tags=["members"],
    responses=responses(),
    summary="冻结: no earning, spending or claims (409 MEMBER_FROZEN) until unfrozen",
)
def freeze_member(
    memberId: MemberId, body: Annotated[StatusChange, Body()], idempotency_key: IdempotencyKey = None
) -> MemberView:
    return _status(memberId, body, idempotency_key, "freezeMember")


@router.post(
    "/v1/admin/members/<memberId>/unfreeze",
    operation_id="unfreezeMember",
    tags=["members"],
    responses=responses(),
    summary="解冻: the member earns, spends and claims again; 409 MEMBER_NOT_FROZEN if not frozen",
)
def unfreeze_member(
    memberId: MemberId, body: Annotated[StatusChange, Body()], idempotency_key: IdempotencyKey = None
) -> MemberView:
    return _status(memberId, body, idempotency_key, "unfreezeMember")


@router.post(
    "/v1/admin/members/<memberId>/cancel",
    operation_id="cancelMember",
    tags=["members"],
    responses=responses(),
    summary="注销, for good: the phone is freed for a new registration; the ledger is kept",
)
def cancel_member(
    memberId: MemberId, body: Annotated[StatusChange, Body()], idempotency_key: IdempotencyKey = None
) -> MemberView:
    return _status(memberId, body, idempotency_key, "cancelMember")


@router.post(
    "/v1/admin/members/<memberId>/tier-changes",
    operation_id="changeMemberTier",
    tags=["members"],
    status_code=201,
    responses=responses(201),
    summary="手动: set the member's tier up or down with a reason; a tier record like an automatic change",
)
def change_member_tier(
    memberId: MemberId, body: Annotated[ManualTierChange, Body()], idempotency_key: IdempotencyKey = None
) -> TierRecordView:
    caller = principal(router)
    editor = Editor(caller.role, caller.channel, caller.key_id)
    result = run_once(
        caller.tenant,
        "changeMemberTier",
        idempotency_key,
        {"member": memberId, **body.model_dump(mode="json")},
        lambda _: service().change_tier(caller.tenant, editor, memberId, body).model_dump(mode="json"),
    )
    return TierRecordView.model_validate(result)


TagCode = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.put(
    "/v1/admin/members/<memberId>/tags/<tagCode>",
    operation_id="attachMemberTag",
    tags=["members"],
    responses=responses(),
    summary="打标签: give the member a tag (repeatable; the tag counts each member once)",
)
def attach_member_tag(memberId: MemberId, tagCode: TagCode) -> MemberView:
    return service().attach_tag(principal(router).tenant, memberId, tagCode)


@router.delete(
    "/v1/admin/members/<memberId>/tags/<tagCode>",
    operation_id="detachMemberTag",
    tags=["members"],
    responses=responses(),
    summary="Take a tag from the member (repeatable)",
)
def detach_member_tag(memberId: MemberId, tagCode: TagCode) -> MemberView:
    return service().detach_tag(principal(router).tenant, memberId, tagCode)


@router.post(
    "/v1/admin/members/<memberId>/notes",
    operation_id="addMemberNote",
    tags=["members"],
    status_code=201,
    responses=responses(201),
    summary="备注: a remark on the member, kept with who wrote it and when",
)
def add_member_note(
    memberId: MemberId, body: Annotated[NoteInput, Body()], idempotency_key: IdempotencyKey = None
) -> NoteView:
    caller = principal(router)
    editor = Editor(caller.role, caller.channel, caller.key_id)
    result = run_once(
        caller.tenant,
        "addMemberNote",
        idempotency_key,
        {"member": memberId, **body.model_dump(mode="json")},
        lambda _: service().add_note(caller.tenant, editor, memberId, body).model_dump(mode="json"),
    )
    return NoteView.model_validate(result)


@lru_cache(maxsize=1)
def directory() -> MemberDirectory:
    return member_directory()


Code = Annotated[str | None, Query(pattern=CODE_PATTERN)]


@router.get(
    "/v1/admin/members",
    operation_id="listMembers",
    tags=["members"],
    responses=responses(),
    summary="会员列表: members newest first, filtered; or looked up by phone, card number, identity or tag (D-082)",
    description="Every filter given must hold. A page reads a bounded number of members, so it can be short "
    "and still have a nextCursor. `name` matches the whole name exactly, ignoring case, width and spaces.",
)
def list_members(
    program_code: Annotated[str | None, Query(alias="programCode", pattern=CODE_PATTERN)] = None,
    tier: Code = None,
    status: Annotated[MemberStatus | None, Query()] = None,
    store_code: Annotated[str | None, Query(alias="storeCode", pattern=CODE_PATTERN)] = None,
    channel: Code = None,
    registered_from: Annotated[
        BusinessTime | None, Query(alias="registeredFrom", description="ISO 8601; at or after")
    ] = None,
    registered_to: Annotated[BusinessTime | None, Query(alias="registeredTo", description="ISO 8601; before")] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=100, pattern=text_pattern(False))] = None,
    phone: Annotated[str | None, Query(min_length=1, max_length=30, pattern=PHONE_PATTERN)] = None,
    card_no: Annotated[str | None, Query(alias="cardNo", pattern=CARD_PATTERN)] = None,
    identity_channel: Annotated[
        str | None, Query(alias="identityChannel", pattern=CODE_PATTERN, description="With identityType and -Value")
    ] = None,
    identity_type: Annotated[str | None, Query(alias="identityType", pattern=CODE_PATTERN)] = None,
    identity_value: Annotated[str | None, Query(alias="identityValue", min_length=1, max_length=200)] = None,
    tag: Code = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> MemberSummaryPage:
    where = MemberFilter(
        program_code=program_code,
        tier=tier,
        status=status,
        store_code=store_code,
        channel=channel,
        registered_from=registered_from,
        registered_to=registered_to,
        name=name,
    )
    card = _checked(card_no) if card_no else None
    named = (identity_channel, identity_type, identity_value)
    if any(named) and not all(named):
        raise InvalidInput(
            "an identity is named by identityChannel, identityType and identityValue together",
            code="LOOKUP_KEY_MISSING",
            field="identityChannel",
        )
    identity = (str(identity_channel), str(identity_type), str(identity_value)) if all(named) else None
    return directory().find(
        principal(router).tenant, where, limit, cursor, phone=phone, card_no=card, identity=identity, tag=tag
    )


@router.get(
    "/v1/admin/members/<memberId>/notes",
    operation_id="listMemberNotes",
    tags=["members"],
    responses=responses(),
    summary="The remarks on a member, newest first",
)
def list_member_notes(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> NotePage:
    return service().notes(principal(router).tenant, memberId, limit, cursor)


@router.get(
    "/v1/admin/tags/<tagCode>/members",
    operation_id="listMembersWithTag",
    tags=["members"],
    responses=responses(),
    summary="The members holding a tag, by member id, paged (an audience)",
)
def list_members_with_tag(tagCode: TagCode, limit: Limit = 50, cursor: Cursor = None) -> TaggedMemberPage:
    return service().with_tag(principal(router).tenant, tagCode, limit, cursor)


@router.get(
    "/v1/members/<memberId>/behaviours",
    operation_id="listMemberBehaviours",
    tags=["members"],
    responses=responses(),
    summary="The member's timeline (行为记录): register, first purchase, purchases, channel behaviours; newest first",
)
def list_member_behaviours(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> ActivityPage:
    return timeline(service().members, principal(router).tenant, memberId, limit, cursor)


@router.get(
    "/v1/admin/members/<memberId>/behaviours",
    operation_id="listMemberBehavioursAsOperator",
    tags=["members"],
    responses=responses(),
    summary="The member's timeline (行为记录), newest first, for the service desk",
)
def list_member_behaviours_as_operator(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> ActivityPage:
    return timeline(service().members, principal(router).tenant, memberId, limit, cursor)


@router.get(
    "/v1/members/<memberId>/profile-changes",
    operation_id="listProfileChanges",
    tags=["members"],
    responses=responses(),
    summary="Who changed what on the profile, newest first (personal data masked)",
)
def list_profile_changes(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> ProfileChangePage:
    return service().profile_changes(principal(router).tenant, memberId, limit, cursor)


@router.get(
    "/v1/admin/members/<memberId>/profile-changes",
    operation_id="listProfileChangesAsOperator",
    tags=["members"],
    responses=responses(),
    summary="Who changed what on the profile, newest first (personal data masked), for the service desk",
)
def list_profile_changes_as_operator(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> ProfileChangePage:
    return service().profile_changes(principal(router).tenant, memberId, limit, cursor)


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
    "/v1/members/<memberId>/identities/<identityType>/<identityValue>",
    operation_id="unbindIdentity",
    tags=["members"],
    responses=responses(),
    summary="解绑: free the member's identity on the calling channel; its record keeps the times",
)
def unbind_identity(
    memberId: MemberId,
    identityType: Annotated[str, Path(pattern=CODE_PATTERN)],
    identityValue: Annotated[str, Path(min_length=1, max_length=200)],
) -> MemberView:
    caller = principal(router)
    return service().unbind_identity(caller.tenant, caller.channel, memberId, identityType, identityValue)


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
    since: Annotated[
        BusinessTime | None, Query(description="ISO 8601 with offset; records created at or after")
    ] = None,
    until: Annotated[BusinessTime | None, Query(description="ISO 8601 with offset; records created before")] = None,
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
    memberId: MemberId,
    point_group: Annotated[str | None, Query(alias="pointGroup", pattern=CODE_PATTERN)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LotPage:
    return ledger().open_lots(principal(router).tenant, memberId, point_group, limit, cursor)


@router.get(
    "/v1/members/<memberId>/tiers",
    operation_id="listTierHistory",
    tags=["members"],
    responses=responses(),
    summary="The member's tier history, oldest first; one entry is valid",
)
def list_tier_history(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> TierRecordPage:
    return service().tier_history(principal(router).tenant, memberId, limit, cursor)
