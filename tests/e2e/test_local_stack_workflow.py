"""moto's real ASL interpreter + the Lambda hook: Distributed Map over an S3 manifest,
Retry and Catch on Python exception class names, concurrency and timeouts."""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assay_local.resources import placeholder_zip
from assay_local.stack import LocalStack

pytestmark = pytest.mark.e2e

# Import the handlers module by path, so this works however pytest was launched; the
# stack's workers are spawned with this process's sys.path and import it the same way.
sys.path.insert(0, str(Path(__file__).parent))
HANDLERS = importlib.import_module("fixtures_handlers").__name__


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0) as running:
        yield running


def _function(stack: LocalStack, name: str, handler: str, timeout: int, env: dict[str, str]) -> str:
    role = stack.attributes["EvalRunStateMachineRole"]["Arn"]
    created = stack.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler=f"{HANDLERS}.{handler}",
        Code={"ZipFile": placeholder_zip()},
        Timeout=timeout,
        Environment={"Variables": env},
    )
    return created["FunctionArn"]


def _run(stack: LocalStack, definition: dict[str, Any], name: str, data: dict[str, Any]) -> dict:
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=stack.attributes["EvalRunStateMachineRole"]["Arn"],
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(data))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError("execution did not finish in 120 s")


def test_distributed_map_retry_and_catch_run_real_handlers(stack: LocalStack, tmp_path: Path) -> None:
    env = {"FIXTURE_STATE_DIR": str(tmp_path), "FIXTURE_SLEEP_S": "0.5"}
    flaky = _function(stack, "fx-flaky-double", "flaky_double", 30, env)
    boom = _function(stack, "fx-boom", "boom", 30, env)
    bucket = stack.resources["ArtifactsBucket"]
    items = [{"n": n} for n in range(6)]
    stack.client("s3").put_object(Bucket=bucket, Key="fixtures/manifest.json", Body=json.dumps(items))
    definition = {
        "StartAt": "Fan Out",
        "States": {
            "Fan Out": {
                "Type": "Map",
                "MaxConcurrency": 4,
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
                },
                "ItemSelector": {"n.$": "$$.Map.Item.Value.n"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Double",
                    "States": {
                        "Double": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": flaky, "Payload.$": "$"},
                            "ResultSelector": {"value.$": "$.Payload.value", "pid.$": "$.Payload.pid"},
                            "Retry": [
                                {
                                    "ErrorEquals": ["FlakyError"],
                                    "IntervalSeconds": 1,
                                    "MaxAttempts": 2,
                                    "BackoffRate": 1,
                                }
                            ],
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.results",
                "Next": "Explode",
            },
            "Explode": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": boom, "Payload": {}},
                "Catch": [{"ErrorEquals": ["CustomBoom"], "ResultPath": "$.caught", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }

    result = _run(stack, definition, "fx-map", {"bucket": bucket, "key": "fixtures/manifest.json"})

    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert sorted(r["value"] for r in output["results"]) == [0, 2, 4, 6, 8, 10]
    assert output["caught"]["Error"] == "CustomBoom"
    assert json.loads(output["caught"]["Cause"])["errorMessage"] == "boom on purpose"
    counts = stack.invocation_counts()
    assert counts["fx-flaky-double"] == 12  # each item failed once, then succeeded
    assert counts["fx-boom"] == 1
    # Map children ran concurrently, in more than one warm worker.
    assert len({r["pid"] for r in output["results"]}) > 1
    assert 1 < stack.worker_counts()["fx-flaky-double"] <= 4


def test_timeout_kills_the_worker_and_reports_sandbox_timedout(stack: LocalStack) -> None:
    _function(stack, "fx-sleepy", "sleepy", 1, {})
    lam = stack.client("lambda")
    started = time.monotonic()
    response = lam.invoke(FunctionName="fx-sleepy", Payload=json.dumps({"seconds": 5}))
    assert time.monotonic() - started < 4
    assert response.get("FunctionError")
    assert json.loads(response["Payload"].read())["errorType"] == "Sandbox.Timedout"
    # A fresh worker serves the next call.
    ok = lam.invoke(FunctionName="fx-sleepy", Payload=json.dumps({"seconds": 0}))
    assert json.loads(ok["Payload"].read()) == {"slept": True}


def test_handler_sees_its_context(stack: LocalStack, tmp_path: Path) -> None:
    _function(stack, "fx-context", "flaky_double", 7, {"FIXTURE_STATE_DIR": str(tmp_path)})
    (tmp_path / "seen-3").touch()  # skip the deliberate first failure
    response = stack.client("lambda").invoke(FunctionName="fx-context", Payload=b'{"n": 3}')
    payload = json.loads(response["Payload"].read())
    assert payload["function_name"] == "fx-context"
    assert 0 < payload["remaining_ms"] <= 7000
