"""Exactly-once accounting under injected faults.

Each seed schedules a 300-record run through the API handlers, then executes the REAL state
machine definition with the REAL workflow handlers and adapters on moto, through an
at-least-once simulator (tests/faults/simulator.py) that retries what the ASL retries,
redelivers Map items, lets timed-out invocations race their retries, and fires ≥ 250 faults
through botocore events on the real DynamoDB client (tests/faults/harness.py).

After each run: the run completed, ``completed_count + failed_count == item_count``, the
failed records are exactly the ones that cannot be scored, exactly one evaluation per
(record, metric) across all batch items, and aggregates equal a fault-free scoring of the
same records. The same harness against a naive recorder (no condition, counters moved in a
separate update) must report violations — else it could not see the defects it guards.
"""

from __future__ import annotations

import functools
import json
from typing import Any
from uuid import UUID

import boto3
import pytest
from assay_service import dependencies
from assay_service.adapters.dynamodb import DynamoDBRunRepository
from assay_service.adapters.s3 import export_key
from assay_service.domain.aggregation import Aggregator
from assay_service.domain.ids import run_key
from assay_service.domain.scoring import score_batch
from assay_service.models.domain import Evaluation, Record, Run

from tests.faults.harness import CATEGORIES, FaultInjector, Plan, expected_ids
from tests.faults.simulator import Armed, Fault, Simulator, Stats
from tests.faults.stack import OWNER_KEY, REGION, FaultStack
from tests.functional.harness import api_event

SEEDS = (11, 23, 37)
# The harness's own power (it catches a broken recorder) is shown on one fault plan; the
# guarantee itself is checked on all of them.
DETECTION_SEEDS = SEEDS[:1]
WRITE_PATH = {
    "throttle_write",
    "conn_exhausted",
    "conn_before_write",
    "conn_after_write",
    "timeout_after_commit",
    "crash_before_write",
    "crash_after_write",
    "timeout_race",
}
ALL_KINDS = WRITE_PATH | {
    "throttle_read",
    "s3_read_error",
    "service_error_after_success",
    "lambda_throttle",
    "duplicate_delivery",
}
RECORDS = 300
BATCH_SIZE = 3
MIN_FAULTS = 250
MIN_PER_CATEGORY = 30
METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": "\\d", "mode": "search"}, "threshold": 1},
]


def unscorable(i: int) -> bool:
    """No golden answer: ``contains`` has nothing to look for → a failed evaluation."""
    return i % 23 == 7


def make_records(seed: int) -> list[dict[str, Any]]:
    records = []
    for i in range(RECORDS):
        answer = f"answer {seed}-{i}"
        output = answer if i % 3 else f"The {answer.upper()} it is"
        record: dict[str, Any] = {"id": f"s{seed}-r{i}", "input": f"question {i}", "output": output}
        if not unscorable(i):
            record["golden_answer"] = answer if i % 5 else "something else"
        records.append(record)
    return records


class NaiveRunRepository(DynamoDBRunRepository):
    """What exactly-once must not be: the batch written without a condition and the
    counters moved by a separate, unconditional update."""

    def record_batch(
        self,
        run: Run,
        index: int,
        *,
        completed: int,
        failed: int,
        records: list[dict[str, Any]],
        evaluations: Any,
        now: str,
    ) -> str:
        from assay_service.adapters.dynamodb import _pack

        pk = self._pk(run.tenant_id, run_key(run.id))
        self.table.put(
            {
                "PK": pk,
                "SK": f"B#{index:07d}",
                "tenant_id": str(run.tenant_id),
                "run_id": str(run.id),
                "batch": index,
                "completed": completed,
                "failed": failed,
                "created_at": now,
                "data": _pack(
                    {"records": records, "evaluations": [e.model_dump(mode="json") for e in evaluations]}
                ),
            }
        )
        self.table.update(
            pk,
            "RUN",
            expression="ADD completed_count :c, failed_count :f",
            names={},
            values={":c": completed, ":f": failed},
        )
        return "recorded"


class UnconditionalRunRepository(DynamoDBRunRepository):
    """The real transaction, counters and all, minus the condition that makes the batch
    write happen once: two deliveries racing past the "already recorded?" check both count."""

    BATCH_ONCE = None


@pytest.fixture(scope="module")
def injection(fault_stack: FaultStack) -> tuple[Armed, FaultInjector]:
    armed = Armed()
    injector = FaultInjector(dependencies.client("dynamodb"), armed, Stats(), s3=dependencies.client("s3"))
    return armed, injector


