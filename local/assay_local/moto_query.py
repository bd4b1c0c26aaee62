"""DynamoDB Query on moto reading the partition it names, not the whole table.

moto (5.2.5) answers every Query — on the table or on an index — by listing *every* item of
the table, sorted by its primary key (``Table.all_items``), and keeping those whose hash key
matches; an index's results are then projected through ``Item.project``, which converts the
whole item to plain JSON once per projected attribute. On the local stack every page of
runs, every read of a run's batches and every RunsBy* count paid for the whole table (the
batches of every run included), one DynamoDB request at a time: ~22 % of the stack
process under read load, growing with everything stored.

The replacements, answers unchanged:

* ``Table.query`` runs moto's own algorithm (sort, ExclusiveStartKey, Limit, the 1 MB page,
  ScanIndexForward, conditions, filters, projections, LastEvaluatedKey) on a view of the
  table whose ``all_items()`` holds only the candidates, in ``all_items``' order: on the
  table, the items of the one partition (a dictionary lookup); on an index, the items
  carrying every hash attribute of the query with the value asked (one pass of attribute
  lookups over the items, no sort of the table, no copy). moto's own checks then run on
  those candidates as they would on every item, so an item outside them could never have
  been kept. A query it does not recognise (no hash key, an index query without hash
  conditions, a table without a range key) goes to moto's as it is.
* ``SecondaryIndex.project`` (KEYS_ONLY, INCLUDE) converts each projected attribute once,
  through the same deserialiser and serialiser as ``Item.project``, instead of the whole
  item once per projected attribute; same attributes, same order, same values. An
  attribute name ``Item.project`` would read as a path (``a[1]``) goes to moto's.

``tests/local/test_moto_query.py`` holds its answers to moto's own (ordering, pagination,
Limit, ScanIndexForward, projections, sparse indexes, filters). No owner, no state:
installing it twice is installing it once.
"""

from __future__ import annotations

import re
from typing import Any

from moto.dynamodb.models.dynamo_type import Item, deserializer, serializer
from moto.dynamodb.models.table import SecondaryIndex, Table

from assay_local.moto_hooks import Replacement

_original_query = Table.query
_original_project = SecondaryIndex.project
_PATH = re.compile(r"(.+)\[(\d+)\]$")  # what find_nested_key reads as a list element


def _primary_key(item: Item) -> Any:
    """``Table.all_items``' sort key."""
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


class _Candidates:
    """The table, but for ``all_items()``: only the items that can match the query."""

    def __init__(self, table: Table, items: list[Item]) -> None:
        self._table = table
        self._items = items

    def all_items(self) -> list[Item]:
        return self._items

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _candidates(
    table: Table,
    hash_key: Any,
    index_name: str | None,
    hash_key_conditions: list[tuple[str, Any]] | None,
) -> list[Item] | None:
    """The items moto's query could keep, in ``all_items()`` order; None: not narrowed."""
    if not table.range_key_attr:
        return None
    if not index_name:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)  # .get: items is a defaultdict
        return sorted(partition.values(), key=_primary_key) if partition else []
    if not hash_key_conditions:
        return None
    found = [
        item
        for partition in table.items.values()
        for item in partition.values()
        if all(_equal(item.attrs.get(name), value) for name, value in hash_key_conditions)
    ]
    return sorted(found, key=_primary_key)


def _equal(value: Any, wanted: Any) -> bool:
    return value is not None and value == wanted


def query(
    self: Table,
    hash_key: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int,
    exclusive_start_key: dict[str, Any],
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, Any]] | None = None,
    range_key_conditions: list[tuple[str, str, list[Any]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    items = _candidates(self, hash_key, index_name, hash_key_conditions)
    table: Any = self if items is None else _Candidates(self, items)
    return _original_query(
        table,
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name,
        consistent_read,
        filter_expression,
        hash_key_conditions=hash_key_conditions,
        range_key_conditions=range_key_conditions,
        **filter_kwargs,
    )


def project(self: SecondaryIndex, item: Item) -> Item:
    projection_type = (self.projection or {}).get("ProjectionType")
    if projection_type not in ("KEYS_ONLY", "INCLUDE"):
        return _original_project(self, item)
    names = self.table_key_attrs + [key["AttributeName"] for key in self.schema]
    if projection_type == "INCLUDE":
        names += self.projection.get("NonKeyAttributes", [])
    if any(_PATH.match(name) for name in names):
        return _original_project(self, item)
    result: dict[str, Any] = {}
    for name in names:
        if name in item.attrs and name not in result:
            result[name] = deserializer.deserialize(item.attrs[name].to_regular_json())
    return Item(hash_key=item.hash_key, range_key=item.range_key, attrs=serializer.serialize(result)["M"])


REPLACEMENTS = (Replacement(Table, "query", query), Replacement(SecondaryIndex, "project", project))
