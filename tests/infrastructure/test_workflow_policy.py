"""Workflow policy: what every state of statemachine/eval_run.asl.json must have.

Rules (``policy_problems``), checked on the definition after its ``${...}`` substitutions,
walking every state, nested ItemProcessor states included:

1. The machine has ``TimeoutSeconds``; every Task has ``TimeoutSeconds``.
2. Every Task has a non-empty ``Retry``; every retrier has ``JitterStrategy: FULL`` and
   ``MaxDelaySeconds``.
3. Catch path — a run never stays ``running`` after its execution ended:
   * every top-level Task and Map has a Catch on ``States.ALL`` whose ``Next`` is the
     failure handler (the one Task every Catch targets), except the failure handler itself;
   * the failure handler retries ``States.ALL`` and goes on to a ``Fail`` state;
   * a Task inside a Map's ItemProcessor needs no Catch of its own: a child that fails
     fails the Map (tolerance below), and the Map's own Catch covers it. It must not
     have a Catch that ends the child successfully either — that would hide a lost batch;
   * the only ways to end are the finalize Task (``End: true``) and the Fail state after the
     failure handler.
4. Every Map has ``MaxConcurrency`` or ``MaxConcurrencyPath``, and an explicit
   ``ToleratedFailurePercentage`` or ``ToleratedFailureCount``.
5. Every ``ErrorEquals`` name is a ``States.*``/``Lambda.*``/``Sandbox.*`` name or an
   exception class of ``assay_service.errors``.
6. Every ``$.Payload.<field>`` a ResultSelector reads is a field of the step's result
   model: a missing one is ``States.Runtime``, which ``States.ALL`` does not catch — the run
   would stay running.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from assay_service import errors
from assay_service.models import workflow as models

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "eval_run.asl.json"
# The error names Step Functions and its Lambda integration document (a misspelt one would
# never match, so the Retry or Catch that names it would silently do nothing).
SERVICE_ERRORS = frozenset(
    {
        "States.ALL",
        "States.Timeout",
        "States.TaskFailed",
        "States.Permissions",
        "States.HeartbeatTimeout",
        "States.DataLimitExceeded",
        "States.Runtime",
        "States.ExceedToleratedFailureThreshold",
        "States.ItemReaderFailed",
        "States.ResultWriterFailed",
        "States.BranchFailed",
        "States.NoChoiceMatched",
        "States.IntrinsicFailure",
        "States.QueryEvaluationError",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.Unknown",
        "Sandbox.Timedout",
        # A crashed runtime (killed, out of memory) as the function's own errorType: AWS's docs
        # name such a failure Lambda.Unknown, and an Invoke payload names it Runtime.ExitError;
        # the crash retries list both, so they hold whichever the service reports.
        "Runtime.ExitError",
    }
)
RESULT_MODELS = {
    "PrepareRunFunction": models.PrepareResult,
    "ScoreBatchFunction": models.ScoreBatchResult,
    "FinalizeRunFunction": models.FinalizeResult,
    "MarkRunFailedFunction": models.FinalizeResult,
}


def substituted(text: str) -> dict[str, Any]:
    """``${Partition}`` → aws, ``${XFunctionArn}`` → a Lambda ARN ending in ``X``; any other
    ``${Name}`` → a name."""
    text = text.replace("${Partition}", "aws")
    text = re.sub(
        r"\$\{(\w+)FunctionArn\}", r"arn:aws:lambda:us-east-1:123456789012:function:assay-\1Function", text
    )
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: f"assay-{m.group(1).lower()}", text))


def definition() -> dict[str, Any]:
    return substituted(ASL.read_text())


def assay_error_names() -> set[str]:
    return {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    }


def walk(states: dict[str, Any], nested: bool = False) -> Iterator[tuple[str, dict[str, Any], bool]]:
    for name, state in states.items():
        yield name, state, nested
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from walk(processor["States"], nested=True)
        for branch in state.get("Branches", []):
            yield from walk(branch["States"], nested=True)


def function_of(state: dict[str, Any]) -> str:
    name = str(state.get("Parameters", {}).get("FunctionName", ""))
    return name.rsplit("assay-", 1)[-1]


def policy_problems(asl: dict[str, Any]) -> list[str]:  # noqa: C901
    problems: list[str] = []
    known = assay_error_names()
    top = asl["States"]
    if "TimeoutSeconds" not in asl:
        problems.append("the machine has no TimeoutSeconds")

    catch_targets = {c.get("Next") for s in top.values() for c in s.get("Catch", [])}
    handler = next(iter(catch_targets)) if len(catch_targets) == 1 else None
    if handler is None:
        problems.append(f"Catch paths lead to {sorted(map(str, catch_targets))}, not one failure handler")

    for name, state, nested in walk(top):
        kind = state.get("Type")
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule.get("ErrorEquals", []):
                if error not in SERVICE_ERRORS and error not in known:
                    problems.append(
                        f"{name}: ErrorEquals {error!r} is neither a service error nor "
                        "an exception of assay_service.errors"
                    )
        if kind == "Map":
            if "MaxConcurrency" not in state and "MaxConcurrencyPath" not in state:
                problems.append(f"{name}: Map without MaxConcurrency or MaxConcurrencyPath")
            if "ToleratedFailurePercentage" not in state and "ToleratedFailureCount" not in state:
                problems.append(f"{name}: Map without an explicit tolerated-failure bound")
            if "ResultWriter" not in state:  # else its output grows with the batch count
                problems.append(f"{name}: Map without a ResultWriter")
        if kind not in ("Task", "Map"):
            continue
        if kind == "Task":
            if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
                problems.append(f"{name}: Task without TimeoutSeconds")
            retriers = state.get("Retry", [])
            if not retriers:
                problems.append(f"{name}: Task without Retry")
            for i, retrier in enumerate(retriers):
                if retrier.get("JitterStrategy") != "FULL":
                    problems.append(f"{name}: Retry[{i}] without JitterStrategy FULL")
                if "MaxDelaySeconds" not in retrier:
                    problems.append(f"{name}: Retry[{i}] without MaxDelaySeconds")
            model = RESULT_MODELS.get(function_of(state))
            for path in _paths(state.get("ResultSelector", {})):
                field = path.removeprefix("$.Payload.").split(".")[0]
                if path.startswith("$.Payload.") and (model is None or field not in model.model_fields):
                    problems.append(
                        f"{name}: ResultSelector reads {path}, which "
                        f"{getattr(model, '__name__', 'no result model')} does not have"
                    )
        catch_all = [c for c in state.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])]
        if nested:
            if state.get("Catch"):
                problems.append(
                    f"{name}: a Catch inside an ItemProcessor would hide a failed batch "
                    "from the Map (its Catch covers it)"
                )
        elif name == handler:
            retry_all = any("States.ALL" in r.get("ErrorEquals", []) for r in state.get("Retry", []))
            if not retry_all:
                problems.append(f"{name}: the failure handler does not retry States.ALL")
            if top.get(state.get("Next", ""), {}).get("Type") != "Fail":
                problems.append(f"{name}: the failure handler does not end in a Fail state")
        elif not catch_all or catch_all[0].get("Next") != handler:
            problems.append(f"{name}: no Catch on States.ALL to the failure handler")

    for name, state in top.items():
        ends = state.get("End") or state.get("Type") in ("Succeed", "Fail")
        if not ends:
            continue
        if state.get("Type") == "Fail":
            before = [n for n, s in top.items() if s.get("Next") == name]
            if before != [handler]:
                problems.append(f"{name}: a Fail state reached from {before}, not only the failure handler")
        elif function_of(state) != "FinalizeRunFunction":
            problems.append(f"{name}: the execution can end here without finalize or mark-failed")
    return problems


def _paths(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(".$") and isinstance(value, str):
                yield value
            else:
                yield from _paths(value)


def test_the_definition_follows_the_policy():
    assert policy_problems(definition()) == []


def test_every_error_name_is_checked_against_real_classes():
    # The ASL names the two transient errors the services raise; both exist.
    assert {"TransientStoreError", "TransientScoringError"} <= assay_error_names()
    assert "NoSuchError" not in assay_error_names()


def _score_task(asl: dict[str, Any]) -> dict[str, Any]:
    return asl["States"]["Score Batches"]["ItemProcessor"]["States"]["Score Batch"]


def _del(path: Callable[[dict], dict], key: str) -> Callable[[dict], None]:
    return lambda asl: path(asl).pop(key)


MUTATIONS: dict[str, tuple[Callable[[dict], Any], str]] = {
    "machine timeout": (lambda a: a.pop("TimeoutSeconds"), "machine has no TimeoutSeconds"),
    "task timeout": (
        _del(lambda a: a["States"]["Finalize Run"], "TimeoutSeconds"),
        "Finalize Run: Task without TimeoutSeconds",
    ),
    "nested task timeout": (_del(_score_task, "TimeoutSeconds"), "Score Batch: Task without TimeoutSeconds"),
    "no retry": (_del(lambda a: a["States"]["Prepare Run"], "Retry"), "Prepare Run: Task without Retry"),
    "no jitter": (
        lambda a: _score_task(a)["Retry"][1].pop("JitterStrategy"),
        "Score Batch: Retry[1] without JitterStrategy FULL",
    ),
    "no max delay": (
        lambda a: a["States"]["Mark Run Failed"]["Retry"][0].pop("MaxDelaySeconds"),
        "Mark Run Failed: Retry[0] without MaxDelaySeconds",
    ),
    "no catch on a task": (
        _del(lambda a: a["States"]["Finalize Run"], "Catch"),
        "Finalize Run: no Catch on States.ALL",
    ),
    "no catch on the map": (
        _del(lambda a: a["States"]["Score Batches"], "Catch"),
        "Score Batches: no Catch on States.ALL",
    ),
    "catch inside the map": (
        lambda a: _score_task(a).update(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Score Batch"}]),
        "would hide a failed batch",
    ),
    "no concurrency bound": (
        lambda a: [
            a["States"]["Score Batches"].pop(k, None) for k in ("MaxConcurrency", "MaxConcurrencyPath")
        ],
        "Map without MaxConcurrency",
    ),
    "no tolerated failure bound": (
        _del(lambda a: a["States"]["Score Batches"], "ToleratedFailurePercentage"),
        "explicit tolerated-failure bound",
    ),
    "no result writer": (
        _del(lambda a: a["States"]["Score Batches"], "ResultWriter"),
        "Map without a ResultWriter",
    ),
    "misspelt error": (
        lambda a: _score_task(a)["Retry"][0]["ErrorEquals"].append("TransientStorError"),
        "'TransientStorError' is neither",
    ),
    "misspelt service error": (
        lambda a: _score_task(a)["Retry"][0]["ErrorEquals"].append("Lambda.ServiceExeption"),
        "'Lambda.ServiceExeption' is neither",
    ),
    "missing payload field": (
        lambda a: a["States"]["Finalize Run"]["ResultSelector"].update({"cost.$": "$.Payload.cost"}),
        "reads $.Payload.cost",
    ),
    "failure handler without retry-all": (
        lambda a: a["States"]["Mark Run Failed"]["Retry"][0].update(ErrorEquals=["Lambda.ServiceException"]),
        "does not retry States.ALL",
    ),
    "an end that skips finalize": (
        lambda a: a["States"]["Score Batches"].update(End=True),
        "can end here without finalize",
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_broken_definition_is_caught(mutation):
    broken = copy.deepcopy(definition())
    change, expected = MUTATIONS[mutation]
    change(broken)
    problems = policy_problems(broken)
    assert any(expected in p for p in problems), problems


def test_step_payloads_stay_small_at_any_dataset_size():
    """Every payload a step takes or returns is a fixed handful of ids and numbers: at
    10,000,000 records (100,000 batches) the largest is far below Step Functions' 256 KB.
    The batch list lives in S3 (the Map's ItemReader) and the Map's results go to S3."""
    import uuid

    big = 10_000_000
    tenant, run = uuid.uuid4(), uuid.uuid4()
    batch = models.BatchRef(
        index=big // 100, first_record=big - 100, count=1000, byte_start=10**12, byte_end=10**12 + 10**9
    )
    payloads = [
        models.PrepareResult(
            tenant_id=tenant,
            run_id=run,
            manifest_key="tenants/" + "x" * 200,
            batch_count=big // 100,
            max_concurrency=10_000,
        ),
        models.ScoreBatchInput(tenant_id=tenant, run_id=run, batch=batch),
        models.ScoreBatchResult(batch=big // 100, completed=1000, failed=1000, outcome="duplicate"),
        models.FinalizeResult(run_id=run, status="completed"),
    ]
    sizes = [len(p.model_dump_json()) for p in payloads]
    assert max(sizes) < 1024, sizes
    # …and the definition passes nothing else: the Map reads its items from S3, writes its
    # results to S3, and each child's output is the three counts of ScoreBatchResult.
    asl = definition()
    score_map = asl["States"]["Score Batches"]
    assert score_map["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert score_map["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert score_map["ResultPath"] is None
    child = _score_task(asl)
    assert set(child["ResultSelector"]) == {"batch.$", "completed.$", "failed.$"}
