"""Atomic creates and deletes (docs/decisions/0012-deletes.md), through the real handlers.

* ``POST /v1/datasets`` with ``records`` and ``POST /v1/evals`` with ``metrics`` create the
  parent and version 1 together: a bad record or metric creates nothing at all;
* ``DELETE /v1/datasets/{id}``, ``/v1/evals/{id}``, ``/v1/eval-runs/{id}`` remove the items
  and the S3 objects, keep the run counters exact, refuse what runs still use (409) and a
  run that has not finished (409 naming the cancel route); another tenant's id is the same
  404 as a missing one and removes nothing; a viewer key is 403;
* a delete racing a schedule: whichever of the dataset's tombstone and the run's
  transaction commits first wins, the other is refused with nothing lost or stored; an
  interrupted delete hides the dataset and deleting again finishes.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from assay_service import dependencies
from assay_service.adapters.dynamodb import RunQuery
from assay_service.domain.ids import run_key

from tests.functional.factories import RECORDS, completed_run, eval_version, jsonl, new_key, upload
from tests.functional.harness import OTHER_TENANT_KEY, api_event, environment, workflow_event

METRICS = [{"name": "exact", "scorer": "exact_match"}, {"name": "json", "scorer": "json_valid"}]


def ddb():
    return boto3.client("dynamodb", region_name="us-east-1")


def s3():
    return boto3.client("s3", region_name="us-east-1")


def bucket(stack) -> str:
    return stack.env("DatasetsFunction")["BUCKET_NAME"]


def table(stack) -> str:
    return stack.env("DatasetsFunction")["TABLE_NAME"]


def objects(stack, prefix: str) -> list[str]:
    out = s3().list_objects_v2(Bucket=bucket(stack), Prefix=prefix)
    return sorted(o["Key"] for o in out.get("Contents", []))


def partition(stack, pk: str) -> list[str]:
    out = ddb().query(
        TableName=table(stack),
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )
    return sorted(i["SK"]["S"] for i in out["Items"])


def all_ids(stack, function: str, name: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        status, page, _ = stack.call(function, api_event(name, query=query))
        assert status == 200, page
        ids |= {item["id"] for item in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return ids


def call(stack, function: str, name: str, *, key=None, **kwargs):
    extra = {} if key is None else {"key": key}
    return stack.call(function, api_event(name, **extra, **kwargs))


def delete(stack, kind: str, object_id: str, key=None):
    function = {"dataset": "DatasetsFunction", "eval": "EvalsFunction", "run": "DeleteRunFunction"}[kind]
    return call(stack, function, f"delete_{kind}", path_id=object_id, key=key)


def run_count(stack, **criteria: str) -> int:
    status, page, _ = call(stack, "ListRunsFunction", "list_runs", query={"limit": "1", **criteria})
    assert status == 200, page
    return page["count"]


# ------------------------------------------------------------------ atomic creates
def test_a_dataset_created_with_records_has_its_version_1(stack):
    status, body, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "with-records", "records": RECORDS}
    )
    assert status == 201, body
    assert body["version_count"] == 1 and body["version"]["version"] == 1
    assert body["version"]["record_count"] == len(RECORDS)
    assert body["version"]["dataset_id"] == body["id"]
    assert len(objects(stack, f"tenants/{stack.tenant_id}/datasets/{body['id']}/")) == 1
    status, versions, _ = call(stack, "DatasetsFunction", "list_dataset_versions", path_id=body["id"])
    assert status == 200 and [v["id"] for v in versions["items"]] == [body["version"]["id"]]


def test_a_dataset_created_without_records_still_works(stack):
    status, body, _ = call(stack, "DatasetsFunction", "create_dataset", body={"name": "bare"})
    assert status == 201 and body["version_count"] == 0 and body["version"] is None


@pytest.mark.parametrize(
    ("records", "needle"),
    [
        ([{"id": "a", "output": "x"}, {"id": "a", "output": "y"}], "record 2: id 'a' repeats record 1"),
        ([{"output": "x"}, {"output": 5}], "body.records[1].output"),
        ([{"outputs": "typo"}], "body.records[0].outputs"),
        ([], "body.records"),
    ],
)
def test_a_bad_record_creates_no_dataset_at_all(stack, records, needle):
    name = f"atomic-{uuid.uuid4()}"
    before = all_ids(stack, "DatasetsFunction", "list_datasets")
    objects_before = objects(stack, f"tenants/{stack.tenant_id}/datasets/")
    status, body, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": name, "records": records}
    )
    assert status == 400 and body["code"].startswith("validation."), body
    assert needle in body["error"] or needle in str(body["details"])
    assert all_ids(stack, "DatasetsFunction", "list_datasets") == before
    assert objects(stack, f"tenants/{stack.tenant_id}/datasets/") == objects_before


def test_strict_records_that_draw_warnings_create_no_dataset(stack):
    """``strict`` is checked by the version's own path, after the dataset is written: the
    refusal must still leave nothing behind."""
    misnamed = [{"id": f"m{i}", "input": "q", "metadata": {"Output": "a", "golden": "a"}} for i in range(3)]
    before = all_ids(stack, "DatasetsFunction", "list_datasets")
    status, body, _ = call(
        stack,
        "DatasetsFunction",
        "create_dataset",
        body={"name": "strict", "records": misnamed, "strict": True},
    )
    assert status == 400 and body["error"].startswith("strict:"), body
    assert all_ids(stack, "DatasetsFunction", "list_datasets") == before
    status, body, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "strict", "strict": True}
    )
    assert status == 400 and "give 'records' too" in body["error"]


def test_a_version_that_fails_after_the_dataset_is_written_takes_the_dataset_with_it(stack, monkeypatch):
    """A failure past the checks (here the version's write) removes the dataset again."""
    from assay_service.services import catalog

    def broken(*args, **kwargs):
        raise RuntimeError("version write failed")

    monkeypatch.setattr(catalog, "create_dataset_version", broken)
    before = all_ids(stack, "DatasetsFunction", "list_datasets")
    status, body, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "doomed", "records": RECORDS}
    )
    assert status == 500 and body["code"] == "server.internal_error"
    assert all_ids(stack, "DatasetsFunction", "list_datasets") == before


