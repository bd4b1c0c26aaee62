"""How scoring stops, with the real handlers in-process on moto: a batch whose run is
cancelled while it is being scored stops within about a second and records nothing; a
run whose Map gave up on a batch is marked failed saying so."""

from __future__ import annotations

import time
import uuid

from assay_service import dependencies
from assay_service.domain import scoring
from assay_service.domain.scorers import base

from tests.functional.factories import create_dataset, eval_version, run_manifest
from tests.functional.harness import api_event, workflow_event

RECORDS = [{"id": f"r{i}", "output": "x", "golden_answer": "x"} for i in range(40)]
SLOW_S = 0.05  # per evaluation: the whole batch would take 2 s


def test_a_run_cancelled_mid_batch_stops_its_scoring_without_recording(stack, monkeypatch):
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack, [{"name": "len", "scorer": "length", "args": {"max": 5}}])
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run",
            path_id=dataset_id,
            body={"eval_version_id": version["id"], "batch_size": len(RECORDS)},
        ),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    prepared = stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))
    (batch,) = run_manifest(stack, prepared)

    spec = base.get_scorer("length")
    calls = []

    def slow_then_cancel(record, args):
        calls.append(record["id"])
        if len(calls) == 3:  # the owner cancels the run while its batch is being scored
            repo = dependencies.runs()
            current = repo.get(uuid.UUID(run["tenant_id"]), uuid.UUID(run["id"]))
            assert repo.set_status(current, "cancelled", expect=["running"])
        time.sleep(SLOW_S)
        return spec.fn(record, args)

    monkeypatch.setitem(
        base._REGISTRY,
        "length",
        base.ScorerSpec(spec.name, spec.evaluator_type, spec.args_model, slow_then_cancel, spec.summary),
    )
    monkeypatch.setattr(scoring, "CONTINUE_CHECK_S", 0.2)

    started = time.perf_counter()
    result = stack.invoke("ScoreBatchFunction", workflow_event("score_batch", **ids, batch=batch))
    elapsed = time.perf_counter() - started

    assert result["outcome"] == "inactive" and result["completed"] == result["failed"] == 0
    assert len(calls) < len(RECORDS) / 2 and elapsed < len(RECORDS) * SLOW_S / 2
    _, after, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert after["status"] == "cancelled"
    assert after["completed_count"] == after["failed_count"] == 0


def test_a_run_whose_map_gave_up_on_a_batch_says_so(stack):
    dataset_id = create_dataset(stack, records=RECORDS[:4])
    version = eval_version(stack, [{"name": "len", "scorer": "length", "args": {"max": 5}}])
    _, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]}),
    )
    ids = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    stack.invoke("PrepareRunFunction", workflow_event("prepare", **ids))  # now running
    # What the Map's Catch hands over when a batch failed after its retries.
    error = {
        "Error": "States.ExceedToleratedFailureThreshold",
        "Cause": "The specified tolerated failure threshold was exceeded",
    }
    out = stack.invoke("MarkRunFailedFunction", workflow_event("mark_failed", **ids, error=error))
    assert out["status"] == "failed"
    _, got, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert got["error_message"].startswith(
        "a batch of records could not be scored after its retries, so the Map stopped the run"
    )
    assert got["error_message"].endswith(
        "(States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was exceeded)"
    )
