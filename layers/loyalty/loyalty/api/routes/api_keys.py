"""The tenant's API keys, for its operators (services/auth.py, D-120): issue (the secret shown once), list,
rotate with a grace period, revoke, and every action on them. Issuing and rotating take no Idempotency-Key:
the first answer holds the secret, which is stored nowhere to be answered again."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from loyalty.api.params import ULID_PATTERN, Cursor, Limit
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.services.auth import (
    ApiKeyService,
    IssuedKey,
    KeyActionPage,
    KeyPage,
    KeyRequest,
    KeyView,
    Rotation,
    api_key_service,
)

router = Router()
KeyId = Annotated[str, Path(pattern=ULID_PATTERN, description="The key's id (not its secret)")]


@lru_cache(maxsize=1)
def service() -> ApiKeyService:
    return api_key_service()


@router.post(
    "/v1/admin/api-keys",
    operation_id="issueApiKey",
    tags=["api keys"],
    status_code=201,
    responses=responses(201),
    summary="Issue an API key: its secret is in this answer and nowhere else",
)
def issue_api_key(body: Annotated[KeyRequest, Body()]) -> IssuedKey:
    caller = principal(router)
    return service().issue_key(caller.tenant, body, caller.key_id)


@router.get(
    "/v1/admin/api-keys",
    operation_id="listApiKeys",
    tags=["api keys"],
    responses=responses(),
    summary="The tenant's API keys, oldest first: name, role, channel, who issued it, status, last day used",
)
def list_api_keys(limit: Limit = 50, cursor: Cursor = None) -> KeyPage:
    items, next_cursor = service().list_page(principal(router).tenant, limit, cursor)
    return KeyPage(items=items, next_cursor=next_cursor)


@router.get(
    "/v1/admin/api-keys/<keyId>",
    operation_id="getApiKey",
    tags=["api keys"],
    responses=responses(),
    summary="One API key (never its secret)",
)
def get_api_key(keyId: KeyId) -> KeyView:
    return service().get(principal(router).tenant, keyId)


@router.post(
    "/v1/admin/api-keys/<keyId>/rotate",
    operation_id="rotateApiKey",
    tags=["api keys"],
    responses=responses(),
    summary="A new secret for the key; the old one keeps working for graceHours (0 to 720, default 24)",
)
def rotate_api_key(keyId: KeyId, body: Annotated[Rotation, Body()]) -> IssuedKey:
    caller = principal(router)
    return service().rotate(caller.tenant, keyId, body, caller.key_id)


@router.post(
    "/v1/admin/api-keys/<keyId>/revoke",
    operation_id="revokeApiKey",
    tags=["api keys"],
    responses=responses(),
    summary="Revoke a key: every secret of it is refused within the authorizer's cache time (AuthorizerCacheSeconds)",
)
def revoke_api_key(keyId: KeyId) -> KeyView:
    caller = principal(router)
    return service().revoke(caller.tenant, keyId, caller.key_id)


@router.get(
    "/v1/admin/api-key-actions",
    operation_id="listApiKeyActions",
    tags=["api keys"],
    responses=responses(),
    summary="Who issued, rotated or revoked which key, when: newest first",
)
def list_api_key_actions(limit: Limit = 50, cursor: Cursor = None) -> KeyActionPage:
    items, next_cursor = service().actions_page(principal(router).tenant, limit, cursor)
    return KeyActionPage(items=items, next_cursor=next_cursor)
