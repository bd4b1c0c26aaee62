"""Route matching, payload-format-2.0 events and result mapping of the local front."""

from __future__ import annotations

import base64
import json

import pytest
from assay_local.http_front import HttpRequest, build_event, map_result
from assay_local.routes import RouteTable
from assay_local.template import TemplateError

FN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def _op(name: str) -> dict:
    return {
        "x-amazon-apigateway-integration": {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "payloadFormatVersion": "2.0",
            "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
            f"{FN.format(name)}/invocations",
        },
        "responses": {},
    }


TABLE = RouteTable.from_openapi(
    {
        "paths": {
            "/v1/eval-runs/{id}": {"get": _op("GetRun"), "parameters": []},
            "/v1/eval-runs/{id}/export": {"get": _op("Export")},
            "/v1/eval-runs/latest": {"get": _op("Latest")},
            "/v1/datasets/{id}/runs": {"post": _op("Schedule")},
            "/v1/health": {"get": _op("Meta")},
            "/files/{path+}": {"x-amazon-apigateway-any-method": _op("Files")},
        }
    }
)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("GET", "/v1/eval-runs/r1", "GetRun", {"id": "r1"}),
        ("get", "/v1/eval-runs/r1/export", "Export", {"id": "r1"}),
        ("GET", "/v1/eval-runs/latest", "Latest", {}),
        ("POST", "/v1/datasets/d%201/runs", "Schedule", {"id": "d%201"}),
        ("DELETE", "/files/a/b.txt", "Files", {"path": "a/b.txt"}),
    ],
)
def test_route_matching(method: str, path: str, function: str, params: dict) -> None:
    match = TABLE.match(method, path)
    assert match is not None
    assert match.route.function_arn == FN.format(function)
    assert match.path_parameters == params


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/eval-runs/r1"), ("GET", "/v1/eval-runs/r1/"), ("GET", "/v1/nope"), ("GET", "/")],
)
def test_unmatched_routes(method: str, path: str) -> None:
    assert TABLE.match(method, path) is None


def test_non_lambda_integrations_fail_loudly() -> None:
    op = _op("X")
    op["x-amazon-apigateway-integration"]["type"] = "http_proxy"
    with pytest.raises(TemplateError):
        RouteTable.from_openapi({"paths": {"/x": {"get": op}}})


def _request(**overrides: object) -> HttpRequest:
    fields: dict = {
        "method": "POST",
        "raw_path": "/v1/datasets/d1/runs",
        "raw_query": "a=1&a=2&b=",
        "headers": [
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("User-Agent", "pytest"),
            ("Cookie", "s=1; t=2"),
        ],
        "body": b'{"x": 1}',
        "source_ip": "127.0.0.1",
    }
    fields.update(overrides)
    return HttpRequest(**fields)


def test_build_event_follows_payload_format_2() -> None:
    match = TABLE.match("POST", "/v1/datasets/d1/runs")
    assert match is not None
    event = build_event(
        _request(), match, api_id="abc", account_id="123456789012", domain_name="127.0.0.1:3000", now=1.5
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/datasets/{id}/runs"
    assert event["rawPath"] == "/v1/datasets/d1/runs"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"id": "d1"}
    assert event["headers"]["x-multi"] == "one,two"
    # API Gateway's own forwarding headers (the local front is plain HTTP).
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == "3000"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "POST",
        "path": "/v1/datasets/d1/runs",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert ctx["stage"] == "$default" and ctx["routeKey"] == event["routeKey"]
    assert ctx["timeEpoch"] == 1500 and ctx["apiId"] == "abc"
    assert ctx["accountId"] == "123456789012" and ctx["requestId"]


def test_build_event_binary_body_and_minimal_request() -> None:
    match = TABLE.match("GET", "/v1/health")
    assert match is not None
    binary = build_event(
        _request(
            raw_path="/v1/health",
            raw_query="",
            headers=[("Content-Type", "application/octet-stream")],
            body=b"\xff\x00",
        ),
        match,
        api_id="a",
        account_id="1",
        domain_name="d",
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00"
    bare = build_event(
        _request(raw_path="/v1/health", raw_query="", headers=[], body=b""),
        match,
        api_id="a",
        account_id="1",
        domain_name="d",
    )
    for absent in ("body", "queryStringParameters", "pathParameters", "cookies"):
        assert absent not in bare


def test_map_structured_result() -> None:
    payload = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-A": "1"},
        "multiValueHeaders": {"X-B": ["1", "2"]},
        "cookies": ["c=1; HttpOnly"],
        "body": base64.b64encode(b"hi").decode(),
        "isBase64Encoded": True,
    }
    response = map_result(json.dumps(payload).encode(), function_errored=False)
    assert response.status == 201
    assert response.body == b"hi"
    assert ("X-B", "1") in response.headers and ("X-B", "2") in response.headers
    assert ("Set-Cookie", "c=1; HttpOnly") in response.headers


def test_map_unstructured_result_is_a_200_json_body() -> None:
    response = map_result(b'{"status": "ok"}', function_errored=False)
    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok"}
    assert ("Content-Type", "application/json") in response.headers


