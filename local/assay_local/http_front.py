"""A local stand-in for the API Gateway HTTP API: payload format 2.0 in and out.

Each request is matched against the template's routes, turned into the same event API
Gateway would send, and handed to the function *through moto's Lambda Invoke API*, so
HTTP requests and Step Functions tasks reach the handler by the same path (the hook in
``lambda_runtime``).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from assay_local.routes import RouteMatch, RouteTable

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
# What http.server accepts before it gives up on a request (its send_error paths): one
# request or header line of at most this many bytes, at most this many header lines.
MAX_LINE_BYTES = int(getattr(http.client, "_MAXLINE", 65536))
MAX_HEADERS = int(getattr(http.client, "_MAXHEADERS", 100))
# After an early answer (413, 431…) the rest of the request is read and dropped for this
# long, at most this much, so the client reads the answer instead of a connection reset.
_LINGER_SECONDS = 5.0
_LINGER_MAX_BYTES = 4 * MAX_BODY_BYTES
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/problem+json",
    "application/vnd.api+json",
)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Sent as ``apigw-requestid``: the event's requestContext.requestId, as on AWS.
    request_id: str | None = None


def json_response(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def new_request_id() -> str:
    return base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> HttpResponse:
    """An answer of the front itself, in the API's error envelope (as the handlers'
    ``envelope()``): ``{error, code, details, request_id}``."""
    request_id = new_request_id()
    response = json_response(
        status, {"error": message, "code": code, "details": details or {}, "request_id": request_id}
    )
    response.request_id = request_id
    return response


def _is_text(content_type: str | None, body: bytes) -> bool:
    if content_type is None:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    return base.startswith(_TEXT_TYPES) or base.endswith(("+json", "+xml"))


def build_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    api_id: str,
    account_id: str,
    domain_name: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload-format-2.0 event for ``request``."""
    now = time.time() if now is None else now
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    # API Gateway adds these (a client's own are overwritten, x-forwarded-for appended to);
    # the local front speaks plain HTTP.
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    headers["x-forwarded-proto"] = "http"
    headers["x-forwarded-port"] = domain_name.rpartition(":")[2] if ":" in domain_name else "80"
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    request_id = new_request_id()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": match.route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = {k: unquote(v) for k, v in match.path_parameters.items()}
    if request.body:
        text = None
        if _is_text(headers.get("content-type"), request.body):
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:  # declared text, but not UTF-8: sent on as binary
                text = None
        if text is not None:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def map_result(payload: bytes, function_errored: bool) -> HttpResponse:
    """Turn a Lambda result into the HTTP response, by the payload-format-2.0 rules:
    a dict with ``statusCode`` is a structured response; any other valid JSON is a 200
    ``application/json`` body; a function error or malformed response is a 500."""
    if function_errored:
        return json_response(500, {"message": "Internal Server Error"})
    try:
        result = json.loads(payload or b"null")
    except ValueError:
        return json_response(500, {"message": "Internal Server Error"})
    if not (isinstance(result, dict) and "statusCode" in result):
        body = payload if payload else b""
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    try:
        status = int(result["statusCode"])
        headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(v)) for v in values)
        headers.extend(("Set-Cookie", str(c)) for c in result.get("cookies") or [])
        raw_body = result.get("body")
        if raw_body is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw_body)
        else:
            body = (raw_body if isinstance(raw_body, str) else json.dumps(raw_body)).encode()
    except (TypeError, ValueError, AttributeError):
        return json_response(500, {"message": "Internal Server Error"})
    if not any(k.lower() == "content-type" for k, _ in headers) and body:
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, body)


# Invokes a function by ARN with a JSON event: (payload bytes, errored).
Invoker = Callable[[str, dict[str, Any]], tuple[bytes, bool]]


def payload_too_large() -> HttpResponse:
    return error_response(
        413,
        "validation.invalid_request",
        f"request body too large: at most 10 MB ({MAX_BODY_BYTES} bytes)",
        {"max_body_bytes": MAX_BODY_BYTES},
    )


def _protocol_error(status: int, message: str | None) -> HttpResponse:
    """The envelope for what ``BaseHTTPRequestHandler.send_error`` would answer in HTML."""
    if status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
        return error_response(
            status,
            "validation.invalid_request",
            f"request headers too large: at most {MAX_LINE_BYTES} bytes per header line "
            f"and {MAX_HEADERS} header lines",
            {"max_header_line_bytes": MAX_LINE_BYTES, "max_headers": MAX_HEADERS},
        )
    if status == HTTPStatus.REQUEST_URI_TOO_LONG:
        return error_response(
            status,
            "validation.invalid_request",
            f"request line too long: at most {MAX_LINE_BYTES} bytes",
            {"max_request_line_bytes": MAX_LINE_BYTES},
        )
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "invalid request"
    # 505 (an HTTP version it does not speak) is the client's doing despite its 5xx.
    client_side = status < 500 or status == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED
    code = "validation.invalid_request" if client_side else "server.internal_error"
    return error_response(status, code, f"{phrase}: {message[:200]}" if message else phrase)


