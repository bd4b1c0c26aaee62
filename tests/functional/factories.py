"""Test data shared by the functional test modules: datasets, uploads, eval versions,
completed runs and API keys, each made through the real handlers on the ``stack`` fixture."""

from __future__ import annotations

import json

import boto3
import requests

from tests.functional.harness import OWNER_KEY, api_event, workflow_event

RECORDS = [
    {"id": "r1", "output": "Paris", "golden_answer": "Paris"},
    {"id": "r2", "output": '{"a": 1}', "golden_answer": '{"a": 1}'},
    {"id": "r3", "output": "The answer is 41.", "golden_answer": "42"},
    {"id": "r4", "output": "no golden answer here"},
    {"id": "r5", "output": "paris.", "golden_answer": "Paris"},
]


def eval_version(stack, metrics: list[dict] | None = None) -> dict:
    _, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    body = {} if metrics is None else {"body": {"metrics": metrics}}
    status, version, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], **body)
    )
    assert status == 201, version
    return version


def create_dataset(stack, records=None) -> str:
    status, body, _ = stack.call("DatasetsFunction", api_event("create_dataset"))
    assert status == 201, body
    if records is not False:
        event = api_event(
            "create_dataset_version",
            path_id=body["id"],
            **({} if records is None else {"body": {"records": records}}),
        )
        status, version, _ = stack.call("DatasetsFunction", event)
        assert status == 201, version
    return body["id"]


def upload(stack, dataset_id: str, body: bytes) -> str:
    status, target, _ = stack.call("DatasetsFunction", api_event("create_upload", path_id=dataset_id))
    assert status == 201 and target["method"] == "PUT", target
    assert "X-Amz-Expires=900" in target["url"]
    response = requests.put(target["url"], data=body, headers=target["headers"], timeout=30)
    assert response.status_code == 200
    return target["upload_id"]


def jsonl(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run_manifest(stack, prepared: dict) -> list:
    """The batches PrepareRunFunction wrote for the run (its answer's ``manifest_key``)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = stack.env("PrepareRunFunction")["BUCKET_NAME"]
    return json.loads(s3.get_object(Bucket=bucket, Key=prepared["manifest_key"])["Body"].read())


def completed_run(stack, records=RECORDS, batch_size=2, metrics: list[dict] | None = None) -> dict:
    dataset_id = create_dataset(stack, records=records)
    version = eval_version(stack, metrics)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run",
            path_id=dataset_id,
            body={"eval_version_id": version["id"], "batch_size": batch_size},
        ),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    manifest = run_manifest(stack, prepared)
    for batch in manifest:
        stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=batch))
    stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))
    return run


def new_key(stack, role: str, key: str = OWNER_KEY, **extra) -> str:
    status, body, _ = stack.call(
        "ApiKeysFunction",
        api_event("create_api_key", key=key, body={"name": f"{role}-key", "role": role, **extra}),
    )
    assert status == 201, body
    return body["key"]
