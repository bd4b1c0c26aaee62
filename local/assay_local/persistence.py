"""A durable local stack: the data-plane writes moto served, kept in a data directory.

moto keeps everything in memory, and the local stack creates its resources from the template
at every start, so without this a restart forgets every dataset, eval, run and API key.
``DurableStore`` keeps what the template's resources *hold* — DynamoDB items, S3 objects, the
Secrets Manager secrets' values — and nothing else (the resources themselves come from the
template again; Step Functions executions are not kept, ``LocalStack`` resumes the runs they
served). Decision 0011 says why it is built this way.

* **A write-ahead journal.** A WSGI middleware, innermost in front of moto, records each
  data-plane write *that moto answered with 2xx* — DynamoDB ``PutItem``, ``UpdateItem``,
  ``DeleteItem``, ``BatchWriteItem``, ``TransactWriteItems`` and the PartiQL statements; S3
  object writes in the template's buckets (``PutObject``, ``CopyObject``, multipart uploads,
  ``DeleteObject(s)``, object tagging and ACLs) — as the request itself (method, path,
  headers, body), committed to SQLite before the answer leaves. One lock around "moto
  applies it, the journal commits it" puts the journal in the order moto applied the writes.
  A write whose answer never left (the process died between the two) was never
  acknowledged, so a client retries it or never relied on it.
* **Secret values** are kept per template secret (the value it was created with, then each
  ``PutSecretValue``/``UpdateSecret`` value), and a later start *creates* the secret with
  it: the HMAC key under which API keys are hashed survives, so stored keys still match.
* **Replay.** On start, after the template's resources exist, every journal row goes through
  moto's own app in this process, below the middleware chain (a replay is not a function's
  request: no IAM check, no metering), in order. A multipart upload gets a new upload id from
  moto, so later rows of that upload are re-pointed at it.
* **Compaction** replaces the rows by a snapshot of the current state, read back through the
  public APIs in this process (DynamoDB ``Scan``, S3 ``ListObjectsV2`` + ``GetObject``) and
  written as the requests the SDK would send to recreate it (``BatchWriteItem``,
  ``PutObject``), so a replay's work follows the state's size, not its history. It runs when
  the rows written since the last snapshot outweigh the snapshot (and at least
  ``COMPACT_MIN_BYTES``): after a start-up replay, and at a clean stop when the journal is
  small enough to compact within seconds (``STOP_COMPACT_MAX_BYTES``).
* **SQLite** (stdlib ``sqlite3``) in WAL mode, ``synchronous=NORMAL``: a committed write
  survives the process's death (``kill -9``); a power cut may lose the last commits but never
  tears one — a half-written last record is ignored on the next open.

Local tooling only; never part of the Lambda package.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY

from assay_local.moto_requests import WsgiApp, read_body, service_and_operation

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
HARNESS_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

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
# environ entries a replay needs: the request line and its headers, nothing of the socket.
_KEPT_ENVIRON = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "RAW_URI",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_PROTOCOL",
)

Environ = dict[str, Any]


class DataDirError(Exception):
    """The data directory cannot be used (in use by another stack, another stack's data)."""


# ------------------------------------------------------------------------ WSGI plumbing
def stored_environ(environ: Mapping[str, Any]) -> Environ:
    """What of a WSGI environ a replay needs: the request line, the headers (and moto's
    record of header names that keep their underscores), nothing of the socket."""
    kept: Environ = {k: environ[k] for k in _KEPT_ENVIRON if isinstance(environ.get(k), str)}
    kept.update({k: v for k, v in environ.items() if k.startswith("HTTP_") and isinstance(v, str)})
    preserved = environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY)
    if isinstance(preserved, dict) and preserved:
        kept[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = dict(preserved)
    return kept


def live_environ(stored: Mapping[str, Any], body: bytes, host: str) -> Environ:
    """A complete WSGI environ for a stored request, addressed to ``host`` (``ip:port``)."""
    name, _, port = host.rpartition(":")
    environ: Environ = dict(stored)
    environ.update(
        {
            "HTTP_HOST": host,
            "SERVER_NAME": name,
            "SERVER_PORT": port,
            "SCRIPT_NAME": environ.get("SCRIPT_NAME", ""),
            "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
    )
    if isinstance(environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY), dict):
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = dict(environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY])
    return environ


