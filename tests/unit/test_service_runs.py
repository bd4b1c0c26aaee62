"""Scheduling, cancelling and finishing runs, through the services, on the in-memory fakes
(tests/support/fakes.py): the business rules of services/runs.py and services/workflow.py,
with no store and no network."""

from __future__ import annotations

import json
import uuid

import pytest
from assay_service.errors import ConflictError, InvalidRequestError, QuotaExceededError, TransientStoreError
from assay_service.models.api import CreateDatasetRequest, CreateEvalRequest, ScheduleEvalRunRequest
from assay_service.models.domain import Principal
from assay_service.models.workflow import BatchRef, ScoreBatchInput
from assay_service.ports import RunQuery
from assay_service.services import catalog, runs, workflow

from tests.support import fakes

ports_fixture = fakes.ports_fixture

# output vs golden_answer: records 1 and 3 match, record 2 does not.
RECORDS = [
    {"id": "r1", "output": "Paris", "golden_answer": "Paris"},
    {"id": "r2", "output": "Lyon", "golden_answer": "Paris"},
    {"id": "r3", "output": "Rome", "golden_answer": "Rome"},
]


def principal(tenant_id: uuid.UUID | None = None) -> Principal:
    return Principal(tenant_id=tenant_id or uuid.uuid4(), key_id=uuid.uuid4(), role="owner")


