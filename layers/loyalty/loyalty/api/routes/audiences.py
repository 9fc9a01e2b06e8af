"""Audiences (群组), for operators: drafts of a condition tree, previews (a count and a sample), enabling
(freezing the list a batch campaign reaches) and copies (services/campaigns/audiences.py)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import IdempotencyKey
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.audiences import AudienceInput
from loyalty.services.campaigns.audiences import AudiencePage, AudienceService, AudienceView, audience_service
from loyalty.services.idempotency import run_once

router = Router()
AudienceId = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


@lru_cache(maxsize=1)
def service() -> AudienceService:
    return audience_service()


def _post(path: str, operation_id: str, summary: str, status_code: int = 200):  # type: ignore[no-untyped-def]
    return router.post(
        path,
        operation_id=operation_id,
        tags=["audiences"],
        status_code=status_code,
        responses=responses(status_code),
        summary=summary,
    )


@_post("/v1/admin/audiences", "createAudience", "A new audience (群组), as a draft", 201)
def create_audience(body: Annotated[AudienceInput, Body()], idempotency_key: IdempotencyKey = None) -> AudienceView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "createAudience",
        idempotency_key,
        body.model_dump(mode="json"),
        lambda _: service().create(caller.tenant, body, caller.key_id).model_dump(mode="json", by_alias=True),
    )
    return AudienceView.model_validate(result)


@router.get(
    "/v1/admin/audiences",
    operation_id="listAudiences",
    tags=["audiences"],
    responses=responses(),
    summary="The tenant's audiences, oldest first",
)
def list_audiences(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> AudiencePage:
    return service().list_page(principal(router).tenant, limit, cursor)


@router.get(
    "/v1/admin/audiences/<audienceId>",
    operation_id="getAudience",
    tags=["audiences"],
    responses=responses(),
    summary="An audience, its latest preview and, once enabled, its frozen count",
)
def get_audience(audienceId: AudienceId) -> AudienceView:
    return service().get(principal(router).tenant, audienceId)


@router.put(
    "/v1/admin/audiences/<audienceId>",
    operation_id="replaceAudience",
    tags=["audiences"],
    responses=responses(),
    summary="Change a draft (409 AUDIENCE_STATUS once enabled)",
)
def replace_audience(audienceId: AudienceId, body: Annotated[AudienceInput, Body()]) -> AudienceView:
    return service().replace(principal(router).tenant, audienceId, body)


@router.delete(
    "/v1/admin/audiences/<audienceId>",
    operation_id="deleteAudience",
    tags=["audiences"],
    responses=responses(204),
    summary="Delete a draft (409 AUDIENCE_STATUS once enabled)",
)
def delete_audience(audienceId: AudienceId) -> Response[None]:
    service().delete(principal(router).tenant, audienceId)
    return Response(status_code=204)


@_post("/v1/admin/audiences/<audienceId>/copy", "copyAudience", "复制: a new draft with the same condition", 201)
def copy_audience(audienceId: AudienceId) -> AudienceView:
    caller = principal(router)
    return service().copy(caller.tenant, audienceId, caller.key_id)


@_post(
    "/v1/admin/audiences/<audienceId>/previews",
    "previewAudience",
    "预览: count who the condition finds now, with a sample of 20 (read the audience for the result)",
    202,
)
def preview_audience(audienceId: AudienceId) -> AudienceView:
    caller = principal(router)
    return service().preview(caller.tenant, audienceId, caller.key_id)


@_post(
    "/v1/admin/audiences/<audienceId>/enable",
    "enableAudience",
    "启用: freeze who the condition finds now (status freezing, then frozen with its count); no more edits",
    202,
)
def enable_audience(audienceId: AudienceId) -> AudienceView:
    caller = principal(router)
    return service().enable(caller.tenant, audienceId, caller.key_id)


@_post(
    "/v1/admin/audiences/<audienceId>/draft",
    "returnAudienceToDraft",
    "回到草稿: an audience whose enabling failed (its run says why) is an editable draft again",
    200,
)
def return_audience_to_draft(audienceId: AudienceId) -> AudienceView:
    return service().return_to_draft(principal(router).tenant, audienceId)
