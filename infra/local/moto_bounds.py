"""Bounds on what moto keeps, so that the local stack stays fast and small under steady traffic (D-046).

moto 5.2.5 (the newest release) grows without bound in places that a long-running `make run` meets:

- Every model object ever made (each item image a query returns, each SQS message, stream record, event)
  is kept in a per-class list for moto's dashboard, so nothing is ever freed.
- `TransactWriteItems` deep-copies every table it touches, once per item of the transaction, to roll back
  on a cancellation, and swaps the copy in when it does. A copy costs the whole table *and its stream*, so
  a transaction's time grows with everything ever written.
- A table's stream keeps every record forever (DynamoDB keeps 24 hours), each as nested dicts of both
  item images (about 10 KB each in memory).
- Every `GetShardIterator` and `GetRecords` stores a new iterator forever (DynamoDB's expire after 15
  minutes; a poller under steady traffic makes thousands in that time).
- A `Query` on the table itself reads and sorts every item of the table to find one partition's, so
  each member read slows down as the table grows.

`install()` keeps only the newest instances of each model for the dashboard; replaces the whole-table
copy with an undo log of the items the transaction touches (their images before it, and where the stream
stood); trims streams and iterators as DynamoDB does, bounded by count as well as by age; keeps each
stream record pickled (a sixth of the memory); and has a table query look at its own partition only.
moto's own validation, condition checks and query logic still run unchanged.
"""

from __future__ import annotations

import contextvars
import copy

# B403: only what this process pickled itself
import pickle  # nosec B403
import time
from datetime import timedelta
from typing import Any

from moto.core.common_models import BaseModel
from moto.core.utils import utcnow
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

from infra.local import moto_store

STREAM_RETENTION = timedelta(hours=24)  # DynamoDB Streams' retention
STREAM_MAX_RECORDS = 20_000  # and a bound by count, for a stack that writes far more than a day's worth
ITERATOR_LIFETIME_SECONDS = 15 * 60  # a shard iterator expires after 15 minutes on DynamoDB
ITERATORS_KEPT = 1_000  # and at most this many, newest kept: a reader goes on with the iterator it was given last
TRACKED_INSTANCES = 1_000  # per model class, for moto's dashboard (/moto-api/)

_sharing_tables = contextvars.ContextVar("sharing_tables", default=False)
_queried_partition: contextvars.ContextVar[tuple[Table, DynamoType] | None] = contextvars.ContextVar(
    "queried_partition", default=None
)
_installed = False


def install() -> None:
    """Patch moto in this process (idempotent): the emulator calls it, and so do the tests."""
    global _installed
    if _installed:
        return
    _installed = True
    _bound_instance_tracking()
    _bound_transactions()
    _bound_streams()
    _bound_iterators()
    _bound_queries()
    moto_store.install()


