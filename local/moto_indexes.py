"""Queries of the embedded AWS without the table walk.

moto answers every DynamoDB Query, on the table or on an index, by sorting all the table's
items and testing each: the cost grows with the table, not with the answer (a citizen's ticket
list walked every ticket of the district). Here a query reads only its candidates and then
runs moto's own code on them, so its answer is moto's: the same order, the same pages
(ExclusiveStartKey / LastEvaluatedKey), the same Limit and filter semantics, the same errors.

- A table query's candidates are the items under its hash key (moto's own dict, no index).
- An index query's candidates come from a hash index kept per table and index:
  index hash values → keys of the items carrying them, built on the index's first query and
  kept current on every write: `Table.put_item` and `Table.delete_item` (put, delete, batch,
  transaction steps, the upsert of an update), `DynamoDBBackend.update_item` (which changes
  an item in place) and, after a transaction, every key it named (a cancelled one is rolled
  back item by item, `local/moto_server.py`). A table restored from a checkpoint is a new
  object and gets a new index on its first query; PartiQL writes drop every index.

The candidate set is a superset of the answer (an item is indexed under the values it has;
moto re-tests each condition), and a key whose item is gone is skipped, so an index entry left
behind by a write that bypassed these hooks cannot add an item, only cost a lookup.

Safe only in a server that runs one request at a time (as `local/moto_server.py` does).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

_Key = tuple[Any, Any]  # (hash key, range key or None) as moto's DynamoType values


class _Narrowed:
    """The table as moto's query code sees it, with only the candidates as its items."""

    def __init__(self, table: Any, candidates: list[Any]):
        self._table = table
        self._candidates = candidates

    def all_items(self) -> list[Any]:
        return self._candidates

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


class _HashIndex:
    def __init__(self, attributes: tuple[str, ...]):
        self.attributes = attributes
        self.buckets: dict[tuple[Any, ...], dict[_Key, None]] = {}
        self.values_of: dict[_Key, tuple[Any, ...]] = {}

    def values(self, item: Any) -> tuple[Any, ...] | None:
        found = tuple(item.attrs.get(name) for name in self.attributes)
        return None if any(value is None for value in found) else found

    def add(self, key: _Key, item: Any) -> None:
        values = self.values(item)
        if values is not None:
            self.buckets.setdefault(values, {})[key] = None
            self.values_of[key] = values

    def remove(self, key: _Key) -> None:
        values = self.values_of.pop(key, None)
        if values is None:
            return
        bucket = self.buckets.get(values)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self.buckets[values]


class _TableIndexes:
    def __init__(self, table: Any):
        self.table = weakref.ref(table)
        self.items_id = id(table.items)
        self.indexes: dict[str, _HashIndex] = {}


# id(table) → its indexes; the weak reference tells a reused id from the same table.
_tables: dict[int, _TableIndexes] = {}


def _indexes_of(table: Any, create: bool) -> _TableIndexes | None:
    found = _tables.get(id(table))
    if found is not None and (found.table() is not table or found.items_id != id(table.items)):
        found = None  # another table at a reused address, or its items were replaced
        del _tables[id(table)]
    if found is None and create:
        found = _tables[id(table)] = _TableIndexes(table)
        weakref.finalize(table, _tables.pop, id(table), None)
    return found


def _item_at(table: Any, key: _Key) -> Any:
    hash_key, range_key = key
    if table.range_key_attr is None:
        return table.items.get(hash_key)
    return table.items.get(hash_key, {}).get(range_key)


def _every_item(table: Any) -> list[tuple[_Key, Any]]:
    if table.range_key_attr is None:
        return [((hash_key, None), item) for hash_key, item in table.items.items()]
    return [
        ((hash_key, range_key), item)
        for hash_key, by_range in table.items.items()
        for range_key, item in by_range.items()
    ]


def _hash_attributes(index: Any) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")


def _hash_index(table: Any, index_name: str) -> _HashIndex | None:
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None:
        return None
    attributes = _hash_attributes(index)
    if not attributes:
        return None
    indexes = _indexes_of(table, create=True)
    assert indexes is not None
    found = indexes.indexes.get(index_name)
    if found is None or found.attributes != attributes:
        found = indexes.indexes[index_name] = _HashIndex(attributes)
        for key, item in _every_item(table):
            found.add(key, item)
    return found


