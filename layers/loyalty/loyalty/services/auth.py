"""API keys: one per tenant and role, stored only as a SHA-256 digest, never logged.

A key is 32 random bytes, so a plain digest is enough (no password stretching needed): knowing the
digest does not help guess the key. The key is shown once, when issued.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from loyalty.api.principal import Principal, Role
from loyalty.clock import Clock, SystemClock
from loyalty.ids import new_ulid
from loyalty.store import keys
from loyalty.store.table import Table, put

KEY_PREFIX = "lk_"


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass
class ApiKeyService:
    table: Table
    clock: Clock

    def issue(self, tenant: str, role: Role, channel: str, name: str) -> tuple[str, Principal]:
        """A new key; the plaintext is returned here and nowhere else."""
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        principal = Principal(tenant, role, channel if role == "channel" else "operator", new_ulid())
        self.table.transact(
            [
                put(
                    {
                        "PK": keys.api_key(digest(api_key)),
                        "SK": keys.API_KEY_SK,
                        **principal.as_context(),
                        "name": name,
                        "createdAt": self.clock.now().isoformat(),
                    },
                    "attribute_not_exists(PK)",
                )
            ]
        )
        return api_key, principal

    def resolve(self, api_key: str) -> Principal | None:
        if not api_key.startswith(KEY_PREFIX) or len(api_key) > 100:
            return None
        item = self.table.get(keys.api_key(digest(api_key)), keys.API_KEY_SK, consistent=False)
        if item is None or item.get("revokedAt"):
            return None
        return Principal(item["tenant"], item["role"], item["channel"], item["keyId"])


def api_key_service(table: Table | None = None, clock: Clock | None = None) -> ApiKeyService:
    return ApiKeyService(table or Table(), clock or SystemClock())
