"""DynamoDB adapters: one table, tenant-scoped keys, no Scan anywhere.

Key design (docs/decisions/0002-storage-layout.md):

============================  ==============================  ==========================
item                          PK / SK                         GSI1PK / GSI1SK
============================  ==============================  ==========================
tenant                        TENANT#{tid} / TENANT           —
tenant slug (unique)          TENANTSLUG#{slug} / SLUG        —
API key (by keyed hash)       APIKEY#{hmac} / APIKEY          T#{tid}#APIKEYS / created#id
dataset                       T#{tid}#DS#{id} / DS            T#{tid}#DS / created#id
dataset version               T#{tid}#DS#{id} / V#{n:08}      —
eval                          T#{tid}#EVAL#{id} / EVAL        T#{tid}#EVAL / created#id
eval version                  T#{tid}#EVALVER#{id} / EVALVER  T#{tid}#EVAL#{eval}#V / {n:08}
run                           T#{tid}#RUN#{key} / RUN         RunsBy* indexes (below)
batch of evaluations          T#{tid}#RUN#{key} / B#{i:07}    —
 …its continuation parts      T#{tid}#RUN#{key} / B#{i:07}#{n:03} —
run counter                   T#{tid}#RUNCOUNT / {dim}#{v}    —
============================  ==============================  ==========================

Runs are listed through six sparse indexes — ``RunsByTenant`` (``T#{tid}``) and
``RunsByEval``/``EvalVersion``/``Dataset``/``Project``/``Status`` (``T#{tid}#{value}``) —
sorted by ``RunCreated`` (``{created_at}#{id}``), projecting only the filter attributes.
How many runs match one criterion (or none) is an exact counter item (``ALL``,
``status#{s}``, ``eval_id#{id}``…), moved in the transactions that create runs and change
their status (docs/decisions/0007-run-counters.md).

The tenant id is part of every key a request can reach, so a query can only ever
return the caller's items: isolation is in the key condition, not in a filter.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, TypeVar
from uuid import UUID

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import BaseModel

from assay_service.domain.ids import run_key
from assay_service.errors import (
    BatchTooLargeError,
    ConflictError,
    QuotaExceededError,
    TransientStoreError,
)
from assay_service.models.domain import (
    TERMINAL_STATUSES,
    Dataset,
    DatasetVersion,
    Eval,
    Evaluation,
    EvalVersion,
    Project,
    Run,
    Tenant,
    utcnow,
)
from assay_service.models.workflow import BatchOutcome

M = TypeVar("M", bound=BaseModel)

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)

# Per-item reasons of a cancelled transaction that a retry can clear.
TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)

# DynamoDB attribute values are built here, not by boto3.dynamodb.types: importing that
# module imports boto3 and s3transfer (~380 ms of every cold start, uncompiled) for two small
# functions. Same wire format as boto3's TypeSerializer/TypeDeserializer (property-tested
# against them in tests/unit/test_dynamodb_values.py), except: floats are accepted (stored
# exactly as ``repr`` prints them), numbers come back as int or float rather than Decimal,
# and binary values as ``bytes`` rather than boto3's ``Binary`` wrapper.
_NUMBER_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _number(value: int | float | Decimal) -> str:
    text = str(_NUMBER_CONTEXT.create_decimal(repr(value) if isinstance(value, float) else value))
    if text in ("Infinity", "-Infinity", "NaN", "-NaN", "sNaN", "-sNaN"):
        raise TypeError(f"DynamoDB cannot store the number {value!r}")
    return text


def _attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (``{"S": ...}``, ``{"M": ...}``, …)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": value}
    if isinstance(value, Mapping):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(v) for v in value]}
    if isinstance(value, AbstractSet) and value:
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, bytes | bytearray) for v in value):
            return {"BS": list(value)}
    raise TypeError(f"DynamoDB cannot store a {type(value).__name__}: {value!r:.80}")


def _python_number(text: str) -> int | float:
    number = _NUMBER_CONTEXT.create_decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _value(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as Python (numbers as int or float, binary as bytes)."""
    ((kind, raw),) = attribute.items()
    if kind == "S":
        return raw
    if kind == "N":
        return _python_number(raw)
    if kind == "M":
        return {k: _value(v) for k, v in raw.items()}
    if kind == "L":
        return [_value(v) for v in raw]
    if kind in ("BOOL", "B"):
        return raw
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_python_number(v) for v in raw}
    if kind == "BS":
        return set(raw)
    raise TypeError(f"unknown DynamoDB attribute type {kind!r}")


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in item.items() if v is not None}


def expression_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """ExpressionAttributeValues: every value named, None as NULL. (``serialize`` drops
    None, which suits an item, but a value an expression names must be there, or DynamoDB
    rejects the whole request: "An expression attribute value used in expression is not
    defined".)"""
    return {k: _attribute(v) for k, v in values.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in item.items()}


# Attributes holding nested data are stored as JSON text: cheaper to read and write
# than DynamoDB maps, and never updated in place.
_JSON_FIELDS = frozenset({"metrics", "aggregates", "judge", "metadata"})


def model_item(model: BaseModel, **keys: Any) -> dict[str, Any]:
    data = model.model_dump(mode="json")
    for name in _JSON_FIELDS & data.keys():
        data[name] = json.dumps(data[name], separators=(",", ":"))
    return {**data, **keys}