def test_an_eval_created_with_metrics_has_its_version_1(stack):
    status, body, _ = call(
        stack,
        "EvalsFunction",
        "create_eval",
        body={"name": "with-metrics", "metrics": METRICS, "threshold": 0.5},
    )
    assert status == 201, body
    assert body["version_count"] == 1 and body["version"]["version"] == 1
    assert body["version"]["threshold"] == 0.5 and len(body["version"]["metrics"]) == 2
    status, got, _ = call(stack, "EvalsFunction", "get_eval_version", path_id=body["version"]["id"])
    assert status == 200 and got == body["version"]
    status, bare, _ = call(stack, "EvalsFunction", "create_eval", body={"name": "bare"})
    assert status == 201 and bare["version"] is None and bare["version_count"] == 0


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {
                "metrics": [
                    {"name": "ok", "scorer": "json_valid"},
                    {"name": "rx", "scorer": "regex", "args": {"pattern": "(["}},
                ]
            },
            "metrics[1] (rx)",
        ),
        ({"metrics": [{"name": "x", "scorer": "nope"}]}, "unknown scorer 'nope'"),
        ({"metrics": []}, "body.metrics"),
        ({"threshold": 0.5}, "give 'metrics' too"),
        ({"metrics": METRICS, "threshold": 2}, "body.threshold"),
    ],
)
def test_a_bad_metric_creates_no_eval_at_all(stack, body, needle):
    before = all_ids(stack, "EvalsFunction", "list_evals")
    status, answer, _ = call(stack, "EvalsFunction", "create_eval", body={"name": "atomic", **body})
    assert status == 400 and needle in answer["error"], answer
    assert all_ids(stack, "EvalsFunction", "list_evals") == before


