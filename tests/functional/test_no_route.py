"""The template's catch-all route (ApiMetaFunction): what no route takes is answered in the
error envelope, 405 with Allow on a known path, else 404, before any key is looked at."""

from __future__ import annotations

import json
import re

import pytest
from assay_service.handlers.api.openapi import build_openapi_json

from tests.functional.harness import OWNER_KEY, api_event

ENVELOPE = {"error", "code", "details", "request_id"}
ANY_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")


def catch_all_event(
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: str | None = None,
    content_type: str | None = None,
) -> dict:
    event = api_event("no_route", key=key)
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    if path == "/":
        event["routeKey"] = event["requestContext"]["routeKey"] = "ANY /"
        event.pop("pathParameters")
    else:
        event["pathParameters"] = {"proxy": path.lstrip("/")}
    if body is not None:
        event["body"] = body
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    return event


def call(stack, event: dict) -> tuple[int, dict, dict[str, str]]:
    status, body, headers = stack.call("ApiMetaFunction", event)
    assert set(body) == ENVELOPE, body
    assert body["request_id"] == "sample-request-id"
    return status, body, headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v2/datasets"),
        ("GET", "/"),
        ("GET", "/v1/datasets/"),
        ("GET", "/v1/datasets/d1/versions/v1/records/extra"),
    ],
)
def test_an_unknown_path_is_a_404_envelope(stack, method, path):
    status, body, headers = call(stack, catch_all_event(method, path))
    assert status == 404 and body["code"] == "resource.not_found"
    assert body["error"] == f"no such route: {method} {path}"
    assert "Allow" not in headers


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/datasets", "GET, POST"),
        ("TRACE", "/v1/health", "GET"),
        ("HEAD", "/v1/datasets/0b6f4e2c-5d0a-4d6e-9a51-3f7c2b8e1a11/versions", "GET, POST"),
        ("POST", "/v1/api-keys/anything", "DELETE"),
    ],
)
def test_another_method_on_a_known_path_is_a_405_envelope_with_allow(stack, method, path, allow):
    status, body, headers = call(stack, catch_all_event(method, path))
    assert status == 405 and body["code"] == "validation.invalid_request"
    assert headers["Allow"] == allow
    assert body["details"] == {"allowed_methods": allow.split(", ")}
    assert method in body["error"] and path in body["error"]


def test_allow_lists_exactly_the_documented_methods_of_every_path(stack):
    """One source: the API's own OpenAPI document decides what exists."""
    document = json.loads(build_openapi_json())
    for template, item in document["paths"].items():
        documented = sorted(m.upper() for m in item)
        path = re.sub(r"\{[^}]+\}", "x1", template)
        other = next(m for m in ANY_METHODS if m not in documented)
        status, _, headers = call(stack, catch_all_event(other, path))
        assert (status, headers.get("Allow")) == (405, ", ".join(documented)), template


def test_no_key_is_asked_and_a_bad_one_is_ignored(stack):
    for key in (None, "ask_not-a-real-key-000000000000000000", OWNER_KEY):
        status, body, _ = call(stack, catch_all_event("GET", "/v1/nope", key=key))
        assert status == 404 and body["code"] == "resource.not_found"


def test_a_body_does_not_turn_the_404_or_405_into_a_415(stack):
    status, _, _ = call(
        stack, catch_all_event("POST", "/v1/nope", body="<x/>", content_type="application/xml")
    )
    assert status == 404
    status, _, headers = call(
        stack, catch_all_event("DELETE", "/v1/datasets", body="a=1", content_type="text/plain")
    )
    assert status == 405 and headers["Allow"] == "GET, POST"


def test_a_long_unknown_path_is_cut_in_the_message(stack):
    path = "/v1/" + "a" * 5000
    status, body, _ = call(stack, catch_all_event("GET", path))
    assert status == 404 and len(body["error"]) < 300


def test_the_real_template_routes_documented_operations_past_the_catch_all(stack):
    """On the route table built from template.yaml: every documented method and path goes to
    its own function; the catch-all gets only what is left."""
    table = stack.created.routes
    meta_arn = stack.created.functions["ApiMetaFunction"].arn
    openai_arn = stack.created.functions["OpenAIEvalsFunction"].arn
    document = json.loads(build_openapi_json())
    for template, item in document["paths"].items():
        path = re.sub(r"\{[^}]+\}", "x1", template)
        for method in item:
            match = table.match(method.upper(), path)
            assert match is not None and match.route.route_key == f"{method.upper()} {template}"
        other = next(m for m in ANY_METHODS if m.lower() not in item)
        match = table.match(other, path)
        # Under /openai/v1, OpenAI's function answers what is left (in OpenAI's envelope).
        catch_all, arn = (
            ("ANY /openai/v1/{proxy+}", openai_arn)
            if template.startswith("/openai/v1/")
            else ("ANY /{proxy+}", meta_arn)
        )
        assert match is not None and match.route.route_key == catch_all
        assert match.route.function_arn == arn
    root = table.match("GET", "/")
    assert root is not None and root.route.route_key == "ANY /"


def test_a_documented_route_reaching_the_catch_all_is_a_500_not_a_lie(stack):
    # Only a broken template sends GET /v1/datasets here: neither 404 nor 405 would be true.
    status, body, headers = call(stack, catch_all_event("GET", "/v1/datasets"))
    assert status == 500 and body["code"] == "server.internal_error"
    assert "Allow" not in headers
