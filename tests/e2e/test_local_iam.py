"""The local stack's IAM enforcement has teeth: on a deliberately narrowed copy of the
template, the call a role no longer allows fails with AccessDenied and is recorded.
MarkRunFailed without ``dynamodb:GetItem`` — the permission once missing from the real
template, unnoticed because moto enforces nothing — and ExportRun without ``s3:GetObject``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from assay_local.stack import DEFAULT_TEMPLATE, REPO_ROOT, LocalStack

from tests.e2e.runs import Api

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-iam-owner-key-0123456789abcdef"


def _narrowed(text: str, function: str, granted: str, replacement: str) -> str:
    """``text`` with ``granted`` replaced inside ``function``'s resource block only."""
    start = text.index(f"\n  {function}:\n")
    following = re.search(r"\n  [A-Za-z0-9]+:\n", text[start + 1 :])
    end = start + 1 + following.start() if following else len(text)
    at = text.index(granted, start, end)
    return text[:at] + replacement + text[at + len(granted) :]


@pytest.fixture(scope="module")
def narrowed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    text = DEFAULT_TEMPLATE.read_text()
    text = _narrowed(
        text,
        "MarkRunFailedFunction",
        "Action: [dynamodb:GetItem, dynamodb:UpdateItem]",
        "Action: [dynamodb:UpdateItem]",
    )
    text = _narrowed(
        text,
        "ExportRunFunction",
        """            - Effect: Allow
              Action: [s3:GetObject]
              Resource: !Sub "${ArtifactsBucket.Arn}/tenants/*/runs/*"
""",
        "",
    )
    # The copy lives elsewhere: its state machine definition must still be found.
    text = text.replace("DefinitionUri: statemachine/", f"DefinitionUri: {REPO_ROOT}/statemachine/")
    template = tmp_path_factory.mktemp("iam") / "template.yaml"
    template.write_text(text)
    with LocalStack(port=0, bootstrap_key=KEY, template_path=template, iam=True) as running:
        yield running


def _denials_of(stack: LocalStack, function: str, seconds: float = 60) -> list[Any]:
    deadline = time.monotonic() + seconds
    while True:
        found = [d for d in stack.iam_denials() if d.role.endswith(f"{function}Role")]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_mark_run_failed_without_getitem_is_denied_and_recorded(narrowed_stack: LocalStack) -> None:
    api = Api(narrowed_stack, KEY)
    dataset, eval_version = api.dataset_and_eval()
    api.corrupt_dataset(dataset)
    run = api.schedule(dataset, eval_version)
    denials = _denials_of(narrowed_stack, "MarkRunFailedFunction")
    # Stop the workflow, which would retry the failing step for minutes.
    machine = narrowed_stack.resources["EvalRunStateMachine"]
    narrowed_stack.client("stepfunctions").stop_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:") + f":{run['id']}"
    )
    table = narrowed_stack.attributes["AssayTable"]["Arn"]
    assert denials, narrowed_stack.iam_denials()
    denial = denials[0]
    assert (denial.action, denial.resource, denial.explicit) == ("dynamodb:GetItem", table, False)
    function = narrowed_stack.functions["MarkRunFailedFunction"].name
    assert denial.message == (
        f"User: arn:aws:sts::123456789012:assumed-role/{denial.role}/{function} is not authorized "
        f"to perform: dynamodb:GetItem on resource: {table} because no identity-based policy "
        "allows the dynamodb:GetItem action"
    )
    # So Mark Run Failed never marks the run failed, as on AWS; the stop then reaches the
    # reconciler (decision 0008), which ends it cancelled instead of leaving it running.
    ended = api.wait(run["id"], {"failed", "cancelled"}, 30)
    assert ended["status"] == "cancelled", ended
    assert "stopped outside Assay" in ended["error_message"]


def test_export_without_getobject_fails_with_access_denied(narrowed_stack: LocalStack) -> None:
    api = Api(narrowed_stack, KEY)
    run = api.wait(api.schedule(*api.dataset_and_eval())["id"], {"completed", "failed"})
    assert run["status"] == "completed", run
    export = api.call("GET", f"/v1/eval-runs/{run['id']}/export")
    assert export.status_code == 500, export.text
    (denial,) = _denials_of(narrowed_stack, "ExportRunFunction")
    bucket = narrowed_stack.resources["ArtifactsBucket"]
    assert denial.action == "s3:GetObject"
    assert denial.resource.startswith(f"arn:aws:s3:::{bucket}/tenants/")
    assert denial.resource.endswith(f"/runs/{run['id']}/export.json")
    assert json.loads(export.text)["code"] == "server.internal_error"
