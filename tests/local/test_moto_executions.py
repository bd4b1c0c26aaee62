"""A Step Functions execution on moto can be stopped as soon as StartExecution returns."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from assay_local import moto_executions, moto_hooks
from moto import mock_aws
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

ORIGINAL_STOP = ExecutionWorker.stop
ORIGINAL_ENVIRONMENT = ExecutionWorker._get_evaluation_environment
DEFINITION = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}


@pytest.fixture
def slow_start(monkeypatch):
    """An execution whose interpreter takes 0.3 s to build its environment: the window in
    which moto's own StopExecution fails, made wide enough to hit every time."""

    def slow_environment(self):
        time.sleep(0.3)
        return ORIGINAL_ENVIRONMENT(self)

    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_environment", slow_environment)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName=f"r-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name=f"m-{uuid.uuid4().hex[:8]}", definition=json.dumps(DEFINITION), roleArn=role["Role"]["Arn"]
        )
        yield sfn, machine["stateMachineArn"]


def test_moto_alone_fails_a_stop_that_comes_too_early(slow_start, monkeypatch):
    monkeypatch.setattr(ExecutionWorker, "stop", ORIGINAL_STOP)
    sfn, machine = slow_start
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    with pytest.raises(AttributeError):
        sfn.stop_execution(executionArn=arn, error="RunCancelled", cause="too early")


def test_a_stop_right_after_the_start_aborts_the_execution(slow_start, monkeypatch):
    monkeypatch.setattr(ExecutionWorker, "stop", moto_executions.stop)
    sfn, machine = slow_start
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    sfn.stop_execution(executionArn=arn, error="RunCancelled", cause="right away")
    deadline = time.monotonic() + 5
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the stopped execution is still running"
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_install_is_idempotent(monkeypatch):
    monkeypatch.setattr(ExecutionWorker, "stop", ORIGINAL_STOP)
    moto_hooks.install(moto_executions)
    moto_hooks.install(moto_executions)
    assert moto_hooks.installed(moto_executions)
