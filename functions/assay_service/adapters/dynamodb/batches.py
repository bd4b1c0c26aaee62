"""A run's batches of evaluations as items: compressed, split into parts, joined back."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from assay_service.errors import BatchTooLargeError

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


def pack_parts(index: int, payload: Any) -> list[bytes]:
    """Batch ``index``'s payload, compressed, in parts of at most ``BATCH_PART_BYTES``
    (BatchTooLargeError past what one transaction can record)."""
    blob = _pack(payload)
    if len(blob) > BATCH_MAX_BYTES:
        raise BatchTooLargeError(
            f"batch {index} compresses to {len(blob) / 1e6:.1f} MB, over the "
            f"{BATCH_MAX_BYTES / 1e6:.1f} MB one DynamoDB transaction can record: schedule "
            "the run with a smaller batch_size"
        )
    return [blob[i : i + BATCH_PART_BYTES] for i in range(0, len(blob), BATCH_PART_BYTES)]


def join_batches(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Batch items in key order (``B#{i}`` then its parts ``B#{i}#{n:03}``), joined."""
    parts: list[bytes] = []
    batch, expected = None, 0

    def whole() -> dict[str, Any]:
        if len(parts) != expected:  # all parts are written in one transaction
            raise RuntimeError(f"batch {batch}: {len(parts)} of {expected} parts read")
        return {"batch": batch, "parts": expected, **_unpack(b"".join(parts))}

    for item in items:
        if item["SK"].count("#") == 1:  # B#{index}: a batch's first item
            if batch is not None:
                yield whole()
            parts, batch, expected = [], item["batch"], int(item.get("parts", 1))
        parts.append(bytes(item["data"]))  # continuation parts follow in key order
    if batch is not None:
        yield whole()
