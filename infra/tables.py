"""Table shapes read from the PynamoDB models the topology names, never restated by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.topology import TableSpec


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str  # "S", "N" or "B"


@dataclass(frozen=True)
class IndexShape:
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None
    projection: str  # "ALL", "KEYS_ONLY" or "INCLUDE"
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableShape:
    logical_name: str
    physical_name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None
    billing_mode: str
    global_indexes: tuple[IndexShape, ...]
    local_indexes: tuple[IndexShape, ...]
    stream_view_type: str | None
    ttl_attribute: str | None

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.global_indexes + self.local_indexes)


def table_shape(spec: TableSpec) -> TableShape:
    model = spec.load_model()
    schema = model._get_schema()
    types = _attribute_types(schema)
    partition, sort = _keys(schema["key_schema"], types)
    meta = model.Meta
    return TableShape(
        logical_name=spec.name,
        physical_name=meta.table_name,
        partition_key=partition,
        sort_key=sort,
        billing_mode=getattr(meta, "billing_mode", None) or "PAY_PER_REQUEST",
        global_indexes=tuple(
            _index(i, types) for i in schema.get("global_secondary_indexes") or ()
        ),
        local_indexes=tuple(_index(i, types) for i in schema.get("local_secondary_indexes") or ()),
        stream_view_type=getattr(meta, "stream_view_type", None),
        ttl_attribute=spec.ttl_attribute,
    )


def _attribute_types(schema: dict[str, Any]) -> dict[str, str]:
    types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    for index in (schema.get("global_secondary_indexes") or []) + (
        schema.get("local_secondary_indexes") or []
    ):
        for a in index.get("attribute_definitions") or ():
            types.setdefault(a["AttributeName"], a["AttributeType"])
    return types


def _keys(
    key_schema: list[dict[str, str]], types: dict[str, str]
) -> tuple[KeyAttribute, KeyAttribute | None]:
    by_type = {k["KeyType"]: k["AttributeName"] for k in key_schema}
    partition = KeyAttribute(by_type["HASH"], types[by_type["HASH"]])
    sort_name = by_type.get("RANGE")
    return partition, (KeyAttribute(sort_name, types[sort_name]) if sort_name else None)


def _index(index: dict[str, Any], types: dict[str, str]) -> IndexShape:
    partition, sort = _keys(index["key_schema"], types)
    projection = index.get("projection") or {"ProjectionType": "ALL"}
    return IndexShape(
        name=index["index_name"],
        partition_key=partition,
        sort_key=sort,
        projection=projection["ProjectionType"],
        non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
    )
