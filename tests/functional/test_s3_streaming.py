"""The S3 adapter's streaming paths on moto: multipart exports whose memory stays at one
part, their abort, and a dataset stream that breaks mid-object."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from assay_service.adapters.s3 import MultipartWriter, S3ArtifactStore
from assay_service.errors import TransientStoreError
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws

MB = 1024 * 1024


@pytest.fixture
def store(monkeypatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts")
        calls: Counter[str] = Counter()
        client.meta.events.register(
            "before-call.s3.*", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]])
        )
        yield S3ArtifactStore(client, "artifacts"), calls


def test_multipart_writer_streams_parts_and_holds_at_most_one(store):
    """GIVEN 12 MB written in 64 KB chunks with 5 MB parts THEN three parts are uploaded,
    the buffer never holds more than a part plus a chunk, and the object is the bytes."""
    s3, calls = store
    writer = MultipartWriter(s3, "tenants/t/runs/r/export.jsonl", "application/x-ndjson", part_size=5 * MB)
    chunk = bytes(range(256)) * 256  # 64 KB
    written, peak = bytearray(), 0
    for _ in range(12 * 16):
        writer.write(chunk)
        written += chunk
        peak = max(peak, len(writer._buffer))
    assert writer.close() == len(written) == 12 * MB
    assert calls["CreateMultipartUpload"] == 1 and calls["UploadPart"] == 3
    assert calls["CompleteMultipartUpload"] == 1 and calls["PutObject"] == 0
    assert peak < 5 * MB + len(chunk)
    body = s3.client.get_object(Bucket="artifacts", Key="tenants/t/runs/r/export.jsonl")
    assert body["Body"].read() == bytes(written) and body["ContentType"] == "application/x-ndjson"


def test_a_small_export_is_one_put_object(store):
    s3, calls = store
    writer = MultipartWriter(s3, "k.json", "application/json")
    writer.write(b'{"items": []}')
    assert writer.close() == 13
    assert calls["PutObject"] == 1 and calls["CreateMultipartUpload"] == 0


def test_abort_leaves_neither_an_object_nor_an_open_upload(store):
    s3, _ = store
    writer = MultipartWriter(s3, "k.csv", "text/csv", part_size=5 * MB)
    writer.write(b"x" * (6 * MB))  # one part uploaded, an upload open
    writer.abort()
    assert s3.client.list_multipart_uploads(Bucket="artifacts").get("Uploads", []) == []
    assert s3.size("k.csv") is None


def test_a_stream_broken_mid_object_is_transient(store, monkeypatch):
    s3, _ = store
    s3.put_bytes("d.jsonl", b'{"id": 1}\n' * 10_000, "application/x-ndjson")
    from botocore.response import StreamingBody

    original = StreamingBody.iter_lines

    def breaking(self, *args, **kwargs):
        for n, line in enumerate(original(self, *args, **kwargs)):
            if n == 5000:
                raise ReadTimeoutError(endpoint_url="https://s3.us-east-1.amazonaws.com")
            yield line

    monkeypatch.setattr(StreamingBody, "iter_lines", breaking)
    lines = s3.iter_lines("d.jsonl")
    with pytest.raises(TransientStoreError, match="d.jsonl"):
        for _ in lines:
            pass
