"""The bootstrap command: against the running local stack, and against a deployed stack's
outputs (CloudFormation answered by botocore's Stubber) — one code path underneath. When
it cannot work (no credentials or region, no such stack, a bad slug) it says why in one
line on stderr and exits 2; those tests need no network (moto, or no credentials at all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from assay_local.__main__ import _parser
from assay_local.bootstrap_cli import (
    OUTPUT_ENV,
    CommandError,
    aws_error_message,
    run,
    stack_environment,
)
from assay_local.stack import LocalStack
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_bootstrap_against_the_running_local_stack(tmp_path):
    with LocalStack(port=0) as stack:
        state = tmp_path / "state.json"
        state.write_text(
            json.dumps(
                {"url": stack.url, "aws_env": stack.aws_env(), "function_env": stack.shared_function_env()}
            )
        )
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "assay_local",
                "bootstrap",
                "--local",
                "--tenant",
                "acme",
                "--state-file",
                str(state),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        created = json.loads(out.stdout[: out.stdout.rindex("}") + 1])
        assert created["tenant"] == "acme" and created["owner_key"].startswith("ask_")
        headers = {"x-api-key": created["owner_key"]}
        assert requests.get(f"{stack.url}/v1/datasets", headers=headers, timeout=30).status_code == 200
        again = subprocess.run(
            [
                sys.executable,
                "-m",
                "assay_local",
                "bootstrap",
                "--local",
                "--tenant",
                "acme",
                "--state-file",
                str(state),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert json.loads(again.stdout[: again.stdout.rindex("}") + 1])["tenant_id"] == created["tenant_id"]


def test_deployed_stack_outputs_are_read_from_cloudformation():
    client = boto3.client("cloudformation", region_name="eu-west-1")
    outputs = [{"OutputKey": k, "OutputValue": f"value-of-{k}"} for k in OUTPUT_ENV]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "assay",
                        "CreationTime": "2026-11-22T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": outputs,
                    }
                ]
            },
            {"StackName": "assay"},
        )
        env = stack_environment("assay", client)
    assert env == {v: f"value-of-{k}" for k, v in OUTPUT_ENV.items()}
    with Stubber(client) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "x",
                        "CreationTime": "2026-11-22T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [],
                    }
                ]
            },
            {"StackName": "x"},
        )
        with pytest.raises(CommandError, match="is it an Assay stack"):
            stack_environment("x", client)


def _without_aws(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment minus every AWS setting: no credentials anywhere botocore looks
    (environment, empty config and credentials files, no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"AWS_DEFAULT_REGION": "us-east-1"}, "no AWS credentials found: run `aws configure`"),
        ({}, "no AWS region: pass --region"),
        ({"AWS_PROFILE": "nope", "AWS_DEFAULT_REGION": "us-east-1"}, "AWS profile 'nope' not found"),
    ],
    ids=["no-credentials", "no-region", "unknown-profile"],
)
def test_without_credentials_it_fails_in_one_line(tmp_path, extra, says):
    out = subprocess.run(
        [sys.executable, "-m", "assay_local", "bootstrap", "--stack-name", "assay", "--tenant", "acme"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=_without_aws(tmp_path, **extra),
    )
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("bootstrap: ") and says in lines[0], lines[0]


def test_a_missing_stack_is_named_with_its_region(capsys):
    args = _parser().parse_args(
        ["bootstrap", "--stack-name", "assay", "--region", "eu-west-1", "--tenant", "acme"]
    )
    with mock_aws():
        assert run(args) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == ("bootstrap: stack 'assay' not found in eu-west-1: check --stack-name and --region\n")


def test_a_stack_without_assay_outputs_is_one_line(capsys):
    args = _parser().parse_args(
        ["bootstrap", "--stack-name", "other", "--region", "eu-west-1", "--tenant", "acme"]
    )
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    with mock_aws():
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="other", TemplateBody=json.dumps(template)
        )
        assert run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "bootstrap: stack 'other' has no output(s) ApiKeySecretArn, BucketName, "
        "TableName: is it an Assay stack"
    )


def test_a_bad_tenant_slug_is_one_line(tmp_path, capsys):
    """Reached after the stack's outputs are read: the service's own validation message."""
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"aws_env": {}, "function_env": {}}))
    args = _parser().parse_args(
        ["bootstrap", "--local", "--state-file", str(state), "--tenant", "Not A Slug"]
    )
    assert run(args) == 2
    assert capsys.readouterr().err == (
        "bootstrap: tenant slug must be lowercase letters, digits and dashes\n"
    )


def _client_error(code: str, message: str, operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (
            _client_error("ExpiredTokenException", "The security token included in the request is expired"),
            "AWS credentials have expired",
        ),
        (
            _client_error(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            ),
            "AWS rejected the credentials (UnrecognizedClientException)",
        ),
        (
            _client_error(
                "AccessDeniedException", "User: arn:aws:iam::1:user/x is not authorized", "GetSecretValue"
            ),
            "access denied (GetSecretValue): bootstrap needs cloudformation:DescribeStacks",
        ),
        (
            _client_error("ResourceNotFoundException", "Requested resource not found"),
            "is stack 'assay' fully deployed in us-east-1?",
        ),
        (
            EndpointConnectionError(endpoint_url="https://cloudformation.xx-nowhere-1.amazonaws.com/"),
            "cannot reach https://cloudformation.xx-nowhere-1.amazonaws.com/: check your network",
        ),
    ],
    ids=["expired", "rejected", "denied", "not-found", "unreachable"],
)
def test_aws_errors_say_what_to_do(error, says):
    message = aws_error_message(error, stack_name="assay", region="us-east-1")
    assert says in message and "\n" not in message
