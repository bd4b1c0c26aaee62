"""A moto WSGI request as the journal stores it, and back: the storable environ of a request
(as served, or as botocore prepared it), a live environ to replay it, ``call_app`` to serve it
in this thread, and botocore clients over moto's app in this process — one that moto answers
(``in_process_client``), one that only builds the requests (``request_builder``)."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY

from assay_local.moto_requests import WsgiApp

HARNESS_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

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
