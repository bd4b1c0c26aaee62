"""The local stack enforces each function's IAM role, like AWS (assay_local/iam_enforcement.py).

With the real template, the paths the other end-to-end tests do not take — a cancelled run,
a run the workflow marks failed — go through with no denial (the session-wide check in
conftest.py covers every other test). A deliberately narrowed template:
test_local_iam_narrowed.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from assay_local.stack import LocalStack

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-iam-owner-key-0123456789abcdef"
RECORDS = [{"id": f"r{i}", "input": f"q{i}", "output": "a", "golden_answer": "a"} for i in range(4)]
METRICS = [{"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1.0}]


class Api:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {KEY}"

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.stack.url + path, timeout=60, **kw)

    def dataset_and_eval(self) -> tuple[str, str]:
        dataset = self.call("POST", "/v1/datasets", json={"name": "iam"}).json()["id"]
        version = self.call("POST", f"/v1/datasets/{dataset}/versions", json={"records": RECORDS})
        assert version.status_code == 201, version.text
        ev = self.call("POST", "/v1/evals", json={"name": "iam"}).json()["id"]
        ev_version = self.call("POST", f"/v1/evals/{ev}/versions",
                               json={"metrics": METRICS, "threshold": 0.5})
        assert ev_version.status_code == 201, ev_version.text
        return dataset, ev_version.json()["id"]

    def schedule(self, dataset: str, eval_version: str) -> dict[str, Any]:
        scheduled = self.call("POST", f"/v1/datasets/{dataset}/runs",
                              json={"eval_version_id": eval_version, "batch_size": 2})
        assert scheduled.status_code == 202, scheduled.text
        return scheduled.json()

    def wait(self, run_id: str, until: set[str], seconds: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            run = self.call("GET", f"/v1/eval-runs/{run_id}").json()
            if run["status"] in until or time.monotonic() > deadline:
                return run
            time.sleep(0.2)

    def corrupt_dataset(self, dataset: str) -> None:
        """Replace the version's records with lines no scorer can read (same line count): the
        score step fails, and the workflow's Catch sends the run to MarkRunFailed."""
        s3 = self.stack.client("s3")
        bucket = self.stack.resources["ArtifactsBucket"]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="tenants/")["Contents"]
        (key,) = [o["Key"] for o in listed if f"/datasets/{dataset}/" in o["Key"]]
        s3.put_object(Bucket=bucket, Key=key, Body=b"not json\n" * len(RECORDS))


def _granted_calls(stack: LocalStack, function: str) -> set[str]:
    assert stack.iam is not None
    return {name.split(" ", 1)[1] for name in stack.iam.allowed_counts()
            if name.split(" ", 1)[0].endswith(f"{function}Role")}


# --------------------------------------------------------------------- the real template
@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, bootstrap_key=KEY, iam=True) as running:
        yield running


def test_a_cancelled_run_goes_through_with_no_denial(stack: LocalStack) -> None:
    api = Api(stack)
    run = api.schedule(*api.dataset_and_eval())
    cancelled = api.call("POST", f"/v1/eval-runs/{run['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert api.wait(run["id"], {"cancelled"}, 10)["status"] == "cancelled"
    assert "states:StopExecution" in _granted_calls(stack, "CancelRunFunction")
    assert stack.iam_denials() == [] and stack.iam_unmapped() == []


def test_a_run_marked_failed_goes_through_with_no_denial(stack: LocalStack) -> None:
    api = Api(stack)
    dataset, eval_version = api.dataset_and_eval()
    api.corrupt_dataset(dataset)
    run = api.wait(api.schedule(dataset, eval_version)["id"], {"failed", "completed"})
    assert run["status"] == "failed", run
    # The workflow really reached MarkRunFailed, with its role's credentials.
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem"} <= _granted_calls(stack, "MarkRunFailedFunction")
    assert stack.iam_denials() == [] and stack.iam_unmapped() == []


def test_every_function_runs_with_its_own_role(stack: LocalStack) -> None:
    """Each worker signs with its function's role (session = the function's name)."""
    assert stack.iam is not None
    roles = {name.split(" ", 1)[0] for name in stack.iam.allowed_counts()}
    for logical_id in ("ScheduleRunFunction", "PrepareRunFunction", "ScoreBatchFunction",
                       "MarkRunFailedFunction", "CancelRunFunction", "GetRunFunction"):
        assert stack.resources[f"{logical_id}Role"] in roles
