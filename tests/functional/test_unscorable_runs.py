"""Runs where some or no records can be scored: every handler real, in-process, on moto.

A record the eval's scorers cannot score (here: no golden answer for ``exact_match``) is a
failed evaluation with its reason, not a failed run. Finalize then writes null aggregates,
a null result and a null verdict (fields DynamoDB must be told to clear, not handed as
missing values), and every view of the run still answers.
"""

from __future__ import annotations

import csv
import io
import json
import uuid

import boto3
from assay_service.domain.ids import run_key

from tests.contracts import aegis, aymara, trulayer
from tests.functional.factories import completed_run
from tests.functional.harness import api_event

EXACT = [{"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1.0}]
# An empty reference: numeric finds no number in it, contains would find it in anything.
UNUSABLE_REFERENCE = [
    {"name": "amount", "scorer": "numeric", "args": {}, "threshold": 1.0},
    {"name": "mentions", "scorer": "contains", "args": {}, "threshold": 1.0},
]


def run_details(stack, run_id: str) -> dict:
    status, run, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run_id))
    assert status == 200, run
    return run


def evaluations(stack, run_id: str) -> list[dict]:
    status, page, _ = stack.call(
        "GetEvaluationFunction", api_event("list_run_evaluations", path_id=run_id, query={"limit": "100"})
    )
    assert status == 200, page
    return page["items"]


def assert_views_answer(stack, run: dict) -> None:
    status, body, _ = stack.call("CompatViewsFunction", api_event("aegis_run", path_id=run["id"]))
    assert status == 200, body
    trulayer.validate(body, aegis.RUN)
    query = {"eval_uuid": run["eval_id"], "include_responses": "true"}
    status, body, _ = stack.call("CompatViewsFunction", api_event("aymara_list_runs", query=query))
    assert status == 200, body
    trulayer.validate(body, aymara.LIST)
    assert [i["eval_run_uuid"] for i in body["items"]] == [run["id"]]
    for fmt in ("json", "jsonl", "csv"):
        status, body, _ = stack.call(
            "ExportRunFunction", api_event("export_run", path_id=run["id"], query={"format": fmt})
        )
        assert status == 200, body


def test_a_run_where_nothing_can_be_scored_completes_with_null_aggregates(stack):
    """GIVEN records whose golden answers are empty and scorers that cannot use an empty
    one WHEN the run goes through prepare, score and finalize THEN it completes (not
    ``failed`` with a store error): every evaluation failed with its reason, every mean
    null, no result, no verdict, no error message. (Golden answers missing from every
    record would not get this far: scheduling refuses them, test_field_coverage.py.)"""
    records = [
        {"id": "a", "output": "x", "golden_answer": ""},
        {"id": "b", "output": "y", "golden_answer": ""},
    ]
    run = completed_run(stack, records=records, batch_size=1, metrics=UNUSABLE_REFERENCE)
    got = run_details(stack, run["id"])
    assert got["status"] == "completed", got["error_message"]
    assert got["error_message"] is None
    assert got["result"] is None and got["verdict"] is None and got["is_gte_threshold"] is None
    assert (got["completed_count"], got["failed_count"]) == (0, 2)
    assert set(got["aggregate_results"]) == {"amount", "mentions"}
    for aggregate in got["aggregate_results"].values():
        assert aggregate["mean"] is None and aggregate["is_gte_threshold"] is None
        assert (aggregate["count"], aggregate["passed"], aggregate["unscored"]) == (0, 0, 2)
        assert "failed" not in aggregate  # renamed: it read as "below threshold"
    items = evaluations(stack, run["id"])
    assert len(items) == 4
    for item in items:
        assert item["status"] == "failed" and item["score"] is None and not item["is_passed"]
        assert "golden" in item["error_message"].lower(), item["error_message"]
    assert_views_answer(stack, got)


def test_a_mixed_run_aggregates_over_the_records_it_could_score(stack):
    records = [
        {"id": "hit", "output": "Paris", "golden_answer": "Paris"},
        {"id": "miss", "output": "Lyon", "golden_answer": "Paris"},
        {"id": "none", "output": "Paris"},
    ]
    run = completed_run(stack, records=records, batch_size=2, metrics=EXACT)
    got = run_details(stack, run["id"])
    assert got["status"] == "completed" and got["error_message"] is None
    exact = got["aggregate_results"]["exact"]
    assert (exact["count"], exact["passed"], exact["unscored"]) == (2, 1, 1)
    assert exact["mean"] == 0.5 and exact["is_gte_threshold"] is False
    assert got["result"] == 0.5 and got["verdict"] == "fail"
    by_record = {e["record_id"]: e for e in evaluations(stack, run["id"])}
    assert by_record["none"]["status"] == "failed" and by_record["none"]["error_message"]
    assert by_record["hit"]["status"] == by_record["miss"]["status"] == "complete"
    assert_views_answer(stack, got)
    status, body, _ = stack.call(
        "ExportRunFunction", api_event("export_run", path_id=run["id"], query={"format": "csv"})
    )
    rows = {r["record_id"]: r for r in csv.DictReader(io.StringIO(body))}
    assert rows["none"]["status"] == "failed" and rows["none"]["score"] == ""


def test_a_run_stored_before_the_rename_still_loads_its_unscored_count(stack):
    """GIVEN a completed run whose stored aggregates carry ``failed`` (the name before
    ``unscored``: items finalized earlier keep it) WHEN it is read THEN the run and every view
    of it answer, the count arriving as ``unscored``."""
    records = [{"id": "hit", "output": "Paris", "golden_answer": "Paris"}, {"id": "none", "output": "Paris"}]
    run = completed_run(stack, records=records, batch_size=2, metrics=EXACT)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    table = stack.env("GetRunFunction")["TABLE_NAME"]
    pk = f"T#{stack.tenant_id}#RUN#{run_key(uuid.UUID(run['id']))}"
    item = ddb.get_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": "RUN"}})["Item"]
    aggregates = json.loads(item["aggregates"]["S"])
    for aggregate in aggregates:
        aggregate["failed"] = aggregate.pop("unscored")
    ddb.update_item(
        TableName=table,
        Key={"PK": item["PK"], "SK": item["SK"]},
        UpdateExpression="SET aggregates = :a",
        ExpressionAttributeValues={":a": {"S": json.dumps(aggregates)}},
    )
    got = run_details(stack, run["id"])
    exact = got["aggregate_results"]["exact"]
    assert (exact["count"], exact["passed"], exact["unscored"]) == (1, 1, 1)
    assert "failed" not in exact
    assert_views_answer(stack, got)
