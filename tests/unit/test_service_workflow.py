"""The workflow's steps (services/workflow.py) on the in-memory fakes: concurrent
deliveries of one batch, failures and the reconciler's backstop, and reading what a run
recorded."""

from __future__ import annotations

import threading
import uuid

import pytest
from assay_service.errors import ConflictError, InvalidRequestError, NotFoundError
from assay_service.models.api import CreateDatasetRequest, ScheduleEvalRunRequest
from assay_service.models.workflow import ExecutionEnded
from assay_service.services import catalog, runs, workflow

from tests.support import fakes
from tests.unit.test_service_runs import batches, catalogue, counters, principal, schedule, score

ports_fixture = fakes.ports_fixture


def test_concurrent_deliveries_of_one_batch_record_it_once(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    first, second = batches(ports, who, run.id)
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def deliver() -> None:
        start.wait()
        outcomes.append(score(ports, who, run.id, first).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 5 + ["recorded"]
    assert runs.get_run(who, run.id, ports=ports).completed_count == 2
    score(ports, who, run.id, second)
    assert workflow.finalize(who.tenant_id, run.id, ports=ports).status == "completed"
    assert runs.get_run(who, run.id, ports=ports).completed_count == 3


def test_a_prepare_delivered_again_keeps_the_run_running_once(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    first = workflow.prepare(who.tenant_id, run.id, ports=ports)
    started = runs.get_run(who, run.id, ports=ports).started_at
    again = workflow.prepare(who.tenant_id, run.id, ports=ports)
    assert (first.batch_count, again.batch_count, first.max_concurrency) == (2, 2, 40)
    assert runs.get_run(who, run.id, ports=ports).started_at == started
    assert counters(ports, who) == {"status#pending": 0, "status#running": 1}


def test_mark_failed_ends_a_running_run_with_the_error_and_frees_its_slot(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    result = workflow.mark_failed(
        who.tenant_id, run.id, {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "x"}, ports=ports
    )
    assert result.status == "failed"
    failed = runs.get_run(who, run.id, ports=ports)
    assert failed.status == "failed"
    assert (failed.error_message or "").startswith(workflow.BATCH_NOT_SCORED)
    assert ports.runs.in_flight[who.tenant_id] == 0
    assert (
        workflow.finalize(who.tenant_id, run.id, ports=ports).status == "failed"
    )  # a late finalize: nothing


@pytest.mark.parametrize(
    ("status", "ends"), [("ABORTED", "cancelled"), ("TIMED_OUT", "failed"), ("FAILED", "failed")]
)
def test_the_reconciler_ends_a_run_whose_execution_ended(ports: fakes.Ports, status: str, ends: str):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    ended = ExecutionEnded(
        execution_name=str(run.id), status=status, tenant_id=who.tenant_id, run_id=run.id, error="Boom"
    )
    result = workflow.reconcile(ended, ports=ports)
    assert result is not None and result.status == ends
    assert runs.get_run(who, run.id, ports=ports).status == ends
    assert ports.runs.in_flight[who.tenant_id] == 0


def test_the_reconciler_leaves_a_finished_run_and_ignores_other_executions(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    runs.cancel_run(who, run.id, ports=ports)
    ended = ExecutionEnded(
        execution_name=str(run.id), status="FAILED", tenant_id=who.tenant_id, run_id=run.id
    )
    assert workflow.reconcile(ended, ports=ports) is not None
    assert runs.get_run(who, run.id, ports=ports).status == "cancelled"
    assert runs.get_run(who, run.id, ports=ports).error_message is None
    child = ExecutionEnded(
        execution_name="map-child", status="FAILED", tenant_id=who.tenant_id, run_id=run.id
    )
    assert workflow.reconcile(child, ports=ports) is None
    assert ports.runs.in_flight[who.tenant_id] == 0


def test_evaluations_are_read_back_by_id_and_paged_in_record_order(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    for batch in batches(ports, who, run.id):
        score(ports, who, run.id, batch)
    page, cursor = runs.list_evaluations(
        who, run.id, metric=None, status=None, passed=None, limit=2, cursor=None, ports=ports
    )
    rest, end = runs.list_evaluations(
        who, run.id, metric=None, status=None, passed=None, limit=2, cursor=cursor, ports=ports
    )
    assert [record["id"] for _, record in page + rest] == ["r1", "r2", "r3"]
    assert end is None
    failing, _ = runs.list_evaluations(
        who, run.id, metric=None, status=None, passed=False, limit=10, cursor=None, ports=ports
    )
    assert [record["id"] for _, record in failing] == ["r2"]
    evaluation = page[1][0]
    assert runs.get_evaluation(who, evaluation.id, ports=ports) == evaluation
    with pytest.raises(NotFoundError):
        runs.get_evaluation(principal(), evaluation.id, ports=ports)  # another tenant's


def test_a_run_needs_a_dataset_version_and_a_concurrency_within_the_deployments(ports: fakes.Ports):
    who = principal()
    _, _, version_id = catalogue(ports, who)
    empty = catalog.create_dataset(who, CreateDatasetRequest(name="empty"), ports=ports)[0]
    with pytest.raises(ConflictError, match="the dataset has no version yet"):
        schedule(ports, who, empty.id, version_id)
    with pytest.raises(NotFoundError, match="dataset version not found"):
        schedule(ports, who, empty.id, version_id, dataset_version=3)
    dataset_id = catalogue(ports, who)[0]
    with pytest.raises(InvalidRequestError, match="max_concurrency: at most 40") as caught:
        schedule(ports, who, dataset_id, version_id, max_concurrency=41)
    assert caught.value.details == {"field": "max_concurrency", "max": 40}
    with pytest.raises(NotFoundError, match="eval version not found"):
        runs.schedule_run(who, dataset_id, ScheduleEvalRunRequest(eval_version_id=uuid.uuid4()), ports=ports)
    assert ports.runs.runs == {}
    assert ports.workflow.start_calls == 0
