"""``DurableStore``: one local stack's data directory — the middleware that journals the
writes moto answered 2xx, the secrets' values, replay at start, snapshot and compaction, and
the lock that keeps a directory to one stack."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay_local.moto_requests import WsgiApp, read_body
from assay_local.persistence.journal import CompactionReport, Journal, ReplayReport
from assay_local.persistence.writes import Write, classify
from assay_local.persistence.wsgi_capture import (
    Environ,
    call_app,
    in_process_client,
    live_environ,
    request_builder,
    stored_environ,
)

try:  # POSIX: one stack per data directory (released by the kernel if the process dies)
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("assay_local.persistence")

DB_NAME = "journal.sqlite3"
LOCK_NAME = "lock"
FORMAT_VERSION = "1"
COMPACT_MIN_BYTES = 1 << 20  # below this a journal is replayed as it is
# A stop compacts only a journal up to this size: a compaction rewrites the whole state
# (~10 MB/s on a busy 2-core machine), and a stop must end within seconds. A bigger journal
# is kept as it is and compacted after the next start's replay.
STOP_COMPACT_MAX_BYTES = 48 << 20
SNAPSHOT_SCAN_PAGE = 500  # items per Scan page while snapshotting
SNAPSHOT_LIST_PAGE = 1000  # keys per ListObjectsV2 page
DDB_BATCH = 25  # BatchWriteItem's limit
# Response headers of GetObject that PutObject takes back (what the service sets is
# Content-Type; the rest costs nothing to keep).
_KEPT_OBJECT_HEADERS = {
    "content-type": "ContentType",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
    "cache-control": "CacheControl",
}
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")


class DataDirError(Exception):
    """The data directory cannot be used (in use by another stack, another stack's data)."""


@dataclass(frozen=True)
class StackResources:
    """What of the template's resources the store needs (physical names)."""

    tables: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # name or ARN -> logical id


class DurableStore:
    """Journal, replay and compaction for one local stack on one data directory.

    Life cycle (``LocalStack`` drives it): ``middleware`` goes innermost in front of moto;
    ``secret_values()`` feeds the template's secrets; ``attach`` names the template's
    resources once they exist; ``restore()`` replays; ``start_recording()``; … ``close()``
    (compacting when due). ``kill -9`` at any point loses nothing that was acknowledged."""

    def __init__(self, data_dir: str | os.PathLike[str], *, stack_name: str) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_lock()
        try:
            self.journal = Journal(self.data_dir / DB_NAME)
            known = self.journal.meta("stack_name")
            kept_format = self.journal.meta("format")
            if kept_format is not None and kept_format != FORMAT_VERSION:
                raise DataDirError(
                    f"{self.data_dir} was written in format {kept_format}, this "
                    f"version reads format {FORMAT_VERSION}: use another "
                    "--data-dir (or --ephemeral)"
                )
            if known is not None and known != stack_name:
                raise DataDirError(
                    f"{self.data_dir} holds the state of the local stack "
                    f"{known!r}, not {stack_name!r}: use another --data-dir"
                )
            if known is None:
                self.journal.set_meta("stack_name", stack_name)
                self.journal.set_meta("format", FORMAT_VERSION)
        except BaseException:
            self._release_lock()
            raise
        self._inner: WsgiApp | None = None
        self._host = ""
        self._resources = StackResources()
        self._gate = threading.Lock()  # moto applies + the journal commits, one write at a time
        self._recording = False
        self._restored = False
        self.replay_report: ReplayReport | None = None
        self.compactions: list[CompactionReport] = []
        self.record_errors = 0

    # ------------------------------------------------------------------ lock
    def _take_lock(self) -> Any:
        handle = (self.data_dir / LOCK_NAME).open("a+")
        if fcntl is None:
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DataDirError(
                f"{self.data_dir} is in use by another local stack "
                f"(pid {holder}); stop it or use another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    # ------------------------------------------------------------ middleware
    def middleware(self, app: WsgiApp) -> WsgiApp:
        """Innermost, around moto itself: records each data-plane write moto answered 2xx."""
        self._inner = app

        def journaled(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
            write = classify(environ, self._resources.buckets) if self._recording else None
            if write is None:
                return app(environ, start_response)
            return self._serve_write(app, write, environ, start_response)

        return journaled

    def _serve_write(
        self, app: WsgiApp, write: Write, environ: Environ, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = read_body(environ)
        request = stored_environ(environ)
        with self._gate:
            if not self._recording:  # closed meanwhile: served, not kept
                return app(environ, start_response)
            answer: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer[:] = [status, headers, exc_info]
                return lambda data: None

            response = app(environ, capture)
            try:
                chunks = [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
            status = int(str(answer[0]).split()[0])
            if 200 <= status < 300:
                try:
                    self._record(write, request, body, chunks[0])
                except Exception:
                    # Applied but not durable: say so rather than acknowledge it.
                    self.record_errors += 1
                    log.exception("the journal could not record %s %s", write.kind, write.operation)
                    error = b'{"__type":"InternalFailure","message":"local journal write failed"}'
                    start_response(
                        "500 Internal Server Error",
                        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(error)))],
                    )
                    return [error]
            start_response(answer[0], answer[1])
            return chunks

    def _record(self, write: Write, request: Environ, body: bytes, answer: bytes) -> None:
        if write.kind == "secret":
            self._record_secret(body)
            return
        result = None
        if write.kind == "s3-create-multipart":
            found = _UPLOAD_ID.search(answer)
            result = found.group(1).decode() if found else None
        self.journal.append(request, body, result)

    def _record_secret(self, body: bytes) -> None:
        payload = json.loads(body or b"{}")
        logical_id = self._resources.secrets.get(str(payload.get("SecretId", "")))
        if logical_id is None:
            logical_id = self._resources.secrets.get(_secret_name(str(payload.get("SecretId", ""))))
        if logical_id is None:
            return  # not one of the template's secrets: nothing to restore it into
        if "SecretString" in payload:
            self.journal.put_secret(logical_id, str(payload["SecretString"]))
        elif "SecretBinary" in payload:
            self.journal.put_secret(logical_id, base64.b64decode(payload["SecretBinary"]))

    # --------------------------------------------------------------- restore
    def secret_values(self) -> dict[str, str | bytes]:
        """Logical id → the value each template secret had (empty on a first start)."""
        return self.journal.secret_values()

    def attach(
        self,
        host: str,
        resources: StackResources,
        created_secret_values: Mapping[str, str | bytes],
        given: Mapping[str, str | bytes] | None = None,
    ) -> None:
        """The template's resources exist on moto at ``host``; remember the values their
        secrets were first created with, and the values ``given`` at this start (e.g. the
        judge's API key): those replace the kept ones, as a PutSecretValue would."""
        self._host = host
        self._resources = resources
        known = self.journal.secret_values()
        for logical_id, value in created_secret_values.items():
            if logical_id not in known:
                self.journal.put_secret(logical_id, value)
        for logical_id, value in (given or {}).items():
            if known.get(logical_id) != value:
                self.journal.put_secret(logical_id, value)

    def restore(self) -> ReplayReport:
        """Replay the journal into moto (after ``attach``), then compact when due."""
        report = self.replay_report = self._replay()
        self._restored = True
        if report.failed:
            log.warning(
                "%d of %d journal rows were refused on replay; the journal is kept "
                "as it is (no compaction). First: %s",
                report.failed,
                report.rows,
                "; ".join(report.errors[:3]),
            )
        else:
            self.compact_if_due()
        return report

    def _replay(self) -> ReplayReport:
        inner = self._require_inner()
        report = ReplayReport()
        started = time.perf_counter()
        upload_ids: dict[str, str] = {}
        for seq, _kind, request, body, result in self.journal.rows():
            if upload_ids:
                request = _with_upload_ids(request, upload_ids)
            try:
                status, _headers, answer = call_app(inner, live_environ(request, body, self._host))
            except Exception as exc:  # moto raised instead of answering
                status, answer = 599, f"{type(exc).__name__}: {exc}".encode()
            report.rows += 1
            report.bytes += len(body)
            if not 200 <= status < 300:
                report.failed += 1
                if len(report.errors) < 10:
                    report.errors.append(
                        f"row {seq} {request.get('REQUEST_METHOD')} "
                        f"{request.get('PATH_INFO')} "
                        f"{request.get('HTTP_X_AMZ_TARGET', '')}: {status} "
                        f"{answer[:300].decode('utf-8', 'replace')}"
                    )
                continue
            if result is not None:
                found = _UPLOAD_ID.search(answer)
                if found:
                    upload_ids[result] = found.group(1).decode()
        report.seconds = time.perf_counter() - started
        return report

    def start_recording(self) -> None:
        with self._gate:
            self._recording = True

    # ------------------------------------------------------------- compaction
    def compaction_due(self) -> bool:
        written = self.journal.write_bytes
        return written >= COMPACT_MIN_BYTES and written >= self.journal.snapshot_bytes

    def compact_if_due(self) -> CompactionReport | None:
        return self.compact() if self.compaction_due() else None

    def compact(self) -> CompactionReport:
        """Replace every row by a snapshot of the template's tables and buckets as moto holds
        them now. Writes wait meanwhile (a snapshot is one moment)."""
        if not self._restored:
            raise RuntimeError("compacting before the journal was replayed would lose it")
        started = time.perf_counter()
        with self._gate:
            rows, size = self.journal.replace_with(self._snapshot())
        report = CompactionReport(rows, size, time.perf_counter() - started)
        self.compactions.append(report)
        return report

    def _snapshot(self) -> Iterator[tuple[Environ, bytes]]:
        inner = self._require_inner()
        captured: list[tuple[Environ, bytes]] = []

        def sink(environ: Environ, body: bytes) -> None:
            captured.append((environ, body))

        ddb_read = in_process_client("dynamodb", inner, self._host)
        ddb_write = request_builder("dynamodb", self._host, sink)
        for table in self._resources.tables:
            for page in ddb_read.get_paginator("scan").paginate(
                TableName=table, ConsistentRead=True, PaginationConfig={"PageSize": SNAPSHOT_SCAN_PAGE}
            ):
                items = page.get("Items", [])
                for start in range(0, len(items), DDB_BATCH):
                    ddb_write.batch_write_item(
                        RequestItems={
                            table: [
                                {"PutRequest": {"Item": item}} for item in items[start : start + DDB_BATCH]
                            ]
                        }
                    )
                    yield from captured
                    captured.clear()
        s3_read = in_process_client("s3", inner, self._host)
        s3_write = request_builder("s3", self._host, sink)
        for bucket in self._resources.buckets:
            for page in s3_read.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, PaginationConfig={"PageSize": SNAPSHOT_LIST_PAGE}
            ):
                for listed in page.get("Contents", []):
                    got = s3_read.get_object(Bucket=bucket, Key=listed["Key"])
                    headers = got["ResponseMetadata"]["HTTPHeaders"]
                    kwargs = {
                        arg: headers[name] for name, arg in _KEPT_OBJECT_HEADERS.items() if name in headers
                    }
                    if got.get("Metadata"):
                        kwargs["Metadata"] = got["Metadata"]
                    s3_write.put_object(Bucket=bucket, Key=listed["Key"], Body=got["Body"].read(), **kwargs)
                    yield from captured
                    captured.clear()

    # ---------------------------------------------------------------- queries
    def scan(self, table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Items of ``table`` through moto's own API in this process (local tooling only;
        the service itself never scans)."""
        client = in_process_client("dynamodb", self._require_inner(), self._host)
        for page in client.get_paginator("scan").paginate(TableName=table, **kwargs):
            yield from page.get("Items", [])

    def sizes(self) -> dict[str, int]:
        return {
            "rows": self.journal.count(),
            "write_bytes": self.journal.write_bytes,
            "snapshot_bytes": self.journal.snapshot_bytes,
            "file_bytes": self.journal.size_on_disk(),
        }

    # ------------------------------------------------------------------ close
    def close(self, *, compact: bool = True) -> CompactionReport | None:
        """Stop recording (what moto serves after this is not kept), compact when due and
        the state is whole, release the data directory."""
        report = None
        try:
            if compact and self._restored and self._recording and self._inner is not None:
                try:
                    # The snapshot is at most the last one plus what was written since.
                    bound = self.journal.write_bytes + self.journal.snapshot_bytes
                    if bound <= STOP_COMPACT_MAX_BYTES:
                        report = self.compact_if_due()
                    elif self.compaction_due():
                        log.info(
                            "journal of %.0f MB kept as it is: compacted after the next start's replay",
                            self.journal.write_bytes / 2**20,
                        )
                except Exception:
                    log.exception("compaction at stop failed; the journal is kept as it is")
        finally:
            with self._gate:
                self._recording = False
            self.journal.close()
            self._release_lock()
        return report

    def _require_inner(self) -> WsgiApp:
        if self._inner is None or not self._host:
            raise RuntimeError("the durable store is not attached to a running moto")
        return self._inner


def _secret_name(secret_id: str) -> str:
    """A secret's name from its ARN (Secrets Manager appends ``-`` and 6 characters)."""
    if not secret_id.startswith("arn:"):
        return secret_id
    name = secret_id.split(":secret:", 1)[-1]
    return name[:-7] if re.search(r"-[A-Za-z0-9]{6}$", name) else name


def _with_upload_ids(request: Environ, upload_ids: Mapping[str, str]) -> Environ:
    """``request`` re-pointed from old multipart upload ids to the ones this replay got."""
    query = request.get("QUERY_STRING", "")
    if "uploadId=" not in query:
        return request
    for old, new in upload_ids.items():
        if f"uploadId={old}" in query:
            request = dict(request)
            for key in ("QUERY_STRING", "REQUEST_URI", "RAW_URI"):
                if key in request:
                    request[key] = request[key].replace(f"uploadId={old}", f"uploadId={new}")
            break
    return request
