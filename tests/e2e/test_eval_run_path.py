"""The whole eval-run path, over HTTP, on the embedded local stack: the real template, the real state
machine executed by moto's ASL interpreter, the real handlers in worker processes — and the
paths off it: a cancelled run, a run the workflow marks failed. Every function runs with its
own IAM role enforced (conftest.py fails the session on any denial)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from assay_local.stack import LocalStack

from tests.contracts import trulayer
from tests.e2e.runs import Api, granted_calls

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-owner-key-0123456789abcdef"

RECORDS = [
    {"id": "q1", "input": "Capital of France?", "output": "Paris", "golden_answer": "Paris"},
    {"id": "q2", "input": "Capital of Italy?", "output": "It is Rome.", "golden_answer": "Rome"},
    {"id": "q3", "input": "6 x 7?", "output": "41", "golden_answer": "42"},
    {
        "id": "j1",
        "input": "Order NW-7, 9 EUR",
        "output": '{"order_id": "NW-7", "amount": 9}',
        "golden_answer": '{"order_id": "NW-7", "amount": 9}',
    },
    {
        "id": "j2",
        "input": "Order NW-8, 3 EUR",
        "output": "{'order_id': 'NW-8'}",
        "golden_answer": '{"order_id": "NW-8", "amount": 3}',
    },
    {"input": "no id given: one is generated", "output": "Berlin", "golden_answer": "Berlin"},
]
METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1.0},
    {"name": "contains_golden", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1.0},
    {"name": "has_digit", "scorer": "regex", "args": {"pattern": r"\d", "mode": "search"}, "threshold": 0.5},
    {"name": "json_ok", "scorer": "json_valid", "args": {}, "threshold": 1.0},
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, bootstrap_key=KEY) as local:
        yield local


@pytest.fixture(scope="module")
def http(stack: LocalStack) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    return session


def call(http: requests.Session, stack: LocalStack, method: str, path: str, **kw: Any) -> requests.Response:
    return http.request(method, stack.url + path, timeout=60, **kw)


@pytest.fixture(scope="module")
def finished_run(stack, http) -> dict[str, Any]:
    dataset = call(http, stack, "POST", "/v1/datasets", json={"name": "e2e"}).json()
    version = call(http, stack, "POST", f"/v1/datasets/{dataset['id']}/versions", json={"records": RECORDS})
    assert version.status_code == 201, version.text
    ev = call(http, stack, "POST", "/v1/evals", json={"name": "e2e-eval"}).json()
    ev_version = call(
        http, stack, "POST", f"/v1/evals/{ev['id']}/versions", json={"metrics": METRICS, "threshold": 0.5}
    )
    assert ev_version.status_code == 201, ev_version.text
    counts_before = stack.invocation_counts()
    scheduled = call(
        http,
        stack,
        "POST",
        f"/v1/datasets/{dataset['id']}/runs",
        json={"eval_version_id": ev_version.json()["id"], "batch_size": 2},
    )
    assert scheduled.status_code == 202, scheduled.text
    run = scheduled.json()
    deadline = time.monotonic() + 120
    while run["status"] in {"pending", "running"} and time.monotonic() < deadline:
        time.sleep(0.2)
        run = call(http, stack, "GET", f"/v1/eval-runs/{run['id']}").json()
    return {
        "scheduled": scheduled.json(),
        "run": run,
        "counts_before": counts_before,
        "counts_after": stack.invocation_counts(),
    }


def test_schedule_answers_202_pending_in_trulayers_shape(finished_run):
    scheduled = finished_run["scheduled"]
    trulayer.validate(scheduled, trulayer.EVAL_RUN)
    assert scheduled["status"] == "pending" and scheduled["item_count"] == len(RECORDS)


def test_the_state_machine_completes_the_run_through_the_real_functions(finished_run):
    run = finished_run["run"]
    assert run["status"] == "completed", run
    assert run["completed_count"] == run["item_count"] == len(RECORDS)
    assert run["failed_count"] == 0
    before, after = finished_run["counts_before"], finished_run["counts_after"]
    workflow = {"PrepareRunFunction": 1, "ScoreBatchFunction": 3, "FinalizeRunFunction": 1}
    for logical_id, expected in workflow.items():
        name = next(n for n in after if logical_id in n)
        assert after[name] - before.get(name, 0) >= expected, (logical_id, after)


def test_run_details_show_per_metric_aggregates_and_the_verdict(finished_run):
    run = finished_run["run"]
    trulayer.validate(run, trulayer.EVAL_RUN)
    aggregates = run["aggregate_results"]
    assert set(aggregates) == {m["name"] for m in METRICS}
    # exact (case-insensitive): q1, j1, the generated-id record pass; q2, q3, j2 fail
    assert aggregates["exact"]["passed"] == 3 and aggregates["exact"]["mean"] == 0.5
    assert aggregates["json_ok"]["passed"] == 2  # j1, and q3: "41" is a JSON number
    assert aggregates["has_digit"]["passed"] == 3  # q3, j1, j2
    assert aggregates["contains_golden"]["passed"] == 4  # all but q3 and j2
    means = [a["mean"] for a in aggregates.values()]
    assert run["result"] == pytest.approx(sum(means) / len(means))
    assert run["verdict"] == ("pass" if run["result"] >= 0.5 else "fail")
    assert run["is_gte_threshold"] is (run["verdict"] == "pass")


def test_one_evaluation_in_the_seed_shape(stack, http, finished_run):
    export = call(http, stack, "GET", f"/v1/eval-runs/{finished_run['run']['id']}/export").json()
    item = next(i for i in export["items"] if i["record_id"] == "q3" and i["metric_name"] == "has_digit")
    response = call(http, stack, "GET", f"/v1/eval/{item['id']}")
    assert response.status_code == 200
    evaluation = response.json()
    trulayer.validate(evaluation, trulayer.EVALUATION)
    assert evaluation["score"] == 1.0 and evaluation["label"] == "match"
    assert evaluation["reasoning"] == "/\\d/ matched '4'"


def test_export_inline_and_through_a_presigned_link_are_the_same_document(stack, http, finished_run):
    run_id = finished_run["run"]["id"]
    inline = call(http, stack, "GET", f"/v1/eval-runs/{run_id}/export")
    assert inline.status_code == 200
    assert inline.headers["Content-Disposition"] == f'attachment; filename="eval-run-{run_id}.json"'
    document = inline.json()
    trulayer.validate(document, trulayer.EVAL_RUN_EXPORT_RESPONSE)
    assert len(document["items"]) == len(RECORDS) * len(METRICS)

    link = call(http, stack, "GET", f"/v1/eval-runs/{run_id}/export", params={"delivery": "link"}).json()
    assert set(link) == {"url", "expires_at", "format", "size_bytes"}
    assert "X-Amz-Expires=900" in link["url"]
    downloaded = requests.get(link["url"], timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.headers["Content-Disposition"].startswith("attachment")
    assert json.loads(downloaded.content) == document
    assert len(downloaded.content) == link["size_bytes"]


def test_foreign_and_missing_ids_are_indistinguishable_404s(stack, http, finished_run):
    response = call(http, stack, "GET", f"/v1/eval-runs/{uuid.uuid4()}")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "resource.not_found" and body["error"] == "eval run not found"


def test_a_cancelled_run_stops_its_execution(stack):
    api = Api(stack, KEY)
    # A warm CancelRun worker (a first call spawns it) and a run of 40 one-record batches:
    # the cancel lands long before the run could finish.
    assert api.call("POST", f"/v1/eval-runs/{uuid.uuid4()}/cancel").status_code == 404
    run = api.schedule(*api.dataset_and_eval(records=40), batch_size=1)
    cancelled = api.call("POST", f"/v1/eval-runs/{run['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert api.wait(run["id"], {"cancelled"}, 10)["status"] == "cancelled"
    assert "states:StopExecution" in granted_calls(stack, "CancelRunFunction")


def test_a_run_whose_records_cannot_be_read_is_marked_failed(stack):
    api = Api(stack, KEY)
    dataset, eval_version = api.dataset_and_eval()
    api.corrupt_dataset(dataset)
    run = api.wait(api.schedule(dataset, eval_version)["id"], {"failed", "completed"})
    assert run["status"] == "failed", run
    # The Catch path really ran MarkRunFailed, signed with its own role.
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem"} <= granted_calls(stack, "MarkRunFailedFunction")
    # The execution then ended FAILED (the Fail state): the reconciler hears of it too and
    # leaves the run as Mark Run Failed left it.
    events = _reconciled(stack, run["id"])
    assert [(e["detail"]["status"], e["detail"]["error"]) for e in events] == [("FAILED", "EvalRunFailed")]
    again = api.call("GET", f"/v1/eval-runs/{run['id']}").json()
    assert again["status"] == "failed" and again["error_message"] == run["error_message"]


def _reconciled(stack: LocalStack, run_id: str, seconds: float = 30) -> list[dict[str, Any]]:
    """The execution-ended events EventBridge delivered to ReconcileRunFunction for a run."""
    assert stack.events is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.events.drain()
        found = [
            event
            for arn, event, ok in stack.events.delivered
            if ok and arn.endswith("ReconcileRunFunction") and event["detail"]["name"] == run_id
        ]
        if found:
            return found
        time.sleep(0.2)
    return []


def test_a_run_whose_execution_is_stopped_outside_assay_ends_cancelled(stack):
    """GIVEN a running run WHEN its execution is stopped behind Assay's back (the console, the
    CLI) THEN EventBridge's execution-ended event reaches ReconcileRunFunction, which ends
    the run as cancelled and frees the tenant's in-flight slot: no run stays running."""
    api = Api(stack, KEY)
    run = api.schedule(*api.dataset_and_eval(records=40), batch_size=1)
    api.wait(run["id"], {"running"}, 30)
    table = stack.client("dynamodb")
    name = stack.resources["AssayTable"]

    def in_flight() -> int:
        item = table.get_item(
            TableName=name, Key={"PK": {"S": f"TENANT#{run['tenant_id']}"}, "SK": {"S": "TENANT"}}
        )["Item"]
        return int(item["runs_in_flight"]["N"])

    before = in_flight()
    machine = stack.outputs["StateMachineArn"]
    stack.client("stepfunctions").stop_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:") + f":{run['id']}",
        cause="stopped from the console",
    )
    ended = api.wait(run["id"], {"cancelled", "failed", "completed"}, 30)
    assert ended["status"] == "cancelled", ended
    assert "stopped outside Assay" in ended["error_message"]
    assert [e["detail"]["status"] for e in _reconciled(stack, run["id"])] == ["ABORTED"]
    assert in_flight() == before - 1
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem"} <= granted_calls(stack, "ReconcileRunFunction")


