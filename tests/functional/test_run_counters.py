"""Run counts (GET /v1/eval-runs ``count``) stay exact through creation and every status
transition, for every filter the route has, checked against a brute-force count of the
tenant's runs after each step (docs/decisions/0007-run-counters.md)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import product

import pytest
from assay_service import dependencies
from assay_service.adapters.dynamodb import RUN_COUNTERS, RunQuery, serialize
from assay_service.adapters.dynamodb.keys import dataset_pk, eval_pk
from assay_service.models.domain import Run, utcnow
from botocore.exceptions import ClientError

from tests.functional.harness import environment

STATUSES = ("pending", "running", "completed", "failed", "cancelled")


@pytest.fixture
def repo(stack):
    with environment(stack.env("ListRunsFunction")):
        yield dependencies.runs()


def new_run(tenant: uuid.UUID, i: int, *, eval_id, eval_version_id, dataset_id, project_id) -> Run:
    now = utcnow() + timedelta(milliseconds=i)
    return Run(
        id=uuid.uuid4(),
        tenant_id=tenant,
        project_id=project_id,
        dataset_id=dataset_id,
        dataset_version_id=uuid.uuid4(),
        dataset_version=1,
        eval_id=eval_id,
        eval_version_id=eval_version_id,
        name=f"run {i}",
        status="pending",
        item_count=3,
        threshold=0.5,
        metrics=[],
        batch_size=100,
        created_at=now,
        updated_at=now,
    )


def stand(repo, *runs: Run) -> None:
    """The dataset and eval items the runs point at (a run's create checks they stand)."""
    for run in runs:
        repo.table.put({"PK": dataset_pk(run.tenant_id, run.dataset_id), "SK": "DS"})
        repo.table.put({"PK": eval_pk(run.tenant_id, run.eval_id), "SK": "EVAL"})


def assert_counts_exact(repo, tenant: uuid.UUID, values: dict[str, set[str]]) -> None:
    """Every single-criterion count (and no criterion, and some combined ones) equals a
    brute-force count over the tenant's runs as stored; so does the in-flight count."""
    runs = [
        repo.get(tenant, uuid.UUID(row["id"]))
        for row in repo.table.query_all(pk=f"T#{tenant}", index="RunsByTenant")
    ]
    rows = [{name: str(getattr(r, name)) for name in RUN_COUNTERS} for r in runs]
    assert repo.count(RunQuery(tenant_id=tenant, criteria={})) == len(rows)
    for name in RUN_COUNTERS:
        for value in values[name]:
            expected = sum(row[name] == value for row in rows)
            got = repo.count(RunQuery(tenant_id=tenant, criteria={name: value}))
            assert got == expected, (name, value)
            counter = repo.table.get(f"T#{tenant}#RUNCOUNT", f"{name}#{value}")  # one GetItem
            assert (counter["runs"] if counter else 0) == expected, (name, value)
    for eval_id, status in product(values["eval_id"], STATUSES):  # combined: Select=COUNT
        expected = sum(row["eval_id"] == eval_id and row["status"] == status for row in rows)
        assert (
            repo.count(RunQuery(tenant_id=tenant, criteria={"eval_id": eval_id, "status": status}))
            == expected
        )
    tenant_item = repo.table.get(f"TENANT#{tenant}", "TENANT") or {"runs_in_flight": 0}
    assert tenant_item["runs_in_flight"] == sum(r.status in ("pending", "running") for r in runs)


def test_counts_stay_exact_through_every_transition(repo):
    tenant = uuid.uuid4()  # a tenant of its own: nothing else moves its runs meanwhile
    evals, versions, datasets, projects = ([uuid.uuid4() for _ in range(2)] for _ in range(4))
    runs = [
        new_run(
            tenant,
            i,
            eval_id=evals[i % 2],
            eval_version_id=versions[i % 2],
            dataset_id=datasets[i // 4],
            project_id=projects[i % 3 == 0],
        )
        for i in range(8)
    ]
    values = {
        "status": set(STATUSES),
        "eval_id": {str(v) for v in evals},
        "eval_version_id": {str(v) for v in versions},
        "dataset_id": {str(v) for v in datasets},
        "project_id": {str(v) for v in projects},
    }

    def check() -> None:
        assert_counts_exact(repo, tenant, values)

    check()  # nothing yet: every counter reads 0
    stand(repo, *runs)
    for run in runs:
        assert repo.create(run, max_in_flight=100) == run.id
    check()
    # The retried create of the same run (a duplicate put) is refused and counts nothing.
    with pytest.raises(ClientError):  # the conditional put on the run
        repo.create(runs[0], max_in_flight=100)
    check()

    a, b, c, d, e, f, g, h = runs
    # pending → running → completed
    assert repo.set_status(a, "running", expect=["pending"])
    check()
    assert repo.set_status(repo.get(tenant, a.id), "completed", expect=["running"])
    check()
    # pending → failed, and running → failed (the workflow's Catch path)
    assert repo.set_status(b, "failed", expect=["pending", "running"])
    check()
    assert repo.set_status(c, "running", expect=["pending"])
    assert repo.set_status(repo.get(tenant, c.id), "failed", expect=["pending", "running"])
    check()
    # pending → cancelled, and running → cancelled through a STALE run (it still says
    # pending): the guard fails on "pending", the run is re-read and "running" is moved.
    assert repo.set_status(d, "cancelled", expect=["pending", "running"])
    check()
    assert repo.set_status(e, "running", expect=["pending"])
    assert repo.set_status(e, "cancelled", expect=["pending", "running"])
    assert repo.get(tenant, e.id).status == "cancelled"
    check()
    # Duplicates and late transitions move nothing: a retried prepare (stale pending run),
    # a second finalize, a finalize after a cancel, a cancel after completion.
    assert not repo.set_status(a, "running", expect=["pending"])
    assert not repo.set_status(repo.get(tenant, a.id), "completed", expect=["running"])
    assert not repo.set_status(e, "completed", expect=["running"])
    assert not repo.set_status(a, "cancelled", expect=["pending", "running"])
    assert not repo.set_status(b, "failed", expect=["pending", "running"])
    check()
    # A run re-read as finished, then offered a move its state does not allow.
    assert not repo.set_status(repo.get(tenant, d.id), "failed", expect=["pending", "running"])
    # The rest run to completion.
    for run in (f, g):
        assert repo.set_status(run, "running", expect=["pending"])
        assert repo.set_status(run, "completed", expect=["running"])  # stale: re-read
    check()
    assert repo.get(tenant, h.id).status == "pending"


def test_counter_keys_are_scoped_to_the_tenant(repo):
    one, other = uuid.uuid4(), uuid.uuid4()
    shared = {k: uuid.uuid4() for k in ("eval_id", "eval_version_id", "dataset_id", "project_id")}
    run = new_run(one, 0, **shared)
    stand(repo, run)
    repo.create(run, max_in_flight=100)
    for name in RUN_COUNTERS:
        value = "pending" if name == "status" else str(shared[name])
        assert repo.count(RunQuery(tenant_id=one, criteria={name: value})) == 1
        assert repo.count(RunQuery(tenant_id=other, criteria={name: value})) == 0
    assert repo.count(RunQuery(tenant_id=other, criteria={})) == 0


def test_backfill_recomputes_counters_from_the_runs(repo):
    tenant = uuid.uuid4()
    ids = {k: uuid.uuid4() for k in ("eval_id", "eval_version_id", "dataset_id", "project_id")}
    runs = [new_run(tenant, i, **ids) for i in range(3)]
    stand(repo, *runs)
    for run in runs:
        repo.create(run, max_in_flight=100)
    assert repo.set_status(runs[0], "running", expect=["pending"])
    # Data from before the counters: counters missing, or wrong.
    for item in list(repo.table.query_all(pk=f"T#{tenant}#RUNCOUNT")):
        if item["SK"] == "ALL":
            repo.table.put({**item, "runs": 99})
        else:
            repo.table.client.delete_item(
                TableName=repo.table.name, Key=serialize({"PK": item["PK"], "SK": item["SK"]})
            )
    repo.table.put({"PK": f"T#{tenant}#RUNCOUNT", "SK": "status#failed", "runs": 5})
    repo.backfill_counters(tenant)
    assert repo.count(RunQuery(tenant_id=tenant, criteria={})) == 3
    assert repo.count(RunQuery(tenant_id=tenant, criteria={"status": "pending"})) == 2
    assert repo.count(RunQuery(tenant_id=tenant, criteria={"status": "running"})) == 1
    assert repo.count(RunQuery(tenant_id=tenant, criteria={"status": "failed"})) == 0
    assert repo.count(RunQuery(tenant_id=tenant, criteria={"eval_id": str(ids["eval_id"])})) == 3
