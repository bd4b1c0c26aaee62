"""A hostile tenant on the local stack (the real template, state machine and handlers):
patterns and a schema that take exponential time cost their own run a few bounded budgets
per batch — the run completes, those evaluations failed with the reason — and another
tenant's run scheduled at the same time is not held up (docs/scorers.md "Budgets",
docs/decisions/0010-scorer-budgets-and-fairness.md).

Before the budgets, ``(a+)+$`` over four such records pinned every scoring worker for
300 s x 3 attempts and the run failed after 922 s; the other tenant's 10-record run took
283 s instead of 5-8 s."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assay_local.stack import LocalStack

from tests.e2e.runs import Api

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
KEY_A = "ask_e2e-hostile-tenant-key-0123456789"
KEY_B = "ask_e2e-bystander-tenant-key-987654321"

HOSTILE_OUTPUT = json.dumps("a" * 40 + "!")  # JSON, so the schema metric parses it
RECURSIVE_SCHEMA = json.loads(
    '{"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}'
)
HOSTILE_METRICS = [
    # The reported pattern: exponential under `re`; the regex package answers it at once.
    {"name": "reported", "scorer": "regex", "args": {"pattern": "(a+)+$"}, "threshold": 1},
    # Exponential under the regex package too: stopped at its budget.
    {"name": "backtracks", "scorer": "regex", "args": {"pattern": "(a|a)+$"}, "threshold": 1},
    # 96 bytes, 2**32 steps: stopped at its step budget.
    {"name": "recursive", "scorer": "json_schema", "args": {"schema": RECURSIVE_SCHEMA}, "threshold": 1},
]
# The control: the same shape and scorers with patterns and a schema that cost nothing.
BENIGN_METRICS = [
    {"name": "reported", "scorer": "regex", "args": {"pattern": "a+!"}, "threshold": 1},
    {"name": "backtracks", "scorer": "regex", "args": {"pattern": "^a+"}, "threshold": 1},
    {"name": "recursive", "scorer": "json_schema", "args": {"schema": {"type": "string"}}, "threshold": 1},
]
# One batch: what the budgets bound is a batch's cost (3 overruns of each hostile metric,
# then the circuit breaker). Every local worker shares this machine's few cores, so more
# hostile batches at once would measure how the OS shares CPUs, not the budgets.
HOSTILE_RECORDS, HOSTILE_BATCH = 20, 20
# B's run: 10 records, one batch each, one batch at a time (its max_concurrency).
NORMAL = {"batch_size": 1, "max_concurrency": 1}
NORMAL_METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": r"\d+"}, "threshold": 1},
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, bootstrap_key=KEY_A) as local:
        yield local


def second_tenant(stack: LocalStack, tmp_path: Path) -> None:
    """Tenant B, through the bootstrap command (as an operator would)."""
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {"url": stack.url, "aws_env": stack.aws_env(), "function_env": stack.shared_function_env()}
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay_local",
            "bootstrap",
            "--local",
            "--tenant",
            "bystander",
            "--key",
            KEY_B,
            "--state-file",
            str(state),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def timed_run(api: Api, dataset: str, eval_version: str, **options: Any) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    run = api.schedule(dataset, eval_version, **options)
    done = api.wait(run["id"], {"completed", "failed", "cancelled"}, seconds=90)
    return done, time.monotonic() - started


def evaluations(api: Api, run_id: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", f"/v1/eval-runs/{run_id}/evaluations", params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def test_a_hostile_tenant_costs_its_own_run_bounded_budgets_and_not_the_others(stack, tmp_path):
    second_tenant(stack, tmp_path)
    hostile, bystander = Api(stack, KEY_A), Api(stack, KEY_B)
    evil = hostile.dataset_and_eval(
        [{"id": f"h{i}", "input": "q", "output": HOSTILE_OUTPUT} for i in range(HOSTILE_RECORDS)],
        HOSTILE_METRICS,
    )
    benign = hostile.dataset_and_eval(
        [{"id": f"g{i}", "input": "q", "output": HOSTILE_OUTPUT} for i in range(HOSTILE_RECORDS)],
        BENIGN_METRICS,
    )
    normal = bystander.dataset_and_eval(
        [{"id": f"n{i}", "input": f"q{i}", "output": f"{i}", "golden_answer": f"{i}"} for i in range(10)],
        NORMAL_METRICS,
    )

    # B alone, B beside a benign run of A's of the same shape (the control), and B beside
    # the hostile run; each the mean of two runs, as one ~1 s run varies by half on a shared
    # machine. First one run of each, together, so that no cold start (a worker process, a
    # first hostile run) lands in a measurement.
    warm_attack = hostile.schedule(*evil, batch_size=HOSTILE_BATCH)
    warm, _ = timed_run(bystander, *normal, batch_size=1)  # every scoring worker
    assert warm["status"] == "completed", warm
    assert hostile.wait(warm_attack["id"], {"completed", "failed"}, 90)["status"] == "completed"
    alone = [timed_run(bystander, *normal, **NORMAL) for _ in range(2)]

    def beside(a_run: tuple[str, str]) -> tuple[list, list]:
        b_runs, a_runs = [], []
        for _ in range(2):
            started = time.monotonic()
            attack = hostile.schedule(*a_run, batch_size=HOSTILE_BATCH)
            b_runs.append(timed_run(bystander, *normal, **NORMAL))
            done = hostile.wait(attack["id"], {"completed", "failed", "cancelled"}, seconds=90)
            a_runs.append((done, time.monotonic() - started))
        return b_runs, a_runs

    control, _ = beside(benign)
    attacked_b, attacks = beside(evil)
    mean = lambda runs: sum(seconds for _, seconds in runs) / len(runs)  # noqa: E731
    print(
        f"\nB alone {[round(s, 1) for _, s in alone]} s, B beside a benign A "
        f"{[round(s, 1) for _, s in control]} s, B beside the hostile A "
        f"{[round(s, 1) for _, s in attacked_b]} s, hostile A {[round(s, 1) for _, s in attacks]}"
        f" s; hostile/alone {mean(attacked_b) / mean(alone):.2f}x, "
        f"hostile/benign {mean(attacked_b) / mean(control):.2f}x"
    )

    for attacked, attack_s in attacks:
        assert_hostile_run_completed(hostile, attacked, attack_s)
    for run, _ in alone + control + attacked_b:
        assert run["status"] == "completed", run
        assert run["aggregate_results"]["exact"]["passed"] == 10
    # What the hostile patterns cost B, beyond sharing this machine's two cores with any
    # run of A's size: at most 2x (before the budgets: 283 s against 5-8 s).
    assert mean(attacked_b) <= 2 * mean(control), (mean(control), mean(attacked_b))


def assert_hostile_run_completed(hostile: Api, attacked: dict[str, Any], attack_s: float) -> None:
    """A's run completes; its hostile evaluations failed, each saying why."""
    assert attacked["status"] == "completed", attacked
    assert attacked["item_count"] == attacked["failed_count"] == HOSTILE_RECORDS
    items = evaluations(hostile, attacked["id"])
    assert len(items) == HOSTILE_RECORDS * len(HOSTILE_METRICS)
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_metric.setdefault(item["metric_name"], []).append(item)
    assert {e["label"] for e in by_metric["reported"]} == {"no_match"}
    batches = HOSTILE_RECORDS // HOSTILE_BATCH
    for name, overrun in [
        ("backtracks", "regex: pattern exceeded its 100 ms budget on this record's output (43 characters)"),
        ("recursive", "json_schema: validation exceeded its"),
    ]:
        reasons = [e["error_message"] or "" for e in by_metric[name]]
        assert all(e["status"] == "failed" for e in by_metric[name]), name
        # Three overruns a batch, then the circuit breaker: the rest fail at once.
        assert sum(r.startswith(overrun) for r in reasons) == 3 * batches, (name, reasons)
        assert sum("(circuit breaker)" in r for r in reasons) == (HOSTILE_BATCH - 3) * batches
    # The hostile run itself took seconds, not 300 s per attempt.
    assert attack_s < 30
