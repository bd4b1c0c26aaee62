"""The OpenAPI document: generated from the route code, committed, served — never drifting."""

from __future__ import annotations

import json
from pathlib import Path

from assay_service.handlers.api.openapi import build_openapi_json

ROOT = Path(__file__).resolve().parents[2]


def test_committed_document_matches_the_code():
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == build_openapi_json(), "run `make openapi` and commit docs/openapi.json"


def test_every_template_route_is_documented_and_nothing_else():
    from assay_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    routes = set()
    for resource in template["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                routes.add((event["Properties"]["Path"], event["Properties"]["Method"].lower()))
    document = json.loads(build_openapi_json())
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == routes


def test_no_operation_advertises_a_status_the_api_never_sends():
    document = json.loads(build_openapi_json())
    assert document["openapi"] == "3.1.0"
    for item in document["paths"].values():
        for op in item.values():
            assert "422" not in op["responses"]
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}
