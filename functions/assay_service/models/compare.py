"""Response model of ``GET /v1/eval-runs/{id}/compare`` (a client codes against this shape)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class ComparedSide(BaseModel):
    mean: float | None = Field(description="Mean score over the metric's scored evaluations.")
    pass_rate: float | None = Field(description="Passed / all evaluations of the metric.")
    count: int = Field(description="Evaluations scored (0 when the run has no such metric).")


class MetricComparisonResponse(BaseModel):
    metric_name: str
    run: ComparedSide
    baseline: ComparedSide
    mean_delta: float | None = Field(
        description="Mean over paired records of (run score − baseline score); null without pairs."
    )
    pass_rate_delta: float | None = Field(
        description="Run pass rate − baseline pass rate; null when a run lacks the metric."
    )
    ci_low: float | None = Field(description="Paired bootstrap CI of mean_delta, low end.")
    ci_high: float | None = Field(description="Paired bootstrap CI of mean_delta, high end.")
    p_value: float | None = Field(description="Two-sided exact sign test, ties dropped.")
    significant: bool = Field(description="CI excludes 0 and p_value < 1 − confidence_level.")
    paired_count: int = Field(description="Records scored in both runs.")
    improved: int
    regressed: int
    unchanged: int


class RecordChangeResponse(BaseModel):
    record_id: str
    metric_name: str
    score: float
    baseline_score: float
    delta: float
    is_passed: bool
    baseline_is_passed: bool


class UnmatchedResponse(BaseModel):
    run_only: int = Field(description="Records of the run that the baseline does not have.")
    baseline_only: int = Field(description="Records of the baseline that the run does not have.")


class EvalRunComparisonResponse(BaseModel):
    run_id: UUID
    baseline_run_id: UUID
    confidence_level: float
    method: str = Field(description="The tests used and the significance rule, in words.")
    verdict: Literal["regressed", "improved", "no_significant_change"]
    metrics: list[MetricComparisonResponse]
    regressions: list[RecordChangeResponse] = Field(
        description="The largest score drops across metrics, biggest first (at most `limit`)."
    )
    improvements: list[RecordChangeResponse] = Field(
        description="The largest score gains across metrics, biggest first (at most `limit`)."
    )
    unmatched: UnmatchedResponse
