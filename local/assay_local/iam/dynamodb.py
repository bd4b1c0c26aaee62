"""DynamoDB requests → IAM checks: every operation on ``table/NAME`` (or its index), with
the ``dynamodb:LeadingKeys`` the request names; Transact* per item, Batch* per table,
PartiQL by statement verb."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from assay_local.iam.policy import Check, Context
from assay_local.iam.target import Target, Unmapped


def _attribute_text(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind in ("S", "N", "B") and isinstance(raw, str):
            return raw
    return None


def _leading(values: Iterable[str | None]) -> Context:
    found = tuple(v for v in values if v is not None)
    return {"dynamodb:leadingkeys": found} if found else {}


def _query_partition_value(body: Mapping[str, Any], attribute: str | None) -> str | None:
    if attribute is None:
        return None
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"([#:\w.]+)\s*=\s*([#:\w.]+)", body.get("KeyConditionExpression") or ""):
        for name, placeholder in ((left, right), (right, left)):
            if placeholder.startswith(":") and names.get(name, name) == attribute:
                return _attribute_text(values.get(placeholder))
    legacy = (body.get("KeyConditions") or {}).get(attribute) or {}
    if legacy.get("ComparisonOperator") == "EQ" and legacy.get("AttributeValueList"):
        return _attribute_text(legacy["AttributeValueList"][0])
    return None


_ITEM_OPS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}
_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_PARTIQL = {
    "select": "PartiQLSelect",
    "insert": "PartiQLInsert",
    "update": "PartiQLUpdate",
    "delete": "PartiQLDelete",
}
_PARTIQL_TABLE = re.compile(r'\b(?:from|into|update)\s+"?([\w.-]+)"?', re.I)


Handler = Callable[[str, Mapping[str, Any], Target], list[Check]]


def _item_check(action: str, spec: Mapping[str, Any], target: Target) -> Check:
    table = spec.get("TableName", "")
    key = spec.get("Key") or spec.get("Item") or {}
    attribute = target.partition_key(table, None)
    value = _attribute_text(key.get(attribute)) if attribute else None
    return Check(f"dynamodb:{action}", target.table_arn(table), _leading([value]))


def _item(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    return [_item_check(op, body, target)]


def _query_or_scan(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    table, index = body.get("TableName", ""), body.get("IndexName")
    resource = target.table_arn(table) + (f"/index/{index}" if index else "")
    context: Context = {}
    if op == "Query":
        context = _leading([_query_partition_value(body, target.partition_key(table, index))])
    return [Check(f"dynamodb:{op}", resource, context)]


def _transact_write(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    checks = []
    for entry in body.get("TransactItems", []):
        ((kind, spec),) = entry.items()
        checks.append(_item_check(_TRANSACT_WRITE[kind], spec, target))
    return checks


def _transact_get(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    return [_item_check("GetItem", entry["Get"], target) for entry in body.get("TransactItems", [])]


def _batch_keys(op: str, spec: Any) -> Iterable[Mapping[str, Any]]:
    """The item keys one table's part of a BatchGetItem or BatchWriteItem names."""
    if op == "BatchGetItem":
        return spec.get("Keys", [])
    return [w.get("PutRequest", {}).get("Item") or w.get("DeleteRequest", {}).get("Key") or {} for w in spec]


def _batch(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    checks = []
    for table, spec in (body.get("RequestItems") or {}).items():
        attribute = target.partition_key(table, None)
        keys = _batch_keys(op, spec)
        values = [_attribute_text(k.get(attribute)) if attribute else None for k in keys]
        checks.append(Check(f"dynamodb:{op}", target.table_arn(table), _leading(values)))
    return checks


def _partiql(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    statements = (
        [body] if op == "ExecuteStatement" else body.get("Statements") or body.get("TransactStatements") or []
    )
    checks = []
    for spec in statements:
        text = spec.get("Statement", "")
        verb = text.strip().split(None, 1)[0].lower() if text.strip() else ""
        table = _PARTIQL_TABLE.search(text)
        if verb not in _PARTIQL or table is None:
            raise Unmapped(f"dynamodb {op}: {text[:60]!r}")
        checks.append(Check(f"dynamodb:{_PARTIQL[verb]}", target.table_arn(table.group(1))))
    return checks


def _table_or_resource(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    """Any other operation: on the table it names, else on its ResourceArn (or ``*``)."""
    if "TableName" in body:
        return [Check(f"dynamodb:{op}", target.table_arn(body["TableName"]))]
    return [Check(f"dynamodb:{op}", body.get("ResourceArn") or "*")]


# operation -> its mapping (anything else: _table_or_resource)
_HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(_ITEM_OPS, _item),
    "Query": _query_or_scan,
    "Scan": _query_or_scan,
    "TransactWriteItems": _transact_write,
    "TransactGetItems": _transact_get,
    "BatchGetItem": _batch,
    "BatchWriteItem": _batch,
    "ExecuteStatement": _partiql,
    "BatchExecuteStatement": _partiql,
    "ExecuteTransaction": _partiql,
}


def dynamodb_checks(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    return _HANDLERS.get(op, _table_or_resource)(op, body, target)
