"""The small set of domain errors. The API maps each to one HTTP status and problem type, in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base: `code` is stable and documented; `field` points at the input at fault, if any."""

    code = "DOMAIN_ERROR"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    """The request is valid but clashes with the current state (duplicate, still referenced, in use)."""

    code = "CONFLICT"


class InvalidInput(DomainError):
    """Input that is well-formed but breaks a business rule or names something that does not exist."""

    code = "VALIDATION_FAILED"


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class PreconditionFailed(DomainError):
    """The request named a version (If-Match) that is no longer the current one."""

    code = "VERSION_MISMATCH"


class PreconditionRequired(DomainError):
    """A change of something others change too needs the version it was based on (If-Match)."""

    code = "PRECONDITION_REQUIRED"
