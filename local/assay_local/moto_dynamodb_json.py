"""DynamoDB item responses on moto written as JSON directly, not walked through the model.

moto (5.2.5) serialises every response by walking botocore's output shape member by member
(``moto.core.serialize``). For DynamoDB's item operations the result is already the wire
format — ``{"Item": {"n": {"N": "1"}}, …}`` with binary values as bytes — so the walk only
costs: it was ~30 % of the local stack's CPU under read load (the stack serves every
DynamoDB request on one interpreter, one at a time). The replacement dumps those results
with the standard JSON encoder, binary values base64-encoded and keys outside the
operation's output shape left out, as the serializer does; any
other operation, or a result it cannot dump (a datetime, a model object), goes to moto's
serializer. ``tests/local/test_moto_dynamodb_json.py`` holds every item operation's
answer to moto's own. No owner, no state: installing it twice is installing it once.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

from moto.core.responses import ActionResult, get_service_model
from moto.dynamodb.responses import DynamoHandler

from assay_local.moto_hooks import Replacement

ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
CONTENT_TYPE = "application/x-amz-json-1.0"  # DynamoDB's JSON protocol, as moto's serializer sets

_original_serialized = DynamoHandler.serialized


def _binary(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON: {type(value).__name__}")


@cache
def _members(action: str) -> frozenset[str]:
    return frozenset(get_service_model("dynamodb").operation_model(action).output_shape.members)


def dump(action: str, result: Any) -> str | None:
    """The response body for an item operation's result, or None for moto's serializer.
    Keys outside the operation's output shape are left out, as the serializer leaves them
    (moto adds some, e.g. ``ConsumedCapacityUnits`` to DeleteItem's result)."""
    if action not in ITEM_OPERATIONS or type(result) is not dict:
        return None
    members = _members(action)
    try:
        return json.dumps({k: v for k, v in result.items() if k in members}, default=_binary)
    except TypeError:
        return None


def serialized(self: DynamoHandler, action_result: ActionResult) -> Any:
    body = dump(self._get_action(), action_result.result)
    if body is None:
        return _original_serialized(self, action_result)
    headers = {"Content-Type": CONTENT_TYPE}
    headers.update(self.response_headers)
    return 200, headers, body


REPLACEMENTS = (Replacement(DynamoHandler, "serialized", serialized),)
