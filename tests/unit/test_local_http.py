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
    for payload, errored in [(b'{"errorType": "X"}', True), (b"not json", False),
                             (b'{"statusCode": "abc"}', False)]:
        response = map_result(payload, function_errored=errored)
        assert response.status == 500
        assert json.loads(response.body) == {"message": "Internal Server Error"}
