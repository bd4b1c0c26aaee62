"""What a run costs in AWS charges (not the judge's tokens: that is ``total_cost``) — pure.

The model is linear in what a run is made of: one run, ``K = ceil(N / batch size)``
batches (one Distributed Map child and one ScoreBatch invocation each), and ``N × M``
evaluations. Each billable quantity is ``per_run + per_batch·K + per_evaluation·N·M``.

The coefficients are not guessed: ``python -m assay_local.cost`` (``make cost``) runs real
runs on the local stack, counts every request the code makes (state transitions, Lambda
invocations and their durations, DynamoDB request units from the items' sizes, S3
requests by class, Secrets Manager calls), fits these three coefficients per quantity,
and warns when they drift from the ones below; ``tests/e2e/test_cost_model.py`` fails when
the counted ones (everything but Lambda durations) drift. How they were measured, and the
table they give: docs/cost.md.

Prices: us-east-1 list prices, as of ``PRICES_AS_OF`` (sources in docs/cost.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICES_AS_OF = "2025-06-01"

# USD per unit, us-east-1.
PRICES: dict[str, float] = {
    "transitions": 0.025 / 1_000,  # Step Functions Standard, per state transition
    "lambda_requests": 0.20 / 1_000_000,  # Lambda, per request
    "lambda_gb_seconds": 0.0000133334,  # Lambda arm64, per GB-second
    "dynamodb_wru": 0.625 / 1_000_000,  # DynamoDB on-demand, per write request unit
    "dynamodb_rru": 0.125 / 1_000_000,  # DynamoDB on-demand, per read request unit
    "s3_tier1": 0.005 / 1_000,  # S3 Standard PUT, COPY, POST, LIST
    "s3_tier2": 0.0004 / 1_000,  # S3 Standard GET, SELECT and others
    "secrets_calls": 0.05 / 10_000,  # Secrets Manager API calls
}


@dataclass(frozen=True, slots=True)
class Coefficient:
    per_run: float
    per_batch: float
    per_evaluation: float

    def amount(self, batches: int, evaluations: int) -> float:
        return self.per_run + self.per_batch * batches + self.per_evaluation * evaluations


# Measured by `make cost` on 2026-11-22 (3 rule metrics, the command's synthetic records,
# 200 and 1,000 records at batch size 100 and 1,000 at 250). The counts are exact for those
# records; the Lambda GB-s are warm handler times on a 2-core development machine × each
# function's memory: noisy (0.28–0.72 GB-s per batch over five runs, the machine shared)
# and dominated by per-batch I/O; 0.5 is their middle.
COEFFICIENTS: dict[str, Coefficient] = {
    "transitions": Coefficient(3, 2, 0),
    "lambda_requests": Coefficient(3, 1, 0),
    "lambda_gb_seconds": Coefficient(0.0, 0.5, 0.0),
    # Refitted on 2026-12-07 (the 250-record batches' items compress a little larger):
    # the same total at batch size 100, 2% more at 250. Per run 40 since the run's create
    # transaction checks its dataset and eval items (two ConditionChecks, 2 WRU each:
    # 96/320/288 WRU measured against 92/316/284 without them, the same day).
    "dynamodb_wru": Coefficient(40, 5, 0.076666667),
    "dynamodb_rru": Coefficient(7.5, 3.1667, 0.009444444),
    "s3_tier1": Coefficient(5, 0, 0),  # + the Map's ResultWriter manifest (2026-12-01)
    "s3_tier2": Coefficient(2, 1, 0),
    "secrets_calls": Coefficient(0, 0, 0),
}
# Quantities that are counts of requests the code makes; the rest (Lambda durations)
# depend on the machine that measured them.
COUNTED = (
    "transitions",
    "lambda_requests",
    "dynamodb_wru",
    "dynamodb_rru",
    "s3_tier1",
    "s3_tier2",
    "secrets_calls",
)
# How far a measured count may be from the model. Request counts and transitions are exact
# for given records; request units are billed per started KB of an item, and a batch item
# is compressed evaluations whose ids and timestamps differ on every run: the same 1,000 ×
# 3 run at batch size 250 measured 285-293 WRU here (2.8 % spread), so units get 5 %.
TOLERANCE = {"dynamodb_wru": 0.05, "dynamodb_rru": 0.05}
EXACT = 0.001


@dataclass(frozen=True, slots=True)
class CostEstimate:
    quantities: dict[str, float]
    usd: dict[str, float]

    @property
    def total(self) -> float:
        return math.fsum(self.usd.values())


def estimate(
    item_count: int, metric_count: int, batch_size: int, coefficients: dict[str, Coefficient] | None = None
) -> CostEstimate:
    """The AWS cost of a run of ``item_count`` records × ``metric_count`` metrics."""
    coefficients = coefficients or COEFFICIENTS
    batches = math.ceil(item_count / batch_size) if item_count else 0
    evaluations = item_count * metric_count
    quantities = {name: max(0.0, c.amount(batches, evaluations)) for name, c in coefficients.items()}
    return CostEstimate(quantities, {name: q * PRICES[name] for name, q in quantities.items()})


def estimated_aws_cost(item_count: int, metric_count: int, batch_size: int) -> float | None:
    """USD, rounded to 1e-6; None for an empty run."""
    if item_count <= 0 or metric_count <= 0 or batch_size <= 0:
        return None
    return round(estimate(item_count, metric_count, batch_size).total, 6)
