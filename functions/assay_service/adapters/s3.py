"""S3 adapter: dataset versions (JSONL), batch manifests, export artifacts, presigned links.

Every object lives under ``tenants/{tenant_id}/`` so a presigned link can only ever point
inside the caller's prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from assay_service.adapters.aws_errors import is_transient
from assay_service.errors import TransientStoreError

# Network faults left once the client's own retries are spent (connection refused or
# dropped, read timeout, a body cut short): the workflow retries the step.
_NETWORK: tuple[type[BotoCoreError], ...] = (BotoConnectionError, HTTPClientError, IncompleteReadError)


def dataset_prefix(tenant_id: UUID, dataset_id: UUID) -> str:
    return f"tenants/{tenant_id}/datasets/{dataset_id}/"


def dataset_version_key(tenant_id: UUID, dataset_id: UUID, version_id: UUID) -> str:
    return f"{dataset_prefix(tenant_id, dataset_id)}versions/{version_id}.jsonl"


def upload_key(tenant_id: UUID, dataset_id: UUID, upload_id: UUID) -> str:
    """Uploads live apart from versions: the bucket expires ``uploads/`` after two days."""
    return f"{upload_prefix(tenant_id, dataset_id)}{upload_id}.jsonl"


def upload_prefix(tenant_id: UUID, dataset_id: UUID) -> str:
    return f"uploads/{tenant_id}/{dataset_id}/"


def run_prefix(tenant_id: UUID, run_id: UUID) -> str:
    return f"tenants/{tenant_id}/runs/{run_id}/"


def manifest_key(tenant_id: UUID, run_id: UUID) -> str:
    return run_prefix(tenant_id, run_id) + "manifest.json"


def export_key(tenant_id: UUID, run_id: UUID, fmt: str) -> str:
    return run_prefix(tenant_id, run_id) + f"export.{fmt}"


def openai_file_key(tenant_id: UUID, file_id: UUID) -> str:
    return f"tenants/{tenant_id}/openai-files/{file_id}"


class S3ArtifactStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    # The store names its objects (the layout above): services ask for a key, never build one.
    def dataset_version_key(self, tenant_id: UUID, dataset_id: UUID, version_id: UUID) -> str:
        return dataset_version_key(tenant_id, dataset_id, version_id)

    def upload_key(self, tenant_id: UUID, dataset_id: UUID, upload_id: UUID) -> str:
        return upload_key(tenant_id, dataset_id, upload_id)

    def upload_prefix(self, tenant_id: UUID, dataset_id: UUID) -> str:
        return upload_prefix(tenant_id, dataset_id)

    def dataset_prefix(self, tenant_id: UUID, dataset_id: UUID) -> str:
        return dataset_prefix(tenant_id, dataset_id)

    def manifest_key(self, tenant_id: UUID, run_id: UUID) -> str:
        return manifest_key(tenant_id, run_id)

    def export_key(self, tenant_id: UUID, run_id: UUID, fmt: str) -> str:
        return export_key(tenant_id, run_id, fmt)

    def openai_file_key(self, tenant_id: UUID, file_id: UUID) -> str:
        return openai_file_key(tenant_id, file_id)

    def writer(self, key: str, content_type: str) -> MultipartWriter:
        """A streaming writer of one object (multipart once it outgrows one part)."""
        return MultipartWriter(self, key, content_type)

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if is_transient(exc):
                raise TransientStoreError(f"S3 {op}: {exc}") from exc
            raise
        except _NETWORK as exc:
            raise TransientStoreError(f"S3 {op}: {exc}") from exc

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        self._call("put_object", Key=key, Body=body, ContentType=content_type)

    def put_json(self, key: str, payload: Any) -> int:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.put_bytes(key, body, "application/json")
        return len(body)

    def get_bytes(self, key: str, *, byte_range: tuple[int, int] | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Key": key}
        if byte_range:
            kwargs["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        body = self._call("get_object", **kwargs)["Body"]
        try:
            return body.read()
        except _NETWORK as exc:
            raise TransientStoreError(f"S3 get_object {key}: {exc}") from exc

    def iter_lines(self, key: str) -> Iterator[bytes]:
        """Stream an object line by line (memory does not grow with its size)."""
        body = self._call("get_object", Key=key)["Body"]
        try:
            yield from body.iter_lines(keepends=True)
        except _NETWORK as exc:  # the stream broke mid-object: the step is retried whole
            raise TransientStoreError(f"S3 get_object {key}: {exc}") from exc

    def size(self, key: str) -> int | None:
        try:
            return int(self._call("head_object", Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (the caller's own tenant's prefix: keys are ids)."""
        kwargs: dict[str, Any] = {"Prefix": prefix}
        while True:
            out = self._call("list_objects_v2", **kwargs)
            yield from (obj["Key"] for obj in out.get("Contents", []))
            if not out.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = out["NextContinuationToken"]

    def delete_keys(self, keys: list[str]) -> None:
        """Delete objects, 1,000 per DeleteObjects; a missing key is no error. With bucket
        versioning, S3 keeps the data as a noncurrent version until the lifecycle rule
        expires it (30 days): the API can no longer reach it."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            out = self._call("delete_objects", Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
            errors = out.get("Errors") or []
            if errors:
                first = errors[0]
                raise TransientStoreError(
                    f"S3 delete_objects: {len(errors)} not deleted, "
                    f"first {first.get('Key')}: {first.get('Code')}"
                )

    def presign_put(self, key: str, *, content_type: str, expires_in: int) -> tuple[str, datetime]:
        url = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return url, datetime.now(UTC) + timedelta(seconds=expires_in)

    def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> tuple[str, datetime]:
        url = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=expires_in,
            HttpMethod="GET",
        )
        return url, datetime.now(UTC) + timedelta(seconds=expires_in)


class MultipartWriter:
    """Stream bytes into one S3 object: parts of ``part_size`` as they fill (memory stays
    at one part), a plain PutObject when the whole thing fits in the first part."""

    def __init__(
        self, store: S3ArtifactStore, key: str, content_type: str, part_size: int = 8 * 1024 * 1024
    ) -> None:
        self.store, self.key, self.content_type = store, key, content_type
        self.part_size = max(part_size, 5 * 1024 * 1024)  # S3's minimum part size
        self.size = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self.part_size:
            self._flush()

    def _flush(self) -> None:
        if self._upload_id is None:
            self._upload_id = self.store._call(
                "create_multipart_upload", Key=self.key, ContentType=self.content_type
            )["UploadId"]
        number = len(self._parts) + 1
        out = self.store._call(
            "upload_part", Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"ETag": out["ETag"], "PartNumber": number})
        self._buffer.clear()

    def close(self) -> int:
        if self._upload_id is None:
            self.store.put_bytes(self.key, bytes(self._buffer), self.content_type)
        else:
            if self._buffer:
                self._flush()
            self.store._call(
                "complete_multipart_upload",
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        return self.size

    def abort(self) -> None:
        if self._upload_id is not None:
            self.store._call("abort_multipart_upload", Key=self.key, UploadId=self._upload_id)
