"""Which requests moto served are data-plane writes the journal keeps: DynamoDB item writes
(and PartiQL), S3 object writes in the template's buckets, Secrets Manager value writes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from assay_local.moto_requests import service_and_operation

DYNAMODB_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
SECRET_WRITES = frozenset({"PutSecretValue", "UpdateSecret"})
S3_WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})


@dataclass(frozen=True)
class Write:
    kind: str  # "dynamodb", "s3", "s3-create-multipart", "secret"
    operation: str


def _s3_target(environ: Mapping[str, Any]) -> tuple[str, str]:
    """(bucket, key) of a path-style S3 request ("" for what is missing)."""
    path = environ.get("PATH_INFO", "").lstrip("/")
    bucket, _, key = path.partition("/")
    return bucket, key


def classify(environ: Mapping[str, Any], buckets: Iterable[str]) -> Write | None:
    """The data-plane write ``environ`` is, or None (reads, control plane, other buckets)."""
    service, operation = service_and_operation(environ)
    if service == "dynamodb":
        return Write("dynamodb", operation) if operation in DYNAMODB_WRITES else None
    if service == "secretsmanager":
        return Write("secret", operation) if operation in SECRET_WRITES else None
    if service != "s3":
        return None
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in S3_WRITE_METHODS:
        return None
    bucket, key = _s3_target(environ)
    if bucket not in buckets:
        return None
    params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not key:  # bucket level: only DeleteObjects is about objects
        return Write("s3", "DeleteObjects") if method == "POST" and "delete" in params else None
    if method == "POST" and "uploads" in params:
        return Write("s3-create-multipart", "CreateMultipartUpload")
    return Write("s3", f"{method} object")
