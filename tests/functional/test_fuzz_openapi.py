"""Fuzz every operation of the OpenAPI document in-process (schemathesis, fixed seed):
no server errors, no response the document does not describe."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from assay_local.wsgi import wsgi_app
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.functional.harness import OWNER_KEY, ROOT

CASES_PER_OPERATION = 40  # × every operation (58): ≥ 2,000 cases a run
CASES: Counter[str] = Counter()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(http_front):
    loaded = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app(http_front))
    # A body over 10 MB (a huge array the schema forbids) is refused with 413 before any
    # function, as API Gateway does: a rejection too.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return loaded


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_api_conforms_to_its_document(case, fuzz_cases):
    fuzz_cases[case.operation.label] += 1
    # Every check runs, unsupported_method and allow_header_conformance included: an
    # undeclared method reaches the template's catch-all route (405 with Allow).
    excluded = []
    body = case.body if isinstance(case.body, dict) else {}
    if (case.query or {}).get("cursor") is not None or body.get("expires_at") is not None:
        # Two constraints JSON Schema cannot state: a cursor is an opaque token the server
        # issued, and a key's expiry must lie in the future. Both are rightly a 400.
        excluded.append(positive_data_acceptance)
    elif case.operation.label in ("POST /v1/datasets", "POST /v1/evals") and any(
        body.get(f) is not None for f in ("records", "strict", "metrics", "threshold", "judge")
    ):
        # Version 1 inside a create passes the checks of a version, which JSON Schema cannot
        # state either (unique record ids, known scorers and their args; its fields only
        # with records or metrics): a 400 naming the problem is right.
        excluded.append(positive_data_acceptance)
    elif case.operation.label == "POST /openai/v1/files" and set(body) - {"file", "purpose"}:
        # Form fields the route does not take, with names no client sends (invalid
        # Content-Disposition names): Powertools' multipart parser may drop the parts after
        # them, and "file: Field required" is then the right 400.
        excluded.append(positive_data_acceptance)
    elif case.operation.label in (
        "POST /openai/v1/evals",
        "POST /openai/v1/evals/{eval_id}/runs",
        "POST /openai/v1/imports/evals",
        "POST /openai/v1/imports/evals/{eval_id}/runs",
    ):
        # OpenAI's graders, data sources and saved objects are free-form objects in OpenAI's
        # own document too; what a criterion, a row or a saved object must hold is checked by
        # the service (a 400 naming the parameter), beyond what the schema states.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"Authorization": f"Bearer {OWNER_KEY}"}, excluded_checks=excluded)


@pytest.fixture(scope="module")
def fuzz_cases(api_schema):
    """The cases run per operation; once the module's last case has run, every operation of
    the document must have been fuzzed and the budget spent (a teardown: no test order)."""
    yield CASES
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    operations = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    # schemathesis skips the operation serving the document it loaded; it has no inputs
    # and its own test (test_the_served_openapi_document_is_the_committed_one).
    operations.discard("GET /v1/openapi.json")
    total = sum(CASES.values())
    print(f"\nfuzz cases: {total} over {len(CASES)} operations")
    assert set(CASES) == operations, operations ^ set(CASES)
    assert total >= 1000, CASES