# ------------------------------------------------------------------ deletes
def test_deleting_a_dataset_removes_its_items_and_objects(stack):
    _, dataset, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "to-delete", "records": RECORDS}
    )
    dataset_id = dataset["id"]
    status, _, _ = call(
        stack, "DatasetsFunction", "create_dataset_version", path_id=dataset_id, body={"records": RECORDS[:2]}
    )
    assert status == 201
    upload(stack, dataset_id, jsonl(RECORDS))  # a pending upload, never made a version
    prefix = f"tenants/{stack.tenant_id}/datasets/{dataset_id}/"
    uploads = f"uploads/{stack.tenant_id}/{dataset_id}/"
    assert len(objects(stack, prefix)) == 2 and len(objects(stack, uploads)) == 1
    pk = f"T#{stack.tenant_id}#DS#{dataset_id}"
    assert partition(stack, pk) == ["DS", "V#00000001", "V#00000002"]

    status, body, headers = delete(stack, "dataset", dataset_id)
    assert status == 204 and body is None
    assert objects(stack, prefix) == [] and objects(stack, uploads) == []
    assert partition(stack, pk) == []
    assert call(stack, "DatasetsFunction", "get_dataset", path_id=dataset_id)[0] == 404
    assert dataset_id not in all_ids(stack, "DatasetsFunction", "list_datasets")
    status, again, _ = delete(stack, "dataset", dataset_id)  # a second delete: 404, not 500
    assert status == 404 and again["code"] == "resource.not_found"


def test_deleting_an_eval_removes_it_and_every_version(stack):
    _, ev, _ = call(stack, "EvalsFunction", "create_eval", body={"name": "to-delete", "metrics": METRICS})
    status, second, _ = call(
        stack, "EvalsFunction", "create_eval_version", path_id=ev["id"], body={"metrics": METRICS[:1]}
    )
    assert status == 201
    version_ids = [ev["version"]["id"], second["id"]]
    status, body, _ = delete(stack, "eval", ev["id"])
    assert status == 204 and body is None
    assert call(stack, "EvalsFunction", "get_eval", path_id=ev["id"])[0] == 404
    for version_id in version_ids:
        assert call(stack, "EvalsFunction", "get_eval_version", path_id=version_id)[0] == 404
        assert partition(stack, f"T#{stack.tenant_id}#EVALVER#{version_id}") == []
    assert partition(stack, f"T#{stack.tenant_id}#EVAL#{ev['id']}") == []
    assert delete(stack, "eval", ev["id"])[0] == 404


def test_a_delete_with_a_body_is_refused(stack):
    _, ev, _ = call(stack, "EvalsFunction", "create_eval", body={"name": "keep"})
    status, body, _ = call(stack, "EvalsFunction", "delete_eval", path_id=ev["id"], body={"force": True})
    assert status == 400 and "takes no body" in body["error"]
    assert call(stack, "EvalsFunction", "get_eval", path_id=ev["id"])[0] == 200


@pytest.fixture(scope="module")
def finished_run(stack) -> dict:
    return completed_run(stack)


def test_another_tenants_delete_is_the_same_404_and_removes_nothing(stack, finished_run):
    targets = {
        "dataset": finished_run["dataset_id"],
        "eval": finished_run["eval_id"],
        "run": finished_run["id"],
    }
    for kind, object_id in targets.items():
        foreign = delete(stack, kind, object_id, key=OTHER_TENANT_KEY)
        missing = delete(stack, kind, str(uuid.uuid4()), key=OTHER_TENANT_KEY)
        assert foreign[0] == missing[0] == 404 and foreign[1] == missing[1], kind
    assert call(stack, "GetRunFunction", "get_run", path_id=finished_run["id"])[0] == 200
    assert call(stack, "DatasetsFunction", "get_dataset", path_id=finished_run["dataset_id"])[0] == 200
    assert call(stack, "EvalsFunction", "get_eval", path_id=finished_run["eval_id"])[0] == 200
    pk = f"T#{stack.tenant_id}#RUN#{run_key(uuid.UUID(finished_run['id']))}"
    assert "RUN" in partition(stack, pk) and any(sk.startswith("B#") for sk in partition(stack, pk))


