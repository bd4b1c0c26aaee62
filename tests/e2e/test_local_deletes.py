"""Atomic creates and the three deletes over HTTP on the local stack, with the functions' IAM
roles enforced: what the delete paths call (BatchWriteItem, DeleteObjects, a transaction
with a Delete and a ConditionCheck, a key-only Query) is allowed by template.yaml — the
session fixture in conftest.py fails on any denial — and everything is gone afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from assay_local.stack import LocalStack

from tests.e2e.runs import METRICS, Api

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-deletes-owner-key-0123456789abcdef"
RECORDS = [{"id": f"r{i}", "input": f"q{i}", "output": "a", "golden_answer": "a"} for i in range(4)]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, bootstrap_key=KEY, iam=True) as local:
        yield local


def test_create_run_and_delete_everything_under_enforced_roles(stack: LocalStack) -> None:
    api = Api(stack, KEY)
    dataset = api.call("POST", "/v1/datasets", json={"name": "e2e-delete", "records": RECORDS})
    assert dataset.status_code == 201 and dataset.json()["version"]["record_count"] == 4, dataset.text
    ev = api.call("POST", "/v1/evals", json={"name": "e2e-delete", "metrics": METRICS})
    assert ev.status_code == 201 and ev.json()["version"]["version"] == 1, ev.text
    dataset_id, eval_id = dataset.json()["id"], ev.json()["id"]
    upload = api.call("POST", f"/v1/datasets/{dataset_id}/uploads").json()
    put = requests.put(upload["url"], data=b'{"output": "x"}\n', headers=upload["headers"], timeout=30)
    assert put.status_code == 200

    run = api.schedule(dataset_id, ev.json()["version"]["id"])
    finished = api.wait(run["id"], {"completed", "failed", "cancelled"})
    assert finished["status"] == "completed", finished
    refused = api.call("DELETE", f"/v1/datasets/{dataset_id}")
    assert refused.status_code == 409 and refused.json()["details"]["runs"] == 1, refused.text

    assert api.call("DELETE", f"/v1/eval-runs/{run['id']}").status_code == 204
    assert api.call("DELETE", f"/v1/datasets/{dataset_id}").status_code == 204
    assert api.call("DELETE", f"/v1/evals/{eval_id}").status_code == 204
    for path in (f"/v1/eval-runs/{run['id']}", f"/v1/datasets/{dataset_id}", f"/v1/evals/{eval_id}"):
        assert api.call("GET", path).status_code == 404, path
        assert api.call("DELETE", path).status_code == 404, path
    bucket = stack.functions["DatasetsFunction"].environment["BUCKET_NAME"]
    left = stack.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in left if dataset_id in o["Key"] or run["id"] in o["Key"]] == []
    assert stack.iam_denials() == [] and stack.iam_unmapped() == []
