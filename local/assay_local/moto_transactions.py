"""DynamoDB TransactWriteItems on moto without copying whole tables.

moto (5.2.5) makes a transaction undoable by deep-copying every table it names — once per
item of the transaction — before applying it. Each batch of a run is one transaction, so the
cost of every write grows with everything stored so far: on the local stack a run slowed
down and the memory churned as the table filled (and reads waited, moto serving one
DynamoDB request at a time), and in the tests every transaction got slower as the shared
table grew.

This replacement does what DynamoDB does, in two phases:

1. every condition is evaluated against the state before the transaction (the items are
   distinct — moto's and DynamoDB's rule — so no write of the transaction can change
   another's condition); any failure cancels it with the reasons per item, in order,
   and nothing was written;
2. the writes are applied through moto's own put/update/delete, each touched item kept
   first (one item, not a table); if a write still fails (an update expression moto
   refuses, an item over 400 KB), the items written so far are put back and it is cancelled.

Same answers as moto's for the same requests, except that after a write fails in phase 2
only that item's reason is reported (moto goes on and reports the later ones too). No
owner, no state: installing it twice is installing it once.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

from assay_local.moto_hooks import Replacement

Reason = tuple[str, str, Any] | tuple[None, None, None]
OK: Reason = (None, None, None)


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:  # noqa: C901
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    targets: set[tuple[str, str]] = set()
    writes: list[tuple[int, str, dict[str, Any], str, dict[str, Any]]] = []
    reasons: list[Reason] = []
    for index, item in enumerate(transact_items):  # phase 1: check, write nothing
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        old: dict[str, Any] | None = None
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            condition = op.get("ConditionExpression")
            if condition is not None:
                current = self.get_item(table_name, key)
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old)
            if op_type != "ConditionCheck":
                writes.append((index, op_type, op, table_name, key))
            reasons.append(OK)
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            reasons.append(("ConditionalCheckFailed", str(exc.message), old))
        except Exception as exc:
            reasons.append((type(exc).__name__, str(exc), old))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    kept: list[tuple[Any, Any, Any, Any]] = []  # phase 2: (table, hash, range, item before)
    failing = 0
    try:
        for write in writes:
            failing, op_type, op, table_name, key = write  # failing: its index, if it fails
            table = self.get_table(table_name)
            hash_key, range_key = self.get_keys_value(table, key)
            kept.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition,
                    # None when absent, as moto's own transaction passes them
                    expression_attribute_names=names,  # type: ignore[arg-type]
                    expression_attribute_values=values,  # type: ignore[arg-type]
                )
    except Exception as exc:
        for table, hash_key, range_key, before in reversed(kept):
            _put_back(table, hash_key, range_key, before)
        if isinstance(exc, (MultipleTransactionsException, MockValidationException)):
            raise
        reasons = [OK] * len(transact_items)
        reasons[failing] = (type(exc).__name__, str(exc), None)
        raise TransactionCanceledException(reasons) from exc


def _put_back(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    if before is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = before
    else:
        table.items[hash_key] = before


REPLACEMENTS = (Replacement(DynamoDBBackend, "transact_write_items", transact_write_items),)
