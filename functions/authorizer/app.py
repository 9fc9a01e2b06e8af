"""HTTP API Lambda authorizer (simple responses): API key -> tenant, role and channel.

A known key is authorised with who the caller is in the context; the routes then check the role and answer
403 as problem JSON (loyalty.api.principal). An unknown, revoked or malformed key is refused here
(`isAuthorized: false`: API Gateway answers 403 itself), so junk keys never invoke a route's function.
Because the answer does not depend on the route, API Gateway caches it per key (AuthorizerCacheSeconds).
The key itself is never logged.
"""

from functools import lru_cache

from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger
from loyalty.services.auth import ApiKeyService, api_key_service


@lru_cache(maxsize=1)
def service() -> ApiKeyService:
    return api_key_service()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    header = (event.get("headers") or {}).get("authorization", "")
    api_key = header[7:].strip() if header.lower().startswith("bearer ") else header.strip()
    principal = service().resolve(api_key) if api_key else None
    logger.info(
        "caller resolved", extra={"known": principal is not None, "key_id": principal.key_id if principal else None}
    )
    if principal is None:
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": principal.as_context()}
