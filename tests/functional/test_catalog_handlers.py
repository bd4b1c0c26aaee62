"""Datasets and evals through their real handlers (DatasetsFunction, EvalsFunction)."""

from __future__ import annotations

import uuid

from tests.functional.factories import create_dataset
from tests.functional.harness import api_event


def test_create_dataset_and_version_from_the_sample_events(stack):
    dataset_id = create_dataset(stack)
    status, dataset, _ = stack.call("DatasetsFunction", api_event("get_dataset", path_id=dataset_id))
    assert status == 200
    assert dataset["version_count"] == 1 and dataset["tenant_id"] == stack.tenant_id
    status, versions, _ = stack.call(
        "DatasetsFunction", api_event("list_dataset_versions", path_id=dataset_id)
    )
    assert status == 200 and versions["count"] == 1
    assert versions["items"][0]["record_count"] == 3


def test_list_datasets_newest_first_with_cursor(stack):
    ids = [create_dataset(stack, records=False) for _ in range(3)]
    status, page, _ = stack.call("DatasetsFunction", api_event("list_datasets", query={"limit": "2"}))
    assert status == 200 and page["count"] == 2 and page["next_cursor"]
    status, rest, _ = stack.call(
        "DatasetsFunction", api_event("list_datasets", query={"limit": "100", "cursor": page["next_cursor"]})
    )
    seen = [d["id"] for d in page["items"] + rest["items"]]
    assert seen[:3] == ids[::-1]
    assert len(seen) == len(set(seen))


def test_version_with_duplicate_record_ids_is_rejected_whole(stack):
    dataset_id = create_dataset(stack, records=False)
    records = [{"id": "a", "output": "x"}, {"id": "b", "output": "y"}, {"id": "a", "output": "z"}]
    status, body, _ = stack.call(
        "DatasetsFunction", api_event("create_dataset_version", path_id=dataset_id, body={"records": records})
    )
    assert status == 400 and body["code"] == "validation.invalid_request"
    assert body["details"]["records"] == ["record 3: id 'a' repeats record 1"]
    _, dataset, _ = stack.call("DatasetsFunction", api_event("get_dataset", path_id=dataset_id))
    assert dataset["version_count"] == 0  # nothing stored


def test_version_with_a_bad_record_names_it(stack):
    dataset_id = create_dataset(stack, records=False)
    records = [{"output": "x"}, {"output": 5}, {"outputs": "typo"}]
    status, body, _ = stack.call(
        "DatasetsFunction", api_event("create_dataset_version", path_id=dataset_id, body={"records": records})
    )
    assert status == 400
    locations = [e["loc"] for e in body["details"]["errors"]]
    assert "body.records[1].output" in locations and "body.records[2].outputs" in locations


def test_eval_version_validation_names_the_metric(stack):
    status, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    assert status == 201
    bad = {
        "metrics": [
            {"name": "ok", "scorer": "json_valid"},
            {"name": "rx", "scorer": "regex", "args": {"pattern": "(["}},
        ]
    }
    status, body, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], body=bad)
    )
    assert status == 400 and "metrics[1] (rx)" in body["error"]
    status, body, _ = stack.call(
        "EvalsFunction",
        api_event(
            "create_eval_version", path_id=ev["id"], body={"metrics": [{"name": "x", "scorer": "nope"}]}
        ),
    )
    assert status == 400 and "unknown scorer 'nope'" in body["error"]
    status, version, _ = stack.call("EvalsFunction", api_event("create_eval_version", path_id=ev["id"]))
    assert status == 201 and version["version"] == 1 and len(version["metrics"]) == 4
    status, got, _ = stack.call("EvalsFunction", api_event("get_eval_version", path_id=version["id"]))
    assert status == 200 and got == version
    status, listed, _ = stack.call("EvalsFunction", api_event("list_eval_versions", path_id=ev["id"]))
    assert listed["count"] == 1


def test_unknown_ids_are_404_in_the_envelope(stack):
    missing = str(uuid.uuid4())
    for fn, name in [
        ("DatasetsFunction", "get_dataset"),
        ("EvalsFunction", "get_eval"),
        ("EvalsFunction", "get_eval_version"),
        ("GetRunFunction", "get_run"),
        ("GetEvaluationFunction", "get_evaluation"),
        ("ExportRunFunction", "export_run"),
    ]:
        status, body, _ = stack.call(fn, api_event(name, path_id=missing))
        assert status == 404, (name, body)
        assert body["code"] == "resource.not_found" and body["request_id"] == "sample-request-id"