def call_app(app: WsgiApp, environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Serve ``environ`` with ``app`` in this thread: (status, headers, body)."""
    answer: list[Any] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        answer[:] = [status, headers]
        return lambda data: None

    response = app(environ, start_response)
    try:
        body = b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    return int(str(answer[0]).split()[0]), list(answer[1]), body


def environ_from_request(request: AWSPreparedRequest) -> tuple[Environ, bytes]:
    """The stored form of a request botocore prepared (what a server would have received)."""
    body = request.body
    if body is None:
        body = b""
    elif hasattr(body, "read"):
        body = body.read()
    elif isinstance(body, str):
        body = body.encode("utf-8")
    parts = urlsplit(request.url)
    raw_path = parts.path or "/"
    environ: Environ = {
        "REQUEST_METHOD": request.method.upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": parts.query,
        "REQUEST_URI": raw_path + (f"?{parts.query}" if parts.query else ""),
        "RAW_URI": raw_path + (f"?{parts.query}" if parts.query else ""),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
    }
    preserved: dict[str, str] = {}
    for name, value in request.headers.items():
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
            continue
        environ[f"HTTP_{key}"] = value
        if "_" in name and name.lower().startswith("x-amz-meta-"):
            preserved[f"HTTP_{key}"] = name
    environ["CONTENT_LENGTH"] = str(len(body))
    if preserved:
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
    return environ, bytes(body)


class _RawBody(io.BytesIO):
    """What botocore reads a response body from (``read`` and ``stream``)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


_SESSION: list[boto3.session.Session] = []
_SESSION_LOCK = threading.Lock()


def _client(service: str, host: str, region: str) -> Any:
    """A new client from one shared session (its loader caches the service models: a
    session per client would read them from disk every time)."""
    with _SESSION_LOCK:
        if not _SESSION:
            _SESSION.append(boto3.session.Session())
        return _SESSION[0].client(
            service,
            endpoint_url=f"http://{host}",
            region_name=region,
            config=Config(retries={"max_attempts": 1}),
            **HARNESS_KEYS,
        )


def in_process_client(service: str, app: WsgiApp, host: str, region: str = "us-east-1") -> Any:
    """A boto3 client whose requests ``app`` serves in this thread (no socket, no middleware
    but what ``app`` is): the public API, serialised and parsed by botocore."""
    client = _client(service, host, region)

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        stored, body = environ_from_request(request)
        status, headers, out = call_app(app, live_environ(stored, body, host))
        return AWSResponse(request.url, status, dict(headers), _RawBody(out))

    client.meta.events.register("before-send", send)
    return client


def request_builder(
    service: str, host: str, sink: Callable[[Environ, bytes], None], region: str = "us-east-1"
) -> Any:
    """A boto3 client that sends nothing: each call's request goes to ``sink`` as the SDK
    would have sent it, and the call "succeeds" with an empty answer."""
    client = _client(service, host, region)

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        sink(*environ_from_request(request))
        empty = b"{}" if "X-Amz-Target" in request.headers else b""
        return AWSResponse(request.url, 200, {"ETag": '"0"'}, _RawBody(empty))

    client.meta.events.register("before-send", send)
    return client


# ------------------------------------------------------------------ which writes to keep
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


# ------------------------------------------------------------------------------ the store
@dataclass
class ReplayReport:
    rows: int = 0
    failed: int = 0
    seconds: float = 0.0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class CompactionReport:
    rows: int
    bytes: int
    seconds: float


class Journal:
    """The SQLite file: journal rows (requests, in the order moto applied them; a
    snapshot's rows first), the secrets' values, and a little metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if new:  # must precede the first table: lets a compaction give pages back
            self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS journal (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,          -- 'write' (served by moto) or 'snapshot'
                request TEXT NOT NULL,       -- the stored WSGI environ (JSON)
                body BLOB NOT NULL,
                result TEXT                  -- CreateMultipartUpload: the upload id
            );
            CREATE TABLE IF NOT EXISTS secrets (
                logical_id TEXT PRIMARY KEY, string TEXT, binary BLOB);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """)
        self.lock = threading.Lock()
        sums = dict(
            self.db.execute(
                "SELECT kind, COALESCE(SUM(length(request) + length(body)), 0) FROM journal GROUP BY kind"
            ).fetchall()
        )
        self.write_bytes = int(sums.get("write", 0))
        self.snapshot_bytes = int(sums.get("snapshot", 0))

    # ---- metadata
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ---- rows
    def append(self, environ: Environ, body: bytes, result: str | None = None) -> None:
        request = json.dumps(environ, separators=(",", ":"))
        with self.lock:
            self.db.execute(
                "INSERT INTO journal(kind, request, body, result) VALUES ('write', ?, ?, ?)",
                (request, body, result),
            )
            self.write_bytes += len(request) + len(body)

    def rows(self) -> Iterator[tuple[int, str, Environ, bytes, str | None]]:
        cursor = self.db.execute("SELECT seq, kind, request, body, result FROM journal ORDER BY seq")
        for seq, kind, request, body, result in cursor:
            yield seq, kind, json.loads(request), bytes(body), result

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    def replace_with(self, snapshot: Iterable[tuple[Environ, bytes]]) -> tuple[int, int]:
        """Every row replaced by ``snapshot``'s, in one transaction: a crash leaves the old
        rows or the new ones, never a mix. Returns (rows, bytes)."""
        rows = size = 0
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("DELETE FROM journal")
                for environ, body in snapshot:
                    request = json.dumps(environ, separators=(",", ":"))
                    self.db.execute(
                        "INSERT INTO journal(kind, request, body) VALUES ('snapshot', ?, ?)", (request, body)
                    )
                    rows += 1
                    size += len(request) + len(body)
                self.db.execute(
                    "INSERT INTO meta(key, value) VALUES ('compacted_at', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (datetime.now(UTC).isoformat(),),
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.write_bytes, self.snapshot_bytes = 0, size
            self.db.execute("PRAGMA incremental_vacuum")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return rows, size

    # ---- secrets
    def secret_values(self) -> dict[str, str | bytes]:
        return {
            lid: (bytes(binary) if binary is not None else string)
            for lid, string, binary in self.db.execute("SELECT logical_id, string, binary FROM secrets")
        }

    def put_secret(self, logical_id: str, value: str | bytes) -> None:
        string, binary = (None, value) if isinstance(value, bytes) else (value, None)
        with self.lock:
            self.db.execute(
                "INSERT INTO secrets(logical_id, string, binary) VALUES (?, ?, ?) "
                "ON CONFLICT(logical_id) DO UPDATE SET string = excluded.string, "
                "binary = excluded.binary",
                (logical_id, string, binary),
            )

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(f"{self.path.name}*") if p.is_file())

    def close(self) -> None:
        with self.lock, contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()


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
        self, host: str, resources: StackResources, created_secret_values: Mapping[str, str | bytes]
    ) -> None:
        """The template's resources exist on moto at ``host``; remember the values their
        secrets were first created with."""
        self._host = host
        self._resources = resources
        known = self.journal.secret_values()
        for logical_id, value in created_secret_values.items():
            if logical_id not in known:
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


