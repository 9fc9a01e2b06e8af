"""A request's Idempotency-Key, written with the effect it made.

Powertools idempotency answers a retry from its record, but a call that fails after its write committed
(a timeout on the way back, a crash) deletes that record, so the retry would run again and, for an effect
with no business key of its own (a spend, a claim, a registration under a new id), happen twice. The
effect's transaction therefore also writes a marker under the key; a retry's transaction fails on it, and
the service answers with the first effect, which the marker names.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from loyalty.domain.errors import InvalidInput
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table, put

MARKER_SK = "REQUEST"


@dataclass(frozen=True)
class RequestKey:
    tenant: str
    operation: str  # e.g. "redeemPoints": one key may serve different operations
    key: str
    payload: Any = None  # what was asked; a key reused with another payload is refused

    @property
    def pk(self) -> str:
        digest = hashlib.sha256(f"{self.operation}#{self.key}".encode()).hexdigest()[:40]
        return f"T#{self.tenant}#REQUEST#{digest}"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.payload, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def marker(self, **effect: Any) -> dict:
        """The put for the effect's own transaction; `effect` names what was made (e.g. recordId)."""
        expires = int(time.time()) + get_settings().idempotency_ttl_seconds
        item = {"PK": self.pk, "SK": MARKER_SK, "fingerprint": self.fingerprint, "expiration": expires, **effect}
        return put(item, "attribute_not_exists(PK)")

    def first_effect(self, table: Table) -> Item:
        """The marker a retry's transaction failed on: what the first attempt made."""
        found = table.get(self.pk, MARKER_SK)
        if found is None:  # expired between the failed write and this read
            raise InvalidInput("this Idempotency-Key has expired", code="IDEMPOTENCY_KEY_EXPIRED")
        if found["fingerprint"] != self.fingerprint:
            raise InvalidInput("this Idempotency-Key was used with another body", code="IDEMPOTENCY_KEY_REUSED")
        return found

    def first_effect_or_none(self, table: Table) -> Item | None:
        """The first effect if this key made one (a body that differs is still refused), else None."""
        found = table.get(self.pk, MARKER_SK)
        if found is not None and found["fingerprint"] != self.fingerprint:
            raise InvalidInput("this Idempotency-Key was used with another body", code="IDEMPOTENCY_KEY_REUSED")
        return found


def key_digest(key: str | None) -> str | None:
    """What an effect with a business key of its own (an order, a return) keeps of the Idempotency-Key that
    made it, so that a retry under that key gets the first answer and any other repeat the state's."""
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else None


def request_key(tenant: str, operation: str, key: str | None, payload: Any) -> RequestKey | None:
    return RequestKey(tenant, operation, key, payload) if key else None
