"""What a request to the embedded moto server is, for the WSGI middleware in front of it.

Shared by ``metering`` (counts billable requests), ``iam`` (checks the
signer's role) and ``presign`` (checks presigned URLs): which service and operation a request
is (``X-Amz-Target`` or the SigV4 credential scope), which access key signed it (header or
presigned query string), its body (read once, put back for the next app), requests whose
body never fully arrived (dropped), and the moto server with middleware in front.

Local tooling only; never part of the Lambda package.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

log = logging.getLogger("assay_local.requests")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Middleware = Callable[[WsgiApp], WsgiApp]

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([a-z0-9-]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"X-Amz-Credential=([^&%]+)%2F\d{8}%2F([^&%]+)%2F([a-z0-9-]+)%2Faws4_request", re.I)
# JSON-protocol services name the operation in X-Amz-Target: "<prefix>.<Operation>".
_TARGET_PREFIXES = {
    "DynamoDB_": "dynamodb",
    "secretsmanager.": "secretsmanager",
    "AWSStepFunctions.": "states",
}


def credential(environ: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``(access key id, region, service)`` from the SigV4 credential scope of the
    ``Authorization`` header or of a presigned URL's query string; None if unsigned."""
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None:
        found = _QUERY_SCOPE.search(environ.get("QUERY_STRING", ""))
        if found is None:
            return None
        return unquote(found.group(1)), unquote(found.group(2)), found.group(3).lower()
    return found.group(1), found.group(2), found.group(3)


def service_and_operation(environ: Mapping[str, Any]) -> tuple[str, str]:
    """``("dynamodb", "GetItem")``, ``("s3", "")`` (REST services: no operation name),
    ``("other", "")`` when the request is neither targeted nor signed."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    for prefix, service in _TARGET_PREFIXES.items():
        if target.startswith(prefix):
            return service, target.split(".", 1)[1]
    scope = credential(environ)
    return (scope[2] if scope else "other"), ""


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back so the wrapped app reads it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def drop_incomplete_requests(app: WsgiApp) -> WsgiApp:
    """A request whose body stops short of its ``Content-Length`` goes no further.

    Its client hung up mid-request — typically a Lambda worker killed while calling AWS
    (botocore sends the headers, then the body). An AWS service never authorizes nor acts on
    a request that did not fully arrive; without this, moto (and the IAM check in front of
    it) would take the missing body for an empty one. Answered as S3 answers it, 400
    ``IncompleteBody``, though nobody is listening any more. Outermost, before anything
    reads the request."""

    def complete_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared <= 0:
            return app(environ, start_response)
        try:
            arrived = len(read_body(environ))
        except OSError:  # reset by the departing client
            arrived = -1
        if arrived >= declared:
            return app(environ, start_response)
        log.info(
            "dropped %s %s: the client hung up before its body arrived",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>IncompleteBody</Code>'
            b"<Message>You did not provide the number of bytes specified by the "
            b"Content-Length HTTP header</Message></Error>"
        )
        start_response(
            "400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return complete_only


def one_dynamodb_request_at_a_time(app: WsgiApp) -> WsgiApp:
    """Serialise moto's DynamoDB: it applies a TransactWriteItems by deep-copying whole
    tables, and another thread writing meanwhile breaks the copy ("dictionary changed size
    during iteration", a 500 DynamoDB never gives). One DynamoDB request at a time, as the
    fault suite does in-process; the other services stay concurrent."""
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            response = app(environ, start_response)
            try:
                return list(response)
            finally:  # PEP 3333: a middleware that consumes the iterable closes it
                close = getattr(response, "close", None)
                if close is not None:
                    close()

    return serialised


class MiddlewareMotoServer(ThreadedMotoServer):
    """moto's threaded server with WSGI middleware in front of its app; the first of
    ``middleware`` sees each request first."""

    def __init__(self, middleware: Sequence[Middleware], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.middleware = list(middleware)

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        for wrap in reversed(self.middleware):
            app = wrap(app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
