"""moto's tables keep their items in SQLite, outside Python's heap, so that the local stack's memory stays
flat as its data grows (issue 11, D-089; DynamoDB Local keeps its data in SQLite too).

moto holds each item as a tree of Python objects (about 5 KB for 0.65 KB of JSON), in a dict per table that
is never smaller than everything ever written. Here a table's `items` is a mapping with the same interface
moto uses (`items[hash][range]`, `get`, `pop`, `values`, `in`, `len`) over one SQLite file per process:

- Every write goes through: `items[hash][range] = item` (moto's put_item, a transaction's undo) stores the
  item's plain values, pickled, at once; so does an update, which moto makes in place on the item it read
  (`DynamoDBBackend.update_item` is wrapped to store what it returns). SQLite is the truth.
- The `LIVE_ITEMS` most recently used items are kept as moto's objects too, so the items one request
  reads and changes are the same objects for the whole request, and a hot member is not decoded again.
- Each item's index key values are rows of an index table, so a query on a GSI reads only the items of
  the queried partition, as DynamoDB does.

The file is unlinked as soon as it is open: it goes with the process, as moto's data does. moto's own
validation, conditions, expressions and query logic still run, on `Item` objects as before.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import os

# B403: only what this process pickled itself
import pickle  # nosec B403
import sqlite3
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, cast

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table

LIVE_ITEMS = 1_024  # kept as objects at a time: more than one request touches (a transaction names at most 100)
PAGE_CACHE_KB = 8_192  # SQLite's own cache: bounded, whatever the data

_index_query: contextvars.ContextVar[tuple[Table, list[tuple[str, DynamoType]]] | None] = contextvars.ContextVar(
    "index_query", default=None
)
_installed = False


# --- values ------------------------------------------------------------------------------------------------


def _plain(value: DynamoType) -> tuple[str, Any]:
    if value.type == "L":
        return "L", [_plain(v) for v in value.value]
    if value.type == "M":
        return "M", {k: _plain(v) for k, v in value.value.items()}
    return value.type, value.value


def _typed(plain: tuple[str, Any]) -> DynamoType:
    kind, value = plain
    if kind == "L":
        value = [_typed(v) for v in value]
    elif kind == "M":
        value = {sys.intern(k): _typed(v) for k, v in value.items()}
    typed = DynamoType.__new__(DynamoType)
    typed.type, typed.value = sys.intern(kind), value
    return typed


def _key(value: DynamoType | None) -> str:
    """A key value as SQLite stores it: equal exactly when moto's dict keys are (same type and value)."""
    if value is None:
        return ""
    raw = value.value
    return f"{value.type}:{raw}" if isinstance(raw, str) else f"{value.type}!{base64.b64encode(raw).decode()}"


def _encode(item: Item) -> bytes:
    attrs = {k: _plain(v) for k, v in item.attrs.items()}
    range_key = _plain(item.range_key) if item.range_key is not None else None
    return pickle.dumps((attrs, _plain(item.hash_key), range_key), protocol=pickle.HIGHEST_PROTOCOL)


def _decode(body: bytes) -> Item:
    # B301: ours, in-process
    attrs, hash_key, range_key = pickle.loads(body)  # noqa: S301  # nosec B301
    item = cast(Item, Item.__new__(Item))
    item.hash_key = _typed(hash_key)
    item.range_key = _typed(range_key) if range_key else None
    item.attrs = LimitedSizeDict({sys.intern(k): _typed(v) for k, v in attrs.items()})  # no size re-check
    return item


# --- the store ---------------------------------------------------------------------------------------------


