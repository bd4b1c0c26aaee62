"""Identifiers.

Evaluation ids are *derived*, not stored: an evaluation id is a UUIDv8 that carries the
run's key prefix, the record's index and the metric's index. This makes every evaluation
id deterministic (a retried batch produces the same ids) and lets ``GET /v1/eval/{id}``
find its evaluation with two key lookups, without an index entry per evaluation — the
evaluations of one batch live in one item (see docs/decisions/0002-storage-layout.md).

Layout of the 16 bytes: ``run[0:10]`` (version nibble replaced by 8) ‖ record index
(4 bytes, big-endian) ‖ metric index (1 byte) ‖ check byte (BLAKE2b of the first 15).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

MAX_RECORDS_PER_RUN = 2**32 - 1
MAX_METRICS = 255


def run_key(run_id: uuid.UUID) -> str:
    """The storage key of a run: its first 80 bits, version nibble cleared."""
    head = bytearray(run_id.bytes[:10])
    head[6] &= 0x0F
    return head.hex()


def _check_byte(body: bytes) -> int:
    return hashlib.blake2b(body, digest_size=1).digest()[0]


def evaluation_id(run_id: uuid.UUID, record_index: int, metric_index: int) -> uuid.UUID:
    if not 0 <= record_index <= MAX_RECORDS_PER_RUN:
        raise ValueError("record index out of range")
    if not 0 <= metric_index <= MAX_METRICS:
        raise ValueError("metric index out of range")
    body = bytearray(run_id.bytes[:10])
    body[6] = (body[6] & 0x0F) | 0x80  # version 8 (custom)
    body[8] = (body[8] & 0x3F) | 0x80  # RFC 4122 variant
    body += record_index.to_bytes(4, "big") + bytes([metric_index])
    return uuid.UUID(bytes=bytes(body) + bytes([_check_byte(bytes(body))]))


@dataclass(frozen=True, slots=True)
class EvaluationRef:
    run_key: str
    record_index: int
    metric_index: int


def parse_evaluation_id(evaluation: uuid.UUID) -> EvaluationRef | None:
    """Decode an evaluation id; ``None`` when it cannot be one of ours."""
    raw = evaluation.bytes
    if evaluation.version != 8 or _check_byte(raw[:15]) != raw[15]:
        return None
    head = bytearray(raw[:10])
    head[6] &= 0x0F
    # Run ids are uuid4: the variant bits we overwrote were already 0b10.
    return EvaluationRef(
        run_key=head.hex(),
        record_index=int.from_bytes(raw[10:14], "big"),
        metric_index=raw[14],
    )