def test_a_succeeded_execution_is_not_sent_to_the_reconciler(stack, finished_run):
    assert finished_run["run"]["status"] == "completed"
    assert _reconciled(stack, finished_run["run"]["id"], seconds=1) == []


def test_a_bedrock_judged_eval_is_refused_at_schedule_with_the_way_to_a_local_judge(stack, http):
    # GIVEN the local stack started without --judge-base-url (it cannot call Bedrock either)
    assert stack.function_env("ScheduleRunFunction")["JUDGE_PROVIDERS"] == "none"
    dataset = call(http, stack, "POST", "/v1/datasets", json={"name": "judged", "records": RECORDS}).json()
    ev = call(http, stack, "POST", "/v1/evals", json={"name": "bedrock-judged"}).json()
    # AND an eval version judged by the default provider, Bedrock (creating it stays allowed)
    metrics = [*METRICS[:1], {"name": "ans_corr", "scorer": "answer_correctness", "threshold": 0.7}]
    version = call(http, stack, "POST", f"/v1/evals/{ev['id']}/versions", json={"metrics": metrics})
    assert version.status_code == 201, version.text
    # WHEN a run of it is scheduled
    runs_before = call(http, stack, "GET", "/v1/eval-runs", params={"limit": 100}).json()["count"]
    refused = call(
        http,
        stack,
        "POST",
        f"/v1/datasets/{dataset['id']}/runs",
        json={"eval_version_id": version.json()["id"]},
    )
    # THEN it is a 400 at once, naming the metric and saying how to get a judge locally
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["code"] == "validation.invalid_request"
    assert "metric 'ans_corr' (answer_correctness)" in body["error"]
    assert "judge provider 'bedrock' is not available in this deployment" in body["error"]
    assert "--judge-base-url URL" in body["error"] and "ASSAY_JUDGE_API_KEY" in body["error"]
    assert body["details"]["provider"] == "bedrock" and body["details"]["available"] == []
    # AND no run was recorded
    assert call(http, stack, "GET", "/v1/eval-runs", params={"limit": 100}).json()["count"] == runs_before
