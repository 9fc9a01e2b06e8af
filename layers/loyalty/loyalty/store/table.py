"""A small wrapper over the low-level DynamoDB client: item codec, queries, and transactions whose
cancellation reasons come back indexed by the order the caller wrote them in, and a tenant scope: inside
`tenant_scope(t)` (every HTTP request runs in its caller's), a key of another tenant is refused before
DynamoDB is called, so isolation does not rest on each service remembering the tenant.

Clients are created once per process (module level, lazily) and reach the local emulator through the
standard AWS_ENDPOINT_URL setting, so the same code runs on AWS untouched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from loyalty.domain.errors import InvalidInput
from loyalty.settings import get_settings

Item = dict[str, Any]

# Index partitions shared by every tenant: a tenant's program is listed in PROGRAMS (keys.PROGRAMS_INDEX) for
# the sweeps, which read it outside any tenant scope. Inside one, it may be written to, never read.
SHARED_INDEX_PARTITIONS = frozenset({"PROGRAMS"})
INDEX_KEYS = ("GSI1PK", "GSI2PK")

_scope: ContextVar[str | None] = ContextVar("loyalty_tenant_scope", default=None)
_meter: ContextVar[list[Decimal] | None] = ContextVar("loyalty_read_meter", default=None)


class TenantIsolationError(RuntimeError):
    """A key of another tenant, or a whole-table scan, inside a tenant's scope: a defect, never input."""


@contextmanager
def tenant_scope(tenant: str) -> Iterator[None]:
    """Every table key used inside must belong to `tenant` (start with T#<tenant>#)."""
    token = _scope.set(f"T#{tenant}#")
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def metered() -> Iterator[list[Decimal]]:
    """The read units of every read inside, as DynamoDB reports them (one element, summed): an audience's
    scan shows what it cost."""
    units = [Decimal(0)]
    token = _meter.set(units)
    try:
        yield units
    finally:
        _meter.reset(token)


def _metering(request: dict[str, Any]) -> dict[str, Any]:
    if _meter.get() is not None:
        request["ReturnConsumedCapacity"] = "TOTAL"
    return request


def _count(response: dict[str, Any]) -> dict[str, Any]:
    units = _meter.get()
    if units is not None:
        units[0] += Decimal(str((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0)))
    return response


def guard_partition(partition: str, *, written_index: bool = False) -> None:
    """Refuse a partition key outside the current tenant's scope (no scope: nothing to check)."""
    prefix = _scope.get()
    if prefix is None or partition.startswith(prefix):
        return
    if written_index and partition in SHARED_INDEX_PARTITIONS:
        return
    raise TenantIsolationError(f"a key outside the caller's tenant: {partition[:40]!r}")


def _guard_item(item: Item) -> None:
    guard_partition(item["PK"])
    for name in INDEX_KEYS:
        if name in item:
            guard_partition(item[name], written_index=True)


class _Deserializer(TypeDeserializer):
    """Whole numbers come back as int (points, counts), others as Decimal (amounts); never float."""

    def _deserialize_n(self, value: str) -> int | Decimal:  # type: ignore[override]
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() and "." not in value else number


_serializer = TypeSerializer()
_deserializer = _Deserializer()


def to_attributes(item: Item) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_attributes(attributes: dict[str, Any]) -> Item:
    return {key: _deserializer.deserialize(value) for key, value in attributes.items()}


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    return boto3.client("dynamodb")


