"""``python -m assay_local.cost`` (``make cost``): the AWS cost of a run, from counted calls.

It starts the embedded local stack with a meter in front of moto, runs real eval runs
(schedule → completed) and counts what each one makes AWS do:

* Step Functions state transitions: the parent execution's entered states (from its
  history) + one per Distributed Map child execution (describe_map_run) + the child's
  Task entries (ScoreBatch invocations, retries included);
* Lambda requests and GB-seconds: invocations of every function on the run's path, and
  their warm handler time × the function's configured memory (first invocations of a
  worker include the import: their time is replaced by the warm mean);
* DynamoDB read/write request units, S3 requests by class, Secrets Manager calls:
  counted on the moto server (assay_local/metering.py).

From three runs — (small, default batch), (large, default batch), (large, bigger batch) —
it solves ``quantity = per_run + per_batch·K + per_evaluation·N·M`` for each quantity,
prints the measured counts, the coefficients, the cost table at us-east-1 prices, and a
drift warning where the coefficients differ from those in ``assay_service.domain.cost``.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

RULE_METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": r"\d+"}, "threshold": 1},
    {"name": "json", "scorer": "json_valid", "args": {}, "threshold": 1},
    {"name": "f1", "scorer": "token_f1", "args": {}, "threshold": 0.5},
    {"name": "short", "scorer": "length", "args": {"max": 200}, "threshold": 1},
]
SIZES = (1_000, 100_000, 1_000_000)
TARGET_USD_PER_100K_3_METRICS = 0.10
DRIFT_TOLERANCE = 0.5  # relative, for Lambda GB-s (0.28–0.72 GB-s per batch between runs here)


def synthetic_records(n: int) -> list[dict[str, Any]]:
    """Short QA-style records (like bench/run.py's): what the coefficients are for."""
    return [
        {
            "id": f"r{i}",
            "input": f"What is {i} + {i}?",
            "output": f"It is {2 * i}.",
            "golden_answer": str(2 * i) if i % 5 else "wrong",
        }
        for i in range(n)
    ]


@dataclass(frozen=True)
class Measurement:
    records: int
    metrics: int
    batch_size: int
    batches: int
    quantities: dict[str, float]
    seconds: float
    dynamodb_write_requests: float = 0.0


class Harness:
    """A metered local stack, a tenant key, and runs on it."""

    def __init__(self, stack: Any, key: str) -> None:
        import requests

        self.stack = stack
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {key}"
        self.sfn = stack.client("stepfunctions")
        self.machine = stack.resources["EvalRunStateMachine"]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post(f"{self.stack.url}{path}", json=body, timeout=300)
        response.raise_for_status()
        return response.json()

    def prepare(self, records: int, metrics: int) -> tuple[str, str]:
        """A dataset version of ``records`` records and an eval version of ``metrics``
        rule metrics (created outside the measured window)."""
        ds = self._post("/v1/datasets", {"name": f"cost-{records}"})
        rows = synthetic_records(records)
        for start in range(0, len(rows), 10_000):
            self._post(f"/v1/datasets/{ds['id']}/versions", {"records": rows[start : start + 10_000]})
        ev = self._post("/v1/evals", {"name": f"cost-{metrics}"})
        version = self._post(f"/v1/evals/{ev['id']}/versions", {"metrics": RULE_METRICS[:metrics]})
        return ds["id"], version["id"]

    def measure(self, records: int, metrics: int, batch_size: int) -> Measurement:
        dataset_id, version_id = self.prepare(records, metrics)
        meter, stack = self.stack.meter, self.stack
        before, calls0, secs0 = meter.snapshot(), stack.invocation_counts(), stack.invocation_seconds()
        started = time.perf_counter()
        run = self._post(
            f"/v1/datasets/{dataset_id}/runs", {"eval_version_id": version_id, "batch_size": batch_size}
        )
        execution = self.machine.replace(":stateMachine:", ":execution:") + ":" + run["id"]
        while (status := self.sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        if status != "SUCCEEDED":
            raise RuntimeError(f"the run's execution ended {status}")
        counted = meter.since(before)
        calls = _diff(stack.invocation_counts(), calls0)
        batches = math.ceil(records / batch_size)
        quantities = {
            "transitions": self._transitions(execution, calls),
            "lambda_requests": float(sum(calls.values())),
            "lambda_gb_seconds": _gb_seconds(calls, secs0, stack.invocation_seconds()),
            "dynamodb_wru": counted.get("dynamodb.wru", 0.0),
            "dynamodb_rru": counted.get("dynamodb.rru", 0.0),
            "s3_tier1": counted.get("s3.tier1", 0.0),
            "s3_tier2": counted.get("s3.tier2", 0.0),
            "secrets_calls": counted.get("secretsmanager.requests", 0.0),
        }
        from assay_local.metering import READS

        # Not priced: the structural check behind the WRU's size-dependent tolerance.
        writes = counted.get("dynamodb.requests", 0.0) - sum(
            counted.get(f"dynamodb.{op}", 0.0) for op in READS
        )
        if counted.get("dynamodb.unmetered"):
            raise RuntimeError(f"{counted['dynamodb.unmetered']} DynamoDB requests were not metered")
        return Measurement(records, metrics, batch_size, batches, quantities, elapsed, writes)

    def _transitions(self, execution: str, calls: dict[str, int]) -> float:
        events, token = [], None
        while True:
            page = self.sfn.get_execution_history(
                executionArn=execution, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        entered = sum(e["type"].endswith("StateEntered") for e in events)
        children = 0
        for run in self.sfn.list_map_runs(executionArn=execution)["mapRuns"]:
            counts = self.sfn.describe_map_run(mapRunArn=run["mapRunArn"])["executionCounts"]
            children += counts["total"]
        # Each child's states entered: its one Task, once per attempt = ScoreBatch invocations.
        child_states = sum(n for name, n in calls.items() if name.endswith("ScoreBatchFunction"))
        return float(entered + children + child_states)


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _gb_seconds(
    calls: dict[str, int],
    before: dict[str, tuple[float, int, float, int]],
    after: dict[str, tuple[float, int, float, int]],
) -> float:
    """Σ over functions of invocations × mean warm duration × memory (GB)."""
    total = 0.0
    for name, count in calls.items():
        warm_s, warm_n, _, memory_mb = after[name]
        warm_s0, warm_n0, _, _ = before.get(name, (0.0, 0, 0.0, memory_mb))
        n = warm_n - warm_n0
        # No warm invocation in this window: fall back to the function's warm mean so far.
        mean = (warm_s - warm_s0) / n if n else (warm_s / warm_n if warm_n else 0.0)
        total += count * mean * memory_mb / 1024
    return total


# ------------------------------------------------------------------ the fit
def _solve(rows: list[list[float]], rhs: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting for a square system."""
    n = len(rows)
    a = [row[:] + [b] for row, b in zip(rows, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


def _nonnegative_fit(rows: list[list[float]], values: list[float]) -> list[float]:
    """Least squares with every coefficient ≥ 0, by trying each subset of the terms (three
    terms: seven subsets). Timings are noisy; a run or a batch never takes negative time."""
    best: tuple[float, list[float]] | None = None
    terms = range(len(rows[0]))
    for mask in range(1, 2 ** len(rows[0])):
        keep = [t for t in terms if mask >> t & 1]
        x = [[r[t] for t in keep] for r in rows]
        normal = [[sum(xr[i] * xr[j] for xr in x) for j in range(len(keep))] for i in range(len(keep))]
        rhs = [sum(xr[i] * v for xr, v in zip(x, values, strict=True)) for i in range(len(keep))]
        try:
            solved = _solve(normal, rhs)
        except ZeroDivisionError:
            continue
        if min(solved) < 0:
            continue
        coef = [0.0] * len(rows[0])
        for t, c in zip(keep, solved, strict=True):
            coef[t] = c
        residual = sum(
            (sum(c * xr for c, xr in zip(coef, r, strict=True)) - v) ** 2
            for r, v in zip(rows, values, strict=True)
        )
        if best is None or residual < best[0] - 1e-12:
            best = (residual, coef)
    return best[1] if best else [0.0] * len(rows[0])


def fit(measurements: list[Measurement]) -> dict[str, Any]:
    """Coefficients (per run, per batch, per evaluation) from three runs that differ in
    records and batch count."""
    from assay_service.domain.cost import COUNTED, Coefficient

    if len(measurements) != 3:
        raise ValueError("three measurements: (small, default), (large, default), (large, bigger)")
    rows = [[1.0, float(m.batches), float(m.records * m.metrics)] for m in measurements]
    out = {}
    for name in measurements[0].quantities:
        values = [m.quantities[name] for m in measurements]
        per_run, per_batch, per_eval = (
            _solve(rows, values) if name in COUNTED else _nonnegative_fit(rows, values)
        )
        out[name] = Coefficient(_tidy(per_run), _tidy(per_batch), _tidy(per_eval, 9))
    return out


def _tidy(x: float, digits: int = 4) -> float:
    """Round off float noise (an exact count stays an integer)."""
    return float(round(x)) if abs(x - round(x)) < 1e-6 else round(x, digits)


def drift(measured: dict[str, Any], shipped: dict[str, Any]) -> list[str]:
    """Where the shipped coefficients disagree with the measured ones, at 100k records ×
    3 metrics: counted quantities within their ``TOLERANCE`` (exact for request counts),
    Lambda GB-s within DRIFT_TOLERANCE."""
    from assay_service.domain.cost import COUNTED, EXACT, TOLERANCE

    problems = []
    for name, got in measured.items():
        want = shipped.get(name)
        at = lambda c: c.amount(1_000, 300_000)  # noqa: E731 — 100k records, 3 metrics, batch 100
        if want is None:
            problems.append(f"{name}: not in domain/cost.py")
            continue
        tolerance = TOLERANCE.get(name, EXACT) if name in COUNTED else DRIFT_TOLERANCE
        if abs(at(got) - at(want)) > tolerance * max(abs(at(want)), 1e-9):
            problems.append(f"{name}: measured {got} vs shipped {want}")
    return problems


# ------------------------------------------------------------------ output
def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    )


def report(
    measurements: list[Measurement], coefficients: dict[str, Any], metrics: int, default_batch: int
) -> str:
    from assay_service.domain.cost import PRICES, PRICES_AS_OF, estimate

    names = list(coefficients)
    lines = [
        "Measured on the local stack (schedule → completed):",
        _table(
            [["quantity", *[f"{m.records:,}r/b{m.batch_size}" for m in measurements]]]
            + [[n, *[f"{m.quantities[n]:,.4g}" for m in measurements]] for n in names]
            + [["wall seconds", *[f"{m.seconds:.1f}" for m in measurements]]]
        ),
    ]
    lines += [
        "",
        "Coefficients: quantity = per_run + per_batch·K + per_evaluation·N·M",
        _table(
            [["quantity", "per_run", "per_batch", "per_evaluation"]]
            + [
                [n, f"{c.per_run:g}", f"{c.per_batch:g}", f"{c.per_evaluation:.6g}"]
                for n, c in coefficients.items()
            ]
        ),
    ]
    lines += [
        "",
        f"AWS cost (USD, us-east-1 list prices as of {PRICES_AS_OF}), batch size "
        f"{default_batch}, {metrics} rule metrics:",
    ]
    rows = [["records", *names, "total"]]
    for n in SIZES:
        est = estimate(n, metrics, default_batch, coefficients)
        rows.append([f"{n:,}", *[f"{est.usd[k]:.5f}" for k in names], f"{est.total:.4f}"])
    lines.append(_table(rows))
    at_target = estimate(100_000, 3, default_batch, coefficients)
    verdict = "meets" if at_target.total <= TARGET_USD_PER_100K_3_METRICS else "MISSES"
    top = max(at_target.usd, key=at_target.usd.__getitem__)
    lines += [
        "",
        f"100,000 records × 3 metrics: ${at_target.total:.4f} — {verdict} the "
        f"${TARGET_USD_PER_100K_3_METRICS:.2f} target; largest part: {top} "
        f"(${at_target.usd[top]:.4f}, {at_target.usd[top] / at_target.total:.0%})",
    ]
    lines += ["", "Prices per unit: " + ", ".join(f"{k} ${v:.3g}" for k, v in PRICES.items())]
    return "\n".join(lines)


def run_measurements(
    records: int, metrics: int, batch_size: int, *, small: int | None = None, big_batch: int | None = None
) -> list[Measurement]:
    from assay_local.stack import LocalStack

    key = "ask_cost_" + secrets.token_urlsafe(24)
    small = small or max(1, records // 5)
    big_batch = big_batch or min(1000, batch_size * 5 // 2)
    with LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}, metered=True) as stack:
        harness = Harness(stack, key)
        harness.measure(min(small, 4 * batch_size), metrics, batch_size)  # warm the workers up
        return [
            harness.measure(small, metrics, batch_size),
            harness.measure(records, metrics, batch_size),
            harness.measure(records, metrics, big_batch),
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assay_local.cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=int, default=1_000, help="the large run (default 1,000)")
    parser.add_argument("--small", type=int, default=200, help="the small run (default 200)")
    parser.add_argument("--metrics", type=int, default=3, choices=range(1, len(RULE_METRICS) + 1))
    parser.add_argument("--batch-size", type=int, default=100, help="the deployment default")
    args = parser.parse_args(argv)
    from assay_service.domain.cost import COEFFICIENTS

    measurements = run_measurements(args.records, args.metrics, args.batch_size, small=args.small)
    coefficients = fit(measurements)
    print(report(measurements, coefficients, args.metrics, args.batch_size))
    problems = drift(coefficients, COEFFICIENTS)
    if problems:
        print("\nDRIFT: assay_service/domain/cost.py COEFFICIENTS disagree with this measurement:")
        for p in problems:
            print("  " + p)
        print("Update them to:")
        for name, c in coefficients.items():
            print(f'    "{name}": Coefficient({c.per_run!r}, {c.per_batch!r}, {c.per_evaluation!r}),')
    else:
        print("\nassay_service/domain/cost.py COEFFICIENTS agree with this measurement.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
