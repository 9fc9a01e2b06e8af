"""API keys: issued, listed, rotated and revoked by the tenant's operators; stored only as SHA-256 digests.

A key is 32 random bytes, so a plain digest is enough (no password stretching needed): knowing the digest
does not help guess the key. The key is shown once, when issued or rotated. A key names its tenant
(`lk_<tenant>~<secret>`), so the authorizer reads its digest in that tenant's partition and every item of a
key lives inside its tenant (the tenant guard and IAM's leading keys hold for them too, D-120):

- the secret: `T#<tenant>#APIKEY#<digest>` / `APIKEY`: who the key is; `revokedAt`, or `expiresAt` once
  rotated away; the day it was last used;
- the key's record: `T#<tenant>#APIKEYS` / `KEY#<keyId>`: name, role, channel, who made it, its status
  and its live secrets (the current one, and old ones in their grace period);
- each action: `T#<tenant>#APIKEYS` / `ACTION#<ulid>`: who did what to which key, when.

Keys issued before D-120 (`lk_<secret>`) are found by their global digest item (`APIKEY#<digest>`); the
migration 005 gives each a record and a secret item in its tenant, and the global item then only points there.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from loyalty.api.principal import Principal, Role
from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.validity import CamelModel, View, invalid_field
from loyalty.ids import new_ulid
from loyalty.store import keys
from loyalty.store.table import Item, Table, TransactionCancelled, put, update

KEY_PREFIX = "lk_"
TENANT_END = "~"  # lk_<tenant>~<secret>: no tenant id holds a tilde (CODE_PATTERN)
MAX_GRACE_HOURS = 720
ACTION_PREFIX = "ACTION#"
CURRENT = "current"  # a record's secrets: digest -> "current", or the time an old one stops working


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def tenant_of(api_key: str) -> str | None:
    """The tenant a key names (None for a key issued before D-120, or junk)."""
    body = api_key[len(KEY_PREFIX) :]
    tenant, found, _ = body.partition(TENANT_END)
    return tenant if found and tenant else None


class KeyRequest(CamelModel):
    """A key to issue: what it is for, its role, and for a channel key the sales channel it speaks for."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"name": "上海门店收银", "role": "channel", "channel": "POS"},
        {"name": "运营 王芳", "role": "operator"},
    ]

    name: str = Field(min_length=1, max_length=100, description="What the key is for, shown in lists and audits")
    role: Role
    channel: str | None = Field(default=None, pattern=CODE_PATTERN, description="A channel key's channel, e.g. POS")

    @model_validator(mode="after")
    def _channel_for_channel_keys(self) -> KeyRequest:
        if (self.role == "channel") != (self.channel is not None):
            raise invalid_field("KeyRequest", "channel", "a channel key names its channel, an operator key none", None)
        return self


class Rotation(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"graceHours": 24}]

    grace_hours: int = Field(
        default=24, ge=0, le=MAX_GRACE_HOURS, description="How long the old secret keeps working (0: not at all)"
    )


class KeyView(View):
    """An API key as its tenant's operators see it: never its secret."""

    key_id: str
    name: str
    role: Role
    channel: str
    status: Literal["active", "revoked"]
    created_by: str | None = Field(default=None, description="The operator key that issued it (none: the platform)")
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_on: date | None = Field(default=None, description="The last day (UTC) a request was authorised with it")


class IssuedKey(KeyView):
    secret: str = Field(description="The key itself: shown this once, stored only as a digest")


class KeyAction(View):
    """One action on a key: who (an operator key id, or `platform`), when, which key, what."""

    at: datetime
    by: str
    key_id: str
    action: Literal["issued", "rotated", "revoked"]
    grace_hours: int | None = None


