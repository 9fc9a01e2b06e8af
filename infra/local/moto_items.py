"""Items moto keeps packed, so that the local stack's memory grows with its data at about DynamoDB's size
of an item, not five times that (issue 11, D-086).

moto holds each item as a tree of Python objects: one `DynamoType` per attribute and per nested value, its
own copy of every attribute name, and a size-checked dict. An item of 0.65 KB of JSON takes about 5 KB,
and under steady traffic the data is what is left growing. Here an item of a table is held as one pickled
tree of plain values once it has not been used for a while, and unpacked again when moto next reads it:

- `PackedItem` is moto's `Item` with `attrs` behind a property. An item moto stores (every write goes
  through `Table.put_item`, or changes an item it got from the table in place) becomes one.
- The `LIVE_ITEMS` most recently used items stay unpacked, so the ones a request reads and changes are
  the same objects for the whole request (moto changes an item in place after reading it). The least
  recently used one is packed when another comes in: what moto changed in it is in what is packed.
- A packed item keeps the values of the table's index key attributes beside its packed tree, so a query
  on an index unpacks only the items of the queried partition, as it reads only those on DynamoDB.

moto's own validation, conditions, expressions and query logic still run on the unpacked items unchanged.
"""

from __future__ import annotations

import contextvars
import copy

# B403: only what this process pickled itself
import pickle  # nosec B403
import sys
import threading
from collections import OrderedDict
from typing import Any, cast

from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table

LIVE_ITEMS = 1_024  # unpacked at a time: more than one request changes (a transaction names at most 100)

_index_query: contextvars.ContextVar[tuple[Table, list[tuple[str, DynamoType]]] | None] = contextvars.ContextVar(
    "index_query", default=None
)
_installed = False


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
    typed.type, typed.value = kind, value
    return typed


class _LiveItems:
    """The items unpacked now, least recently used first (one lock: moto's in-process mock has threads)."""

    def __init__(self) -> None:
        self.items: OrderedDict[int, PackedItem] = OrderedDict()
        self.lock = threading.Lock()

    def touch(self, item: PackedItem) -> None:
        with self.lock:
            key = id(item)
            if key in self.items:
                self.items.move_to_end(key)
                return
            self.items[key] = item
            while len(self.items) > LIVE_ITEMS:
                _, oldest = self.items.popitem(last=False)
                oldest.pack()


_live = _LiveItems()


class _Layout:
    """What the packed items of one table share: its key attribute names and its index key attributes."""

    def __init__(self, table: Table) -> None:
        self.hash_key, self.range_key = table.hash_key_attr, table.range_key_attr
        self.index_count = len(table.all_indexes())
        self.index_names = tuple(sorted({key["AttributeName"] for i in table.all_indexes() for key in i.schema}))

    @classmethod
    def of(cls, table: Table) -> _Layout:
        layout: _Layout | None = getattr(table, "_packed_layout", None)
        if layout is None or layout.index_count != len(table.all_indexes()):  # an index added by UpdateTable
            layout = cls(table)
            table._packed_layout = layout  # type: ignore[attr-defined]
        return layout


class PackedItem(Item):
    """moto's item, whose attributes are unpacked only while it is among the recently used."""

    _attrs: LimitedSizeDict | None
    _packed: bytes  # every attribute but the table's key, which the item holds anyway
    _layout: _Layout
    _index_values: tuple[DynamoType | None, ...]  # of _layout.index_names

    @property  # type: ignore[override]
    def attrs(self) -> LimitedSizeDict:
        attrs = self._attrs
        if attrs is None:
            # B301: ours, in-process
            plain = pickle.loads(self._packed)  # noqa: S301  # nosec B301
            attrs = LimitedSizeDict({sys.intern(k): _typed(v) for k, v in plain.items()})  # no size re-check
            dict.__setitem__(attrs, self._layout.hash_key, DynamoType(self.hash_key))
            if self._layout.range_key is not None and self.range_key is not None:
                dict.__setitem__(attrs, self._layout.range_key, DynamoType(self.range_key))
            self._attrs = attrs
        _live.touch(self)
        return attrs

    @attrs.setter
    def attrs(self, value: LimitedSizeDict) -> None:
        self._attrs = value

    def pack(self) -> None:
        attrs = self._attrs
        if attrs is None:
            return
        layout = self._layout
        keys = (layout.hash_key, layout.range_key)
        plain = {k: _plain(v) for k, v in attrs.items() if k not in keys}
        self._packed = pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
        self._index_values = tuple(attrs.get(name) for name in layout.index_names)
        for value in (self.hash_key, self.range_key, *self._index_values):
            if value is not None:
                value.type = sys.intern(value.type)  # one "S" for every item, not one per request
        self._attrs = None

    def may_match(self, conditions: list[tuple[str, DynamoType]]) -> bool:
        """False only when the packed index keys show the item is not in the queried index partition."""
        if self._attrs is not None:
            return True  # unpacked: moto's own check reads the current values
        names = self._layout.index_names
        for name, expected in conditions:
            if name not in names:
                return True
            value = self._index_values[names.index(name)]
            if value is None or value != expected:
                return False
        return True

    def __deepcopy__(self, memo: dict[int, Any]) -> Item:
        """A copy (moto's undo images, the image before an update) is a plain item: it is not stored."""
        result = cast(Item, Item.__new__(Item))
        memo[id(self)] = result
        result.hash_key = copy.deepcopy(self.hash_key, memo)
        result.range_key = copy.deepcopy(self.range_key, memo)
        attrs = LimitedSizeDict()
        for key, value in self.attrs.items():
            dict.__setitem__(attrs, key, copy.deepcopy(value, memo))
        result.attrs = attrs
        return result


def adopt(table: Table, item: Item | None) -> Item | None:
    """Store a packed item in place of a plain one the table holds (unpacked for now, recently used)."""
    if type(item) is not Item:
        return item
    packed = cast(PackedItem, PackedItem.__new__(PackedItem))
    # Every attribute in one order, set here once: instances then share one key table and have no dict.
    packed.hash_key, packed.range_key = item.hash_key, item.range_key
    packed._attrs, packed._layout, packed._packed, packed._index_values = item.attrs, _Layout.of(table), b"", ()
    items: Any = table.items  # {hash: item}, or {hash: {range: item}} with a range key
    if table.range_key_attr:
        items[item.hash_key][item.range_key] = packed
    else:
        items[item.hash_key] = packed
    _live.touch(packed)
    return packed


def install() -> None:
    """Patch moto in this process (idempotent): moto_bounds.install() calls it."""
    global _installed
    if _installed:
        return
    _installed = True
    put_item, query, all_items = Table.put_item, Table.query, Table.all_items

    def packing_put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
        return adopt(self, put_item(self, *args, **kwargs))  # type: ignore[return-value]

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
        if scope is None or scope[0] is not self:
            return all_items(self)  # type: ignore[no-any-return]
        conditions = scope[1]
        partitions: Any = self.items.values()
        candidates: list[Item] = [
            item
            for part in partitions
            for item in (part.values() if self.range_key_attr else [part])
            if not isinstance(item, PackedItem) or item.may_match(conditions)
        ]
        return sorted(candidates, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    Table.put_item = packing_put_item  # type: ignore[method-assign]
    Table.query = index_query  # type: ignore[method-assign]
    Table.all_items = index_partition_items  # type: ignore[method-assign]