# --------------------------------------------------------------- runs cut short
@dataclass(frozen=True)
class UnfinishedRun:
    tenant_id: str
    run_id: str
    status: str


def unfinished_runs(store: DurableStore, table: str) -> list[UnfinishedRun]:
    """Runs still ``pending`` or ``running`` in ``table`` (a Scan: start-up only)."""
    items = store.scan(
        table,
        FilterExpression="SK = :run AND (#s = :pending OR #s = :running)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":run": {"S": "RUN"},
            ":pending": {"S": "pending"},
            ":running": {"S": "running"},
        },
        ProjectionExpression="tenant_id, id, #s",
    )
    return sorted(
        (
            UnfinishedRun(i["tenant_id"]["S"], i["id"]["S"], i["status"]["S"])
            for i in items
            if "tenant_id" in i and "id" in i
        ),
        key=lambda r: (r.tenant_id, r.run_id),
    )


STOPPED_ERROR = "LocalStackStopped"


def stopped_run_event(
    run: UnfinishedRun, state_machine_arn: str, account_id: str, region: str, reason: str
) -> dict[str, Any]:
    """AWS's "Step Functions Execution Status Change" event (FAILED) for a run whose
    execution the local stack lost when it stopped, and could not start again."""
    from assay_local.eventbridge import DETAIL_TYPE

    now = int(time.time() * 1000)
    execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run.run_id}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": state_machine_arn,
            "name": run.run_id,
            "status": "FAILED",
            "startDate": now,
            "stopDate": now,
            "input": json.dumps({"tenant_id": run.tenant_id, "run_id": run.run_id}),
            "output": None,
            "inputDetails": {"included": True},
            "outputDetails": None,
            "error": STOPPED_ERROR,
            "cause": (
                "the local stack stopped while the run was in flight, and its workflow "
                f"could not be started again: {reason}"
            )[:2000],
        },
    }