@dataclass
class ApiKeyService:
    table: Table
    clock: Clock

    # --- the authorizer ------------------------------------------------------------------------------

    def resolve(self, api_key: str) -> Principal | None:
        """Who a key is, or None for an unknown, revoked or expired one. Marks the day it was used (one write
        per key per day at most)."""
        if not api_key.startswith(KEY_PREFIX) or len(api_key) > 200:
            return None
        hashed = digest(api_key)
        tenant = tenant_of(api_key)
        if tenant is None:  # issued before D-120: the global item, itself or pointing into its tenant
            item = self.table.get(keys.api_key(hashed), keys.API_KEY_SK, consistent=False)
            if item is not None and item.get("moved"):
                tenant = item["tenant"]
                item = self.table.get(keys.api_key_secret(tenant, hashed), keys.API_KEY_SK, consistent=False)
        else:
            item = self.table.get(keys.api_key_secret(tenant, hashed), keys.API_KEY_SK, consistent=False)
        now = self.clock.now()
        if item is None or item.get("revokedAt") or (item.get("expiresAt") and item["expiresAt"] <= now.isoformat()):
            return None
        if item.get("lastUsedOn", "") < now.date().isoformat():
            self._mark_used(item, now.date().isoformat())
        return Principal(item["tenant"], item["role"], item["channel"], item["keyId"])

    def _mark_used(self, item: Item, today: str) -> None:
        with contextlib.suppress(TransactionCancelled):  # another request marked the day first
            self.table.transact(
                [
                    update(
                        item["PK"],
                        item["SK"],
                        "SET lastUsedOn = :today",
                        {":today": today},
                        "attribute_exists(PK) AND (attribute_not_exists(lastUsedOn) OR lastUsedOn < :today)",
                    )
                ]
            )

    # --- the tenant's operators (and the platform's command) ----------------------------------------

    def issue(self, tenant: str, role: Role, channel: str, name: str, by: str | None = None) -> tuple[str, Principal]:
        """A new key; the plaintext is returned here and nowhere else."""
        issued = self.issue_key(
            tenant, KeyRequest(name=name, role=role, channel=channel if role == "channel" else None), by
        )
        return issued.secret, Principal(tenant, role, issued.channel, issued.key_id)

    def issue_key(self, tenant: str, request: KeyRequest, by: str | None = None) -> IssuedKey:
        now, key_id = self.clock.now(), new_ulid()
        secret, hashed = _new_secret(tenant)
        principal = Principal(tenant, request.role, request.channel or "operator", key_id)
        record = key_record(principal, request.name, now.isoformat(), hashed, **({"createdBy": by} if by else {}))
        self.table.transact(
            [
                put(_secret_item(principal, hashed, request.name, now), "attribute_not_exists(PK)"),
                put(record, "attribute_not_exists(PK)"),
                put(_action(tenant, now, by, key_id, "issued")),
            ]
        )
        return IssuedKey.model_validate({**record, "secret": secret})

    def list_page(self, tenant: str, limit: int, cursor: str | None) -> tuple[list[KeyView], str | None]:
        page = self.table.query_prefix(keys.api_keys(tenant), keys.API_KEY_RECORD_PREFIX, limit=limit, cursor=cursor)
        secrets_at = [(keys.api_key_secret(tenant, _current(record)), keys.API_KEY_SK) for record in page.items]
        used = self.table.get_many(secrets_at, consistent=False) if secrets_at else {}
        views = [
            KeyView.model_validate({**record, "lastUsedOn": used.get(at, {}).get("lastUsedOn")})
            for record, at in zip(page.items, secrets_at, strict=True)
        ]
        return views, page.next_cursor

    def get(self, tenant: str, key_id: str) -> KeyView:
        return KeyView.model_validate(self._record(tenant, key_id))

    def actions_page(self, tenant: str, limit: int, cursor: str | None) -> tuple[list[KeyAction], str | None]:
        page = self.table.query_prefix(
            keys.api_keys(tenant), ACTION_PREFIX, limit=limit, cursor=cursor, newest_first=True
        )
        return [KeyAction.model_validate(item) for item in page.items], page.next_cursor

    def rotate(self, tenant: str, key_id: str, rotation: Rotation, by: str | None = None) -> IssuedKey:
        """A new secret for the key; the old one works `graceHours` more (0: no more)."""
        record = self._record(tenant, key_id)
        if record["status"] != "active":
            raise Conflict("the key is revoked", code="KEY_REVOKED")
        now = self.clock.now()
        old = _current(record)
        secret, hashed = _new_secret(tenant)
        ends = (now + timedelta(hours=rotation.grace_hours)).isoformat()
        in_grace = {d: until for d, until in record["secrets"].items() if d != old and _live(until, now)}
        principal = Principal(tenant, record["role"], record["channel"], key_id)
        try:
            self.table.transact(
                [
                    put(_secret_item(principal, hashed, record["name"], now), "attribute_not_exists(PK)"),
                    update(
                        keys.api_key_secret(tenant, old),
                        keys.API_KEY_SK,
                        "SET expiresAt = :ends",
                        {":ends": ends},
                        "attribute_exists(PK) AND attribute_not_exists(revokedAt)",
                    ),
                    update(
                        record["PK"],
                        record["SK"],
                        "SET secrets = :secrets, rotatedAt = :now",
                        {
                            ":secrets": {**in_grace, old: ends, hashed: CURRENT},
                            ":now": now.isoformat(),
                            ":active": "active",
                            ":version": record["secrets"],
                        },
                        "#status = :active AND secrets = :version",
                        {"#status": "status"},
                    ),
                    put(_action(tenant, now, by, key_id, "rotated", grace_hours=rotation.grace_hours)),
                ]
            )
        except TransactionCancelled:
            raise Conflict("the key changed meanwhile; read it again", code="CONCURRENT_UPDATE") from None
        return IssuedKey.model_validate({**record, "rotatedAt": now, "secret": secret})

    def revoke(self, tenant: str, key_id: str, by: str | None = None) -> KeyView:
        """Every secret of the key stops working (within the authorizer cache's bound, D-120)."""
        record = self._record(tenant, key_id)
        if record["status"] != "active":
            raise Conflict("the key is already revoked", code="KEY_REVOKED")
        moment = self.clock.now()
        now = moment.isoformat()
        live = [d for d, ends in record["secrets"].items() if _live(ends, moment)]
        try:
            self.table.transact(
                [
                    update(
                        record["PK"],
                        record["SK"],
                        "SET #status = :revoked, revokedAt = :now",
                        {":revoked": "revoked", ":now": now, ":active": "active"},
                        "#status = :active",
                        {"#status": "status"},
                    ),
                    *[
                        update(keys.api_key_secret(tenant, d), keys.API_KEY_SK, "SET revokedAt = :now", {":now": now})
                        for d in live
                    ],
                    put(_action(tenant, moment, by, key_id, "revoked")),
                ]
            )
        except TransactionCancelled:
            raise Conflict("the key is already revoked", code="KEY_REVOKED") from None
        return self.get(tenant, key_id)

    def _record(self, tenant: str, key_id: str) -> Item:
        record = self.table.get(keys.api_keys(tenant), keys.api_key_record_sk(key_id))
        if record is None:
            raise NotFound(f"no API key {key_id!r}", code="API_KEY_NOT_FOUND")
        return record