def test_map_errors_are_500_like_api_gateway() -> None:
    for payload, errored in [
        (b'{"errorType": "X"}', True),
        (b"not json", False),
        (b'{"statusCode": "abc"}', False),
    ]:
        response = map_result(payload, function_errored=errored)
        assert response.status == 500
        assert json.loads(response.body) == {"message": "Internal Server Error"}


# ---------------------------------------------------------------- the catch-all route

CATCH_ALL = RouteTable.from_openapi(
    {
        "paths": {
            "/v1/datasets": {"get": _op("List"), "post": _op("Create")},
            "/v1/datasets/{id}": {"get": _op("Get")},
            "/v1/datasets/latest": {"get": _op("Latest")},
            "/{proxy+}": {"x-amazon-apigateway-any-method": _op("NoRoute")},
            "/": {"x-amazon-apigateway-any-method": _op("NoRoute")},
        }
    }
)


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("GET", "/v1/datasets", "List"),
        ("POST", "/v1/datasets", "Create"),
        ("GET", "/v1/datasets/d1", "Get"),
        ("GET", "/v1/datasets/latest", "Latest"),
        ("DELETE", "/v1/datasets", "NoRoute"),  # a known path, another method
        ("TRACE", "/v1/datasets/d1", "NoRoute"),
        ("GET", "/v1/datasets/", "NoRoute"),
        ("GET", "/v1/nope", "NoRoute"),
        ("GET", "/", "NoRoute"),
    ],
)
def test_a_catch_all_takes_only_what_no_route_takes(method: str, path: str, function: str) -> None:
    match = CATCH_ALL.match(method, path)
    assert match is not None and match.route.function_arn == FN.format(function)


def test_a_path_variable_beats_a_greedy_route_with_more_literals() -> None:
    # API Gateway: full match, then path variables, then greedy path variables.
    table = RouteTable.from_openapi(
        {"paths": {"/v1/{proxy+}": {"get": _op("Greedy")}, "/{a}/{b}": {"get": _op("Vars")}}}
    )
    match = table.match("GET", "/v1/x")
    assert match is not None and match.route.function_arn == FN.format("Vars")
    match = table.match("GET", "/v1/x/y")
    assert match is not None and match.route.function_arn == FN.format("Greedy")


# ---------------------------------------------------------------- the front over HTTP


def _assert_envelope(status: int, body: bytes, headers: dict[str, str], expected: int, code: str) -> dict:
    assert status == expected, body
    payload = json.loads(body)
    assert set(payload) == {"error", "code", "details", "request_id"}, payload
    assert payload["code"] == code and payload["error"] and payload["request_id"]
    assert headers["apigw-requestid"] == payload["request_id"]
    assert headers["content-type"] == "application/json"
    return payload


@pytest.fixture
def front():
    """A front on a free port whose functions echo what they received."""
    from assay_local.http_front import HttpFront

    calls: list[dict] = []

    def invoke(arn: str, event: dict) -> tuple[bytes, bool]:
        if arn == FN.format("Broken"):
            raise RuntimeError("the front itself fails")
        calls.append(event)
        body = {
            "arn": arn,
            "method": event["requestContext"]["http"]["method"],
            "routeKey": event["routeKey"],
        }
        return json.dumps({"statusCode": 200, "body": json.dumps(body)}).encode(), False

    table = RouteTable.from_openapi(
        {
            "paths": {
                "/v1/health": {"get": _op("Meta")},
                "/v1/broken": {"get": _op("Broken")},
                "/{proxy+}": {"x-amazon-apigateway-any-method": _op("NoRoute")},
            }
        }
    )
    http = HttpFront(table, invoke, api_id="unit", account_id="123456789012")
    http.start()
    http.calls = calls  # type: ignore[attr-defined]
    yield http
    http.stop()


