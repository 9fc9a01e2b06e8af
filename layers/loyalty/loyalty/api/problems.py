"""RFC 9457 problem details: every error leaves the API in this one shape, with a stable `code`."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from loyalty.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
)

PROBLEM_JSON = "application/problem+json"
STATUS_FOR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (Unauthorized, 401),
    (Forbidden, 403),
    (PreconditionFailed, 412),
    (PreconditionRequired, 428),
]
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    500: "Internal Server Error",
}


class FieldError(BaseModel):
    field: str = Field(description="JSON pointer to the value at fault, within `in`")
    location: str = Field(alias="in", description="body, query, path or header")
    detail: str


class Problem(BaseModel):
    """An error (RFC 9457). Clients branch on `code`; `type` names the same problem as a URI reference."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, documented error code, e.g. PHONE_TAKEN")
    instance: str | None = None
    field: str | None = Field(default=None, description="JSON pointer to the body field at fault, if one")
    errors: list[FieldError] | None = None


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{code.lower().replace('_', '-')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if field:
        body["field"] = field if field.startswith("/") else "/" + field
    if errors:
        body["errors"] = errors
    body.update({key: value for key, value in extra.items() if value is not None})
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body, default=str))


def proxy_response(response: Response) -> dict[str, Any]:
    """A problem as a Lambda proxy response, for answers given before the resolver runs."""
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": response.body,
        "isBase64Encoded": False,
    }


def for_domain_error(error: DomainError, instance: str | None) -> Response:
    status = next((status for cls, status in STATUS_FOR if isinstance(error, cls)), 400)
    return problem(status, error.code, error.detail, instance=instance, field=error.field, **error.extra)


def for_validation_errors(errors: list[dict[str, Any]], instance: str | None) -> Response:
    """Pydantic's errors, one entry per bad value, each with a JSON pointer to it. Malformed JSON is a 400."""
    invalid = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if invalid:
        why = (invalid.get("ctx") or {}).get("error")
        detail = f"the body is not valid JSON: {why}" if why else "the body is not valid JSON"
        return problem(400, "MALFORMED_JSON", detail, instance=instance)
    entries = []
    for error in errors:
        location, *path = [str(part) for part in error.get("loc", ())] or ["body"]
        entries.append({"in": location, "field": "/" + "/".join(path), "detail": error.get("msg", "invalid")})
    return problem(422, "VALIDATION_FAILED", f"{len(entries)} invalid value(s)", instance=instance, errors=entries)


class GatewayMessage(BaseModel):
    """What API Gateway itself answers, before any function runs: no key (401), a key the authorizer
    refused as unknown or revoked (403), an unknown route (404), a body over its own limit (413)."""

    message: str


GATEWAY_ANSWERS = (401, 403, 404, 413)
PROBLEM_RESPONSES: dict[int, OpenAPIResponse] = {
    status: {
        "description": TITLES[status],
        "content": {
            PROBLEM_JSON: {"model": Problem},
            **({"application/json": {"model": GatewayMessage}} if status in GATEWAY_ANSWERS else {}),
        },
    }
    for status in (400, 401, 403, 404, 409, 413, 415, 422)
}


def responses(status_code: int = 200, *, versioned: bool = False) -> dict[int, OpenAPIResponse]:
    """A route's documented answers: its success (the schema of its return type, filled in by Powertools)
    and every problem; a `versioned` change (If-Match) also 412 and 428. Powertools documents no success at
    all once `responses` is given, unless named."""
    success: OpenAPIResponse = {"description": "Success"}
    if status_code == 204:
        success = {"description": "Done; no content", "content": {}}
    extra: dict[int, OpenAPIResponse] = {
        status: {"description": TITLES[status], "content": {PROBLEM_JSON: {"model": Problem}}} for status in (412, 428)
    }
    return {status_code: success, **PROBLEM_RESPONSES, **(extra if versioned else {})}
