"""The one way an HTTP function is built: a Powertools resolver with validation, the caller's principal
enforced on every route (its role, and its tenant on every table key), every error as problem JSON, and
the routers it serves."""

from __future__ import annotations

import base64
from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.api import problems
from loyalty.api.json_body import strict_loads
from loyalty.api.principal import Principal, principal_for
from loyalty.domain.errors import DomainError
from loyalty.observability import logger, metrics
from loyalty.services.idempotency import CONFIG as IDEMPOTENCY_CONFIG
from loyalty.store.table import tenant_scope

MAX_BODY_BYTES = 256 * 1024
MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # an operator's bulk job (`.../*-jobs`): 10,000 rows of master data fit


def build_app(*routers: Router) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=strict_loads)

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response:
        return problems.for_domain_error(error, app.current_event.path)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response:
        return problems.for_validation_errors(list(error.errors()), app.current_event.path)

    @app.exception_handler(IdempotencyValidationError)
    def _key_reused(error: IdempotencyValidationError) -> Response:
        return problems.problem(
            422,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with another body",
            instance=app.current_event.path,
            field=None,
        )

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(error: IdempotencyAlreadyInProgressError) -> Response:
        return problems.problem(
            409,
            "REQUEST_IN_PROGRESS",
            "a request with this Idempotency-Key is still running",
            instance=app.current_event.path,
        )

    @app.not_found
    def _no_route(error: NotFoundError) -> Response:
        return problems.problem(404, "ROUTE_NOT_FOUND", "no such route", instance=app.current_event.path)

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return problems.problem(
            500, "INTERNAL_ERROR", "an unexpected error; it has been logged", instance=app.current_event.path
        )

    for router in routers:
        app.include_router(router)
    return app


def http_handler(app: APIGatewayHttpResolver) -> Callable[[dict, LambdaContext], dict]:
    """The Lambda entry point for an HTTP function: logging context, metrics, then the resolver."""

    @metrics.log_metrics
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict, context: LambdaContext) -> dict:
        IDEMPOTENCY_CONFIG.register_lambda_context(context)
        path = event.get("rawPath", "")
        # Who calls, then how big: both before the body is parsed, so a stranger learns nothing of the schema.
        try:
            caller = principal_for(path, event.get("requestContext", {}).get("authorizer", {}).get("lambda"))
        except DomainError as error:
            return problems.proxy_response(problems.for_domain_error(error, path))
        limit = MAX_UPLOAD_BYTES if path.endswith("-jobs") else MAX_BODY_BYTES
        if len((event.get("body") or "").encode()) > limit:
            return problems.proxy_response(
                problems.problem(413, "PAYLOAD_TOO_LARGE", f"bodies here are limited to {limit} bytes", instance=path)
            )
        if event.get("body"):
            refused = _unreadable(event, path)
            if refused:
                return problems.proxy_response(refused)
            event = _as_json(event)
        logger.append_keys(tenant=caller.tenant, role=caller.role, key_id=caller.key_id)
        app.append_context(principal=caller)
        with tenant_scope(caller.tenant):  # every table key of this request must be the caller's tenant's
            return _without_body_if_no_content(app.resolve(event, context))

    return handler


def _without_body_if_no_content(response: dict) -> dict:
    """A 204 has no body (RFC 9110 §15.3.5); Powertools serialises a route's None as `null`, which a
    keep-alive client would read as the start of the next answer."""
    if response.get("statusCode") == 204:
        headers = {k: v for k, v in (response.get("headers") or {}).items() if k.lower() != "content-type"}
        return {**response, "body": "", "headers": headers, "isBase64Encoded": False}
    return response


def _unreadable(event: dict, path: str) -> Response | None:
    """A body that does not say it is JSON is a 415; bytes that are not even UTF-8 text (the gateway passes
    them base64-encoded) a 400. Whether the text is JSON, the resolver's validation says (also a 400)."""
    if not _is_json(event.get("headers") or {}):
        return problems.problem(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json", instance=path)
    if event.get("isBase64Encoded"):
        try:
            base64.b64decode(event["body"]).decode("utf-8")
        except ValueError:  # UnicodeDecodeError and binascii.Error are ValueErrors
            return problems.problem(400, "MALFORMED_JSON", "the body is not valid JSON", instance=path)
    return None


def _as_json(event: dict) -> dict:
    """The body's type as the resolver reads it: every spelling this API accepts as JSON (any case,
    `application/*+json`, with parameters) is passed on as `application/json`."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    return {**event, "headers": {**headers, "content-type": "application/json"}}


def _is_json(headers: dict[str, str]) -> bool:
    """A body must say it is JSON (application/json or a +json type); a missing type is read as JSON."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "application/json")
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def principal(router: Router) -> Principal:
    return router.context["principal"]


def idempotency_key(router: Router) -> str | None:
    return router.current_event.headers.get("idempotency-key")
