"""The single table: raw operations, paging, transactions and error classification."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from assay_service.adapters.aws_errors import TRANSIENT_CANCELLATION_REASONS, is_transient
from assay_service.adapters.dynamodb.codec import deserialize, expression_values, serialize
from assay_service.domain.cursors import decode_cursor, encode_cursor
from assay_service.errors import TransientStoreError


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Table:
    """The single table: raw operations plus error mapping."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            if is_transient(exc):
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

    def delete(
        self,
        pk: str,
        sk: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize({"PK": pk, "SK": sk})}
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if values:
            kwargs["ExpressionAttributeValues"] = expression_values(values)
        self._call("delete_item", **kwargs)

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
        consistent: bool = False,
    ) -> tuple[list[dict[str, Any]], dict | None]:
        """One page of a Query (after filters, so it may hold fewer than ``limit``).
        ``sk_from`` with ``sk_prefix`` reads sort keys in [sk_from, prefix-end]."""
        kwargs = self._condition(pk, sk_prefix, index, filters, sk_from)
        kwargs["ScanIndexForward"] = forward
        if consistent:
            kwargs["ConsistentRead"] = True
        if limit:
            kwargs["Limit"] = limit
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        out = self._call("query", **kwargs)
        last = out.get("LastEvaluatedKey")
        return [deserialize(i) for i in out.get("Items", [])], deserialize(last) if last else None

    def page(
        self,
        *,
        pk: str,
        index: str,
        limit: int,
        cursor: str | None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of an index partition, newest first, and the cursor to the next. A
        cursor must name this partition: one forged to point into another tenant's items
        is a 400, not followed. With ``keep``, items it refuses are skipped and the page
        topped up from the index, so a page is short only at the end; the cursor resumes
        after the last item read."""
        pk_name, _ = self._key_names(index)
        start = decode_cursor(cursor, partition=(pk_name, pk))
        out: list[dict[str, Any]] = []
        while True:
            items, start = self.query(pk=pk, index=index, forward=False, limit=limit - len(out), start=start)
            out += items if keep is None else [i for i in items if keep(i)]
            if len(out) >= limit or start is None:
                return out, encode_cursor(start)

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

    def batch_get(self, keys: Sequence[tuple[str, str]], *, consistent: bool = True) -> list[dict[str, Any]]:
        """Items by key (≤ 100), in the order asked; missing ones are skipped."""
        if not keys:
            return []
        request = {
            self.name: {
                "Keys": [serialize({"PK": pk, "SK": sk}) for pk, sk in keys],
                "ConsistentRead": consistent,
            }
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
            if "ConditionalCheckFailed" not in codes and set(codes) & TRANSIENT_CANCELLATION_REASONS:
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
        """Delete items by key, 25 per BatchWriteItem (a missing item is no error: a repeated
        delete is harmless)."""
        self._batch_write([{"DeleteRequest": {"Key": serialize({"PK": pk, "SK": sk})}} for pk, sk in keys])

    def batch_put(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Put items (unconditionally), 25 per BatchWriteItem."""
        self._batch_write([{"PutRequest": {"Item": serialize(item)}} for item in items])

    def _batch_write(self, writes: Sequence[dict[str, Any]]) -> None:
        """25 writes per BatchWriteItem; unprocessed ones are sent again."""
        for start in range(0, len(writes), 25):
            request = {self.name: list(writes[start : start + 25])}
            for attempt in range(8):
                out = self._call("batch_write_item", RequestItems=request)
                request = out.get("UnprocessedItems") or {}
                if not request:
                    break
                _pause(min(0.05 * 2**attempt, 1.0))
            else:
                raise TransientStoreError("DynamoDB BatchWriteItem left items unprocessed")


def applied(write: Callable[[], Any]) -> bool:
    """Run one conditional write: whether it was applied (False: its condition failed; any
    other error raises)."""
    try:
        write()
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-item reasons of a cancelled transaction (``None`` for items that were fine)."""
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