def item_model(cls: type[M], item: Mapping[str, Any]) -> M:
    fields = cls.model_fields
    data = {k: v for k, v in item.items() if k in fields}
    for name in _JSON_FIELDS & data.keys():
        if isinstance(data[name], str):
            data[name] = json.loads(data[name])
    return cls.model_validate(data)


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def transient(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in TRANSIENT_CODES


class Table:
    """The single table: raw operations plus error mapping."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            if transient(exc):
                raise TransientStoreError(f"DynamoDB {op}: {exc}") from exc
            raise
        except (BotoConnectionError, HTTPClientError) as exc:
            # The client's own retries are spent (no connection, connection dropped, read
            # timeout — possibly after the write committed): the workflow retries the step,
            # and conditional writes make that retry safe. Found by tests/faults.
            raise TransientStoreError(f"DynamoDB {op}: {exc}") from exc

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        out = self._call(
            "get_item", TableName=self.name, Key=serialize({"PK": pk, "SK": sk}), ConsistentRead=consistent
        )
        item = out.get("Item")
        return deserialize(item) if item else None

    def put(self, item: Mapping[str, Any], *, condition: str | None = None) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        self._call("put_item", **kwargs)

    def update(
        self,
        pk: str,
        sk: str,
        *,
        expression: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize({"PK": pk, "SK": sk}),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": expression_values(values),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if condition:
            kwargs["ConditionExpression"] = condition
        self._call("update_item", **kwargs)

    @staticmethod
    def _key_names(index: str | None) -> tuple[str, str]:
        if index is None:
            return "PK", "SK"
        if index == "GSI1":
            return "GSI1PK", "GSI1SK"
        return index, "RunCreated"  # the RunsBy* indexes are keyed by their own name

    def _condition(
        self,
        pk: str,
        sk_prefix: str | None,
        index: str | None,
        filters: Mapping[str, str] | None,
        sk_from: str | None = None,
    ) -> dict[str, Any]:
        pk_name, sk_name = self._key_names(index)
        expression = "#pk = :pk"
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": pk}
        if sk_prefix is not None and sk_from is not None:
            expression += " AND #sk BETWEEN :from AND :to"
            names["#sk"] = sk_name
            values[":from"], values[":to"] = sk_from, sk_prefix + "\uffff"
        elif sk_prefix is not None:
            expression += " AND begins_with(#sk, :sk)"
            names["#sk"] = sk_name
            values[":sk"] = sk_prefix
        kwargs: dict[str, Any] = {"TableName": self.name, "KeyConditionExpression": expression}
        if index:
            kwargs["IndexName"] = index
        if filters:
            clauses = []
            for i, (name, value) in enumerate(sorted(filters.items())):
                names[f"#q{i}"], values[f":q{i}"] = name, value
                clauses.append(f"#q{i} = :q{i}")
            kwargs["FilterExpression"] = " AND ".join(clauses)
        kwargs["ExpressionAttributeNames"] = names
        kwargs["ExpressionAttributeValues"] = serialize(values)
        return kwargs

    def query(
        self,
        *,
        pk: str,
        sk_prefix: str | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start: Mapping[str, Any] | None = None,
        filters: Mapping[str, str] | None = None,
        sk_from: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict | None]:
        """One page of a Query (after filters, so it may hold fewer than ``limit``).
        ``sk_from`` with ``sk_prefix`` reads sort keys in [sk_from, prefix-end]."""
        kwargs = self._condition(pk, sk_prefix, index, filters, sk_from)
        kwargs["ScanIndexForward"] = forward
        if limit:
            kwargs["Limit"] = limit
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        out = self._call("query", **kwargs)
        last = out.get("LastEvaluatedKey")
        return [deserialize(i) for i in out.get("Items", [])], deserialize(last) if last else None

    def count(self, *, pk: str, index: str | None = None, filters: Mapping[str, str] | None = None) -> int:
        """Items matching a key condition (and filters): Select=COUNT, page by page."""
        kwargs = self._condition(pk, None, index, filters)
        kwargs["Select"] = "COUNT"
        total = 0
        while True:
            out = self._call("query", **kwargs)
            total += out.get("Count", 0)
            if "LastEvaluatedKey" not in out:
                return total
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def batch_get(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Items by key (≤ 100), in the order asked; missing ones are skipped."""
        if not keys:
            return []
        request = {
            self.name: {"Keys": [serialize({"PK": pk, "SK": sk}) for pk, sk in keys], "ConsistentRead": True}
        }
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for _ in range(8):
            out = self._call("batch_get_item", RequestItems=request)
            for raw in out.get("Responses", {}).get(self.name, []):
                item = deserialize(raw)
                found[(item["PK"], item["SK"])] = item
            request = out.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise TransientStoreError("DynamoDB BatchGetItem left keys unprocessed")
        return [found[k] for k in keys if k in found]

    def query_all(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        start = None
        while True:
            items, start = self.query(start=start, **kwargs)
            yield from items
            if not start:
                return

    def transact(self, items: Sequence[Mapping[str, Any]]) -> None:
        """TransactWriteItems. A cancellation for a condition raises the ClientError with its
        reasons (callers decide what a failed condition means); one caused only by
        contention or throttling (``TransactionConflict`` when concurrent batches update
        one run, ``ThrottlingError``…) is TransientStoreError, which the workflow retries."""
        try:
            self._call("transact_write_items", TransactItems=list(items))
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if "ConditionalCheckFailed" not in codes and set(codes) & TRANSIENT_REASONS:
                raise TransientStoreError(f"DynamoDB transaction cancelled: {codes}") from exc
            raise

    def put_op(self, item: Mapping[str, Any], condition: str | None = None) -> dict[str, Any]:
        op: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if condition:
            op["ConditionExpression"] = condition
        return {"Put": op}

    def update_op(
        self,
        pk: str,
        sk: str,
        *,
        expression: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str | None = None,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize({"PK": pk, "SK": sk}),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": expression_values(values),
        }
        if names:
            op["ExpressionAttributeNames"] = dict(names)
        if condition:
            op["ConditionExpression"] = condition
        return {"Update": op}

    def _keyed_op(
        self,
        kind: str,
        pk: str,
        sk: str,
        condition: str,
        values: Mapping[str, Any] | None,
        names: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize({"PK": pk, "SK": sk}),
            "ConditionExpression": condition,
        }
        if values:
            op["ExpressionAttributeValues"] = expression_values(values)
        if names:
            op["ExpressionAttributeNames"] = dict(names)
        return {kind: op}

    def delete_op(
        self,
        pk: str,
        sk: str,
        *,
        condition: str = "attribute_exists(PK)",
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._keyed_op("Delete", pk, sk, condition, values, names)

    def check_op(
        self,
        pk: str,
        sk: str,
        *,
        condition: str,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._keyed_op("ConditionCheck", pk, sk, condition, values, names)

    def keys(
        self, *, pk: str, sk_prefix: str | None = None, index: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The table keys (PK, SK) of a partition's items, page by page; attributes the
        index projects are not read (a batch item's data is never transferred)."""
        kwargs = self._condition(pk, sk_prefix, index, None)
        kwargs["ProjectionExpression"] = "PK, SK"
        while True:
            out = self._call("query", **kwargs)
            yield from (deserialize(i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def batch_delete(self, keys: Sequence[tuple[str, str]]) -> None:
        """Delete items by key, 25 per BatchWriteItem; unprocessed ones are sent again
        (a missing item is no error: a repeated delete is harmless)."""
        for start in range(0, len(keys), 25):
            request = {
                self.name: [
                    {"DeleteRequest": {"Key": serialize({"PK": pk, "SK": sk})}}
                    for pk, sk in keys[start : start + 25]
                ]
            }
            for attempt in range(8):
                out = self._call("batch_write_item", RequestItems=request)
                request = out.get("UnprocessedItems") or {}
                if not request:
                    break
                _pause(min(0.05 * 2**attempt, 1.0))
            else:
                raise TransientStoreError("DynamoDB BatchWriteItem left items unprocessed")


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-item reasons of a cancelled transaction (``None`` for items that were fine)."""
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


# ====================================================================== tenants and keys
class DynamoDBTenantRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get_by_slug(self, slug: str) -> Tenant | None:
        link = self.table.get(f"TENANTSLUG#{slug}", "SLUG")
        if not link:
            return None
        item = self.table.get(f"TENANT#{link['tenant_id']}", "TENANT")
        return item_model(Tenant, item) if item else None

    def create(self, tenant: Tenant) -> Tenant:
        """Create the tenant and claim its slug atomically; an existing slug wins."""
        try:
            self.table.transact(
                [
                    self.table.put_op(
                        {"PK": f"TENANTSLUG#{tenant.slug}", "SK": "SLUG", "tenant_id": str(tenant.id)},
                        condition="attribute_not_exists(PK)",
                    ),
                    self.table.put_op(
                        model_item(tenant, PK=f"TENANT#{tenant.id}", SK="TENANT"),
                        condition="attribute_not_exists(PK)",
                    ),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                existing = self.get_by_slug(tenant.slug)
                if existing:
                    return existing
            raise
        return tenant

    def put_key(
        self,
        *,
        key_hash: str,
        key_id: UUID,
        tenant_id: UUID,
        role: str,
        prefix: str,
        created_at: str,
        expires_at: str | None,
        name: str | None = None,
    ) -> bool:
        """Store a key by its keyed hash, with a tenant-scoped pointer by id (one
        transaction); False when that hash is already stored."""
        item = {
            "PK": f"APIKEY#{key_hash}",
            "SK": "APIKEY",
            "GSI1PK": f"T#{tenant_id}#APIKEYS",
            "GSI1SK": f"{created_at}#{key_id}",
            "key_id": str(key_id),
            "tenant_id": str(tenant_id),
            "role": role,
            "name": name,
            "prefix": prefix,
            "created_at": created_at,
            "expires_at": expires_at,
            "revoked": False,
        }
        pointer = {
            "PK": f"T#{tenant_id}#APIKEYID#{key_id}",
            "SK": "APIKEYID",
            "tenant_id": str(tenant_id),
            "key_hash": key_hash,
        }
        try:
            self.table.transact(
                [
                    self.table.put_op(item, condition="attribute_not_exists(PK)"),
                    self.table.put_op(pointer, condition="attribute_not_exists(PK)"),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                return False
            raise
        return True

    def get_key(self, key_hash: str) -> dict[str, Any] | None:
        return self.table.get(f"APIKEY#{key_hash}", "APIKEY")

    def get_key_by_id(self, tenant_id: UUID, key_id: UUID) -> dict[str, Any] | None:
        pointer = self.table.get(f"T#{tenant_id}#APIKEYID#{key_id}", "APIKEYID")
        return self.get_key(pointer["key_hash"]) if pointer else None

    def list_keys(self, tenant_id: UUID) -> list[dict[str, Any]]:
        return list(self.table.query_all(pk=f"T#{tenant_id}#APIKEYS", index="GSI1", forward=False))

    def revoke_key(self, key_hash: str) -> None:
        self.table.update(
            f"APIKEY#{key_hash}", "APIKEY", expression="SET revoked = :t", names={}, values={":t": True}
        )

    def touch_key(self, key_hash: str, now: str, not_since: str) -> None:
        """Record use at most once a minute (a conditional write; losing the race is fine)."""
        try:
            self.table.update(
                f"APIKEY#{key_hash}",
                "APIKEY",
                expression="SET #u = :now",
                names={"#u": "last_used_at"},
                values={":now": now, ":since": not_since},
                condition="attribute_not_exists(#u) OR #u < :since",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


# ====================================================================== projects
class DynamoDBProjectRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def create(self, project: Project, *, exist_ok: bool = False) -> None:
        try:
            self.table.put(
                model_item(
                    project,
                    PK=f"T#{project.tenant_id}#PROJ#{project.id}",
                    SK="PROJ",
                    GSI1PK=f"T#{project.tenant_id}#PROJ",
                    GSI1SK=f"{project.created_at.isoformat()}#{project.id}",
                ),
                condition="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if not (exist_ok and is_condition_failure(exc)):
                raise

    def get(self, tenant_id: UUID, project_id: UUID) -> Project | None:
        item = self.table.get(f"T#{tenant_id}#PROJ#{project_id}", "PROJ")
        return item_model(Project, item) if item else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, start: dict | None = None
    ) -> tuple[list[Project], dict | None]:
        items, last = self.table.query(
            pk=f"T#{tenant_id}#PROJ", index="GSI1", forward=False, limit=limit, start=start
        )
        return [item_model(Project, i) for i in items], last


# ====================================================================== datasets
class DynamoDBDatasetRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def _pk(tenant_id: UUID, dataset_id: UUID) -> str:
        return f"T#{tenant_id}#DS#{dataset_id}"

    def create(self, dataset: Dataset) -> None:
        created = dataset.created_at.isoformat()
        self.table.put(
            model_item(
                dataset,
                PK=self._pk(dataset.tenant_id, dataset.id),
                SK="DS",
                GSI1PK=f"T#{dataset.tenant_id}#DS",
                GSI1SK=f"{created}#{dataset.id}",
            ),
            condition="attribute_not_exists(PK)",
        )

    def get(self, tenant_id: UUID, dataset_id: UUID) -> Dataset | None:
        item = self.table.get(self._pk(tenant_id, dataset_id), "DS")
        return item_model(Dataset, item) if item else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, start: dict | None = None
    ) -> tuple[list[Dataset], dict | None]:
        items, last = self.table.query(
            pk=f"T#{tenant_id}#DS", index="GSI1", forward=False, limit=limit, start=start
        )
        return [item_model(Dataset, i) for i in items], last

    def add_version(
        self, tenant_id: UUID, dataset: Dataset, version: DatasetVersion, object_key: str
    ) -> None:
        """Append a version: the counter moves only if nobody appended meanwhile."""
        pk = self._pk(tenant_id, dataset.id)
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        pk,
                        "DS",
                        expression="SET #n = :new",
                        names={"#n": "version_count"},
                        values={":new": version.version, ":old": dataset.version_count},
                        condition="#n = :old",
                    ),
                    self.table.put_op(
                        model_item(
                            version,
                            PK=pk,
                            SK=f"V#{version.version:08d}",
                            tenant_id=str(tenant_id),
                            object_key=object_key,
                        ),
                        condition="attribute_not_exists(PK)",
                    ),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                raise ConflictError(
                    "another version of this dataset was created at the same time; retry"
                ) from exc
            raise

    def get_version(
        self, tenant_id: UUID, dataset_id: UUID, version: int | None
    ) -> tuple[DatasetVersion, str] | None:
        """The numbered version (or the latest) and its object key."""
        pk = self._pk(tenant_id, dataset_id)
        if version is None:
            items, _ = self.table.query(pk=pk, sk_prefix="V#", forward=False, limit=1)
            item = items[0] if items else None
        else:
            item = self.table.get(pk, f"V#{version:08d}")
        return (item_model(DatasetVersion, item), item["object_key"]) if item else None

    def list_versions(self, tenant_id: UUID, dataset_id: UUID) -> list[DatasetVersion]:
        return [
            item_model(DatasetVersion, i)
            for i in self.table.query_all(pk=self._pk(tenant_id, dataset_id), sk_prefix="V#", forward=False)
        ]

    def version_objects(self, tenant_id: UUID, dataset_id: UUID) -> list[tuple[str, str]]:
        """(sort key, object key) of every version of the dataset."""
        return [
            (i["SK"], i["object_key"])
            for i in self.table.query_all(pk=self._pk(tenant_id, dataset_id), sk_prefix="V#")
        ]

    def delete(self, dataset: Dataset, version_keys: Sequence[str]) -> None:
        """Delete the version items named, then the dataset item — the latter only while
        no run counts the dataset and nobody added a version meanwhile (ConflictError
        otherwise; the versions already deleted stay deleted, a retry finishes)."""
        pk = self._pk(dataset.tenant_id, dataset.id)
        self.table.batch_delete([(pk, sk) for sk in version_keys])
        _delete_unreferenced(
            self.table,
            pk,
            "DS",
            dataset.tenant_id,
            f"dataset_id#{dataset.id}",
            dataset.version_count,
            "dataset",
        )


# ====================================================================== evals
class DynamoDBEvalRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def create(self, ev: Eval) -> None:
        self.table.put(
            model_item(
                ev,
                PK=f"T#{ev.tenant_id}#EVAL#{ev.id}",
                SK="EVAL",
                GSI1PK=f"T#{ev.tenant_id}#EVAL",
                GSI1SK=f"{ev.created_at.isoformat()}#{ev.id}",
            ),
            condition="attribute_not_exists(PK)",
        )

    def get(self, tenant_id: UUID, eval_id: UUID) -> Eval | None:
        item = self.table.get(f"T#{tenant_id}#EVAL#{eval_id}", "EVAL")
        return item_model(Eval, item) if item else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, start: dict | None = None
    ) -> tuple[list[Eval], dict | None]:
        items, last = self.table.query(
            pk=f"T#{tenant_id}#EVAL", index="GSI1", forward=False, limit=limit, start=start
        )
        return [item_model(Eval, i) for i in items], last

    def add_version(self, tenant_id: UUID, ev: Eval, version: EvalVersion) -> None:
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        f"T#{tenant_id}#EVAL#{ev.id}",
                        "EVAL",
                        expression="SET #n = :new",
                        names={"#n": "version_count"},
                        values={":new": version.version, ":old": ev.version_count},
                        condition="#n = :old",
                    ),
                    self._version_op(tenant_id, ev, version),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                raise ConflictError(
                    "another version of this eval was created at the same time; retry"
                ) from exc
            raise

    def _version_op(self, tenant_id: UUID, ev: Eval, version: EvalVersion) -> dict[str, Any]:
        """A version's item (listed through GSI1 under its eval), written once."""
        return self.table.put_op(
            model_item(
                version,
                PK=f"T#{tenant_id}#EVALVER#{version.id}",
                SK="EVALVER",
                tenant_id=str(tenant_id),
                project_id=str(ev.project_id),
                GSI1PK=f"T#{tenant_id}#EVAL#{ev.id}#V",
                GSI1SK=f"{version.version:08d}",
            ),
            condition="attribute_not_exists(PK)",
        )

    def get_version(self, tenant_id: UUID, version_id: UUID) -> EvalVersion | None:
        item = self.table.get(f"T#{tenant_id}#EVALVER#{version_id}", "EVALVER")
        return item_model(EvalVersion, item) if item else None

    def list_versions(self, tenant_id: UUID, eval_id: UUID) -> list[EvalVersion]:
        return [
            item_model(EvalVersion, i)
            for i in self.table.query_all(pk=f"T#{tenant_id}#EVAL#{eval_id}#V", index="GSI1", forward=False)
        ]

    def create_with_version(self, ev: Eval, version: EvalVersion) -> None:
        """The eval and its version 1 in one transaction: both or neither."""
        tenant_id = ev.tenant_id
        self.table.transact(
            [
                self.table.put_op(
                    model_item(
                        ev,
                        PK=f"T#{tenant_id}#EVAL#{ev.id}",
                        SK="EVAL",
                        GSI1PK=f"T#{tenant_id}#EVAL",
                        GSI1SK=f"{ev.created_at.isoformat()}#{ev.id}",
                    ),
                    condition="attribute_not_exists(PK)",
                ),
                self._version_op(tenant_id, ev, version),
            ]
        )

    def delete(self, ev: Eval) -> None:
        """Delete the eval's versions, then the eval — the latter only while no run counts
        it and nobody added a version meanwhile (ConflictError otherwise; a retry finishes)."""
        tenant_id = ev.tenant_id
        versions = [
            (k["PK"], k["SK"]) for k in self.table.keys(pk=f"T#{tenant_id}#EVAL#{ev.id}#V", index="GSI1")
        ]
        if len(versions) < ev.version_count:
            # Versions are found through GSI1, which lags its writes: never leave one behind.
            raise TransientStoreError(
                f"eval {ev.id}: {len(versions)} of {ev.version_count} versions indexed yet; retry"
            )
        self.table.batch_delete(versions)
        _delete_unreferenced(
            self.table,
            f"T#{tenant_id}#EVAL#{ev.id}",
            "EVAL",
            tenant_id,
            f"eval_id#{ev.id}",
            ev.version_count,
            "eval",
        )


def _delete_unreferenced(
    table: Table, pk: str, sk: str, tenant_id: UUID, counter: str, version_count: int, kind: str
) -> None:
    """Delete a dataset or eval item in one transaction with two guards: the tenant's run
    counter for it is zero (a run scheduled since the caller looked makes this a 409, not
    a dangling reference), and its version count is still the one whose versions were
    deleted (a version added meanwhile would otherwise be orphaned)."""
    try:
        table.transact(
            [
                table.check_op(
                    f"T#{tenant_id}#RUNCOUNT",
                    counter,
                    condition="attribute_not_exists(runs) OR runs = :zero",
                    values={":zero": 0},
                ),
                table.delete_op(
                    pk,
                    sk,
                    condition="attribute_exists(PK) AND #n = :n",
                    names={"#n": "version_count"},
                    values={":n": version_count},
                ),
            ]
        )
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise ConflictError(
                f"a run of this {kind} was scheduled while it was being "
                "deleted; delete the run first, then retry"
            ) from exc
        if codes[1:2] == ["ConditionalCheckFailed"]:
            raise ConflictError(
                f"the {kind} changed while it was being deleted (a version "
                "was added, or it was deleted meanwhile); retry"
            ) from exc
        raise


# ====================================================================== runs
IDEMPOTENCY_TTL_S = 24 * 3600
# A run's create transaction cancelled by contention alone (e.g. ``TransactionConflict``
# while a concurrent request with the same Idempotency-Key commits its claim) is tried again
# at most this many times in all, after full-jitter pauses of at most 20, 40, 80, 160 ms
# (≤ 0.3 s in all).
CREATE_ATTEMPTS = 5
CREATE_BACKOFF_S = 0.02


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _contention_only(codes: Sequence[str]) -> bool:
    """A cancellation that wrote nothing and that only contention or throttling caused."""
    reasons = set(codes) - {"None"}
    return bool(reasons) and reasons <= TRANSIENT_REASONS


# The single-criterion filters of GET /v1/eval-runs, each with an exact counter per value.
RUN_COUNTERS = ("status", "eval_id", "eval_version_id", "dataset_id", "project_id")
SET_STATUS_ATTEMPTS = 4  # pending → running → a finished state: at most two moves to chase

RUN_INDEX_PRIORITY = (  # most selective first
    ("eval_version_id", "RunsByEvalVersion"),
    ("dataset_id", "RunsByDataset"),
    ("eval_id", "RunsByEval"),
    ("project_id", "RunsByProject"),
    ("status", "RunsByStatus"),
)


@dataclass(frozen=True)
class RunQuery:
    """Which runs to list: one index partition of the tenant, plus equality filters on the
    projected attributes for the other criteria."""

    tenant_id: UUID
    criteria: Mapping[str, str]
    limit: int = 100
    offset: int = 0
    start: Mapping[str, Any] | None = None

    @property
    def index(self) -> str:
        for name, index in RUN_INDEX_PRIORITY:
            if name in self.criteria:
                return index
        return "RunsByTenant"

    @property
    def partition(self) -> str:
        for name, index in RUN_INDEX_PRIORITY:
            if index == self.index:
                return f"T#{self.tenant_id}#{self.criteria[name]}"
        return f"T#{self.tenant_id}"

    @property
    def filters(self) -> dict[str, str]:
        chosen = next((n for n, i in RUN_INDEX_PRIORITY if i == self.index), None)
        return {k: v for k, v in self.criteria.items() if k != chosen}


# DynamoDB items are at most 400 KB, keys and attribute names included: a batch's
# compressed data goes in parts of this size; a transaction is at most 4 MB in all, so a
# batch is at most this many bytes (its items' other attributes and the run update fit in
# the rest).
BATCH_PART_BYTES = 350_000
BATCH_MAX_BYTES = 3_800_000


def _pack(payload: Any) -> bytes:
    return zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _batch_key(index: int) -> str:
    """A batch's (first) item's sort key: zero-padded, so batches sort in index order."""
    return f"B#{index:07d}"


def _part_key(index: int, n: int) -> str:
    """A continuation part's sort key: zero-padded, so parts sort in number order."""
    return f"{_batch_key(index)}#{n:03d}"


class DynamoDBRunRepository:
    # What makes a batch write happen once: a second delivery finds the item and changes
    # nothing (the fault suite runs a subclass without it, which must double-count).
    BATCH_ONCE = "attribute_not_exists(PK)"

    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def _pk(tenant_id: UUID, key: str) -> str:
        return f"T#{tenant_id}#RUN#{key}"

    def index_keys(self, run: Run) -> dict[str, str]:
        t = run.tenant_id
        return {
            "RunsByTenant": f"T#{t}",
            "RunsByEval": f"T#{t}#{run.eval_id}",
            "RunsByEvalVersion": f"T#{t}#{run.eval_version_id}",
            "RunsByDataset": f"T#{t}#{run.dataset_id}",
            "RunsByProject": f"T#{t}#{run.project_id}",
            "RunsByStatus": f"T#{t}#{run.status}",
            "RunCreated": f"{run.created_at.isoformat()}#{run.id}",
        }

    @staticmethod
    def _count_pk(tenant_id: UUID) -> str:
        return f"T#{tenant_id}#RUNCOUNT"

    @staticmethod
    def counter_keys(run: Run) -> list[str]:
        """The sort keys of the counters ``run`` is counted in."""
        return ["ALL", *(f"{name}#{getattr(run, name)}" for name in RUN_COUNTERS)]

    def _count_op(self, tenant_id: UUID, sk: str, delta: int) -> dict[str, Any]:
        return self.table.update_op(
            self._count_pk(tenant_id), sk, expression="ADD runs :d", names={}, values={":d": delta}
        )

    def _in_flight_op(self, tenant_id: UUID, delta: int, limit: int | None = None) -> dict[str, Any]:
        """Move the tenant's count of unfinished runs; with ``limit``, only below it."""
        condition = (
            "attribute_not_exists(runs_in_flight) OR runs_in_flight < :limit" if limit is not None else None
        )
        values: dict[str, Any] = {":d": delta}
        if limit is not None:
            values[":limit"] = limit
        return self.table.update_op(
            f"TENANT#{tenant_id}",
            "TENANT",
            expression="ADD runs_in_flight :d",
            names={},
            values=values,
            condition=condition,
        )

    def create(self, run: Run, *, max_in_flight: int, idempotency: tuple[str, str] | None = None) -> UUID:
        """Store a new run and count it against the tenant's runs in flight, in one
        transaction (QuotaExceededError at the limit). With ``idempotency=(key, hash)``
        the key is claimed in the same transaction: a replay returns the run that key
        created (same hash) or raises ConflictError (another hash). Returns the id of the
        run that stands.

        A cancellation caused by contention alone (two requests with one key at once: the
        second's claim conflicts with the first's commit) is tried again, a bounded few
        times with jittered pauses; once the first has committed, the retry finds its claim
        and replays its run."""
        item = model_item(run, PK=self._pk(run.tenant_id, run_key(run.id)), SK="RUN", **self.index_keys(run))
        ops = [
            self.table.put_op(item, condition="attribute_not_exists(PK)"),
            self._in_flight_op(run.tenant_id, +1, max_in_flight),
            *(self._count_op(run.tenant_id, sk, +1) for sk in self.counter_keys(run)),
        ]
        claim_pk = None
        if idempotency is not None:
            key, request_hash = idempotency
            claim_pk = f"T#{run.tenant_id}#IDEM#{hashlib.sha256(key.encode()).hexdigest()}"
            ops.insert(
                0,
                self.table.put_op(
                    {
                        "PK": claim_pk,
                        "SK": "IDEM",
                        "tenant_id": str(run.tenant_id),
                        "run_id": str(run.id),
                        "request_hash": request_hash,
                        "ttl": int(run.created_at.timestamp()) + IDEMPOTENCY_TTL_S,
                    },
                    condition="attribute_not_exists(PK)",
                ),
            )
        in_flight = 2 if claim_pk else 1  # (claim,) run, in-flight, counters (no condition)
        last: Exception | None = None
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self.table.transact(ops)
                return run.id
            except TransientStoreError as exc:
                # Cancelled by contention alone, nothing written: the same transaction may
                # be tried again (other transient faults, e.g. a dropped connection after a
                # commit, are the caller's to retry).
                cause = exc.__cause__
                if not (isinstance(cause, ClientError) and _contention_only(cancellation_codes(cause))):
                    raise
                last = exc
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if claim_pk and codes[:1] == ["ConditionalCheckFailed"]:
                    return self._replay(claim_pk, idempotency[1], exc)  # type: ignore[index]
                if not (claim_pk and codes[:1] and codes[0] in TRANSIENT_REASONS):
                    if codes[in_flight : in_flight + 1] == ["ConditionalCheckFailed"]:
                        raise QuotaExceededError(
                            f"the tenant already has {max_in_flight} runs pending or running; "
                            "wait for one to finish",
                            details={"limit": max_in_flight},
                        ) from exc
                    raise
                # The key's claim is in a concurrent request's transaction: whether this
                # request replays that run or creates its own (or is over the quota) is
                # known once that one has committed or not. Nothing was written.
                last = exc
            if attempt + 1 < CREATE_ATTEMPTS:
                _pause(random.uniform(0, CREATE_BACKOFF_S * 2**attempt))
        raise TransientStoreError(
            f"DynamoDB kept cancelling the run's transaction for contention "
            f"({CREATE_ATTEMPTS} attempts); retry"
        ) from last

    def _replay(self, claim_pk: str, request_hash: str, exc: ClientError) -> UUID:
        claim = self.table.get(claim_pk, "IDEM")
        if claim is None:  # expired between the two calls
            raise ConflictError("Idempotency-Key is being reused; retry") from exc
        if claim["request_hash"] != request_hash:
            raise ConflictError(
                "Idempotency-Key was used with a different request", details={"header": "Idempotency-Key"}
            ) from exc
        if self.get(UUID(claim["tenant_id"]), UUID(claim["run_id"])) is None:
            raise ConflictError(
                "Idempotency-Key created a run that has since been deleted; send a new key to schedule again",
                details={"header": "Idempotency-Key"},
            ) from exc
        return UUID(claim["run_id"])

    def get(self, tenant_id: UUID, run_id: UUID) -> Run | None:
        item = self.table.get(self._pk(tenant_id, run_key(run_id)), "RUN")
        if not item or item.get("id") != str(run_id):
            return None
        return item_model(Run, item)

    def get_by_key(self, tenant_id: UUID, key: str) -> Run | None:
        item = self.table.get(self._pk(tenant_id, key), "RUN")
        return item_model(Run, item) if item else None

    def list_page(self, query: RunQuery) -> tuple[list[Run], dict | None]:
        """One page of runs, newest first: keys from the index, items by BatchGetItem."""
        keys: list[dict[str, Any]] = []
        start, skip = query.start, query.offset
        more = True
        while len(keys) < query.limit and more:
            page, start = self.table.query(
                pk=query.partition,
                index=query.index,
                forward=False,
                limit=min(query.limit + skip, 1000),
                start=start,
                filters=query.filters,
            )
            more = start is not None
            dropped = min(skip, len(page))
            skip -= dropped
            taken = page[dropped:][: query.limit - len(keys)]
            keys.extend(taken)
            more = more or len(page) - dropped > len(taken)
        last = None
        if keys and len(keys) == query.limit and more:
            # Resume after the last item returned (not after the last item read).
            tail = keys[-1]
            last = {
                "PK": tail["PK"],
                "SK": tail["SK"],
                query.index: query.partition,
                "RunCreated": tail["RunCreated"],
            }
        items = self.table.batch_get([(k["PK"], k["SK"]) for k in keys])
        return [item_model(Run, i) for i in items], last

    def count(self, query: RunQuery) -> int:
        """How many runs match: one GetItem of a counter for no criterion or one; combined
        criteria count the chosen index partition (Select=COUNT, filtered), so they cost
        what that partition holds."""
        if len(query.criteria) > 1 or not set(query.criteria) <= set(RUN_COUNTERS):
            return self.table.count(pk=query.partition, index=query.index, filters=query.filters)
        sk = next((f"{k}#{v}" for k, v in query.criteria.items()), "ALL")
        item = self.table.get(self._count_pk(query.tenant_id), sk)
        return int(item["runs"]) if item else 0

    def backfill_counters(self, tenant_id: UUID) -> dict[str, int]:
        """Recompute the tenant's run counters from its runs (data written before the
        counters existed). Reads the tenant's RunsByTenant partition; run it while the tenant
        schedules nothing, since it overwrites the counters with what it read."""
        counts: dict[str, int] = {}
        for row in self.table.query_all(pk=f"T#{tenant_id}", index="RunsByTenant"):
            for sk in ["ALL", *(f"{name}#{row[name]}" for name in RUN_COUNTERS)]:
                counts[sk] = counts.get(sk, 0) + 1
        stale = self.table.query_all(pk=self._count_pk(tenant_id))
        for item in stale:
            counts.setdefault(item["SK"], 0)
        for sk, n in counts.items():
            self.table.put({"PK": self._count_pk(tenant_id), "SK": sk, "runs": n})
        return counts

    def set_status(
        self, run: Run, status: str, *, expect: Sequence[str], fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Move the run to ``status`` (with ``fields``) if it is in one of ``expect``.

        Returns False when the run was not in an expected state: the transitions are
        guarded in the write itself, so a cancel and a finalize cannot both win. The write
        names the exact state it leaves (the run's known one, re-read when the guard says it
        moved on while it is still expected), so the same transaction can move one run from
        that state's counter to the new one's. A move from an unfinished to a finished state
        frees the tenant's in-flight slot in that transaction too, so neither count can leak
        nor be moved twice."""
        current: Run | None = run
        if run.status not in expect:
            current = self.get(run.tenant_id, run.id)
        for _ in range(SET_STATUS_ATTEMPTS):
            if current is None or current.status not in expect:
                return False
            try:
                self._move(current, status, fields)
                return True
            except ClientError as exc:
                if cancellation_codes(exc)[:1] != ["ConditionalCheckFailed"]:
                    raise
            current = self.get(run.tenant_id, run.id)
        raise TransientStoreError(f"run {run.id} kept changing status; retry")

    def _move(self, run: Run, status: str, fields: Mapping[str, Any] | None) -> None:
        """One transaction: the run from exactly ``run.status`` to ``status``, its status
        counters and (when it finishes) the tenant's in-flight count.

        A field set to None is REMOVEd, not SET: a stored run holds no attribute for an
        unset field (``serialize`` drops None on a put too), and both read back as None."""
        changes = {
            "status": status,
            "updated_at": utcnow().isoformat(),
            "RunsByStatus": f"T#{run.tenant_id}#{status}",
            **(fields or {}),
        }
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for i, (name, value) in enumerate(changes.items()):
            names[f"#f{i}"] = name
            if name in _JSON_FIELDS:
                value = json.dumps(value, separators=(",", ":"))
            if value is None:
                removes.append(f"#f{i}")
            else:
                values[f":f{i}"] = value
                sets.append(f"#f{i} = :f{i}")
        values[":old"] = run.status
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        ops = [
            self.table.update_op(
                self._pk(run.tenant_id, run_key(run.id)),
                "RUN",
                expression=expression,
                names=names,
                values=values,
                condition="#f0 = :old",
            )
        ]
        if status != run.status:
            ops += [
                self._count_op(run.tenant_id, f"status#{run.status}", -1),
                self._count_op(run.tenant_id, f"status#{status}", +1),
            ]
        if status in TERMINAL_STATUSES and run.status not in TERMINAL_STATUSES:
            ops.append(self._in_flight_op(run.tenant_id, -1))
        self.table.transact(ops)

    def delete(self, run: Run) -> bool:
        """Delete a run: its batch items, then in one transaction the run item (only while
        it is still in ``run.status``) and its place in every run counter, so a counter
        moves exactly once (an unfinished run would free its in-flight slot too; the API
        only deletes finished ones). False when the run changed status or is gone."""
        pk = self._pk(run.tenant_id, run_key(run.id))
        self.table.batch_delete([(k["PK"], k["SK"]) for k in self.table.keys(pk=pk, sk_prefix="B#")])
        ops = [
            self.table.delete_op(
                pk, "RUN", condition="#s = :s", names={"#s": "status"}, values={":s": run.status}
            ),
            *(self._count_op(run.tenant_id, sk, -1) for sk in self.counter_keys(run)),
        ]
        if run.status not in TERMINAL_STATUSES:
            ops.append(self._in_flight_op(run.tenant_id, -1))
        try:
            self.table.transact(ops)
        except ClientError as exc:
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def record_batch(
        self,
        run: Run,
        index: int,
        *,
        completed: int,
        failed: int,
        records: list[dict[str, Any]],
        evaluations: Sequence[Evaluation],
        now: str,
    ) -> BatchOutcome:
        """Write a batch's evaluations and move the run's counters in ONE transaction.

        Returns ``"recorded"``, ``"duplicate"`` (this batch was already recorded: a retry
        or a duplicate delivery — nothing is counted twice) or ``"inactive"`` (the run is
        no longer running, e.g. cancelled: its counts stay frozen).

        The compressed batch goes in the ``B#{index}`` item; past ``BATCH_PART_BYTES`` the
        rest goes in continuation items ``B#{index}#{n:03}`` in the same transaction (each
        conditional too), so no batch can exceed DynamoDB's 400 KB item limit and a batch
        is either wholly there or not at all.
        """
        pk = self._pk(run.tenant_id, run_key(run.id))
        blob = _pack({"records": records, "evaluations": [e.model_dump(mode="json") for e in evaluations]})
        if len(blob) > BATCH_MAX_BYTES:
            raise BatchTooLargeError(
                f"batch {index} compresses to {len(blob) / 1e6:.1f} MB, over the "
                f"{BATCH_MAX_BYTES / 1e6:.1f} MB one DynamoDB transaction can record: schedule "
                "the run with a smaller batch_size"
            )
        parts = [blob[i : i + BATCH_PART_BYTES] for i in range(0, len(blob), BATCH_PART_BYTES)]
        base = {
            "PK": pk,
            "tenant_id": str(run.tenant_id),
            "run_id": str(run.id),
            "batch": index,
            "created_at": now,
        }
        ops = [
            self.table.put_op(
                {
                    **base,
                    "SK": _batch_key(index),
                    "completed": completed,
                    "failed": failed,
                    "parts": len(parts),
                    "data": parts[0],
                },
                condition=self.BATCH_ONCE,
            ),
            self.table.update_op(
                pk,
                "RUN",
                expression="ADD completed_count :c, failed_count :f SET updated_at = :now",
                names={"#status": "status"},
                values={":c": completed, ":f": failed, ":now": now, ":running": "running"},
                condition="#status = :running",
            ),
        ]
        ops += [
            self.table.put_op({**base, "SK": _part_key(index, n), "data": part}, condition=self.BATCH_ONCE)
            for n, part in enumerate(parts[1:], start=1)
        ]
        try:
            self.table.transact(ops)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                return "duplicate"
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return "inactive"
            raise
        return "recorded"

    def batch_recorded(self, run: Run, index: int) -> bool:
        return self.table.get(self._pk(run.tenant_id, run_key(run.id)), _batch_key(index)) is not None

    def get_batch(self, tenant_id: UUID, key: str, index: int) -> dict[str, Any] | None:
        return next(self._batches(self._pk(tenant_id, key), first=index, last=index), None)

    def iter_batches(self, run: Run, *, first: int = 0) -> Iterator[dict[str, Any]]:
        """The recorded batches of the run from index ``first`` on, in order, one at a time;
        each with ``parts``, the items it was read from."""
        return self._batches(self._pk(run.tenant_id, run_key(run.id)), first=first)

    def _batches(self, pk: str, *, first: int, last: int | None = None) -> Iterator[dict[str, Any]]:
        """Batch items in key order (``B#{i}`` then its parts ``B#{i}#{n:03}``), joined."""
        parts: list[bytes] = []
        batch, expected = None, 0

        def whole() -> dict[str, Any]:
            if len(parts) != expected:  # all parts are written in one transaction
                raise RuntimeError(f"batch {batch}: {len(parts)} of {expected} parts read")
            return {"batch": batch, "parts": expected, **_unpack(b"".join(parts))}

        prefix = "B#" if last is None else _batch_key(last)
        for item in self.table.query_all(pk=pk, sk_prefix=prefix, sk_from=_batch_key(first)):
            if item["SK"].count("#") == 1:  # B#{index}: a batch's first item
                if batch is not None:
                    yield whole()
                parts, batch, expected = [], item["batch"], int(item.get("parts", 1))
            parts.append(bytes(item["data"]))  # continuation parts follow in key order
        if batch is not None:
            yield whole()
