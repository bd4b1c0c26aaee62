"""Schedule → workflow steps → details, evaluation, export — every handler real, in-process."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from assay_service.observability import get_logger

from tests.functional.factories import RECORDS, completed_run, create_dataset, eval_version, run_manifest
from tests.functional.harness import api_event, workflow_event


@pytest.fixture(scope="module")
def scheduled(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    status, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"], "batch_size": 2}
        ),
    )
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
    status, body, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=str(uuid.uuid4()), body={"eval_version_id": version["id"]}),
    )
    assert status == 404
    empty = create_dataset(stack, records=False)
    status, body, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=empty, body={"eval_version_id": version["id"]}),
    )
    assert status == 409 and body["code"] == "resource.conflict"
    status, body, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=empty, body={"eval_version_id": str(uuid.uuid4())}),
    )
    assert status == 404


def test_workflow_steps_complete_the_run_exactly_once(stack, scheduled):
    ids = {"tenant_id": scheduled["tenant_id"], "run_id": scheduled["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    assert prepared["batch_count"] == 3
    manifest = run_manifest(stack, prepared)
    for batch in manifest:
        result = stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=batch))
        assert result["outcome"] == "recorded"
        # What it logs says the scorers ran on the C extension (decision 0009).
        assert get_logger().get_current_keys()["text_metrics"] == "native"
    # A duplicate delivery of a batch counts nothing.
    again = stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=manifest[0]))
    assert again["outcome"] == "duplicate"
    assert stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))["status"] == "completed"

    status, run, _ = stack.call("GetRunFunction", api_event("get_run", path_id=scheduled["id"]))
    assert status == 200 and run["status"] == "completed"
    assert run["completed_count"] + run["failed_count"] == run["item_count"] == 5
    assert run["failed_count"] == 1  # r4 has no golden answer for exact/contains
    exact = run["aggregate_results"]["exact"]
    assert (exact["count"], exact["passed"], exact["unscored"]) == (4, 3, 1)
    assert run["verdict"] in {"pass", "fail"} and run["started_at"] and run["completed_at"]

    status, export, headers = stack.call(
        "ExportRunFunction", api_event("export_run", path_id=scheduled["id"])
    )
    assert status == 200 and headers["Content-Disposition"].startswith("attachment")
    assert export["run"]["id"] == scheduled["id"] and len(export["items"]) == 5 * 4
    assert len({i["id"] for i in export["items"]}) == 20

    item = export["items"][5]
    status, evaluation, _ = stack.call(
        "GetEvaluationFunction", api_event("get_evaluation", path_id=item["id"])
    )
    assert status == 200 and evaluation == {k: item[k] for k in evaluation}
    assert evaluation["context"] == "fresh" and evaluation["evaluator_type"] == "rule"

    status, link, _ = stack.call("ExportRunFunction", api_event("export_run_link", path_id=scheduled["id"]))
    assert status == 200 and link["size_bytes"] > 0 and "X-Amz-Expires=900" in link["url"]

    status, runs, _ = stack.call("ListRunsFunction", api_event("list_runs"))
    assert status == 200 and scheduled["id"] in [r["id"] for r in runs["items"]]


def test_export_of_an_unfinished_run_is_409(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]}),
    )
    status, body, _ = stack.call("ExportRunFunction", api_event("export_run", path_id=run["id"]))
    assert status == 409 and body["details"]["status"] == "pending"


def test_mark_failed_records_the_error_and_freezes_the_run(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]}),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    cause = json.dumps({"errorType": "RuntimeError", "errorMessage": "boom"})
    out = stack.invoke(
        "MarkRunFailedFunction",
        workflow_event("mark_failed", **ids, error={"Error": "RuntimeError", "Cause": cause}),
    )
    assert out["status"] == "failed"
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["status"] == "failed" and got["error_message"] == "RuntimeError: boom"
    # A late finalize cannot resurrect it.
    assert stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))["status"] == "failed"


def execution_ended(
    run: dict, status: str, *, name: str | None = None, error: str | None = None, cause: str | None = None
) -> dict:
    """events/workflow/reconcile.json for ``run``'s execution (EventBridge's event)."""
    event = workflow_event("reconcile")
    detail = event["detail"]
    detail.update(
        name=name or run["id"],
        status=status,
        error=error,
        cause=cause,
        input=json.dumps({"tenant_id": run["tenant_id"], "run_id": run["id"]}),
    )
    return event


def tenant_in_flight(stack, tenant_id: str) -> int:
    table = stack.env("ReconcileRunFunction")["TABLE_NAME"]
    item = (
        boto3.client("dynamodb", region_name="us-east-1")
        .get_item(TableName=table, Key={"PK": {"S": f"TENANT#{tenant_id}"}, "SK": {"S": "TENANT"}})
        .get("Item", {})
    )
    return int(item.get("runs_in_flight", {"N": "0"})["N"])


@pytest.mark.parametrize(
    ("status", "error", "cause", "ends", "message"),
    [
        ("TIMED_OUT", None, None, "failed", "States.Timeout: the run's workflow execution timed out"),
        (
            "FAILED",
            "States.Runtime",
            "An error occurred while executing the state 'Score Batches'",
            "failed",
            "States.Runtime: An error occurred while executing the state 'Score Batches'",
        ),
        ("ABORTED", None, None, "cancelled", "the run's workflow execution was stopped outside Assay"),
    ],
)
def test_reconcile_ends_an_unfinished_run_and_frees_its_slot(stack, status, error, cause, ends, message):
    """GIVEN a run left pending by an execution that ended without the Catch path WHEN the
    execution-ended event arrives THEN the run ends, says why, and its in-flight slot is free;
    a second delivery of the same event changes nothing."""
    dataset_id = create_dataset(stack, records=RECORDS)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": eval_version(stack)["id"]}),
    )
    before = tenant_in_flight(stack, run["tenant_id"])
    out = stack.invoke("ReconcileRunFunction", execution_ended(run, status, error=error, cause=cause))
    assert out == {"reconciled": True, "run_id": run["id"], "status": ends}
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["status"] == ends and got["error_message"] == message
    assert tenant_in_flight(stack, run["tenant_id"]) == before - 1
    again = stack.invoke("ReconcileRunFunction", execution_ended(run, "FAILED", error="X"))
    assert again["status"] == ends and tenant_in_flight(stack, run["tenant_id"]) == before - 1


def test_reconcile_leaves_finished_runs_and_other_executions_alone(stack):
    run = completed_run(stack)
    out = stack.invoke("ReconcileRunFunction", execution_ended(run, "ABORTED"))
    assert out["status"] == "completed"
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["status"] == "completed" and got["error_message"] is None
    # A Distributed Map child execution (another name, a batch as input) is not a run's.
    child = execution_ended(run, "ABORTED", name=str(uuid.uuid4()))
    assert stack.invoke("ReconcileRunFunction", child) == {"reconciled": False}
    unrelated = execution_ended(run, "FAILED")
    unrelated["detail"]["input"] = "[1, 2]"
    assert stack.invoke("ReconcileRunFunction", unrelated) == {"reconciled": False}


def test_run_evaluations_filtered_and_cursor_paged(stack):
    run = completed_run(stack)
    walked, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, page, _ = stack.call(
            "GetEvaluationFunction", api_event("list_run_evaluations", path_id=run["id"], query=query)
        )
        assert status == 200, page
        walked += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(walked) == 20 and len({e["id"] for e in walked}) == 20
    assert [e["record_index"] for e in walked] == sorted(e["record_index"] for e in walked)
    assert walked[0]["record"]["id"] == "r1"

    status, failed, _ = stack.call(
        "GetEvaluationFunction",
        api_event("list_run_evaluations", path_id=run["id"], query={"status": "failed"}),
    )
    assert {e["record_id"] for e in failed["items"]} == {"r4"} and failed["count"] == 2
    status, exact_passed, _ = stack.call(
        "GetEvaluationFunction",
        api_event("list_run_evaluations", path_id=run["id"], query={"metric": "exact", "passed": "true"}),
    )
    assert sorted(e["record_id"] for e in exact_passed["items"]) == ["r1", "r2", "r5"]


def test_record_strings_are_truncated_to_100_chars_in_lists(stack):
    long = "x" * 250
    run = completed_run(
        stack, records=[{"id": "long", "input": long, "output": long, "golden_answer": long}], batch_size=1
    )
    _, page, _ = stack.call(
        "GetEvaluationFunction", api_event("list_run_evaluations", path_id=run["id"], query={})
    )
    record = page["items"][0]["record"]
    assert len(record["input"]) == len(record["output"]) == len(record["golden_answer"]) == 100


def test_idempotency_key_replays_the_same_run_and_rejects_another_body(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    event = api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]})
    event["headers"]["idempotency-key"] = "nightly-2026-11-22"
    status1, first, _ = stack.call("ScheduleRunFunction", event)
    status2, second, _ = stack.call("ScheduleRunFunction", event)
    assert status1 == status2 == 202 and first["id"] == second["id"]
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = stack.env("ScheduleRunFunction")["STATE_MACHINE_ARN"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert names.count(first["id"]) == 1
    other = api_event(
        "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"], "name": "different"}
    )
    other["headers"]["idempotency-key"] = "nightly-2026-11-22"
    status, body, _ = stack.call("ScheduleRunFunction", other)
    assert status == 409 and body["code"] == "resource.conflict"


def test_cancel_freezes_counts_and_a_finished_run_cannot_be_cancelled(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"], "batch_size": 2}
        ),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    manifest = run_manifest(stack, prepared)
    stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=manifest[0]))
    status, cancelled, _ = stack.call("CancelRunFunction", api_event("cancel_run", path_id=run["id"]))
    assert status == 200 and cancelled["status"] == "cancelled"
    frozen = cancelled["completed_count"] + cancelled["failed_count"]
    assert frozen == 2
    late = stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=manifest[1]))
    assert late["outcome"] == "inactive"
    assert stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))["status"] == "cancelled"
    _, after, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert after["completed_count"] + after["failed_count"] == frozen
    status, body, _ = stack.call("CancelRunFunction", api_event("cancel_run", path_id=run["id"]))
    assert status == 409 and body["details"]["status"] == "cancelled"
    done = completed_run(stack)
    status, body, _ = stack.call("CancelRunFunction", api_event("cancel_run", path_id=done["id"]))
    assert status == 409 and body["details"]["status"] == "completed"


def test_list_runs_filters_and_counts(stack):
    dataset_a = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    made = []
    for _ in range(3):
        _, run, _ = stack.call(
            "ScheduleRunFunction",
            api_event("schedule_run", path_id=dataset_a, body={"eval_version_id": version["id"]}),
        )
        made.append(run["id"])
    status, page, _ = stack.call(
        "ListRunsFunction", api_event("list_runs", query={"dataset_id": dataset_a, "limit": "2"})
    )
    assert status == 200 and page["count"] == 3 and [r["id"] for r in page["items"]] == made[::-1][:2]
    status, page, _ = stack.call(
        "ListRunsFunction",
        api_event("list_runs", query={"eval_version_id": version["id"], "status": "pending", "offset": "1"}),
    )
    assert page["count"] == 3 and [r["id"] for r in page["items"]] == made[::-1][1:]
    status, page, _ = stack.call(
        "ListRunsFunction", api_event("list_runs", query={"dataset_id": dataset_a, "status": "completed"})
    )
    assert page["count"] == 0 and page["items"] == []


def test_export_formats_and_the_303_switch(stack):
    import csv
    import io

    run = completed_run(stack)
    documents = {}
    for fmt in ("json", "jsonl", "csv"):
        status, body, headers = stack.call(
            "ExportRunFunction", api_event("export_run", path_id=run["id"], query={"format": fmt})
        )
        assert status == 200
        assert headers["Content-Disposition"] == f'attachment; filename="eval-run-{run["id"]}.{fmt}"'
        documents[fmt] = body
    items = documents["json"]["items"]
    lines = (
        documents["jsonl"]
        if isinstance(documents["jsonl"], list)
        else [json.loads(line) for line in str(documents["jsonl"]).splitlines()]
    )
    assert lines == items
    rows = list(csv.DictReader(io.StringIO(documents["csv"])))
    assert [r["id"] for r in rows] == [i["id"] for i in items]
    assert rows[0]["output"] == items[0]["record"]["output"]

    small = {"EXPORT_INLINE_MAX_BYTES": "1024"}
    status, body, headers = stack.call(
        "ExportRunFunction", api_event("export_run", path_id=run["id"]), env=small
    )
    assert status == 303 and "X-Amz-Expires=900" in headers["Location"]
    assert headers["Content-Disposition"].startswith("attachment")
    status, link, _ = stack.call(
        "ExportRunFunction",
        api_event("export_run", path_id=run["id"], query={"format": "csv", "delivery": "link"}),
    )
    assert status == 200 and link["format"] == "csv"
    assert link["size_bytes"] == len(documents["csv"].encode())


def test_max_concurrency_is_a_per_run_setting_bounded_by_the_deployment(stack):
    # GIVEN the deployment's MapMaxConcurrency (the template default, 40)
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    cap = int(stack.env("ScheduleRunFunction")["MAP_MAX_CONCURRENCY"])
    # WHEN a run asks for more THEN 400 names the field and the bound; nothing is stored
    status, body, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run",
            path_id=dataset_id,
            body={"eval_version_id": version["id"], "max_concurrency": cap + 1},
        ),
    )
    assert status == 400 and body["details"] == {"field": "max_concurrency", "max": cap}
    # WHEN a run asks for fewer THEN prepare hands the Map that bound; else the default
    for asked, expected in ((3, 3), (None, cap)):
        status, run, _ = stack.call(
            "ScheduleRunFunction",
            api_event(
                "schedule_run",
                path_id=dataset_id,
                body={"eval_version_id": version["id"], "batch_size": 2, "max_concurrency": asked},
            ),
        )
        assert status == 202 and run["max_concurrency"] == asked and run["batch_size"] == 2
        prepared = stack.invoke(
            "PrepareRunFunction", workflow_event("prepare", tenant_id=run["tenant_id"], run_id=run["id"])
        )
        assert prepared["max_concurrency"] == expected


def test_a_batch_larger_than_a_dynamodb_item_is_recorded_in_parts(stack):
    """GIVEN 1,000 records of incompressible text in one batch (the compressed batch is
    well over DynamoDB's 400 KB item limit) THEN it is recorded in parts in one transaction,
    read back whole by every reader, and a duplicate delivery still counts nothing."""
    import random
    import string

    from assay_service.adapters.dynamodb import BATCH_PART_BYTES, DynamoDBRunRepository
    from assay_service.domain.ids import run_key

    rng = random.Random(7)

    def text() -> str:
        return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(100))

    records = [
        {
            "id": f"big{i}",
            "prompt": text(),
            "input": text(),
            "context": text(),
            "output": text(),
            "golden_answer": text(),
        }
        for i in range(1000)
    ]
    dataset_id = create_dataset(stack, records=records)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run",
            path_id=dataset_id,
            body={"eval_version_id": eval_version(stack)["id"], "batch_size": 1000},
        ),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    assert prepared["batch_count"] == 1
    (batch,) = run_manifest(stack, prepared)
    event = workflow_event("score_batch", **ids, batch=batch)
    assert stack.invoke("ScoreBatchFunction", event)["outcome"] == "recorded"
    assert stack.invoke("ScoreBatchFunction", event)["outcome"] == "duplicate"

    table = stack.env("ScoreBatchFunction")["TABLE_NAME"]
    items = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :b)",
        ExpressionAttributeValues={
            ":pk": {
                "S": DynamoDBRunRepository._pk(uuid.UUID(run["tenant_id"]), run_key(uuid.UUID(run["id"])))
            },
            ":b": {"S": "B#"},
        },
    )["Items"]
    assert len(items) >= 2, "the batch should not fit one item"
    assert all(len(i["data"]["B"]) <= BATCH_PART_BYTES for i in items)

    assert stack.invoke("FinalizeRunFunction", workflow_event("finalize", **ids))["status"] == "completed"
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["completed_count"] + got["failed_count"] == got["item_count"] == 1000
    from assay_service.adapters.s3 import export_key

    status, _, headers = stack.call(
        "ExportRunFunction", api_event("export_run", path_id=run["id"], query={"format": "json"})
    )
    assert status == 303 and headers["Location"].startswith("http")  # too big to be inline
    s3 = boto3.client("s3", region_name="us-east-1")
    export = json.loads(
        s3.get_object(
            Bucket=stack.env("PrepareRunFunction")["BUCKET_NAME"],
            Key=export_key(uuid.UUID(run["tenant_id"]), uuid.UUID(run["id"]), "json"),
        )["Body"].read()
    )
    assert len(export["items"]) == 1000 * len(got["aggregate_results"])
    assert export["items"][-1]["record"]["output"] == records[-1]["output"]
    status, one, _ = stack.call(
        "GetEvaluationFunction", api_event("get_evaluation", path_id=export["items"][-1]["id"])
    )
    assert status == 200 and one["id"] == export["items"][-1]["id"]


def test_a_batch_size_past_the_eval_s_bound_is_a_400_and_stores_no_run(stack):
    dataset_id = create_dataset(stack, records=RECORDS)
    _, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    metrics = [{"name": f"m{i}", "scorer": "exact_match", "args": {}, "threshold": 1} for i in range(50)]
    status, version, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], body={"metrics": metrics})
    )
    assert status == 201, version
    _, before, _ = stack.call("ListRunsFunction", api_event("list_runs"))
    status, body, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"], "batch_size": 1000}
        ),
    )
    assert status == 400 and body["code"] == "validation.invalid_request"
    assert body["error"].startswith("batch_size: at most 400") and body["details"]["max"] == 400
    _, after, _ = stack.call("ListRunsFunction", api_event("list_runs"))
    assert after["count"] == before["count"]


def test_a_batch_in_many_parts_is_read_back_in_part_order(stack, monkeypatch):
    """Parts past the tenth sort after the ninth (zero-padded keys): a batch of 20+ parts
    is joined in order by every reader."""
    from assay_service.adapters import dynamodb
    from assay_service.domain.ids import run_key

    monkeypatch.setattr(dynamodb.batches, "BATCH_PART_BYTES", 1_500)
    records = [
        {"id": f"p{i}", "output": f"answer {uuid.uuid5(uuid.NAMESPACE_OID, str(i))}", "golden_answer": f"{i}"}
        for i in range(200)
    ]
    run = completed_run(stack, records=records, batch_size=200)
    items = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=stack.env("ScoreBatchFunction")["TABLE_NAME"],
        KeyConditionExpression="PK = :pk AND begins_with(SK, :b)",
        ExpressionAttributeValues={
            ":pk": {
                "S": dynamodb.DynamoDBRunRepository._pk(
                    uuid.UUID(run["tenant_id"]), run_key(uuid.UUID(run["id"]))
                )
            },
            ":b": {"S": "B#"},
        },
    )
    assert len(items["Items"]) >= 12, len(items["Items"])  # parts #010, #011 sort after #009
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["status"] == "completed" and got["completed_count"] + got["failed_count"] == 200
    metrics = len(got["aggregate_results"])
    seen: list[dict] = []
    query = {"limit": "100"}
    while True:  # every page of the run's evaluations, through the cursor
        status, page, _ = stack.call(
            "GetEvaluationFunction", api_event("list_run_evaluations", path_id=run["id"], query=query)
        )
        assert status == 200, page
        seen += page["items"]
        if not page.get("next_cursor"):
            break
        query = {"limit": "100", "cursor": page["next_cursor"]}
    assert len(seen) == len({e["id"] for e in seen}) == 200 * metrics
    # In record order, each with its own record: a misordered join would not decompress,
    # and a join of the wrong parts would not give these records back.
    assert [e["record"]["id"] for e in seen[::metrics]] == [r["id"] for r in records]
    assert all(e["record"]["output"] == records[int(e["record"]["id"][1:])]["output"][:100] for e in seen)


def test_a_batch_over_one_transaction_fails_the_run_saying_why(stack, monkeypatch):
    from assay_service.adapters import dynamodb
    from assay_service.errors import BatchTooLargeError

    monkeypatch.setattr(dynamodb.batches, "BATCH_MAX_BYTES", 100)
    dataset_id = create_dataset(stack, records=RECORDS)
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": eval_version(stack)["id"]}),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    (batch,) = run_manifest(stack, prepared)
    with pytest.raises(BatchTooLargeError, match="smaller batch_size"):
        stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=batch))
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["completed_count"] == got["failed_count"] == 0  # nothing partial recorded


# ------------------------------------------------------- judge providers of the deployment
JUDGED = [
    {"name": "exact", "scorer": "exact_match", "threshold": 1.0},
    {"name": "ans_corr", "scorer": "answer_correctness", "threshold": 0.7},
]


def judged_version(stack, judge: dict | None) -> dict:
    _, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    body = {"metrics": JUDGED, **({"judge": judge} if judge else {})}
    status, version, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], body=body)
    )
    assert status == 201, version  # creating it stays allowed: an eval is portable
    return version


def test_schedule_refuses_a_judge_provider_the_deployment_does_not_offer(stack):
    dataset_id = create_dataset(stack)
    bedrock = judged_version(stack, None)  # the default provider
    openai = judged_version(stack, {"provider": "openai", "model": "gpt-4o-mini"})
    assert stack.env("ScheduleRunFunction")["JUDGE_PROVIDERS"] == "bedrock,openai"  # the template's default

    def schedule(version: dict, providers: str | None) -> tuple[int, dict]:
        event = api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]})
        env = None if providers is None else {"JUDGE_PROVIDERS": providers}
        status, body, _ = stack.call("ScheduleRunFunction", event, env)
        return status, body

    # the local stack without --judge-base-url: neither provider, and the way to get one
    status, body = schedule(bedrock, "none")
    assert status == 400 and body["code"] == "validation.invalid_request", body
    assert "metric 'ans_corr' (answer_correctness)" in body["error"]
    assert "judge provider 'bedrock' is not available in this deployment" in body["error"]
    assert "--judge-base-url URL" in body["error"] and "ASSAY_JUDGE_API_KEY" in body["error"]
    assert body["details"] == {
        "field": "judge.provider",
        "metric": "ans_corr",
        "provider": "bedrock",
        "available": [],
    }
    # the local stack with an endpoint: Bedrock refused, openai scheduled
    status, body = schedule(bedrock, "openai")
    assert status == 400 and "use provider 'openai' in the eval's judge settings" in body["error"], body
    assert schedule(openai, "openai")[0] == 202
    # a deployment offering Bedrock only refuses openai; the default offers both
    status, body = schedule(openai, "bedrock")
    assert status == 400 and "judge provider 'openai' is not available" in body["error"], body
    assert schedule(bedrock, None)[0] == 202
