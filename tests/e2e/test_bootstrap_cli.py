"""The bootstrap command: against the running local stack, and against a deployed stack's
outputs (CloudFormation answered by botocore's Stubber) — one code path underneath."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from assay_local.bootstrap_cli import OUTPUT_ENV, stack_environment
from assay_local.stack import LocalStack
from botocore.stub import Stubber

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_bootstrap_against_the_running_local_stack(tmp_path):
    with LocalStack(port=0) as stack:
        state = tmp_path / "state.json"
        state.write_text(json.dumps({"url": stack.url, "aws_env": stack.aws_env(),
                                     "function_env": stack.shared_function_env()}))
        out = subprocess.run(
            [sys.executable, "-m", "assay_local", "bootstrap", "--local", "--tenant", "acme",
             "--state-file", str(state)], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
        created = json.loads(out.stdout[: out.stdout.rindex("}") + 1])
        assert created["tenant"] == "acme" and created["owner_key"].startswith("ask_")
        headers = {"x-api-key": created["owner_key"]}
        assert requests.get(f"{stack.url}/v1/datasets", headers=headers, timeout=30).status_code == 200
        again = subprocess.run(
            [sys.executable, "-m", "assay_local", "bootstrap", "--local", "--tenant", "acme",
             "--state-file", str(state)], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert json.loads(again.stdout[: again.stdout.rindex("}") + 1])["tenant_id"] == created["tenant_id"]


def test_deployed_stack_outputs_are_read_from_cloudformation():
    client = boto3.client("cloudformation", region_name="eu-west-1")
    outputs = [{"OutputKey": k, "OutputValue": f"value-of-{k}"} for k in OUTPUT_ENV]
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": "assay", "CreationTime": "2026-11-22T00:00:00Z",
            "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]}, {"StackName": "assay"})
        env = stack_environment("assay", client)
    assert env == {v: f"value-of-{k}" for k, v in OUTPUT_ENV.items()}
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": "x", "CreationTime": "2026-11-22T00:00:00Z",
            "StackStatus": "CREATE_COMPLETE", "Outputs": []}]}, {"StackName": "x"})
        with pytest.raises(SystemExit, match="is it an Assay stack"):
            stack_environment("x", client)