class _Store:
    """One SQLite file per process for every table's items, and the items used last as moto's objects."""

    def __init__(self) -> None:
        handle, path = tempfile.mkstemp(prefix="loyalty-moto-", suffix=".sqlite")
        os.close(handle)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        os.unlink(path)  # the open connection keeps it; it goes with the process
        self.db.executescript(
            f"""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -{PAGE_CACHE_KB};
            CREATE TABLE item (t INTEGER, h TEXT, r TEXT, body BLOB, PRIMARY KEY (t, h, r)) WITHOUT ROWID;
            CREATE TABLE idx (t INTEGER, h TEXT, r TEXT, name TEXT, value TEXT, PRIMARY KEY (t, h, r, name))
                WITHOUT ROWID;
            CREATE INDEX idx_value ON idx (t, name, value);
            """
        )
        self.lock = threading.RLock()  # moto's in-process mock has threads
        self.live: OrderedDict[tuple[int, str, str], Item] = OrderedDict()
        self.dropped: list[int] = []  # tables gone: their rows are deleted at the next write
        self.next_table = 0

    def new_table(self) -> int:
        with self.lock:
            self.next_table += 1
            return self.next_table

    def _remember(self, key: tuple[int, str, str], item: Item) -> Item:
        self.live[key] = item
        self.live.move_to_end(key)
        while len(self.live) > LIVE_ITEMS:
            self.live.popitem(last=False)
        return item

    def get(self, t: int, h: str, r: str) -> Item | None:
        with self.lock:
            key = (t, h, r)
            item = self.live.get(key)
            if item is not None:
                self.live.move_to_end(key)
                return item
            row = self.db.execute("SELECT body FROM item WHERE t = ? AND h = ? AND r = ?", key).fetchone()
            return None if row is None else self._remember(key, _decode(row[0]))

    def load(self, t: int, rows: list[tuple[str, str, bytes]]) -> list[Item]:
        """Items of rows read, as the live objects where there are some (they are the same values)."""
        found = []
        for h, r, body in rows:
            key = (t, h, r)
            item = self.live.get(key)
            found.append(item if item is not None else self._remember(key, _decode(body)))
        return found

    def put(self, t: int, item: Item, index_names: tuple[str, ...]) -> None:
        h, r = _key(item.hash_key), _key(item.range_key)
        with self.lock:
            self._drop_gone()
            self.db.execute("INSERT OR REPLACE INTO item VALUES (?, ?, ?, ?)", (t, h, r, _encode(item)))
            self.db.execute("DELETE FROM idx WHERE t = ? AND h = ? AND r = ?", (t, h, r))
            values = [(t, h, r, name, _key(item.attrs[name])) for name in index_names if name in item.attrs]
            if values:
                self.db.executemany("INSERT INTO idx VALUES (?, ?, ?, ?, ?)", values)
            self._remember((t, h, r), item)

    def delete(self, t: int, h: str, r: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM item WHERE t = ? AND h = ? AND r = ?", (t, h, r))
            self.db.execute("DELETE FROM idx WHERE t = ? AND h = ? AND r = ?", (t, h, r))
            self.live.pop((t, h, r), None)

    def forget(self, t: int, h: str, r: str) -> None:
        """Drop the live object: it may have been changed by an update that failed half-way."""
        with self.lock:
            self.live.pop((t, h, r), None)

    def partition(self, t: int, h: str) -> list[Item]:
        with self.lock:
            rows = self.db.execute("SELECT h, r, body FROM item WHERE t = ? AND h = ?", (t, h)).fetchall()
            return self.load(t, rows)

    def partitions(self, t: int) -> list[Item]:
        """One item of each partition, by hash key."""
        with self.lock:
            rows = self.db.execute("SELECT h, MIN(r), body FROM item WHERE t = ? GROUP BY h ORDER BY h", (t,))
            return self.load(t, rows.fetchall())

    def count(self, t: int, h: str | None = None) -> int:
        with self.lock:
            if h is None:
                return int(self.db.execute("SELECT COUNT(*) FROM item WHERE t = ?", (t,)).fetchone()[0])
            return int(self.db.execute("SELECT COUNT(*) FROM item WHERE t = ? AND h = ?", (t, h)).fetchone()[0])

    def indexed(self, t: int, name: str, value: DynamoType) -> list[Item]:
        with self.lock:
            rows = self.db.execute(
                "SELECT item.h, item.r, item.body FROM idx JOIN item USING (t, h, r)"
                " WHERE idx.t = ? AND idx.name = ? AND idx.value = ?",
                (t, name, _key(value)),
            ).fetchall()
            return self.load(t, rows)

    def reindex(self, t: int, index_names: tuple[str, ...]) -> None:
        """An index added by UpdateTable: every item's values for it."""
        with self.lock:
            rows = self.db.execute("SELECT body FROM item WHERE t = ?", (t,)).fetchall()
            for (body,) in rows:
                self.put(t, self.get_or(t, _decode(body)), index_names)

    def get_or(self, t: int, item: Item) -> Item:
        return self.live.get((t, _key(item.hash_key), _key(item.range_key))) or item

    def drop(self, t: int) -> None:
        self.dropped.append(t)  # from a finalizer: list.append is atomic, SQLite may be mid-statement

    def _drop_gone(self) -> None:
        while self.dropped:
            t = self.dropped.pop()
            self.db.execute("DELETE FROM item WHERE t = ?", (t,))
            self.db.execute("DELETE FROM idx WHERE t = ?", (t,))
            for key in [k for k in self.live if k[0] == t]:
                del self.live[key]


_store: _Store | None = None


def store() -> _Store:
    global _store
    if _store is None:
        _store = _Store()
    return _store


# --- moto's view of a table's items ------------------------------------------------------------------------


class _Partition:
    """`table.items[hash]` of a table with a range key: its items by range key."""

    def __init__(self, items: StoredItems, hash_key: DynamoType) -> None:
        self.items, self.hash_key, self.h = items, hash_key, _key(hash_key)

    def __getitem__(self, range_key: DynamoType) -> Item:
        found = store().get(self.items.t, self.h, _key(range_key))
        if found is None:
            raise KeyError(range_key)
        return found

    def get(self, range_key: DynamoType, default: Any = None) -> Any:
        found = store().get(self.items.t, self.h, _key(range_key))
        return default if found is None else found

    def __setitem__(self, range_key: DynamoType, item: Item) -> None:
        self.items.store_item(item)

    def pop(self, range_key: DynamoType, *default: Any) -> Any:
        found = store().get(self.items.t, self.h, _key(range_key))
        if found is None:
            if default:
                return default[0]
            raise KeyError(range_key)
        store().delete(self.items.t, self.h, _key(range_key))
        return found

    def __delitem__(self, range_key: DynamoType) -> None:
        self.pop(range_key)

    def __contains__(self, range_key: DynamoType) -> bool:
        return store().get(self.items.t, self.h, _key(range_key)) is not None

    def values(self) -> list[Item]:
        return store().partition(self.items.t, self.h)

    def keys(self) -> list[DynamoType]:
        return [item.range_key for item in self.values() if item.range_key is not None]

    def __iter__(self) -> Iterator[DynamoType]:
        return iter(self.keys())

    def __len__(self) -> int:
        return store().count(self.items.t, self.h)

    def __bool__(self) -> bool:
        return len(self) > 0


class StoredItems:
    """`table.items`: `{hash: item}` without a range key, `{hash: {range: item}}` with one, in SQLite."""

    def __init__(self, table: Table) -> None:
        self.t = store().new_table()
        self.has_range = bool(table.range_key_attr)
        self.table_indexes = table.all_indexes
        self.index_names = self._index_names()

    def _index_names(self) -> tuple[str, ...]:
        return tuple(sorted({key["AttributeName"] for index in self.table_indexes() for key in index.schema}))

    def store_item(self, item: Item) -> None:
        names = self._index_names()
        if names != self.index_names:  # an index added (or removed) by UpdateTable
            self.index_names = names
            store().reindex(self.t, names)
        store().put(self.t, item, names)

    def __getitem__(self, hash_key: DynamoType) -> Any:
        if self.has_range:
            return _Partition(self, hash_key)  # moto's defaultdict: a partition to put into
        found = store().get(self.t, _key(hash_key), "")
        if found is None:
            raise KeyError(hash_key)
        return found

    def get(self, hash_key: DynamoType, default: Any = None) -> Any:
        if self.has_range:
            return _Partition(self, hash_key) if store().count(self.t, _key(hash_key)) else default
        found = store().get(self.t, _key(hash_key), "")
        return default if found is None else found

    def __setitem__(self, hash_key: DynamoType, value: Any) -> None:
        if self.has_range:  # a whole partition (a backup restored): each of its items
            for item in value.values():
                self.store_item(item)
        else:
            self.store_item(value)

    def pop(self, hash_key: DynamoType, *default: Any) -> Any:
        found = self.get(hash_key)
        if found is None:
            if default:
                return default[0]
            raise KeyError(hash_key)
        for item in found.values() if self.has_range else [found]:
            store().delete(self.t, _key(item.hash_key), _key(item.range_key))
        return found

    def __delitem__(self, hash_key: DynamoType) -> None:
        self.pop(hash_key, None)

    def __contains__(self, hash_key: DynamoType) -> bool:
        return self.get(hash_key) is not None

    def values(self) -> list[Any]:
        firsts = store().partitions(self.t)
        return [_Partition(self, item.hash_key) for item in firsts] if self.has_range else firsts

    def keys(self) -> list[DynamoType]:
        return [item.hash_key for item in store().partitions(self.t)]

    def __iter__(self) -> Iterator[DynamoType]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(store().partitions(self.t))

    def indexed(self, name: str, value: DynamoType) -> list[Item]:
        return store().indexed(self.t, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        """A copy (moto's backups) is a plain dict of copied items: it is not stored."""
        if self.has_range:
            return {p.hash_key: {i.range_key: copy.deepcopy(i, memo) for i in p.values()} for p in self.values()}
        return {i.hash_key: copy.deepcopy(i, memo) for i in self.values()}


# --- patches -----------------------------------------------------------------------------------------------


def install() -> None:
    """Patch moto in this process (idempotent): moto_bounds.install() calls it."""
    global _installed
    if _installed:
        return
    _installed = True
    table_init, update_item = Table.__init__, DynamoDBBackend.update_item
    query, all_items = Table.query, Table.all_items

    def stored_init(self: Table, *args: Any, **kwargs: Any) -> None:
        table_init(self, *args, **kwargs)
        items = StoredItems(self)
        self.items = items  # type: ignore[assignment]
        weakref.finalize(self, store().drop, items.t)

    def storing_update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kw: Any) -> Item:
        table = self.get_table(table_name)
        try:
            item = update_item(self, table_name, key, *args, **kw)
        except Exception:
            if isinstance(table.items, StoredItems):  # moto may have changed the item half-way
                hash_value, range_value = self.get_keys_value(table, key)
                store().forget(table.items.t, _key(hash_value), _key(range_value))
            raise
        if isinstance(table.items, StoredItems):
            table.items.store_item(item)
        return item

    def index_query(self: Table, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[7] if len(args) > 7 else None)
        conditions = kwargs.get("hash_key_conditions")
        if not index_name or not conditions:
            return query(self, *args, **kwargs)
        token = _index_query.set((self, conditions))
        try:
            return query(self, *args, **kwargs)
        finally:
            _index_query.reset(token)

    def index_partition_items(self: Table) -> list[Item]:
        scope = _index_query.get()
        items = self.items
        if scope is None or scope[0] is not self or not isinstance(items, StoredItems):
            return all_items(self)  # type: ignore[no-any-return]
        name, value = next(((n, v) for n, v in scope[1] if n in items.index_names), (None, None))
        if name is None or value is None:
            return all_items(self)  # type: ignore[no-any-return]
        found = items.indexed(name, value)
        return sorted(found, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    Table.__init__ = stored_init  # type: ignore[method-assign]
    DynamoDBBackend.update_item = storing_update_item  # type: ignore[method-assign]
    Table.query = index_query  # type: ignore[method-assign]
    Table.all_items = index_partition_items  # type: ignore[method-assign]
