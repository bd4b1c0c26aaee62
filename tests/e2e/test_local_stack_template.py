"""The local stack deploys every template resource and serves the API with real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import moto.awslambda.models
import pytest
import requests
from assay_local import lambda_runtime, moto_dynamodb_json, moto_executions, moto_hooks, moto_transactions
from assay_local.stack import LocalStack
from assay_local.template import translate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0) as running:
        yield running


def test_every_template_resource_was_created(stack: LocalStack) -> None:
    translated = translate(stack.template_path)
    assert set(stack.resources) == set(translated.resources)

    table = stack.client("dynamodb").describe_table(TableName=stack.resources["AssayTable"])
    declared = translated.resources["AssayTable"]["Properties"]["GlobalSecondaryIndexes"]
    created = table["Table"]["GlobalSecondaryIndexes"]
    assert [i["IndexName"] for i in created] == [i["IndexName"] for i in declared]
    assert [i["Projection"] for i in created] == [i["Projection"] for i in declared]
    ttl = stack.client("dynamodb").describe_time_to_live(TableName=stack.resources["AssayTable"])
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"

    s3 = stack.client("s3")
    bucket = stack.resources["ArtifactsBucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.resources["ApiKeySecret"])
    assert len(secret["SecretString"]) == 64


def test_functions_have_template_settings_and_resolved_env(stack: LocalStack) -> None:
    lam = stack.client("lambda")
    assert stack.functions, "no functions created"
    for logical_id, info in stack.functions.items():
        config = lam.get_function_configuration(FunctionName=info.name)
        env = config["Environment"]["Variables"]
        assert env == stack.function_env(logical_id)
        assert env["TABLE_NAME"] == stack.resources["AssayTable"]
        assert env["BUCKET_NAME"] == stack.resources["ArtifactsBucket"]
        assert env["API_KEY_SECRET_ARN"] == stack.resources["ApiKeySecret"]
        assert not any("${" in v or v.startswith("{") for v in env.values()), env
    schedule = stack.function_env("ScheduleRunFunction")
    assert schedule["STATE_MACHINE_ARN"] == stack.resources["EvalRunStateMachine"]
    prepare = lam.get_function_configuration(FunctionName=stack.resources["PrepareRunFunction"])
    assert (prepare["Timeout"], prepare["MemorySize"]) == (300, 1024)


def test_state_machine_definition_is_fully_substituted(stack: LocalStack) -> None:
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.resources["EvalRunStateMachine"]
    )
    assert described["name"] == "assay-local-eval-run"
    assert "${" not in described["definition"]
    definition = json.loads(described["definition"])
    prepare = definition["States"]["Prepare Run"]["Parameters"]["FunctionName"]
    assert prepare == stack.attributes["PrepareRunFunction"]["Arn"]
    score_map = definition["States"]["Score Batches"]
    assert score_map["ItemReader"]["Parameters"]["Bucket"] == stack.resources["ArtifactsBucket"]
    assert score_map["MaxConcurrencyPath"] == "$.max_concurrency"  # per run, set by Prepare


def test_health_is_served_by_the_real_handler_through_the_hook(stack: LocalStack) -> None:
    # The hook is installed: moto's private method is ours (fails if moto renames it).
    assert moto.awslambda.models.LambdaFunction._invoke_lambda is lambda_runtime.invoke_lambda_hook
    # Every replacement of moto's (transactions, executions, item JSON, queries, dispatch, log)
    replaced = moto_hooks.replaced_modules()
    assert {m.__name__ for m in replaced if not moto_hooks.installed(m)} == set()
    assert {moto_transactions, moto_executions, moto_dynamodb_json} <= set(replaced)
    # …and so is the one that emits execution-ended events (decision 0008).
    from assay_local import eventbridge
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    assert BaseExecutionWorkerCommunication.terminated is eventbridge.HOOK._replacement
    assert eventbridge.HOOK.active is stack.events
    name = stack.resources["ApiMetaFunction"]
    before = stack.invocation_counts().get(name, 0)

    response = requests.get(f"{stack.url}/v1/health", timeout=60)

    assert response.status_code == 200
    assert stack.invocation_counts()[name] == before + 1
    # moto's non-Docker fallback would answer with an echo or an error, never this.
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body.get("status") == "ok", body


def _envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "code", "details", "request_id"}, body
    assert body["code"] == code and body["error"] and body["request_id"]
    assert response.headers["apigw-requestid"] == body["request_id"]
    return body


def test_unknown_route_is_a_404_envelope_from_the_catch_all(stack: LocalStack) -> None:
    name = stack.resources["ApiMetaFunction"]
    before = stack.invocation_counts().get(name, 0)
    response = requests.get(f"{stack.url}/v1/nope", timeout=60)
    body = _envelope(response, 404, "resource.not_found")
    assert body["error"] == "no such route: GET /v1/nope"
    assert stack.invocation_counts()[name] == before + 1  # the template's route, not the front


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/datasets", "GET, POST"),
        ("TRACE", "/v1/health", "GET"),
    ],
)
def test_another_method_on_a_known_path_is_a_405_envelope(
    stack: LocalStack, method: str, path: str, allow: str
) -> None:
    response = requests.request(method, f"{stack.url}{path}", timeout=60)
    _envelope(response, 405, "validation.invalid_request")
    assert response.headers["Allow"] == allow


def test_oversized_body_is_a_413_envelope(stack: LocalStack) -> None:
    response = requests.post(f"{stack.url}/v1/datasets", data=b"x" * (11 * 1024 * 1024), timeout=60)
    body = _envelope(response, 413, "validation.invalid_request")
    assert "10 MB" in body["error"]


def test_too_large_headers_are_a_431_envelope(stack: LocalStack) -> None:
    response = requests.get(f"{stack.url}/v1/health", headers={"X-Big": "a" * 70_000}, timeout=60)
    body = _envelope(response, 431, "validation.invalid_request")
    assert "header" in body["error"]