def test_a_viewer_cannot_delete(stack, finished_run):
    viewer = new_key(stack, "viewer")
    for kind, object_id in (
        ("dataset", finished_run["dataset_id"]),
        ("eval", finished_run["eval_id"]),
        ("run", finished_run["id"]),
    ):
        status, body, _ = delete(stack, kind, object_id, key=viewer)
        assert status == 403 and body["code"] == "auth.insufficient_permissions", kind
    assert call(stack, "GetRunFunction", "get_run", path_id=finished_run["id"])[0] == 200


def test_a_dataset_or_eval_that_runs_use_is_409_saying_how_many(stack, finished_run):
    for kind, field in (("dataset", "dataset_id"), ("eval", "eval_id")):
        status, body, _ = delete(stack, kind, finished_run[field])
        assert status == 409 and body["code"] == "resource.conflict", body
        assert body["details"]["runs"] == 1 and "DELETE /v1/eval-runs/{id}" in body["error"]
        assert f"GET /v1/eval-runs?{field}={finished_run[field]}" in body["error"]
    assert call(stack, "DatasetsFunction", "get_dataset", path_id=finished_run["dataset_id"])[0] == 200


def test_an_eval_delete_that_a_run_overtakes_keeps_every_version(stack, finished_run, monkeypatch):
    """The service checks that no run uses the eval, then the store deletes it: a run
    scheduled in between must refuse the whole delete, versions included (deleted first,
    they would leave an eval that no later delete could finish)."""
    from assay_service.services import catalog

    monkeypatch.setattr(catalog, "_refuse_if_runs", lambda *args, **kwargs: None)  # the run came meanwhile
    status, body, _ = delete(stack, "eval", finished_run["eval_id"])
    assert status == 409 and "scheduled while it was being deleted" in body["error"], body
    version = call(stack, "EvalsFunction", "get_eval_version", path_id=finished_run["eval_version_id"])
    assert version[0] == 200 and version[1]["eval_id"] == finished_run["eval_id"]
    assert call(stack, "EvalsFunction", "get_eval", path_id=finished_run["eval_id"])[0] == 200


def cancel(stack, run_id: str) -> int:
    return call(stack, "CancelRunFunction", "cancel_run", path_id=run_id)[0]


def test_an_unfinished_run_is_409_naming_the_cancel_route(stack):
    _, dataset, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "pending-run", "records": RECORDS}
    )
    version = eval_version(stack)
    status, run, _ = call(
        stack,
        "ScheduleRunFunction",
        "schedule_run",
        path_id=dataset["id"],
        body={"eval_version_id": version["id"]},
    )
    assert status == 202 and run["status"] == "pending"
    status, body, _ = delete(stack, "run", run["id"])
    assert status == 409 and body["details"]["status"] == "pending"
    assert f"POST /v1/eval-runs/{run['id']}/cancel" in body["error"]
    assert call(stack, "GetRunFunction", "get_run", path_id=run["id"])[0] == 200
    assert cancel(stack, run["id"]) == 200
    in_flight_counts = run_count(stack, status="cancelled")
    status, body, _ = delete(stack, "run", run["id"])
    assert status == 204 and body is None
    assert run_count(stack, status="cancelled") == in_flight_counts - 1


