"""Data checked against the eval: a version's field coverage, its warnings, ``strict``, and
the check at schedule time — through the real handlers on moto.

The dead end this guards against: a CSV with the header ``Output,golden`` becomes records
whose ``output`` and ``golden_answer`` are in ``metadata`` (the CLI's reader puts unknown
columns there), and a run on them scores nothing, with nobody told why."""

from __future__ import annotations

import boto3

from tests.functional.factories import create_dataset, eval_version, jsonl, upload
from tests.functional.harness import api_event

# What the CLI's CSV reader makes of the rows of "id,input,Output,golden".
MISNAMED = [
    {
        "id": f"m{i}",
        "input": f"question {i}",
        "metadata": {"Output": f"answer {i}", "golden": f"answer {i}", "topic": "x"},
    }
    for i in range(4)
]
EXACT = [{"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1.0}]


def new_version(stack, dataset_id: str, records: list[dict], **extra) -> tuple[int, dict]:
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version", path_id=dataset_id, body={"records": records, **extra}),
    )
    return status, body


def version_objects(stack, dataset_id: str) -> list[str]:
    """The version files in S3: a refused version leaves none (its multipart write is aborted)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_objects_v2(
        Bucket=stack.env("DatasetsFunction")["BUCKET_NAME"],
        Prefix=f"tenants/{stack.tenant_id}/datasets/{dataset_id}/versions/",
    )
    return [o["Key"] for o in listed.get("Contents", [])]


def versions(stack, dataset_id: str) -> list[dict]:
    status, body, _ = stack.call("DatasetsFunction", api_event("list_dataset_versions", path_id=dataset_id))
    assert status == 200, body
    return body["items"]


def schedule(stack, dataset_id: str, metrics: list[dict], **body) -> tuple[int, dict]:
    version = eval_version(stack, metrics)
    status, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"], **body}),
    )
    return status, run


def run_count(stack, dataset_id: str) -> int:
    status, page, _ = stack.call("ListRunsFunction", api_event("list_runs", query={"dataset_id": dataset_id}))
    assert status == 200, page
    return page["count"]


# ---------------------------------------------------------------- at upload
def test_misnamed_columns_get_warnings_with_suggestions(stack):
    dataset_id = create_dataset(stack, records=False)
    status, version = new_version(stack, dataset_id, MISNAMED)
    assert status == 201, version
    assert version["fields"] == {"prompt": 0, "input": 4, "context": 0, "output": 0, "golden_answer": 0}
    assert version["unknown_fields"] == {"Output": 4, "golden": 4}  # not "topic"
    by_field = {w["field"]: w for w in version["warnings"]}
    assert by_field["Output"]["code"] == "unknown_field"
    assert by_field["Output"]["suggestion"] == "output" and by_field["Output"]["count"] == 4
    assert "did you mean 'output'?" in by_field["Output"]["message"]
    assert by_field["golden"]["suggestion"] == "golden_answer"
    assert "did you mean 'golden_answer'?" in by_field["golden"]["message"]
    assert by_field["output"]["code"] == "missing_field"
    assert "no record has 'output'" in by_field["output"]["message"]
    # Stored: the version list says the same.
    (listed,) = versions(stack, dataset_id)
    assert listed["warnings"] == version["warnings"] and listed["fields"] == version["fields"]


def test_well_formed_records_get_no_warnings(stack):
    dataset_id = create_dataset(stack, records=False)
    records = [{"output": "a", "golden_answer": "a", "metadata": {"category": "geo"}}]
    status, version = new_version(stack, dataset_id, records, strict=True)
    assert status == 201, version
    assert version["warnings"] == [] and version["unknown_fields"] == {}
    assert version["fields"]["output"] == 1 and version["fields"]["golden_answer"] == 1


def test_strict_refuses_misnamed_columns_and_stores_nothing(stack):
    dataset_id = create_dataset(stack, records=[{"output": "a", "golden_answer": "a"}])
    before = versions(stack, dataset_id)
    status, body = new_version(stack, dataset_id, MISNAMED, strict=True)
    assert status == 400 and body["code"] == "validation.invalid_request", body
    assert "Output" in body["error"] and "golden" in body["error"]
    assert "the version was not created" in body["error"]
    fields = {w["field"] for w in body["details"]["warnings"]}
    assert fields == {"Output", "golden", "output"}
    assert versions(stack, dataset_id) == before
    assert len(version_objects(stack, dataset_id)) == 1  # version 1's only
    _, dataset, _ = stack.call("DatasetsFunction", api_event("get_dataset", path_id=dataset_id))
    assert dataset["version_count"] == 1


def test_strict_must_be_a_json_boolean(stack):
    dataset_id = create_dataset(stack, records=False)
    status, body = new_version(stack, dataset_id, MISNAMED, strict="yes")
    assert status == 400 and body["error"].startswith("body.strict"), body
    assert versions(stack, dataset_id) == []


def test_an_uploaded_file_gets_the_same_coverage_and_strict(stack):
    dataset_id = create_dataset(stack, records=False)
    upload_id = upload(stack, dataset_id, jsonl(MISNAMED))
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event(
            "create_dataset_version_from_upload",
            path_id=dataset_id,
            body={"upload_id": upload_id, "strict": True},
        ),
    )
    assert status == 400 and {w["field"] for w in body["details"]["warnings"]} == {
        "Output",
        "golden",
        "output",
    }, body
    assert versions(stack, dataset_id) == [] and version_objects(stack, dataset_id) == []
    status, version, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version_from_upload", path_id=dataset_id, body={"upload_id": upload_id}),
    )
    assert status == 201, version
    assert version["fields"]["output"] == 0 and version["unknown_fields"] == {"Output": 4, "golden": 4}
    assert {w["code"] for w in version["warnings"]} == {"unknown_field", "missing_field"}


def test_some_records_without_output_is_a_partial_warning(stack):
    dataset_id = create_dataset(stack, records=False)
    records = [{"output": "a"}, {"input": "q"}, {"input": "q2"}]
    status, version = new_version(stack, dataset_id, records)
    assert status == 201, version
    (warning,) = version["warnings"]
    assert warning["code"] == "partial_field" and warning["field"] == "output"
    assert warning["count"] == 2 and "2 of 3 records have no 'output'" in warning["message"]


# ---------------------------------------------------------------- at schedule
def test_a_metric_needing_a_field_no_record_has_is_refused_and_nothing_scheduled(stack):
    dataset_id = create_dataset(stack, records=MISNAMED)
    status, body = schedule(stack, dataset_id, EXACT)
    assert status == 400 and body["code"] == "validation.invalid_request", body
    message = body["error"]
    assert "metric 'exact' (exact_match) needs the record field 'output'" in message
    assert "0 of 4 records" in message and "the run was not scheduled" in message
    assert "'Output' in their metadata looks like it" in message
    problems = {(p["metric"], p["field"]) for p in body["details"]["fields"]}
    assert problems == {("exact", "output"), ("exact", "golden_answer")}
    assert all(p["records_with_field"] == 0 and p["record_count"] == 4 for p in body["details"]["fields"])
    assert run_count(stack, dataset_id) == 0


def test_metric_args_are_checked_as_merged(stack):
    """The field a metric reads comes from its args, overrides included."""
    records = [{"input": "q", "output": "a", "golden_answer": "a"}]
    dataset_id = create_dataset(stack, records=records)
    status, body = schedule(stack, dataset_id, EXACT, metric_args={"exact": {"reference_field": "context"}})
    assert status == 400, body
    assert "needs the record field 'context'" in body["error"]
    status, run = schedule(stack, dataset_id, EXACT, metric_args={"exact": {"reference_field": "input"}})
    assert status == 202, run
    assert run["warnings"] == []


def test_conditional_needs_follow_the_args(stack):
    """``contains`` with a literal substring needs no reference; ``rubric`` needs the
    context only with include_context."""
    dataset_id = create_dataset(stack, records=[{"output": "a"}])
    status, run = schedule(
        stack, dataset_id, [{"name": "has_a", "scorer": "contains", "args": {"substring": "a"}}]
    )
    assert status == 202, run
    status, body = schedule(stack, dataset_id, [{"name": "has_ref", "scorer": "contains", "args": {}}])
    assert status == 400 and "'golden_answer'" in body["error"], body


def test_some_records_lacking_a_field_schedule_with_warnings(stack):
    records = [{"id": f"r{i}", "output": "a", **({"golden_answer": "a"} if i < 3 else {})} for i in range(5)]
    dataset_id = create_dataset(stack, records=records)
    status, run = schedule(
        stack, dataset_id, [*EXACT, {"name": "short", "scorer": "length", "args": {"max": 5}}]
    )
    assert status == 202, run
    (warning,) = run["warnings"]
    assert warning["code"] == "partial_field" and warning["metric"] == "exact"
    assert warning["field"] == "golden_answer" and warning["count"] == 2
    assert "2 of 5 records lack it" in warning["message"]
    # The warnings belong to the schedule response; reading the run later does not repeat them.
    status, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert status == 200 and got["warnings"] is None


def test_a_misnamed_top_level_key_is_refused_with_the_same_suggestion_both_ways(stack):
    """A JSONL/inline record with ``Output`` (not in metadata) is refused — records take only
    their fields — and the 400 says which field was meant, inline and uploaded alike."""
    dataset_id = create_dataset(stack, records=False)
    record = {"id": "a", "input": "q", "Output": "x"}
    status, body = new_version(stack, dataset_id, [record])
    assert status == 400 and body["error"].endswith("; did you mean 'output'?"), body
    assert "records[0].Output" in body["error"]
    upload_id = upload(stack, dataset_id, jsonl([record]))
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version_from_upload", path_id=dataset_id, body={"upload_id": upload_id}),
    )
    assert status == 400 and "did you mean 'output'?" in body["error"], body
    assert versions(stack, dataset_id) == []
    # a key that looks like no field gets no guess
    status, body = new_version(stack, dataset_id, [{"id": "a", "zzz_unrelated": 1}])
    assert status == 400 and "did you mean" not in body["error"], body
