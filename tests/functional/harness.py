"""What the functional tests run on, shared by their modules (and tests/faults): the constants,
the sample events with the tests' ids and keys, ``environment``, the template on moto and
the bootstrapped ``Stack`` the handlers are invoked through. The fixtures are in conftest.py."""

from __future__ import annotations

import copy
import importlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from assay_local.moto_hooks import install_replacements
from assay_local.resources import CreatedStack, create_template_resources
from assay_service import dependencies
from assay_service.bootstrap import bootstrap_tenant
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REGION = "us-east-1"
OWNER_KEY = "ask_functional-tests-owner-key-0123456789"
OTHER_TENANT_KEY = "ask_functional-tests-other-tenant-key-987"
SAMPLE_ID = "REPLACE"  # placeholder marker in helper calls
# The suite leaves hundreds of runs pending in one tenant: it runs as a deployment with a
# high in-flight limit; the limit itself is tested with a low one (test_security.py).
SUITE_SETTINGS = {"MAX_RUNS_IN_FLIGHT": "10000"}


class Context:
    function_name = "functional"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:functional"
    aws_request_id = "functional-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the block (fresh cached clients/settings inside and after)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    dependencies.reset()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        dependencies.reset()


@dataclass
class Stack:
    created: CreatedStack
    tenant_id: str

    def env(self, logical_id: str) -> dict[str, str]:
        return self.created.functions[logical_id].environment

    def invoke(self, logical_id: str, event: dict[str, Any], env: dict[str, str] | None = None) -> Any:
        """Run the function's real handler in-process with its template environment
        (plus ``env``, e.g. a deployment parameter set differently)."""
        info = self.created.functions[logical_id]
        with environment({**info.environment, **SUITE_SETTINGS, **(env or {})}):
            module_name, func = info.handler.rsplit(".", 1)
            handler = getattr(importlib.import_module(module_name), func)
            return handler(copy.deepcopy(event), Context())

    def call(
        self, logical_id: str, event: dict[str, Any], env: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        """Invoke an API function; returns (status, parsed body, headers)."""
        out = self.invoke(logical_id, event, env)
        body = out.get("body") or ""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body
        return out["statusCode"], parsed, out.get("headers") or {}


def api_event(
    name: str,
    *,
    path_id: str | None = None,
    body: Any = SAMPLE_ID,
    query: dict[str, str] | None = None,
    key: str | None = OWNER_KEY,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """A sample event from events/api with the test's ids, key, body and query."""
    event = json.loads((EVENTS / "api" / f"{name}.json").read_text())
    if path_id is not None:
        name, old = next(iter(event["pathParameters"].items()))  # the id comes first
        event["pathParameters"][name] = path_id
        event["rawPath"] = event["rawPath"].replace(old, path_id)
        event["requestContext"]["http"]["path"] = event["rawPath"]
    headers = event["headers"]
    style = "x-api-key" if "x-api-key" in headers else "authorization"
    headers.pop("authorization", None)
    headers.pop("x-api-key", None)
    if key is not None:
        headers[style] = key if style == "x-api-key" else f"Bearer {key}"
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not SAMPLE_ID:
        event["body"] = json.dumps(body)
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return event


def workflow_event(name: str, **fields: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / "workflow" / f"{name}.json").read_text())
    event.update(fields)
    return event


@contextmanager
def template_on_moto(stack_name: str) -> Iterator[CreatedStack]:
    """Every resource of template.yaml created on an in-process moto (mock_aws), with
    test credentials; the cached AWS clients belong to this mock while it lasts."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    }
    endpoint = os.environ.pop("AWS_ENDPOINT_URL", None)
    dependencies.reset(clients=True)
    install_replacements()  # what the local stack changes in moto, so the same runs here
    try:
        with environment(env), mock_aws():
            yield create_template_resources(
                ROOT / "template.yaml", stack_name=stack_name, session=boto3.Session(region_name=REGION)
            )
    finally:
        dependencies.reset(clients=True)  # they belonged to this mock
        if endpoint is not None:
            os.environ["AWS_ENDPOINT_URL"] = endpoint


@contextmanager
def bootstrapped_stack(stack_name: str) -> Iterator[Stack]:
    """The template on moto under ``stack_name`` (its own table, bucket and functions), with
    the two tenants the tests call as (OWNER_KEY, OTHER_TENANT_KEY)."""
    with template_on_moto(stack_name) as created:
        with environment(created.functions["DatasetsFunction"].environment):
            tenant = bootstrap_tenant(slug="functional", owner_key=OWNER_KEY)
            bootstrap_tenant(slug="functional-other", owner_key=OTHER_TENANT_KEY)
        yield Stack(created, tenant_id=str(tenant.id))


ROUTES = {  # sample event → function (from template.yaml's routes)
    "create_dataset": "DatasetsFunction",
    "list_datasets": "DatasetsFunction",
    "get_dataset": "DatasetsFunction",
    "create_dataset_version": "DatasetsFunction",
    "list_dataset_versions": "DatasetsFunction",
    "create_eval": "EvalsFunction",
    "list_evals": "EvalsFunction",
    "get_eval": "EvalsFunction",
    "create_eval_version": "EvalsFunction",
    "list_eval_versions": "EvalsFunction",
    "get_eval_version": "EvalsFunction",
    "schedule_run": "ScheduleRunFunction",
    "get_run": "GetRunFunction",
    "list_runs": "ListRunsFunction",
    "get_evaluation": "GetEvaluationFunction",
    "export_run": "ExportRunFunction",
    "export_run_link": "ExportRunFunction",
    "cancel_run": "CancelRunFunction",
    "list_run_evaluations": "GetEvaluationFunction",
    "aegis_run": "CompatViewsFunction",
    "aymara_list_runs": "CompatViewsFunction",
    "create_upload": "DatasetsFunction",
    "create_dataset_version_from_upload": "DatasetsFunction",
    "read_records": "DatasetsFunction",
    "create_api_key": "ApiKeysFunction",
    "list_api_keys": "ApiKeysFunction",
    "revoke_api_key": "ApiKeysFunction",
    "create_project": "ProjectsFunction",
    "list_projects": "ProjectsFunction",
    "get_project": "ProjectsFunction",
    "compare_runs": "GetRunFunction",
    "delete_dataset": "DatasetsFunction",
    "delete_eval": "EvalsFunction",
    "delete_run": "DeleteRunFunction",
}