def test_deleting_a_run_removes_its_batches_objects_and_counts(stack, finished_run):
    run_id, tenant = finished_run["id"], stack.tenant_id
    pk = f"T#{tenant}#RUN#{run_key(uuid.UUID(run_id))}"
    prefix = f"tenants/{tenant}/runs/{run_id}/"
    assert "manifest.json" in " ".join(objects(stack, prefix))
    assert any(key.endswith("export.jsonl") for key in objects(stack, prefix))
    _, evaluations, _ = call(stack, "GetEvaluationFunction", "list_run_evaluations", path_id=run_id)
    evaluation_id = evaluations["items"][0]["id"]
    criteria = [
        {},
        {"status": "completed"},
        {"dataset_id": finished_run["dataset_id"]},
        {"eval_id": finished_run["eval_id"]},
        {"eval_version_id": finished_run["eval_version_id"]},
        {"project_id": finished_run["project_id"]},
    ]
    before = [run_count(stack, **c) for c in criteria]
    assert before[2] == before[3] == before[4] == 1

    status, body, _ = delete(stack, "run", run_id)
    assert status == 204 and body is None
    assert objects(stack, prefix) == [] and partition(stack, pk) == []
    assert [run_count(stack, **c) for c in criteria] == [n - 1 for n in before]
    with environment(stack.env("ListRunsFunction")):  # the counter items themselves
        repo = dependencies.runs()
        for c in criteria[2:5]:  # the project is shared with other tests
            assert repo.count(RunQuery(tenant_id=uuid.UUID(tenant), criteria=c)) == 0
    assert call(stack, "GetRunFunction", "get_run", path_id=run_id)[0] == 404
    assert call(stack, "GetEvaluationFunction", "get_evaluation", path_id=evaluation_id)[0] == 404
    assert run_id not in {
        r["id"] for r in call(stack, "ListRunsFunction", "list_runs", query={"limit": "100"})[1]["items"]
    }
    status, again, _ = delete(stack, "run", run_id)
    assert status == 404 and again["code"] == "resource.not_found"
    # Nothing uses them any more: the dataset and the eval can go too.
    assert delete(stack, "dataset", finished_run["dataset_id"])[0] == 204
    assert delete(stack, "eval", finished_run["eval_id"])[0] == 204
    assert call(stack, "EvalsFunction", "get_eval_version", path_id=finished_run["eval_version_id"])[0] == 404


def test_an_idempotency_key_of_a_deleted_run_is_a_clear_409(stack):
    _, dataset, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "idem", "records": RECORDS}
    )
    version = eval_version(stack)
    event = api_event("schedule_run", path_id=dataset["id"], body={"eval_version_id": version["id"]})
    event["headers"]["idempotency-key"] = f"deleted-{uuid.uuid4()}"
    status, run, _ = stack.call("ScheduleRunFunction", event)
    assert status == 202
    assert cancel(stack, run["id"]) == 200
    assert delete(stack, "run", run["id"])[0] == 204
    status, body, _ = stack.call("ScheduleRunFunction", event)
    assert status == 409 and "deleted" in body["error"], body


# ------------------------------------------------------------------ delete vs schedule races
# A dataset's delete first writes a ``deleting`` tombstone in a transaction guarded by the
# run counter; a run's create checks, in its own transaction, that the dataset has none and
# that the eval exists. Whichever commits first, the other is refused and nothing is lost.
def race_dataset(stack) -> str:
    """A dataset with two versions and a pending upload."""
    _, dataset, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "race", "records": RECORDS}
    )
    status, _, _ = call(
        stack,
        "DatasetsFunction",
        "create_dataset_version",
        path_id=dataset["id"],
        body={"records": RECORDS[:2]},
    )
    assert status == 201
    upload(stack, dataset["id"], jsonl(RECORDS))
    return dataset["id"]


def kept(stack, dataset_id: str) -> tuple[list[str], list[str], list[str]]:
    """All a dataset delete could lose: version objects, pending uploads, items."""
    return (
        objects(stack, f"tenants/{stack.tenant_id}/datasets/{dataset_id}/"),
        objects(stack, f"uploads/{stack.tenant_id}/{dataset_id}/"),
        partition(stack, f"T#{stack.tenant_id}#DS#{dataset_id}"),
    )