def _bound_instance_tracking() -> None:
    def recent_only(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
        instance = object.__new__(cls)
        tracked = cls.instances_tracked  # type: ignore[attr-defined]
        tracked.append(instance)
        if len(tracked) > 2 * TRACKED_INSTANCES:  # trimmed in halves: amortised O(1) per instance
            del tracked[:-TRACKED_INSTANCES]
        return instance

    BaseModel.__new__ = staticmethod(recent_only)  # type: ignore[assignment]


class _UndoLog:
    """The images, before a transaction, of the items it names, and the end of each touched stream."""

    def __init__(self, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        self.items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self.streams: dict[int, tuple[StreamShard, int]] = {}
        for entry in transact_items:
            op: Any = next(iter(entry.values()), None)
            table = backend.tables.get(op.get("TableName", "")) if isinstance(op, dict) else None
            if table is None:
                continue  # moto's own checks answer for it
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            before = table.get_item(hash_value, range_value)
            self.items.append((table, hash_value, range_value, copy.deepcopy(before)))
            shard = table.stream_shard
            if shard is not None and id(shard) not in self.streams:
                self.streams[id(shard)] = (shard, shard.starting_sequence_number + len(shard.items))

    def restore(self) -> None:
        for table, hash_value, range_value, before in reversed(self.items):
            items: Any = table.items  # {hash: item}, or {hash: {range: item}} with a range key
            if range_value is None:
                if before is None:
                    items.pop(hash_value, None)
                else:
                    items[hash_value] = before
                continue
            partition = items[hash_value]
            if before is None:
                partition.pop(range_value, None)
                if not partition:
                    del items[hash_value]
            else:
                partition[range_value] = before
        for shard, end in self.streams.values():
            del shard.items[max(0, end - shard.starting_sequence_number) :]


def _bound_transactions() -> None:
    transact_write_items = DynamoDBBackend.transact_write_items
    table_deepcopy = getattr(Table, "__deepcopy__", None)

    def shared_during_transaction(self: Table, memo: dict[int, Any]) -> Any:
        if _sharing_tables.get():
            return self  # the undo log keeps what a rollback needs
        if table_deepcopy is not None:
            return table_deepcopy(self, memo)  # type: ignore[no-any-return]
        clone = Table.__new__(Table)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def bounded_transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        undo = _UndoLog(self, transact_items)
        token = _sharing_tables.set(True)
        try:
            transact_write_items(self, transact_items)
        except Exception:
            undo.restore()
            raise
        finally:
            _sharing_tables.reset(token)

    Table.__deepcopy__ = shared_during_transaction  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = bounded_transact_write_items  # type: ignore[method-assign]


def _bound_streams() -> None:
    add, get = StreamShard.add, StreamShard.get

    init = StreamRecord.__init__

    def packed_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.created = self.record["dynamodb"]["ApproximateCreationDateTime"]
        self.packed = pickle.dumps(self.__dict__.pop("record"), protocol=pickle.HIGHEST_PROTOCOL)

    def unpacked(self: Any) -> dict[str, Any]:
        # B301: ours, in-process
        return pickle.loads(self.packed)  # type: ignore[no-any-return]  # noqa: S301  # nosec B301

    StreamRecord.__init__ = packed_init  # type: ignore[method-assign]
    StreamRecord.to_json = unpacked  # type: ignore[method-assign]

    def bounded_add(self: Any, old: Item | None, new: Item | None) -> None:
        add(self, old, new)
        oldest = utcnow() - STREAM_RETENTION
        drop = max(0, len(self.items) - STREAM_MAX_RECORDS)
        while drop < len(self.items) and self.items[drop].created < oldest:
            drop += 1
        if drop:
            del self.items[:drop]
            self.starting_sequence_number += drop  # sequence numbers of the records kept do not change

    def bounded_get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
        # A position before the oldest record kept reads from the oldest (DynamoDB: TrimmedDataAccess).
        return get(self, max(start, self.starting_sequence_number), quantity)  # type: ignore[no-any-return]

    StreamShard.add = bounded_add  # type: ignore[method-assign]
    StreamShard.get = bounded_get  # type: ignore[method-assign]


def _bound_iterators() -> None:
    init = ShardIterator.__init__
    get_shard_iterator, get_records = DynamoDBStreamsBackend.get_shard_iterator, DynamoDBStreamsBackend.get_records

    def timed_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.created = time.monotonic()

    def expire(backend: DynamoDBStreamsBackend) -> None:
        iterators, cutoff = backend.shard_iterators, time.monotonic() - ITERATOR_LIFETIME_SECONDS
        while iterators:  # oldest first: a dict keeps insertion order
            oldest = next(iter(iterators))
            if len(iterators) <= ITERATORS_KEPT and getattr(iterators[oldest], "created", cutoff) > cutoff:
                break
            del iterators[oldest]

    def bounded_get_shard_iterator(self: DynamoDBStreamsBackend, *args: Any, **kwargs: Any) -> ShardIterator:
        expire(self)
        return get_shard_iterator(self, *args, **kwargs)

    def bounded_get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
        expire(self)
        return get_records(self, iterator_arn, limit)  # type: ignore[no-any-return]

    ShardIterator.__init__ = timed_init  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_shard_iterator = bounded_get_shard_iterator  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = bounded_get_records  # type: ignore[method-assign]


def _bound_queries() -> None:
    query, all_items = Table.query, Table.all_items

    def partition_query(self: Any, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name or hash_key is None:
            return query(self, hash_key, *args, **kwargs)  # an index query needs every item
        token = _queried_partition.set((self, hash_key))
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _queried_partition.reset(token)

    def partition_items(self: Any) -> list[Any]:
        scope = _queried_partition.get()
        if scope is None or scope[0] is not self:
            return all_items(self)  # type: ignore[no-any-return]
        partition = self.items.get(scope[1])  # .get: the table's defaultdict must not grow a partition
        if partition is None:
            return []
        return sorted(partition.values(), key=lambda item: item.range_key) if self.range_key_attr else [partition]

    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = partition_items  # type: ignore[method-assign]
