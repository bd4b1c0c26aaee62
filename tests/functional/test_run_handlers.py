"""Schedule → workflow steps → details, evaluation, export — every handler real, in-process."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from tests.functional.conftest import api_event, workflow_event
from tests.functional.test_catalog_handlers import create_dataset

RECORDS = [
    {"id": "r1", "output": "Paris", "golden_answer": "Paris"},
    {"id": "r2", "output": '{"a": 1}', "golden_answer": '{"a": 1}'},
    {"id": "r3", "output": "The answer is 41.", "golden_answer": "42"},
    {"id": "r4", "output": "no golden answer here"},
    {"id": "r5", "output": "paris.", "golden_answer": "Paris"},
]


def eval_version(stack) -> dict:
    _, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    status, version, _ = stack.call("EvalsFunction", api_event("create_eval_version", path_id=ev["id"]))
    assert status == 201
    return version


@pytest.fixture(scope="module")
def scheduled(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    status, run, _ = stack.call("ScheduleRunFunction", api_event(
        "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"], "batch_size": 2}))
    assert status == 202, run
    return run


def test_schedule_returns_a_pending_trulayer_run_and_starts_its_execution(stack, scheduled):
    assert scheduled["status"] == "pending" and scheduled["item_count"] == 5
    assert scheduled["completed_count"] == 0 and scheduled["tenant_id"] == stack.tenant_id
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = stack.env("ScheduleRunFunction")["STATE_MACHINE_ARN"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert scheduled["id"] in names  # the execution name is the run id


def test_schedule_against_unknown_or_versionless_dataset(stack):
    version = eval_version(stack)
    status, body, _ = stack.call("ScheduleRunFunction", api_event(
        "schedule_run", path_id=str(uuid.uuid4()), body={"eval_version_id": version["id"]}))
    assert status == 404
    empty = create_dataset(stack, records=False)
    status, body, _ = stack.call("ScheduleRunFunction", api_event(
        "schedule_run", path_id=empty, body={"eval_version_id": version["id"]}))
    assert status == 409 and body["code"] == "resource.conflict"
    status, body, _ = stack.call("ScheduleRunFunction", api_event(
        "schedule_run", path_id=empty, body={"eval_version_id": str(uuid.uuid4())}))
    assert status == 404


def test_workflow_steps_complete_the_run_exactly_once(stack, scheduled):
    ids = {"tenant_id": scheduled["tenant_id"], "run_id": scheduled["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    assert prepared["batch_count"] == 3
    s3 = boto3.client("s3", region_name="us-east-1")
    manifest = json.loads(s3.get_object(Bucket=stack.env("PrepareRunFunction")["BUCKET_NAME"],
                                        Key=prepared["manifest_key"])["Body"].read())
    for batch in manifest:
        result = stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=batch))
        assert result["outcome"] == "recorded"
    # A duplicate delivery of a batch counts nothing.
    again = stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=manifest[0]))
    assert again["outcome"] == "duplicate"
    assert stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))["status"] == "completed"

    status, run, _ = stack.call("GetRunFunction", api_event("get_run", path_id=scheduled["id"]))
    assert status == 200 and run["status"] == "completed"
    assert run["completed_count"] + run["failed_count"] == run["item_count"] == 5
    assert run["failed_count"] == 1  # r4 has no golden answer for exact/contains
    exact = run["aggregate_results"]["exact"]
    assert (exact["count"], exact["passed"], exact["failed"]) == (4, 3, 1)
    assert run["verdict"] in {"pass", "fail"} and run["started_at"] and run["completed_at"]

    status, export, headers = stack.call("ExportRunFunction", api_event("export_run",
                                                                       path_id=scheduled["id"]))
    assert status == 200 and headers["Content-Disposition"].startswith("attachment")
    assert export["run"]["id"] == scheduled["id"] and len(export["items"]) == 5 * 4
    assert len({i["id"] for i in export["items"]}) == 20

    item = export["items"][5]
    status, evaluation, _ = stack.call("GetEvaluationFunction",
                                       api_event("get_evaluation", path_id=item["id"]))
    assert status == 200 and evaluation == {k: item[k] for k in evaluation}
    assert evaluation["context"] == "fresh" and evaluation["evaluator_type"] == "rule"

    status, link, _ = stack.call("ExportRunFunction", api_event(
        "export_run_link", path_id=scheduled["id"]))
    assert status == 200 and link["size_bytes"] > 0 and "X-Amz-Expires=900" in link["url"]

    status, runs, _ = stack.call("ListRunsFunction", api_event("list_runs"))
    assert status == 200 and scheduled["id"] in [r["id"] for r in runs["items"]]


def test_export_of_an_unfinished_run_is_409(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    _, run, _ = stack.call("ScheduleRunFunction", api_event(
        "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]}))
    status, body, _ = stack.call("ExportRunFunction", api_event("export_run", path_id=run["id"]))
    assert status == 409 and body["details"]["status"] == "pending"


def test_mark_failed_records_the_error_and_freezes_the_run(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    _, run, _ = stack.call("ScheduleRunFunction", api_event(
        "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]}))
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    cause = json.dumps({"errorType": "RuntimeError", "errorMessage": "boom"})
    out = stack.invoke("MarkRunFailedFunction", workflow_event(
        "mark_failed", **ids, error={"Error": "RuntimeError", "Cause": cause}))
    assert out["status"] == "failed"
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["status"] == "failed" and got["error_message"] == "RuntimeError: boom"
    # A late finalize cannot resurrect it.
    assert stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))["status"] == "failed"