class TransactionCancelled(Exception):
    """A transaction was refused; `reasons[i]` is the code for the i-th operation as written (None = fine)."""

    def __init__(self, reasons: list[str | None], items: list[Item | None]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons
        self.items = items

    def failed(self, index: int) -> bool:
        return self.reasons[index] == "ConditionalCheckFailed"

    def first_failed(self) -> int | None:
        return next((i for i, reason in enumerate(self.reasons) if reason == "ConditionalCheckFailed"), None)


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next_cursor: str | None


def encode_cursor(sort_key: str) -> str:
    return _sealed({"sk": sort_key})


def decode_cursor(cursor: str, prefix: str) -> str:
    """The sort key a page resumes after; a cursor from another listing is refused, never followed."""
    try:
        sort_key = _opened(cursor)["sk"]
    except (KeyError, TypeError) as error:
        raise InvalidInput("the cursor is not one this API issued", code="INVALID_CURSOR", field="cursor") from error
    if not isinstance(sort_key, str) or not sort_key.startswith(prefix):
        raise InvalidInput("the cursor belongs to another listing", code="INVALID_CURSOR", field="cursor")
    return sort_key


def encode_position(last: dict[str, Any], sort_attribute: str) -> str:
    """The cursor of an index page: where it stopped (the index sort key and the table key of the last item)."""
    return _sealed({"at": [last[sort_attribute]["S"], last["PK"]["S"], last["SK"]["S"]]})


def decode_position(cursor: str, partition: str, prefix: str = "") -> tuple[str, str, str]:
    """(index sort key, PK, SK) a page of `partition` resumes after; a cursor that is not one this API issued
    for that partition's tenant (and sort-key prefix) is refused, never followed."""
    try:
        position = _opened(cursor)["at"]
        sort_key, pk, sk = position
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput("the cursor is not one this API issued", code="INVALID_CURSOR", field="cursor") from error
    tenant = "#".join(partition.split("#")[:2]) + "#"  # T#<tenant>#
    if not all(isinstance(v, str) for v in position) or not pk.startswith(tenant) or not sort_key.startswith(prefix):
        raise InvalidInput("the cursor belongs to another listing", code="INVALID_CURSOR", field="cursor")
    return sort_key, pk, sk


def _sealed(payload: dict[str, Any]) -> str:
    """A cursor: where a page stopped, with an HMAC over it and the caller's tenant (D-128), so a cursor that
    was changed, made up, or issued to another tenant is refused, never followed."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(json.dumps({**payload, "mac": _mac(body)}).encode()).decode().rstrip("=")


def _opened(cursor: str) -> dict[str, Any]:
    """A cursor's payload, if its seal is this deployment's for this tenant; else 422 INVALID_CURSOR."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        mac = payload.pop("mac")
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        sealed = isinstance(mac, str) and hmac.compare_digest(mac, _mac(body))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidInput("the cursor is not one this API issued", code="INVALID_CURSOR", field="cursor") from error
    if not sealed:
        raise InvalidInput("the cursor is not one this API issued", code="INVALID_CURSOR", field="cursor")
    return dict(payload)


def _mac(body: str) -> str:
    key = (get_settings().cursor_secret or _LOCAL_CURSOR_KEY).encode()
    signed = ((_scope.get() or "") + body).encode()
    return base64.urlsafe_b64encode(hmac.new(key, signed, hashlib.sha256).digest()[:16]).decode().rstrip("=")


# Where no secret is configured (tests, the local stack): the template always sets CURSOR_SECRET from a
# generated Secrets Manager secret, so a deployment never seals with this.
_LOCAL_CURSOR_KEY = "local-cursor-key"


class Table:
    """The one table. Keys are PK/SK strings that always start with the tenant (see keys.py)."""

    def __init__(self, name: str | None = None, client: Any = None) -> None:
        self.name = name or get_settings().table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or dynamodb_client()

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        guard_partition(pk)
        response = _count(
            self.client.get_item(
                **_metering(
                    {"TableName": self.name, "Key": to_attributes({"PK": pk, "SK": sk}), "ConsistentRead": consistent}
                )
            )
        )
        return from_attributes(response["Item"]) if "Item" in response else None

    def get_many(self, keys: list[tuple[str, str]], *, consistent: bool = True) -> dict[tuple[str, str], Item]:
        """Items by key, 100 per round trip (retrying what DynamoDB leaves unprocessed)."""
        for pk, _ in keys:
            guard_partition(pk)
        found: dict[tuple[str, str], Item] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            chunk = [to_attributes({"PK": pk, "SK": sk}) for pk, sk in unique[start : start + 100]]
            request: dict[str, Any] = {self.name: {"Keys": chunk, "ConsistentRead": consistent}}
            while request and request[self.name]["Keys"]:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.name, []):
                    item = from_attributes(raw)
                    found[(item["PK"], item["SK"])] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    def put_many(self, items: list[Item]) -> None:
        """Write items unconditionally, 25 per round trip (retrying what DynamoDB leaves unprocessed)."""
        for item in items:
            _guard_item(item)
        for start in range(0, len(items), 25):
            request = {self.name: [{"PutRequest": {"Item": to_attributes(i)}} for i in items[start : start + 25]]}
            while request:
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}

    def query_prefix(
        self,
        pk: str,
        prefix: str,
        *,
        limit: int = 1000,
        cursor: str | None = None,
        between: tuple[str, str] | None = None,
        newest_first: bool = False,
        consistent: bool = False,
    ) -> Page:
        """Items of one partition whose sort key starts with `prefix` (and lies `between` two sort keys,
        both starting with it), in sort-key order (or its reverse: ULID keys newest first), one page."""
        guard_partition(pk)
        if between:
            condition, values = (
                "PK = :pk AND SK BETWEEN :low AND :high",
                {":pk": pk, ":low": between[0], ":high": between[1]},
            )
        elif prefix:
            condition, values = "PK = :pk AND begins_with(SK, :prefix)", {":pk": pk, ":prefix": prefix}
        else:
            condition, values = "PK = :pk", {":pk": pk}
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_attributes(values),
            "Limit": limit,
            "ScanIndexForward": not newest_first,
            **({"ConsistentRead": True} if consistent else {}),
        }
        if cursor:
            request["ExclusiveStartKey"] = to_attributes({"PK": pk, "SK": decode_cursor(cursor, prefix)})
        response = _count(self.client.query(**_metering(request)))
        items = [from_attributes(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return Page(items, encode_cursor(from_attributes(last)["SK"]) if last else None)

    def query_all(self, pk: str, prefix: str = "", before: str | None = None) -> list[Item]:
        """Every item of one partition whose sort key starts with `prefix` (and sorts up to `before`), all
        pages, in sort-key order."""
        items: list[Item] = []
        cursor = None
        between = (prefix, before) if before else None
        while True:
            page = self.query_prefix(pk, prefix, limit=1000, cursor=cursor, between=between)
            items += page.items
            if not page.next_cursor:
                return items
            cursor = page.next_cursor

    def query_index(
        self,
        index: str,
        pk: str,
        *,
        limit: int,
        start: dict[str, Any] | None = None,
        pk_attribute: str = "GSI1PK",
        sk_prefix: tuple[str, str] | None = None,
        newest_first: bool = False,
        sk_between: tuple[str, str, str] | None = None,
        filter_by: tuple[str, Item, dict[str, str]] | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """One page of a GSI partition (optionally of the sort keys in `sk_prefix` = (attribute, prefix), or
        in `sk_between` = (attribute, low, high), both included; and of the items meeting `filter_by` =
        (expression, values, names), which DynamoDB applies after reading `limit` items); `start` and the
        returned key are raw keys for continuations."""
        guard_partition(pk)
        condition, values = f"{pk_attribute} = :pk", {":pk": pk}
        if sk_prefix:
            condition += f" AND begins_with({sk_prefix[0]}, :prefix)"
            values[":prefix"] = sk_prefix[1]
        if sk_between:
            condition += f" AND {sk_between[0]} BETWEEN :low AND :high"
            values[":low"], values[":high"] = sk_between[1], sk_between[2]
        request: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_attributes(values),
            "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if filter_by:
            request["FilterExpression"] = filter_by[0]
            request["ExpressionAttributeValues"] |= to_attributes(filter_by[1])
            if filter_by[2]:
                request["ExpressionAttributeNames"] = filter_by[2]
        if start:
            request["ExclusiveStartKey"] = start
        response = _count(self.client.query(**_metering(request)))
        return [from_attributes(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey")

    def index_page(
        self,
        index: str,
        pk: str,
        limit: int,
        cursor: str | None,
        *,
        sk_prefix: str = "",
        newest_first: bool = False,
    ) -> Page:
        """One page of a GSI partition (of the sort keys starting with `sk_prefix`) with the API's opaque,
        tenant-checked cursor: every listing read from an index pages the same way."""
        pk_attribute, sk_attribute = f"{index}PK", f"{index}SK"
        start = None
        if cursor:
            sort_key, item_pk, item_sk = decode_position(cursor, pk, sk_prefix)
            start = to_attributes({pk_attribute: pk, sk_attribute: sort_key, "PK": item_pk, "SK": item_sk})
        items, more = self.query_index(
            index,
            pk,
            limit=limit,
            start=start,
            pk_attribute=pk_attribute,
            sk_prefix=(sk_attribute, sk_prefix) if sk_prefix else None,
            newest_first=newest_first,
        )
        return Page(items, encode_position(more, sk_attribute) if more else None)

    def scan(
        self, condition: str, values: Item, projection: str, *, segment: int = 0, segments: int = 1
    ) -> Iterator[Item]:
        """Every item of one segment of the whole table that meets `condition`, page by page. Only the
        nightly reconciliation and the migrations read the table this way; everything else reads by key or by
        an index of its tenant (a walk over a tenant's members reads keys.members_index)."""
        start: dict[str, Any] | None = None
        while True:
            items, start, _ = self.scan_page(
                condition, values, segment=segment, segments=segments, start=start, projection=projection
            )
            yield from items
            if start is None:
                return

    def listing(
        self, index_pk: str, key_of: Callable[[str], tuple[str, str]], limit: int, cursor: str | None, prefix: str = ""
    ) -> tuple[list[Item], str | None]:
        """A page of the items a GSI1 partition lists by id (GSI1SK = the id; `key_of(id)` their table key),
        oldest first, and the cursor of the next page (campaigns, audiences)."""
        start = None
        if cursor:
            after = decode_cursor(cursor, prefix)
            pk, sk = key_of(after)
            start = to_attributes({"GSI1PK": index_pk, "GSI1SK": after, "PK": pk, "SK": sk})
        items, more = self.query_index("GSI1", index_pk, limit=limit, start=start)
        return items, encode_cursor(more["GSI1SK"]["S"]) if more else None

    def scan_page(
        self,
        condition: str,
        values: Item,
        *,
        segment: int,
        segments: int,
        limit: int | None = None,
        start: dict[str, Any] | None = None,
        projection: str | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None, Decimal]:
        """One page of one segment of a parallel scan: the items among the next `limit` read that meet
        `condition`, where the next page starts (None at the segment's end), and the read units it took."""
        if _scope.get() is not None:
            raise TenantIsolationError("a scan reads every tenant")
        request: dict[str, Any] = {
            "TableName": self.name,
            "FilterExpression": condition,
            "ExpressionAttributeValues": to_attributes(values),
            "Segment": segment,
            "TotalSegments": segments,
            "ReturnConsumedCapacity": "TOTAL",
            **({"Limit": limit} if limit else {}),
            **({"ProjectionExpression": projection} if projection else {}),
        }
        if start:
            request["ExclusiveStartKey"] = start
        response = self.client.scan(**request)
        units = Decimal(str((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0)))
        return [from_attributes(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey"), units

    def transact(self, operations: Iterable[dict[str, Any]]) -> None:
        """Write all or nothing. Operations are TransactWriteItems entries without TableName; values are
        plain Python and are serialised here. Raises TransactionCancelled with reasons in caller order."""
        entries = [self._entry(operation) for operation in operations]
        try:
            self.client.transact_write_items(TransactItems=entries)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            raw = error.response.get("CancellationReasons", [])
            reasons = [None if r.get("Code") in (None, "None") else r["Code"] for r in raw]
            items = [from_attributes(r["Item"]) if "Item" in r else None for r in raw]
            raise TransactionCancelled(reasons, items) from error

    def increment(self, pk: str, sk: str, attribute: str) -> int:
        """Add 1 to a counter item's attribute (created at 1) and return the new value, in one write."""
        guard_partition(pk)
        response = self.client.update_item(
            TableName=self.name,
            Key=to_attributes({"PK": pk, "SK": sk}),
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": attribute},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"][attribute]["N"])

    def _entry(self, operation: dict[str, Any]) -> dict[str, Any]:
        ((action, body),) = operation.items()
        if "Item" in body:
            _guard_item(body["Item"])
        else:
            guard_partition(body["Key"]["PK"])
        _all_placeholders_used(body)
        body = dict(body, TableName=self.name)
        for field in ("Item", "Key", "ExpressionAttributeValues"):
            if field in body:
                body[field] = to_attributes(body[field])
        if "ConditionExpression" in body:
            body.setdefault("ReturnValuesOnConditionCheckFailure", "ALL_OLD")
        return {action: body}


_PLACEHOLDER = re.compile(r"[:#][A-Za-z0-9_]+")


def _all_placeholders_used(body: dict[str, Any]) -> None:
    """DynamoDB refuses a request whose expression values or names are not all used (ValidationException);
    the emulator does not, so the mistake is caught here, on every engine, before the round trip."""
    used = set()
    for field in ("UpdateExpression", "ConditionExpression"):
        used |= set(_PLACEHOLDER.findall(body.get(field, "")))
    given = set(body.get("ExpressionAttributeValues", {})) | set(body.get("ExpressionAttributeNames", {}))
    if unused := sorted(given - used):
        raise ValueError(f"expression placeholders given but not used: {', '.join(unused)}")


# --- builders for transaction entries, so call sites read as sentences ---------------------------------


def put(
    item: Item, condition: str | None = None, values: Item | None = None, names: dict[str, str] | None = None
) -> dict:
    body: dict[str, Any] = {"Item": item}
    return {"Put": _with_condition(body, condition, values, names)}


def update(
    pk: str,
    sk: str,
    expression: str,
    values: Item | None = None,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> dict:
    body: dict[str, Any] = {"Key": {"PK": pk, "SK": sk}, "UpdateExpression": expression}
    return {"Update": _with_condition(body, condition, values, names)}


def delete(
    pk: str, sk: str, condition: str | None = None, values: Item | None = None, names: dict[str, str] | None = None
) -> dict:
    return {"Delete": _with_condition({"Key": {"PK": pk, "SK": sk}}, condition, values, names)}


def check(pk: str, sk: str, condition: str, values: Item | None = None, names: dict[str, str] | None = None) -> dict:
    return {"ConditionCheck": _with_condition({"Key": {"PK": pk, "SK": sk}}, condition, values, names)}


def _with_condition(
    body: dict[str, Any], condition: str | None, values: Item | None, names: dict[str, str] | None
) -> dict[str, Any]:
    if condition:
        body["ConditionExpression"] = condition
    if values:
        body["ExpressionAttributeValues"] = values
    if names:
        body["ExpressionAttributeNames"] = names
    return body
