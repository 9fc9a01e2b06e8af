"""Who is calling: resolved by the authorizer from the API key, read here from the request context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from loyalty.domain.errors import Forbidden, Unauthorized

Role = Literal["channel", "operator"]
OPERATOR_PREFIX = "/v1/admin/"


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: Role
    channel: str  # the sales channel a channel key speaks for (e.g. POS); "operator" for operator keys
    key_id: str

    def as_context(self) -> dict[str, str]:
        return {"tenant": self.tenant, "role": self.role, "channel": self.channel, "keyId": self.key_id}


def required_role(path: str) -> Role:
    """One rule for every route: the admin API is for operator keys, the rest for channel keys."""
    return "operator" if path.startswith(OPERATOR_PREFIX) else "channel"


def principal_for(path: str, authorizer_context: dict[str, Any] | None) -> Principal:
    context = authorizer_context or {}
    if not context.get("tenant"):
        raise Unauthorized("an unknown or revoked API key", code="UNAUTHORIZED")
    principal = Principal(context["tenant"], context["role"], context.get("channel", ""), context.get("keyId", ""))
    needed = required_role(path)
    if principal.role != needed:
        raise Forbidden(f"this route needs an {needed} key, not a {principal.role} key", code="FORBIDDEN")
    return principal