def schedule(stack: FaultStack, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = make_records(seed)
    status, dataset, _ = stack.call(
        "DatasetsFunction", api_event("create_dataset", key=OWNER_KEY, body={"name": f"faults-{seed}"})
    )
    assert status == 201, dataset
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version", path_id=dataset["id"], key=OWNER_KEY, body={"records": records}),
    )
    assert status == 201, body
    _, ev, _ = stack.call(
        "EvalsFunction", api_event("create_eval", key=OWNER_KEY, body={"name": f"faults-{seed}"})
    )
    status, version, _ = stack.call(
        "EvalsFunction",
        api_event(
            "create_eval_version",
            path_id=ev["id"],
            key=OWNER_KEY,
            body={"threshold": 0.5, "metrics": METRICS},
        ),
    )
    assert status == 201, version
    status, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run",
            path_id=dataset["id"],
            key=OWNER_KEY,
            body={"eval_version_id": version["id"], "batch_size": BATCH_SIZE, "max_concurrency": 4},
        ),
    )
    assert status == 202, run
    return run, records


def run_with_faults(
    stack: FaultStack, injection: tuple[Armed, FaultInjector], seed: int, planner: Any = None
) -> tuple[dict[str, Any], Stats, list[str]]:
    """Schedule, execute under faults, and return (run, stats, violated invariants). An
    execution that did not succeed is then reported to ReconcileRunFunction with the event
    EventBridge would deliver (the backstop of decision 0008)."""
    run, records = schedule(stack, seed)
    armed, injector = injection
    stats = Stats()
    injector.stats = stats
    plan = Plan(seed)
    simulator = Simulator(
        stack.definition(),
        invoke=stack.invoke_workflow,
        read_items=stack.read_items,
        armed=armed,
        stats=stats,
        planner=planner or plan,
        seed=seed,
        redeliver=plan.redeliver,
    )
    execution_input = {"tenant_id": run["tenant_id"], "run_id": run["id"]}
    status, output = simulator.run(execution_input)
    if status != "SUCCEEDED":
        stack.invoke_workflow(
            "ReconcileRunFunction",
            {
                "detail-type": "Step Functions Execution Status Change",
                "source": "aws.states",
                "detail": {
                    "name": run["id"],
                    "status": status,
                    "error": output,
                    "cause": None,
                    "input": json.dumps(execution_input),
                },
            },
        )
    found = violations(stack, run, records, status, output)
    forget_batches(run)
    return run, stats, found


def forget_batches(run: dict[str, Any]) -> None:
    """Delete the checked run's batch items: moto copies the whole table on every
    TransactWriteItems, so leftovers would slow each later seed down."""
    table = dependencies.table()
    pk = DynamoDBRunRepository._pk(UUID(run["tenant_id"]), run_key(UUID(run["id"])))
    for item in table.query_all(pk=pk, sk_prefix="B#"):
        table.client.delete_item(TableName=table.name, Key={"PK": {"S": pk}, "SK": {"S": item["SK"]}})