class _Handler(BaseHTTPRequestHandler):
    server: HttpFrontServer
    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes; on a kept-alive connection Nagle's
    # algorithm holds the second until the client's delayed ACK of the first: 40 ms on
    # every response. API Gateway answers without that stall.
    disable_nagle_algorithm = True

    def __getattr__(self, name: str) -> Any:
        # http.server dispatches a method to ``do_<METHOD>`` and answers 501 when there is
        # none; every method goes to the route table instead (the template's catch-all
        # answers 405 or 404), as on API Gateway.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except _PayloadTooLarge:
            self._send(payload_too_large(), close=True)
            self._linger()
            return
        except ValueError:  # a Content-Length or chunk size that is not a number
            self._send(
                error_response(
                    400,
                    "validation.invalid_request",
                    "malformed request body framing (Content-Length or chunk size)",
                ),
                close=True,
            )
            self._linger()
            return
        request = HttpRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self._send(self.server.front.handle_safely(request))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (headers too large, malformed request line…), in the
        envelope instead of its HTML page; the connection is then closed."""
        self.log_error("code %d, message %s", code, message)
        if self.request_version == "HTTP/0.9":  # unparsed request line: still send a status
            self.request_version = "HTTP/1.0"
        self._send(_protocol_error(int(code), message), close=True)
        self._linger()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(self._read_chunks())
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            raise _PayloadTooLarge
        return self.rfile.read(length) if length else b""

    def _read_chunks(self) -> Iterable[bytes]:
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            total += size
            if total > MAX_BODY_BYTES:
                raise _PayloadTooLarge
            yield self.rfile.read(size)
            self.rfile.readline()

    def _send(self, response: HttpResponse, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:  # send_response already wrote Date
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date"):
                self.send_header(name, value)
        self.send_header("apigw-requestid", response.request_id or new_request_id())
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _linger(self) -> None:
        """Read and drop what the client still sends after an early answer, then let the
        server close: closing with unread input resets the connection, and the client may
        lose the answer it has not read yet."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            dropped = 0
            while dropped < _LINGER_MAX_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.connection.settimeout(left)
                chunk = self.connection.recv(65536)
                if not chunk:
                    return
                dropped += len(chunk)
        except OSError:
            return

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.front.access_log:
            super().log_message(format, *args)


class _PayloadTooLarge(Exception):
    pass


class HttpFrontServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog is 5: a burst of more simultaneous connects than that
    # (a thread pool of clients starting together) overflows the accept queue before the
    # serving thread accepts them, and the kernel resets the extra ones. 128 (Linux's
    # SOMAXCONN before 5.4) absorbs any burst a local client makes.
    request_queue_size = 128
    front: HttpFront


class HttpFront:
    """The HTTP server plus the routing/event logic behind it."""

    def __init__(
        self,
        routes: RouteTable,
        invoke: Invoker,
        *,
        api_id: str,
        account_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
    ) -> None:
        self.routes = routes
        self._invoke = invoke
        self.api_id = api_id
        self.account_id = account_id
        self.access_log = access_log
        self._server = HttpFrontServer((host, port), _Handler)
        self._server.front = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, request: HttpRequest) -> HttpResponse:
        match = self.routes.match(request.method, request.raw_path)
        if match is None:
            # The template's catch-all route answers unknown paths itself; this is only for
            # what matches no route at all (a target not starting with "/", or a template
            # without the catch-all).
            return error_response(
                404, "resource.not_found", f"no such route: {request.method} {request.raw_path[:200]}"
            )
        host = dict((k.lower(), v) for k, v in request.headers).get("host", f"127.0.0.1:{self.port}")
        event = build_event(request, match, api_id=self.api_id, account_id=self.account_id, domain_name=host)
        payload, errored = self._invoke(match.route.function_arn, event)
        response = map_result(payload, errored)
        response.request_id = event["requestContext"]["requestId"]
        return response

    def handle_safely(self, request: HttpRequest) -> HttpResponse:
        """``handle``, with any failure of the front itself answered in the envelope."""
        try:
            return self.handle(request)
        except Exception:
            traceback.print_exc()
            return error_response(500, "server.internal_error", "internal error")

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="assay-http-front", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