def runs_counted(stack, dataset_id: str, version: dict) -> tuple[int, ...]:
    """The tenant's run counters a new run would move, and its runs in flight."""
    tenant = ddb().get_item(
        TableName=table(stack), Key={"PK": {"S": f"TENANT#{stack.tenant_id}"}, "SK": {"S": "TENANT"}}
    )["Item"]
    return (
        run_count(stack),
        run_count(stack, status="pending"),
        run_count(stack, dataset_id=dataset_id),
        run_count(stack, eval_id=version["eval_id"]),
        run_count(stack, eval_version_id=version["id"]),
        int(tenant.get("runs_in_flight", {"N": "0"})["N"]),
    )


def schedule(stack, dataset_id: str, version: dict):
    body = {"eval_version_id": version["id"]}
    return call(stack, "ScheduleRunFunction", "schedule_run", path_id=dataset_id, body=body)


def s3_down(*args, **kwargs):
    raise RuntimeError("S3 DeleteObjects failed")


def test_a_run_scheduled_past_a_deletes_check_refuses_the_delete_and_nothing_is_lost(stack, monkeypatch):
    """The delete has counted no run (its pre-check passed); a run is scheduled right
    after, before the delete's first write (the tombstone): the tombstone's guard refuses
    the delete (409) before anything is deleted, and the run reads its records."""
    from assay_service.services import catalog

    dataset_id, version = race_dataset(stack), eval_version(stack)
    before = kept(stack, dataset_id)
    assert len(before[0]) == 2 and len(before[1]) == 1 and before[2] == ["DS", "V#00000001", "V#00000002"]
    scheduled = []
    check = catalog._refuse_if_runs

    def run_after_the_check(*args, **kwargs):
        check(*args, **kwargs)
        scheduled.append(schedule(stack, dataset_id, version))

    monkeypatch.setattr(catalog, "_refuse_if_runs", run_after_the_check)
    status, body, _ = delete(stack, "dataset", dataset_id)
    assert status == 409 and "scheduled while it was being deleted" in body["error"], body
    [(status, run, _)] = scheduled
    assert status == 202, run
    assert kept(stack, dataset_id) == before
    assert call(stack, "DatasetsFunction", "get_dataset", path_id=dataset_id)[0] == 200
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))  # reads the records
    assert prepared["manifest_key"]
    assert call(stack, "GetRunFunction", "get_run", path_id=run["id"])[1]["status"] in ("pending", "running")


@pytest.mark.parametrize("delete_gets", ["done", "past its tombstone"])
def test_a_delete_that_commits_first_refuses_the_run_cleanly(stack, monkeypatch, delete_gets):
    """The schedule has read the dataset, its version and the eval; the delete writes its
    tombstone (and finishes, or fails right after it) before the run's transaction: the
    schedule is a 404, and no run, counter or in-flight slot is left of it."""
    from assay_service.adapters.dynamodb import DynamoDBRunRepository
    from assay_service.adapters.s3 import S3ArtifactStore

    dataset_id, version = race_dataset(stack), eval_version(stack)
    before = runs_counted(stack, dataset_id, version)
    create = DynamoDBRunRepository.create

    def delete_first(self, run, **kwargs):
        with monkeypatch.context() as patched:
            if delete_gets != "done":
                patched.setattr(S3ArtifactStore, "delete_keys", s3_down)
            status, body, _ = delete(stack, "dataset", dataset_id)
        assert status == (204 if delete_gets == "done" else 500), body
        return create(self, run, **kwargs)

    monkeypatch.setattr(DynamoDBRunRepository, "create", delete_first)
    status, body, _ = schedule(stack, dataset_id, version)
    assert status == 404 and body["error"] == "dataset not found", body
    assert runs_counted(stack, dataset_id, version) == before
    _, page, _ = call(stack, "ListRunsFunction", "list_runs", query={"dataset_id": dataset_id})
    assert page["items"] == [] and page["count"] == 0


