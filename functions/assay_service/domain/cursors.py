"""Opaque cursors (a JSON object, base64url) bound to the list they came from.

Adapters page their stores with them (DynamoDB's LastEvaluatedKey, checked against the
partition it was read from); services page files and batches (byte offsets, indexes)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from assay_service.domain import jsondoc
from assay_service.errors import InvalidRequestError


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, partition: tuple[str, str]) -> dict[str, Any] | None:
    """Decode a cursor and check it belongs to ``partition`` (attribute, value):
    a cursor forged to point into another tenant's items is rejected, not followed."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # jsondoc, not json.loads: a forged cursor of 1,500 "[" must not be a RecursionError
        value = jsondoc.decode(base64.urlsafe_b64decode(padded.encode()), where="query.cursor")
    except (binascii.Error, ValueError, jsondoc.JSONDocumentError):
        value = None
    name, expected = partition
    if (
        not isinstance(value, dict)
        or value.get(name) != expected
        or not all(isinstance(v, str | int) for v in value.values())
    ):
        raise InvalidRequestError("query.cursor: not a cursor of this list", details={"field": "cursor"})
    return value


def decode_position(
    cursor: str | None, *, partition: tuple[str, str], fields: tuple[str, ...], maximum: int | None = None
) -> tuple[int, ...]:
    """A cursor holding non-negative integer positions (byte offsets, batch indexes…)."""
    if not cursor:
        return tuple(0 for _ in fields)
    value = decode_cursor(cursor, partition=partition) or {}
    positions = tuple(value.get(name) for name in fields)
    if not all(isinstance(p, int) and 0 <= p <= (maximum if maximum is not None else p) for p in positions):
        raise InvalidRequestError("query.cursor: not a cursor of this list", details={"field": "cursor"})
    return positions  # type: ignore[return-value]