def reindex(table: Any, key: _Key) -> None:
    """Put one key of `table` in its indexes as its item is now (gone: out of them)."""
    indexes = _indexes_of(table, create=False)
    if indexes is None:
        return
    item = _item_at(table, key)
    for index in indexes.indexes.values():
        index.remove(key)
        if item is not None:
            index.add(key, item)


def forget(table: Any) -> None:
    """Drop the indexes of `table`; its next index query builds them again."""
    _tables.pop(id(table), None)


def candidates(
    table: Any,
    hash_key: Any,
    index_name: str | None,
    hash_key_conditions: list[tuple[str, Any]] | None,
) -> list[Any] | None:
    """The items a query can answer, in moto's table order; None when the query must walk
    the table (no usable hash condition: moto then answers as it always does)."""
    if not index_name:
        if hash_key is None:
            return None
        if table.range_key_attr is None:
            item = table.items.get(hash_key)
            return [] if item is None else [item]
        return sorted(table.items.get(hash_key, {}).values(), key=lambda item: item.range_key)
    index = _hash_index(table, index_name)
    if index is None:
        return None
    conditions = dict(hash_key_conditions or [])
    if any(name not in conditions for name in index.attributes):
        return None
    values = tuple(conditions[name] for name in index.attributes)
    keys = list(index.buckets.get(values, {}))
    found = [item for item in (_item_at(table, key) for key in keys) if item is not None]
    return sorted(found, key=_table_order)


def _table_order(item: Any) -> Any:
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


def _key_of(table: Any, attributes: dict[str, Any]) -> _Key | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if not isinstance(attributes, dict) or table.hash_key_attr not in attributes:
        return None
    range_attr = table.range_key_attr
    if range_attr is not None and range_attr not in attributes:
        return None
    hash_key = DynamoType(attributes[table.hash_key_attr])
    return hash_key, DynamoType(attributes[range_attr]) if range_attr is not None else None


def _named_keys(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, _Key]]:
    named = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        ((kind, operation),) = entry.items()
        if not isinstance(operation, dict):
            continue
        table = backend.tables.get(operation.get("TableName"))
        if table is None:
            continue
        key = _key_of(table, operation.get("Item") if kind == "Put" else operation.get("Key"))
        if key is not None:
            named.append((table, key))
    return named


def install() -> None:
    """Patch moto's DynamoDB query and write paths as the module docstring says; idempotent.
    Install after the transaction patch of `local/moto_server.py`, so the keys of a cancelled
    transaction are indexed again after its rollback."""
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_local_indexed", False):
        return
    backend_type = dynamodb_models.DynamoDBBackend
    query: Callable[..., Any] = Table.query

    def indexed_query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        found = candidates(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
        target = self if found is None else _Narrowed(self, found)
        return query(
            target,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            *args,
            **kwargs,
        )

    put_item = Table.put_item

    def indexed_put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return put_item(self, item_attrs, *args, **kwargs)
        finally:
            key = _key_of(self, item_attrs)
            if key is not None:
                reindex(self, key)

    delete_item = Table.delete_item

    def indexed_delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return delete_item(self, hash_key, range_key)
        finally:
            reindex(self, (hash_key, range_key if self.range_key_attr is not None else None))

    update_item = backend_type.update_item

    def indexed_update_item(self: Any, table_name: str, key: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            table = self.tables.get(table_name)
            if table is not None:
                named = _key_of(table, key)
                if named is not None:
                    reindex(table, named)
                else:  # a key moto reads its own way: rebuild rather than guess
                    forget(table)

    transact = backend_type.transact_write_items

    def indexed_transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        try:
            return transact(self, transact_items)
        finally:
            for table, key in _named_keys(self, transact_items):
                reindex(table, key)

    def forgetting(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            finally:
                for table in self.tables.values():
                    forget(table)

        return run

    Table.query = indexed_query  # type: ignore[method-assign]
    Table.put_item = indexed_put_item  # type: ignore[method-assign]
    Table.delete_item = indexed_delete_item  # type: ignore[method-assign]
    backend_type.update_item = indexed_update_item  # type: ignore[method-assign]
    backend_type.transact_write_items = indexed_transact  # type: ignore[method-assign]
    for name in ("execute_statement", "execute_transaction", "batch_execute_statement"):
        if hasattr(backend_type, name):
            setattr(backend_type, name, forgetting(getattr(backend_type, name)))
    Table._local_indexed = True  # type: ignore[attr-defined]