def key_record(principal: Principal, name: str, created_at: str, current: str, **extra: Any) -> Item:
    """A key's record in its tenant: who the key is, its status, and its live secrets (`current` the digest
    of the one in use)."""
    return {
        "PK": keys.api_keys(principal.tenant),
        "SK": keys.api_key_record_sk(principal.key_id),
        "keyId": principal.key_id,
        "name": name,
        "role": principal.role,
        "channel": principal.channel,
        "status": "active",
        "createdAt": created_at,
        "secrets": {current: CURRENT} if current else {},
        **extra,
    }


def active_operator(table: Table, tenant: str, key_id: str) -> bool:
    """Whether this id is an active operator key of the tenant (an approver must be one)."""
    record = table.get(keys.api_keys(tenant), keys.api_key_record_sk(key_id), consistent=False)
    return record is not None and record["role"] == "operator" and record["status"] == "active"


def _new_secret(tenant: str) -> tuple[str, str]:
    secret = f"{KEY_PREFIX}{tenant}{TENANT_END}{secrets.token_urlsafe(32)}"
    return secret, digest(secret)


def _current(record: Item) -> str:
    """The digest of the key's current secret."""
    return next((d for d, ends in record.get("secrets", {}).items() if ends == CURRENT), "")


def _live(ends: str, now: datetime) -> bool:
    """A secret of the record's map works: the current one, or an old one in its grace period."""
    return ends == CURRENT or ends > now.isoformat()


def _secret_item(principal: Principal, hashed: str, name: str, now: datetime) -> Item:
    return {
        "PK": keys.api_key_secret(principal.tenant, hashed),
        "SK": keys.API_KEY_SK,
        **principal.as_context(),
        "name": name,
        "createdAt": now.isoformat(),
    }


def _action(tenant: str, now: datetime, by: str | None, key_id: str, action: str, **extra: Any) -> Item:
    return {
        "PK": keys.api_keys(tenant),
        "SK": f"{ACTION_PREFIX}{new_ulid()}",
        "at": now.isoformat(),
        "by": by or "platform",
        "keyId": key_id,
        "action": action,
        **{k: v for k, v in extra.items() if v is not None},
    }


def api_key_service(table: Table | None = None, clock: Clock | None = None) -> ApiKeyService:
    return ApiKeyService(table or Table(), clock or SystemClock())


class KeyPage(View):
    items: list[KeyView]
    next_cursor: str | None = None


class KeyActionPage(View):
    items: list[KeyAction]
    next_cursor: str | None = None