def _raw(front, data: bytes, *, then: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response (the front closes after an error)."""
    import socket
    from http.client import HTTPResponse

    with socket.create_connection(("127.0.0.1", front.port), timeout=30) as sock:
        sock.sendall(data)
        if then:
            sock.sendall(then)
        response = HTTPResponse(sock)
        response.begin()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def _http(front, method: str, path: str, body=None, headers: dict[str, str] | None = None, **options):
    from http.client import HTTPConnection

    conn = HTTPConnection("127.0.0.1", front.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {}, **options)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_front_answers_an_oversized_body_with_a_413_envelope(front) -> None:
    status, headers, body = _http(front, "POST", "/v1/health", body=b"x" * (10 * 1024 * 1024 + 1))
    payload = _assert_envelope(status, body, headers, 413, "validation.invalid_request")
    assert "10 MB" in payload["error"]
    assert headers["connection"] == "close"
    assert front.calls == []  # refused before any function


def test_front_answers_an_oversized_chunked_body_with_a_413_envelope(front) -> None:
    chunk = b"x" * (1024 * 1024)
    status, headers, body = _http(
        front,
        "POST",
        "/v1/health",
        body=iter([chunk] * 11),
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    _assert_envelope(status, body, headers, 413, "validation.invalid_request")
    assert front.calls == []


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: ten\r\n\r\n",
        b"Content-Length: -5\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
    ],
)
def test_front_answers_a_malformed_body_framing_with_a_400_envelope(front, framing: bytes) -> None:
    status, headers, body = _raw(front, b"POST /v1/health HTTP/1.1\r\nHost: x\r\n" + framing)
    _assert_envelope(status, body, headers, 400, "validation.invalid_request")
    assert front.calls == []


def test_front_answers_too_large_headers_with_a_431_envelope(front) -> None:
    status, headers, body = _http(front, "GET", "/v1/health", headers={"X-Big": "a" * 70_000})
    payload = _assert_envelope(status, body, headers, 431, "validation.invalid_request")
    assert "header" in payload["error"] and "65536" in payload["error"]
    many = "".join(f"X-H{i}: v\r\n" for i in range(101)).encode()
    status, headers, body = _raw(front, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    _assert_envelope(status, body, headers, 431, "validation.invalid_request")
    assert front.calls == []


def test_front_answers_a_too_long_request_line_and_a_malformed_one_in_the_envelope(front) -> None:
    status, headers, body = _raw(front, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
    _assert_envelope(status, body, headers, 414, "validation.invalid_request")
    status, headers, body = _raw(front, b"GET /v1/health HTTP/1.1 extra\r\n\r\n")
    _assert_envelope(status, body, headers, 400, "validation.invalid_request")
    assert front.calls == []


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "DELETE"])
def test_front_routes_every_method_instead_of_501(front, method: str) -> None:
    status, _, body = _http(front, method, "/v1/health")
    assert status == 200, body
    assert json.loads(body) == {"arn": FN.format("NoRoute"), "method": method, "routeKey": "ANY /{proxy+}"}


def test_front_without_a_matching_route_answers_a_404_envelope(front) -> None:
    status, headers, body = _raw(front, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    payload = _assert_envelope(status, body, headers, 404, "resource.not_found")
    assert payload["error"] == "no such route: OPTIONS *"


def test_front_failure_is_a_500_envelope(front) -> None:
    status, headers, body = _http(front, "GET", "/v1/broken")
    _assert_envelope(status, body, headers, 500, "server.internal_error")


def test_front_sends_the_events_request_id_as_apigw_requestid(front) -> None:
    status, headers, _ = _http(front, "GET", "/v1/health")
    assert status == 200
    assert headers["apigw-requestid"] == front.calls[-1]["requestContext"]["requestId"]


def test_wsgi_adapter_refuses_an_oversized_body_in_the_envelope() -> None:
    import io

    from assay_local.http_front import HttpFront
    from assay_local.wsgi import wsgi_app

    def invoke(arn: str, event: dict) -> tuple[bytes, bool]:
        raise AssertionError("no function may be called")

    front = HttpFront(RouteTable([]), invoke, api_id="unit", account_id="1")
    try:
        started: list = []
        body = b"".join(
            wsgi_app(front)(
                {
                    "REQUEST_METHOD": "POST",
                    "PATH_INFO": "/v1/datasets",
                    "CONTENT_LENGTH": str(10 * 1024 * 1024 + 1),
                    "wsgi.input": io.BytesIO(b""),
                },
                lambda status, headers: started.append((status, dict(headers))),
            )
        )
    finally:
        front._server.server_close()
    status, headers = started[0]
    assert status == "413 Request Entity Too Large"
    _assert_envelope(413, body, {k.lower(): v for k, v in headers.items()}, 413, "validation.invalid_request")


def test_front_answers_100_simultaneous_connects_without_a_reset(front) -> None:
    """A burst of connects larger than socketserver's default listen backlog (5) is
    queued, not reset: every one of 100 clients starting together gets its answer."""
    import socket
    import threading
    from http.client import HTTPResponse

    clients = 100
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            # 10 s: a connect the full backlog dropped is retried by the kernel after 1, 3,
            # 7 s… so a timeout also catches the dropped ones that were not reset.
            with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
                sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: unit\r\nConnection: close\r\n\r\n")
                response = HTTPResponse(sock)
                response.begin()
                response.read()
            with lock:
                statuses.append(response.status)
        except BaseException as exc:
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]
    assert statuses == [200] * clients


def test_front_sends_responses_without_waiting_for_the_clients_ack(front, monkeypatch) -> None:
    """Headers and body leave in two writes; with Nagle's algorithm on, a kept-alive
    connection holds the second until the client's delayed ACK (~40 ms a response). The
    front's connections have it off, checked on the server's own sockets."""
    import socket
    from http.client import HTTPConnection

    from assay_local import http_front

    seen: list[int] = []
    setup = http_front._Handler.setup

    def recording_setup(self) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(http_front._Handler, "setup", recording_setup)
    conn = HTTPConnection("127.0.0.1", front.port, timeout=30)
    try:
        for _ in range(3):  # one kept-alive connection: one server socket
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            assert response.status == 200
            response.read()
    finally:
        conn.close()
    assert seen == [1]