def violations(  # noqa: C901
    stack: FaultStack, scheduled: dict[str, Any], records: list[dict[str, Any]], status: str, output: Any
) -> list[str]:
    found: list[str] = []
    run = dependencies.runs().get(UUID(scheduled["tenant_id"]), UUID(scheduled["id"]))
    assert run is not None
    if status != "SUCCEEDED":
        found.append(f"execution {status}: {output}")
    if run.status in ("pending", "running"):
        found.append(f"the run stayed {run.status} after its execution ended")
    if run.status != "completed":
        found.append(f"run {run.status}: {run.error_message}")
    if run.completed_count + run.failed_count != run.item_count or run.item_count != RECORDS:
        found.append(
            f"counters: completed {run.completed_count} + failed {run.failed_count} "
            f"!= item_count {run.item_count}"
        )
    expected_failed = sum(unscorable(i) for i in range(RECORDS))
    if run.failed_count != expected_failed:
        found.append(f"failed_count {run.failed_count}, expected {expected_failed}")

    # One evaluation per (record, metric) across every batch item: count ids.
    batches = list(dependencies.runs().iter_batches(run))
    ids = [UUID(e["id"]) for b in batches for e in b["evaluations"]]
    record_ids = [r["id"] for b in batches for r in b["records"]]
    if len(batches) != -(-RECORDS // BATCH_SIZE):
        found.append(f"{len(batches)} batch items, expected {-(-RECORDS // BATCH_SIZE)}")
    if len(ids) != len(set(ids)) or set(ids) != expected_ids(run.id, RECORDS, len(METRICS)):
        found.append(
            f"evaluations: {len(ids)} ids, {len(set(ids))} distinct, expected {RECORDS * len(METRICS)}"
        )
    if sorted(record_ids) != sorted(r["id"] for r in records):
        found.append("recorded records differ from the dataset's")

    # Aggregates equal a fault-free scoring of the same records.
    _, object_key = dependencies.datasets().get_version(run.tenant_id, run.dataset_id, run.dataset_version)
    stored_records = [
        Record.model_validate_json(line)
        for line in dependencies.artifacts().iter_lines(object_key)
        if line.strip()
    ]
    reference = score_batch(
        run_id=run.id, project_id=run.project_id, metrics=run.metrics, records=enumerate(stored_records)
    )
    aggregator = Aggregator(run.metrics)
    aggregator.add(reference.evaluations)
    stored = {UUID(e["id"]): Evaluation.model_validate(e) for b in batches for e in b["evaluations"]}
    for ev in reference.evaluations:
        got = stored.get(ev.id)
        if got is None or (got.status, got.score, got.is_passed) != (ev.status, ev.score, ev.is_passed):
            found.append(
                f"evaluation {ev.id} differs from a fault-free scoring: "
                f"{got and (got.status, got.score, got.error_message)} vs "
                f"{(ev.status, ev.score, ev.error_message)}"
            )
            break
    if run.status == "completed":
        expected = [a.model_dump() for a in aggregator.aggregates()]
        if [a.model_dump() for a in run.aggregates or []] != expected:
            found.append("aggregates differ from a fault-free scoring")
        if (run.result, run.pass_rate) != aggregator.verdict(run.threshold)[:2]:
            found.append("verdict differs from a fault-free scoring")
        s3 = boto3.client("s3", region_name=REGION)
        body = s3.get_object(Bucket=stack.bucket, Key=export_key(run.tenant_id, run.id, "jsonl"))["Body"]
        lines = body.read().splitlines()
        if len(lines) != RECORDS * len(METRICS) or len({json.loads(x)["id"] for x in lines}) != len(lines):
            found.append(f"export holds {len(lines)} evaluations")
    return found


@pytest.mark.parametrize("seed", SEEDS)
def test_no_fault_loses_or_duplicates_an_evaluation(fault_stack, injection, seed):
    run, stats, found = run_with_faults(fault_stack, injection, seed)
    total = sum(stats.injected.values())
    print(
        f"seed {seed}: {total} faults {dict(stats.injected)}; retries {dict(stats.retries)}; "
        f"outcomes {dict(stats.outcomes)}"
    )
    assert found == [], (found, stats.child_errors)
    by_category = {c: sum(stats.injected[k] for k in kinds) for c, kinds in CATEGORIES.items()}
    print(f"seed {seed}: by category {by_category}")
    # ≥ 250 faults of the five categories alone, and every category well covered.
    assert sum(by_category.values()) >= MIN_FAULTS, by_category
    assert min(by_category.values()) >= MIN_PER_CATEGORY, by_category
    assert total >= MIN_FAULTS, stats.injected
    # Every kind of fault was exercised…
    assert set(stats.injected) >= ALL_KINDS, stats.injected
    # …and most are not the cheap ones on redeliveries: ≥ 100 hit the write path itself.
    assert sum(stats.injected[k] for k in WRITE_PATH) >= 100, stats.injected
    assert stats.outcomes["duplicate"] > 0 and stats.map_failures == 0
    assert all(0 <= d <= 60 for d in stats.delays)


@pytest.mark.parametrize("seed", DETECTION_SEEDS)
def test_the_harness_detects_a_naive_recorder(fault_stack, injection, seed, monkeypatch):
    monkeypatch.setattr(
        dependencies, "runs", functools.lru_cache(maxsize=1)(lambda: NaiveRunRepository(dependencies.table()))
    )
    run, stats, found = run_with_faults(fault_stack, injection, seed)
    print(f"naive recorder, seed {seed}: {found}")
    assert any("counters" in v or "failed_count" in v for v in found), found
    # Even then, the run does not stay running: the Catch path marked it failed.
    assert not any("stayed" in v for v in found), found


def test_a_run_whose_failure_handler_dies_is_ended_by_the_reconciler(fault_stack, injection):
    """GIVEN Finalize and then Mark Run Failed crashing on every attempt (their Retry runs
    out, the execution fails with no Catch left) THEN the run did not stay running: the
    execution-ended event made the reconciler mark it failed, with the execution's error."""
    plan = Plan(41)

    def planner(state: str, key: str, attempt: int, budget: Any) -> Any:
        if state in ("Finalize Run", "Mark Run Failed"):
            return Fault("crash_before_write")
        return plan(state, key, attempt, budget)

    run, stats, found = run_with_faults(fault_stack, injection, 41, planner=planner)
    assert stats.injected["crash_before_write"] >= 3 + 9  # finalize 1 + 2 retries, mark failed 1 + 8
    assert not any("stayed" in v for v in found), found
    ended = dependencies.runs().get(UUID(run["tenant_id"]), UUID(run["id"]))
    assert ended is not None and ended.status == "failed"
    assert ended.error_message.startswith("Lambda.Unknown"), ended.error_message


@pytest.mark.parametrize("seed", DETECTION_SEEDS)
def test_the_harness_detects_a_recorder_without_the_write_once_condition(
    fault_stack, injection, seed, monkeypatch
):
    monkeypatch.setattr(
        dependencies,
        "runs",
        functools.lru_cache(maxsize=1)(lambda: UnconditionalRunRepository(dependencies.table())),
    )
    run, stats, found = run_with_faults(fault_stack, injection, seed)
    print(f"unconditional recorder, seed {seed}: {found}")
    assert stats.injected["timeout_race"] > 0  # the concurrent deliveries that double-count
    assert any("counters" in v for v in found), found