def catalogue(
    ports: fakes.Ports, who: Principal, records: list[dict] | None = None
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(dataset id, eval id, eval version id): a dataset with version 1 and an eval with
    one exact_match metric (threshold 1) and a run threshold of 0.5."""
    dataset, _ = catalog.create_dataset(
        who,
        CreateDatasetRequest.model_validate({"name": "capitals", "records": records or RECORDS}),
        ports=ports,
    )
    ev, version = catalog.create_eval(
        who,
        CreateEvalRequest.model_validate(
            {
                "name": "exact",
                "metrics": [{"name": "exact", "scorer": "exact_match", "threshold": 1.0}],
                "threshold": 0.5,
            }
        ),
        ports=ports,
    )
    assert version is not None
    return dataset.id, ev.id, version.id


def schedule(
    ports: fakes.Ports,
    who: Principal,
    dataset_id: uuid.UUID,
    version_id: uuid.UUID,
    key: str | None = None,
    **body,
):
    req = ScheduleEvalRunRequest.model_validate({"eval_version_id": str(version_id), "batch_size": 2, **body})
    return runs.schedule_run(who, dataset_id, req, idempotency_key=key, ports=ports)


def batches(ports: fakes.Ports, who: Principal, run_id: uuid.UUID) -> list[BatchRef]:
    manifest = ports.artifacts.get_bytes(ports.artifacts.manifest_key(who.tenant_id, run_id))
    return [BatchRef.model_validate(b) for b in json.loads(manifest)]


def score(ports: fakes.Ports, who: Principal, run_id: uuid.UUID, batch: BatchRef):
    return workflow.score(ScoreBatchInput(tenant_id=who.tenant_id, run_id=run_id, batch=batch), ports=ports)


def counters(ports: fakes.Ports, who: Principal) -> dict[str, int]:
    return {
        sk: n for (t, sk), n in ports.runs.counters.items() if t == who.tenant_id and sk.startswith("status#")
    }


# ---------------------------------------------------------------- scheduling
def test_scheduling_stores_a_pending_run_counts_it_and_starts_its_execution(ports: fakes.Ports):
    who = principal()
    dataset_id, eval_id, version_id = catalogue(ports, who)
    run, warnings = schedule(ports, who, dataset_id, version_id)
    assert (run.status, run.item_count, run.batch_size, run.threshold) == ("pending", 3, 2, 0.5)
    assert warnings == []
    assert ports.workflow.started == {run.id: who.tenant_id}
    assert ports.runs.in_flight[who.tenant_id] == 1
    assert counters(ports, who) == {"status#pending": 1}
    listed = runs.list_runs(
        who, criteria={"eval_id": str(eval_id)}, limit=10, offset=0, cursor=None, ports=ports
    )
    assert listed[2] == 1


def test_a_replay_with_the_same_key_and_body_returns_the_same_run(ports: fakes.Ports):
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    first, _ = schedule(ports, who, dataset_id, version_id, key="nightly-1")
    again, _ = schedule(ports, who, dataset_id, version_id, key="nightly-1")
    assert again.id == first.id
    assert ports.runs.count(RunQuery(tenant_id=who.tenant_id, criteria={})) == 1
    assert ports.runs.in_flight[who.tenant_id] == 1
    assert list(ports.workflow.started) == [first.id]  # started again: a no-op


def test_a_replay_of_a_run_already_running_does_not_start_it_again(ports: fakes.Ports):
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    first, _ = schedule(ports, who, dataset_id, version_id, key="k-running")
    workflow.prepare(who.tenant_id, first.id, ports=ports)
    again, _ = schedule(ports, who, dataset_id, version_id, key="k-running")
    assert (again.id, again.status) == (first.id, "running")
    assert ports.workflow.start_calls == 1


def test_the_same_key_with_another_body_is_a_conflict(ports: fakes.Ports):
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    schedule(ports, who, dataset_id, version_id, key="nightly-1")
    with pytest.raises(ConflictError, match="used with a different request") as caught:
        schedule(ports, who, dataset_id, version_id, key="nightly-1", name="another body")
    assert caught.value.details == {"header": "Idempotency-Key"}
    assert ports.runs.count(RunQuery(tenant_id=who.tenant_id, criteria={})) == 1


def test_a_key_is_the_tenants_own(ports: fakes.Ports):
    one, two = principal(), principal()
    first, _ = schedule(ports, one, *catalogue(ports, one)[::2], key="shared-name")
    second, _ = schedule(ports, two, *catalogue(ports, two)[::2], key="shared-name")
    assert first.id != second.id
    assert second.tenant_id == two.tenant_id


def test_the_key_of_a_deleted_run_is_a_conflict_not_a_new_run(ports: fakes.Ports):
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    run, _ = schedule(ports, who, dataset_id, version_id, key="once")
    runs.cancel_run(who, run.id, ports=ports)
    runs.delete_run(who, run.id, ports=ports)
    with pytest.raises(ConflictError, match="has since been deleted"):
        schedule(ports, who, dataset_id, version_id, key="once")
    assert ports.runs.count(RunQuery(tenant_id=who.tenant_id, criteria={})) == 0


def test_the_quota_refuses_a_run_past_max_runs_in_flight_and_frees_a_slot_when_one_ends(monkeypatch):
    ports = fakes.Ports.install(monkeypatch, max_runs_in_flight=2)
    try:
        who, other = principal(), principal()
        dataset_id, _, version_id = catalogue(ports, who)
        first, _ = schedule(ports, who, dataset_id, version_id)
        schedule(ports, who, dataset_id, version_id)
        with pytest.raises(QuotaExceededError, match="already has 2 runs pending or running") as caught:
            schedule(ports, who, dataset_id, version_id)
        assert caught.value.details == {"limit": 2}
        assert ports.runs.count(RunQuery(tenant_id=who.tenant_id, criteria={})) == 2
        schedule(ports, other, *catalogue(ports, other)[::2])  # another tenant's quota is its own
        runs.cancel_run(who, first.id, ports=ports)
        third, _ = schedule(ports, who, dataset_id, version_id)
        assert third.status == "pending"
        assert ports.runs.in_flight[who.tenant_id] == 2
    finally:
        fakes.get_settings.cache_clear()


def test_a_replay_at_the_quota_returns_its_run(monkeypatch):
    ports = fakes.Ports.install(monkeypatch, max_runs_in_flight=1)
    try:
        who = principal()
        dataset_id, _, version_id = catalogue(ports, who)
        run, _ = schedule(ports, who, dataset_id, version_id, key="k")
        assert schedule(ports, who, dataset_id, version_id, key="k")[0].id == run.id
        with pytest.raises(QuotaExceededError):
            schedule(ports, who, dataset_id, version_id, key="another")
        assert ports.runs.in_flight[who.tenant_id] == 1
    finally:
        fakes.get_settings.cache_clear()


def test_a_run_whose_execution_cannot_start_is_failed_and_frees_its_slot(ports: fakes.Ports):
    who = principal()
    dataset_id, _, version_id = catalogue(ports, who)
    ports.workflow.fail_start = TransientStoreError("StartExecution: throttled")
    with pytest.raises(TransientStoreError):
        schedule(ports, who, dataset_id, version_id)
    (run,) = ports.runs.runs.values()
    assert (run.status, run.error_message) == ("failed", "the workflow could not be started")
    assert ports.runs.in_flight[who.tenant_id] == 0
    assert counters(ports, who) == {"status#pending": 0, "status#failed": 1}


# ---------------------------------------------------------------- cancel
def test_cancelling_a_pending_run_stops_it_and_frees_its_slot(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    cancelled = runs.cancel_run(who, run.id, ports=ports)
    assert cancelled.status == "cancelled"
    assert cancelled.completed_at is not None
    assert ports.workflow.stopped == [(run.id, "cancelled through the API")]
    assert ports.runs.in_flight[who.tenant_id] == 0
    assert counters(ports, who) == {"status#pending": 0, "status#cancelled": 1}


def test_cancelling_a_running_run_keeps_its_counts(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    score(ports, who, run.id, batches(ports, who, run.id)[0])
    cancelled = runs.cancel_run(who, run.id, ports=ports)
    assert (cancelled.status, cancelled.completed_count, cancelled.failed_count) == ("cancelled", 2, 0)
    assert counters(ports, who) == {"status#pending": 0, "status#running": 0, "status#cancelled": 1}


@pytest.mark.parametrize("end", ["complete", "cancel"])
def test_a_finished_run_cannot_be_cancelled(ports: fakes.Ports, end: str):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    if end == "complete":
        workflow.prepare(who.tenant_id, run.id, ports=ports)
        for batch in batches(ports, who, run.id):
            score(ports, who, run.id, batch)
        workflow.finalize(who.tenant_id, run.id, ports=ports)
    else:
        runs.cancel_run(who, run.id, ports=ports)
    stops = len(ports.workflow.stopped)
    status = "completed" if end == "complete" else "cancelled"
    with pytest.raises(ConflictError, match=f"the run is already {status}") as caught:
        runs.cancel_run(who, run.id, ports=ports)
    assert caught.value.details == {"status": status}
    assert len(ports.workflow.stopped) == stops
    assert ports.runs.in_flight[who.tenant_id] == 0  # freed once, not twice


def test_an_unfinished_run_cannot_be_deleted(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    with pytest.raises(ConflictError, match="cancel it first") as caught:
        runs.delete_run(who, run.id, ports=ports)
    assert caught.value.details == {"status": "pending"}
    assert runs.get_run(who, run.id, ports=ports).status == "pending"


# ---------------------------------------------------------------- the workflow
def test_a_run_scored_and_finalized_has_exact_counts_aggregates_and_verdict(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    prepared = workflow.prepare(who.tenant_id, run.id, ports=ports)
    assert prepared.batch_count == 2
    outcomes = [score(ports, who, run.id, b).outcome for b in batches(ports, who, run.id)]
    assert outcomes == ["recorded", "recorded"]
    assert workflow.finalize(who.tenant_id, run.id, ports=ports).status == "completed"
    final = runs.get_run(who, run.id, ports=ports)
    assert (final.status, final.completed_count, final.failed_count) == ("completed", 3, 0)
    (aggregate,) = final.aggregates or []
    assert (aggregate.count, aggregate.passed, aggregate.unscored) == (3, 2, 0)
    assert aggregate.mean == pytest.approx(2 / 3)
    assert aggregate.is_gte_threshold is False  # metric level: 0.67 < its threshold 1
    assert final.result == pytest.approx(2 / 3)
    assert final.pass_rate == pytest.approx(2 / 3)
    assert final.is_gte_threshold is True  # run level: 0.67 ≥ the run's 0.5
    assert ports.runs.in_flight[who.tenant_id] == 0
    assert counters(ports, who) == {"status#pending": 0, "status#running": 0, "status#completed": 1}
    lines = ports.artifacts.objects[ports.artifacts.export_key(who.tenant_id, run.id, "jsonl")].splitlines()
    assert sorted(json.loads(line)["record"]["id"] for line in lines) == ["r1", "r2", "r3"]
    assert runs.export_location(who, run.id, "jsonl", ports=ports)[2] == len(b"\n".join(lines)) + 1


def test_a_batch_delivered_twice_is_counted_once(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    first, second = batches(ports, who, run.id)
    assert score(ports, who, run.id, first).outcome == "recorded"
    assert score(ports, who, run.id, first).outcome == "duplicate"  # the shortcut: batch_recorded
    stale = ports.runs.get(who.tenant_id, run.id)
    assert stale is not None
    # Two deliveries that both passed the shortcut: the write itself decides.
    again = ports.runs.record_batch(
        stale, 0, completed=2, failed=0, records=[], evaluations=[], now="2026-12-07T00:00:00+00:00"
    )
    assert again == "duplicate"
    assert score(ports, who, run.id, second).outcome == "recorded"
    workflow.finalize(who.tenant_id, run.id, ports=ports)
    final = runs.get_run(who, run.id, ports=ports)
    assert (final.status, final.completed_count, final.failed_count) == ("completed", 3, 0)
    assert (final.aggregates or [])[0].count == 3


def test_a_batch_after_cancel_is_inactive_and_the_counts_stay_frozen(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    first, second = batches(ports, who, run.id)
    score(ports, who, run.id, first)
    running = ports.runs.get(who.tenant_id, run.id)
    runs.cancel_run(who, run.id, ports=ports)
    assert score(ports, who, run.id, second).outcome == "inactive"
    # A delivery that read the run before the cancel: the write refuses it.
    assert running is not None and running.status == "running"
    late = ports.runs.record_batch(
        running, 1, completed=1, failed=0, records=[], evaluations=[], now="2026-12-07T00:00:00+00:00"
    )
    assert late == "inactive"
    assert not ports.runs.batch_recorded(running, 1)
    assert workflow.finalize(who.tenant_id, run.id, ports=ports).status == "cancelled"
    final = runs.get_run(who, run.id, ports=ports)
    assert (final.status, final.completed_count, final.failed_count, final.aggregates) == (
        "cancelled",
        2,
        0,
        None,
    )


def test_finalize_refuses_a_run_with_a_batch_missing(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    score(ports, who, run.id, batches(ports, who, run.id)[0])
    with pytest.raises(RuntimeError, match="run incomplete: 2 of 3 records recorded"):
        workflow.finalize(who.tenant_id, run.id, ports=ports)
    assert runs.get_run(who, run.id, ports=ports).status == "running"
    assert ports.runs.in_flight[who.tenant_id] == 1


def test_finalize_twice_and_mark_failed_after_completion_change_nothing(ports: fakes.Ports):
    who = principal()
    run, _ = schedule(ports, who, *catalogue(ports, who)[::2])
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    for batch in batches(ports, who, run.id):
        score(ports, who, run.id, batch)
    workflow.finalize(who.tenant_id, run.id, ports=ports)
    assert workflow.finalize(who.tenant_id, run.id, ports=ports).status == "completed"
    assert (
        workflow.mark_failed(who.tenant_id, run.id, {"Error": "States.Timeout"}, ports=ports).status
        == "completed"
    )
    assert runs.get_run(who, run.id, ports=ports).error_message is None
    assert ports.runs.in_flight[who.tenant_id] == 0
    assert counters(ports, who)["status#completed"] == 1


def test_records_that_cannot_be_scored_are_failed_evaluations_and_counted(ports: fakes.Ports):
    who = principal()
    records = [*RECORDS, {"id": "r4", "output": "Oslo"}]  # no golden_answer
    dataset_id, _, version_id = catalogue(ports, who, records)
    run, warnings = schedule(ports, who, dataset_id, version_id)
    assert [(w["code"], w["count"]) for w in warnings] == [("partial_field", 1)]
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    for batch in batches(ports, who, run.id):
        score(ports, who, run.id, batch)
    workflow.finalize(who.tenant_id, run.id, ports=ports)
    final = runs.get_run(who, run.id, ports=ports)
    assert (final.completed_count, final.failed_count) == (3, 1)
    assert (final.aggregates or [])[0].unscored == 1
    assert final.pass_rate == pytest.approx(2 / 4)


# ------------------------------------------------------------- judge providers offered
def judged_eval(ports: fakes.Ports, who: Principal, judge: dict | None) -> uuid.UUID:
    """An eval version with an LLM judge metric (and a rule one), ``judge`` its settings."""
    body: dict = {
        "name": "judged",
        "metrics": [
            {"name": "exact", "scorer": "exact_match"},
            {"name": "ans_corr", "scorer": "answer_correctness", "threshold": 0.7},
        ],
    }
    if judge is not None:
        body["judge"] = judge
    _, version = catalog.create_eval(who, CreateEvalRequest.model_validate(body), ports=ports)
    assert version is not None
    return version.id


@pytest.mark.parametrize(
    ("offered", "judge", "hint"),
    [
        # the local stack without --judge-base-url: nothing to judge with, say how to get one
        ("none", None, "start it with --judge-base-url URL"),
        ("none", {"provider": "openai", "model": "gpt-4o-mini"}, "ASSAY_JUDGE_API_KEY for its key"),
        # the local stack with an endpoint: Bedrock (the default provider) cannot be called
        ("openai", None, "use provider 'openai' in the eval's judge settings"),
        # a deployment that offers Bedrock only
        ("bedrock", {"provider": "openai", "model": "gpt-4o-mini"}, "JudgeProviders"),
    ],
)
def test_a_judge_provider_the_deployment_cannot_call_is_a_400_at_schedule(monkeypatch, offered, judge, hint):
    ports = fakes.Ports.install(monkeypatch, judge_providers=offered)
    try:
        who = principal()
        dataset_id, _, _ = catalogue(ports, who)
        version_id = judged_eval(ports, who, judge)
        provider = (judge or {}).get("provider", "bedrock")
        with pytest.raises(InvalidRequestError) as caught:
            schedule(ports, who, dataset_id, version_id)
        message = caught.value.message
        assert "metric 'ans_corr' (answer_correctness)" in message
        assert f"judge provider {provider!r} is not available in this deployment" in message
        assert hint in message and "The run was not scheduled" in message
        assert caught.value.details == {
            "field": "judge.provider",
            "metric": "ans_corr",
            "provider": provider,
            "available": [] if offered == "none" else [offered],
        }
        # nothing was recorded, nothing started
        assert ports.runs.count(RunQuery(tenant_id=who.tenant_id, criteria={})) == 0
        assert ports.workflow.start_calls == 0
    finally:
        fakes.get_settings.cache_clear()


@pytest.mark.parametrize(
    ("offered", "judge"),
    [
        ("bedrock,openai", None),  # the template's default: both
        ("bedrock,openai", {"provider": "openai", "model": "gpt-4o-mini"}),
        ("openai", {"provider": "openai", "model": "llama3.1:8b"}),
        ("bedrock", None),
    ],
)
def test_a_judge_provider_the_deployment_offers_schedules(monkeypatch, offered, judge):
    ports = fakes.Ports.install(monkeypatch, judge_providers=offered)
    try:
        who = principal()
        dataset_id, _, _ = catalogue(ports, who)
        run, _ = schedule(ports, who, dataset_id, judged_eval(ports, who, judge))
        assert run.status == "pending"
    finally:
        fakes.get_settings.cache_clear()


def test_rule_metrics_schedule_where_no_judge_provider_is_offered(monkeypatch):
    ports = fakes.Ports.install(monkeypatch, judge_providers="none")
    try:
        who = principal()
        dataset_id, _, version_id = catalogue(ports, who)
        assert schedule(ports, who, dataset_id, version_id)[0].status == "pending"
    finally:
        fakes.get_settings.cache_clear()
