"""The OpenAPI document: generated from the route code, committed, served — never drifting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from assay_service.handlers.api.openapi import build_openapi_json

ROOT = Path(__file__).resolve().parents[2]


def test_committed_document_matches_the_code():
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == build_openapi_json(), "run `make openapi` and commit docs/openapi.json"


def _template_routes() -> dict[tuple[str, str], str]:
    from assay_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    routes = {}
    for logical_id, resource in template["Resources"].items():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                routes[(props["Path"], props["Method"].lower())] = logical_id
    return routes


def test_every_template_route_is_documented_and_nothing_else():
    routes = _template_routes()
    # The catch-alls (ANY /{proxy+} and ANY /; ANY /openai/v1/{proxy+}, for OpenAI's error
    # envelope) answer what no route takes: not operations.
    catch_all = {route for route in routes if route[1] == "any"}
    assert catch_all == {("/{proxy+}", "any"), ("/", "any"), ("/openai/v1/{proxy+}", "any")}
    assert {route: routes[route] for route in catch_all} == {
        ("/{proxy+}", "any"): "ApiMetaFunction",
        ("/", "any"): "ApiMetaFunction",
        ("/openai/v1/{proxy+}", "any"): "OpenAIEvalsFunction",
    }
    document = json.loads(build_openapi_json())
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == set(routes) - catch_all


def _envelope(path: str) -> dict[str, str]:
    """Assay's error envelope, or OpenAI's under /openai/ (docs/openai-evals.md)."""
    name = "OpenAIError" if path.startswith("/openai/") else "ErrorResponse"
    return {"$ref": f"#/components/schemas/{name}"}


def test_bodies_may_be_413_and_every_operation_405_with_allow_and_431():
    document = json.loads(build_openapi_json())
    for path, item in document["paths"].items():
        envelope = _envelope(path)
        for method, op in item.items():
            responses = op["responses"]
            assert ("413" in responses) == ("requestBody" in op), (method, path)
            for code in ("405", "413", "431") if "requestBody" in op else ("405", "431"):
                assert responses[code]["content"]["application/json"]["schema"] == envelope
            assert "Allow" in responses["405"]["headers"], (method, path)


def test_no_operation_advertises_a_status_the_api_never_sends():
    document = json.loads(build_openapi_json())
    assert document["openapi"] == "3.1.0"
    for path, item in document["paths"].items():
        for op in item.values():
            assert "422" not in op["responses"]
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == _envelope(path)


def test_the_service_reports_its_own_version_not_the_clients():
    import tomllib

    from assay_service import __version__
    from assay_service.handlers.api import meta

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "assay-service"
    assert meta.service_version() == __version__ == project["version"]


def test_functions_are_merged_only_when_they_agree():
    """Each function documents its own resolver (OpenAPIMerge): two functions on one method
    and path, or two different models under one schema name, fail the build instead of one
    silently replacing the other."""
    from assay_service.handlers.api import meta
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.event_handler.openapi import OpenAPIMergeError
    from pydantic import create_model

    def function(path: str, **fields: Any) -> APIGatewayHttpResolver:
        app = APIGatewayHttpResolver(enable_validation=True)

        def read():  # pragma: no cover - documented, never called
            raise AssertionError

        read.__annotations__ = {"return": create_model("Thing", **fields)}
        app.get(path)(read)
        return app

    named: dict[str, Any] = {"name": (str, ...)}
    assert "/a" in json.loads(meta._merged_schema([function("/a", **named)]))["paths"]
    with pytest.raises(OpenAPIMergeError, match="GET /a"):
        meta._merged_schema([function("/a", **named), function("/a", **named)])
    with pytest.raises(ValueError, match="different Thing schemas"):
        meta._merged_schema([function("/a", **named), function("/b", size=(int, ...))])
    # The same model in two functions is one schema.
    merged = json.loads(meta._merged_schema([function("/a", **named), function("/b", **named)]))
    assert set(merged["paths"]) == {"/a", "/b"} and "Thing" in merged["components"]["schemas"]
