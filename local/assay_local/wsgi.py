"""The HTTP front as a WSGI application: same routes, same payload-v2 events, same result
mapping, any invoker. Used to fuzz the API in-process (schemathesis) and usable under any
WSGI server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from assay_local.http_front import (
    MAX_BODY_BYTES,
    HttpFront,
    HttpRequest,
    HttpResponse,
    payload_too_large,
)


def wsgi_app(front: HttpFront) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = _respond(front, environ)
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        headers = list(response.headers)
        if response.request_id:
            headers.append(("apigw-requestid", response.request_id))
        start_response(f"{response.status} {reason}", headers)
        return [response.body]

    return app


def _respond(front: HttpFront, environ: dict[str, Any]) -> HttpResponse:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY_BYTES:  # what the HTTP server answers, before reading the body
        return payload_too_large()
    body = environ["wsgi.input"].read(length) if length else b""
    headers = [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    request = HttpRequest(
        method=environ["REQUEST_METHOD"],
        raw_path=environ.get("PATH_INFO") or "/",
        raw_query=environ.get("QUERY_STRING", ""),
        headers=headers,
        body=body,
        source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
    )
    return front.handle_safely(request)