def test_an_interrupted_delete_hides_the_dataset_and_deleting_again_finishes(stack, monkeypatch):
    """S3 fails once, after the tombstone: nothing is deleted yet, the dataset reads as gone
    and takes no upload, version or run; the next delete finishes without asking again."""
    from assay_service.adapters.s3 import S3ArtifactStore
    from assay_service.services import catalog

    dataset_id, version = race_dataset(stack), eval_version(stack)
    before = kept(stack, dataset_id)
    with monkeypatch.context() as patched:
        patched.setattr(S3ArtifactStore, "delete_keys", s3_down)
        status, body, _ = delete(stack, "dataset", dataset_id)
    assert status == 500 and body["code"] == "server.internal_error"
    assert kept(stack, dataset_id) == before  # only the tombstone was written
    for function, name, extra in (
        ("DatasetsFunction", "get_dataset", {}),
        ("DatasetsFunction", "list_dataset_versions", {}),
        ("DatasetsFunction", "create_upload", {}),
        ("DatasetsFunction", "create_dataset_version", {"body": {"records": RECORDS}}),
        ("ScheduleRunFunction", "schedule_run", {"body": {"eval_version_id": version["id"]}}),
    ):
        status, body, _ = call(stack, function, name, path_id=dataset_id, **extra)
        assert status == 404 and body["error"] == "dataset not found", (name, body)
    assert dataset_id not in all_ids(stack, "DatasetsFunction", "list_datasets")
    assert kept(stack, dataset_id) == before

    def asked(*args, **kwargs):
        raise AssertionError("a delete already begun needs no pre-check")

    monkeypatch.setattr(catalog, "_refuse_if_runs", asked)
    status, body, _ = delete(stack, "dataset", dataset_id)
    assert status == 204, body
    assert kept(stack, dataset_id) == ([], [], [])
    assert delete(stack, "dataset", dataset_id)[0] == 404


def test_a_run_cannot_be_created_on_an_eval_deleted_a_moment_before(stack, monkeypatch):
    """The schedule has read the eval version and the eval; the eval's delete (one
    transaction, versions included) commits before the run's: a 404, and no run."""
    from assay_service.adapters.dynamodb import DynamoDBRunRepository

    _, dataset, _ = call(
        stack, "DatasetsFunction", "create_dataset", body={"name": "ev-race", "records": RECORDS}
    )
    version = eval_version(stack)
    before = runs_counted(stack, dataset["id"], version)
    create = DynamoDBRunRepository.create

    def delete_first(self, run, **kwargs):
        assert delete(stack, "eval", version["eval_id"])[0] == 204
        return create(self, run, **kwargs)

    monkeypatch.setattr(DynamoDBRunRepository, "create", delete_first)
    status, body, _ = schedule(stack, dataset["id"], version)
    assert status == 404 and body["error"] == "eval version not found", body
    assert runs_counted(stack, dataset["id"], version) == before
    assert call(stack, "EvalsFunction", "get_eval_version", path_id=version["id"])[0] == 404


def test_a_list_page_skips_a_dataset_being_deleted_and_stays_full(stack):
    """A tombstoned dataset is left out of ``GET /v1/datasets`` and the page is topped up
    from the index: the newest two are the two that stand, and the cursor goes on after."""
    made = [
        call(stack, "DatasetsFunction", "create_dataset", body={"name": f"listed-{i}"})[1]["id"]
        for i in range(3)
    ]
    with environment(stack.env("DatasetsFunction")):
        repo = dependencies.datasets()
        dataset = repo.get(uuid.UUID(stack.tenant_id), uuid.UUID(made[1]))
        assert dataset is not None
        repo.begin_delete(dataset)
    status, page, _ = call(stack, "DatasetsFunction", "list_datasets", query={"limit": "2"})
    assert status == 200 and [d["id"] for d in page["items"]] == [made[2], made[0]], page
    if page.get("next_cursor"):  # older datasets of the suite's tenant follow
        query = {"limit": "2", "cursor": page["next_cursor"]}
        status, rest, _ = call(stack, "DatasetsFunction", "list_datasets", query=query)
        assert status == 200 and not set(made) & {d["id"] for d in rest["items"]}
    assert delete(stack, "dataset", made[1])[0] == 204  # and a delete finishes it
    assert partition(stack, f"T#{stack.tenant_id}#DS#{made[1]}") == []
