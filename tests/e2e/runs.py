"""Driving runs over the local stack's HTTP API, for the end-to-end tests that need runs
of a particular shape (cancelled, failing) rather than the happy path."""

from __future__ import annotations

import time
from typing import Any

import requests
from assay_local.stack import LocalStack

RECORDS = 4
METRICS = [{"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1.0}]


class Api:
    def __init__(self, stack: LocalStack, key: str) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.stack.url + path, timeout=60, **kw)

    def dataset_and_eval(
        self, records: int | list[dict[str, Any]] = RECORDS, metrics: list[dict[str, Any]] | None = None
    ) -> tuple[str, str]:
        """A dataset with one version (``records`` rows, or those records) and an eval
        version of ``metrics`` (default: exact match): their ids."""
        rows = (
            records
            if isinstance(records, list)
            else [
                {"id": f"r{i}", "input": f"q{i}", "output": "a", "golden_answer": "a"} for i in range(records)
            ]
        )
        dataset = self.call("POST", "/v1/datasets", json={"name": "e2e"}).json()["id"]
        version = self.call("POST", f"/v1/datasets/{dataset}/versions", json={"records": rows})
        assert version.status_code == 201, version.text
        ev = self.call("POST", "/v1/evals", json={"name": "e2e"}).json()["id"]
        ev_version = self.call(
            "POST", f"/v1/evals/{ev}/versions", json={"metrics": metrics or METRICS, "threshold": 0.5}
        )
        assert ev_version.status_code == 201, ev_version.text
        return dataset, ev_version.json()["id"]

    def schedule(
        self, dataset: str, eval_version: str, batch_size: int = 2, **options: Any
    ) -> dict[str, Any]:
        scheduled = self.call(
            "POST",
            f"/v1/datasets/{dataset}/runs",
            json={"eval_version_id": eval_version, "batch_size": batch_size, **options},
        )
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
        lines = len(s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines())
        s3.put_object(Bucket=bucket, Key=key, Body=b"not json\n" * lines)


def granted_calls(stack: LocalStack, function: str) -> set[str]:
    """The IAM actions the enforcement allowed ``function``'s role (logical id) so far."""
    assert stack.iam is not None, "IAM enforcement is off"
    return {
        name.split(" ", 1)[1]
        for name in stack.iam.allowed_counts()
        if name.split(" ", 1)[0] == stack.resources[f"{function}Role"]
    }
