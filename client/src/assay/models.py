"""Typed views of the API's JSON: dataclasses built from the response, unknown fields kept in ``raw``.

Built with ``Model.from_api(dict)``; fields the server adds later are ignored (and stay in
``raw``), fields it omits are ``None``, so a newer server never breaks an older client.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

M = TypeVar("M", bound="Model")

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclass
class Model:
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # field name -> (model class, "one" | "list" | "dict")
    _nested: ClassVar[dict[str, tuple[type[Model], str]]] = {}

    @classmethod
    def from_api(cls: type[M], data: dict[str, Any]) -> M:
        names = {f.name for f in dataclasses.fields(cls)} - {"raw"}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                continue
            nested = cls._nested.get(key)
            if nested and value is not None:
                model, shape = nested
                if shape == "list":
                    value = [model.from_api(v) for v in value]
                elif shape == "dict":
                    value = {k: model.from_api(v) for k, v in value.items()}
                else:
                    value = model.from_api(value)
            kwargs[key] = value
        return cls(raw=data, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the server sent (for ``--json`` output)."""
        return self.raw


@dataclass
class Project(Model):
    id: str = ""
    name: str | None = None
    description: str | None = None
    created_at: str | None = None


@dataclass
class Dataset(Model):
    id: str = ""
    name: str | None = None
    description: str | None = None
    project_id: str | None = None
    version_count: int | None = None
    created_at: str | None = None


@dataclass
class DatasetVersion(Model):
    id: str = ""
    dataset_id: str | None = None
    version: int | None = None
    record_count: int | None = None
    size_bytes: int | None = None
    created_at: str | None = None
    # Field coverage: records that have each record field, metadata keys that look like a
    # misnamed field, and what the server warns about them ({code, message, field, count, …}).
    fields: dict[str, int] | None = None
    unknown_fields: dict[str, int] | None = None
    warnings: list[dict[str, Any]] | None = None


@dataclass
class Upload(Model):
    upload_id: str = ""
    url: str = ""
    method: str | None = None
    headers: dict[str, str] | None = None
    expires_at: str | None = None


@dataclass
class Metric(Model):
    name: str = ""
    scorer: str | None = None
    args: dict[str, Any] | None = None
    threshold: float | None = None
    evaluator_type: str | None = None


@dataclass
class Eval(Model):
    id: str = ""
    name: str | None = None
    description: str | None = None
    project_id: str | None = None
    version_count: int | None = None
    created_at: str | None = None


@dataclass
class EvalVersion(Model):
    _nested: ClassVar[dict[str, tuple[type[Model], str]]] = {"metrics": (Metric, "list")}
    id: str = ""
    eval_id: str | None = None
    version: int | None = None
    metrics: list[Metric] = field(default_factory=list)
    threshold: float | None = None
    judge: dict[str, Any] | None = None
    generation: dict[str, Any] | None = None  # the model under test (docs/generation.md)
    created_at: str | None = None


@dataclass
class MetricAggregate(Model):
    """One metric over a run: the metric level of the verdict (docs/concepts.md). Scores,
    ``mean`` and ``threshold`` are on the 0–1 scale; ``pass_rate`` is a fraction 0–1."""

    metric: str = ""
    scorer: str | None = None
    evaluator_type: str | None = None
    threshold: float | None = None  # the metric's own threshold
    mean: float | None = None  # over the scored evaluations
    pass_rate: float | None = None  # passed / all evaluations, unscored ones included
    count: int | None = None  # evaluations scored
    passed: int | None = None  # evaluations with score ≥ threshold
    unscored: int | None = None  # evaluations that could not be scored (not: below threshold)
    is_gte_threshold: bool | None = None  # metric level: mean ≥ threshold

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> MetricAggregate:
        # Servers before the rename send ``failed`` for what is now ``unscored``.
        model = super().from_api(data)
        if model.unscored is None and "unscored" not in data:
            model.unscored = data.get("failed")
        return model

    @property
    def evaluations(self) -> int:
        """All the metric's evaluations: scored and unscored (``pass_rate``'s denominator)."""
        return (self.count or 0) + (self.unscored or 0)


@dataclass
class ModelUsage(Model):
    """What one model did in a run, in one role (``generator``: the model under test, or ``judge``)."""

    role: str = ""
    provider: str | None = None
    model: str | None = None
    invocations: int = 0  # calls made to the provider (cache hits excluded)
    cached_responses: int = 0  # answers reused from the response cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the provider served from its own cache
    cost: float | None = None  # USD; None when the model has no price

    @property
    def tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass
class CostBreakdown(Model):
    """A run's cost in USD: the model under test, the LLM judges, the estimated AWS charges."""

    generation: float | None = 0.0  # None: a model of that role has no price
    judging: float | None = 0.0
    infrastructure: float | None = None
    total: float | None = 0.0


@dataclass
class EvalRun(Model):
    _nested: ClassVar[dict[str, tuple[type[Model], str]]] = {
        "aggregate_results": (MetricAggregate, "dict"),
        "per_model_usage": (ModelUsage, "list"),
        "cost_breakdown": (CostBreakdown, "one"),
    }
    id: str = ""
    name: str | None = None
    status: str = ""
    project_id: str | None = None
    dataset_id: str | None = None
    dataset_version_id: str | None = None
    dataset_version: int | None = None
    eval_id: str | None = None
    eval_version_id: str | None = None
    item_count: int = 0
    completed_count: int = 0
    failed_count: int = 0
    threshold: float | None = None
    result: float | None = None
    pass_rate: float | None = None
    is_gte_threshold: bool | None = None
    verdict: str | None = None
    aggregate_results: dict[str, MetricAggregate] | None = None
    metrics: list[Any] | None = None
    total_cost: float | None = None
    estimated_aws_cost: float | None = None  # USD, from the cost model (docs/cost.md)
    # Runs that generate their outputs (docs/generation.md): the model under test, the calls and
    # tokens per model and role and the cost split (both once the run completed), the cache.
    generation: dict[str, Any] | None = None
    per_model_usage: list[ModelUsage] | None = None
    cost_breakdown: CostBreakdown | None = None
    cache: bool | None = None
    cache_hits: int | None = None
    cache_misses: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    error_message: str | None = None
    # Only on the response that scheduled the run: metrics whose fields some records lack.
    warnings: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def scored_count(self) -> int:
        """Records done so far: ``completed_count`` (every evaluation scored) plus
        ``failed_count`` (at least one evaluation could not be scored)."""
        return (self.completed_count or 0) + (self.failed_count or 0)

    def usage(self, role: str) -> list[ModelUsage]:
        """``per_model_usage`` of one role: ``generator`` or ``judge`` (empty before completion)."""
        return [u for u in self.per_model_usage or () if u.role == role]


@dataclass
class Evaluation(Model):
    id: str = ""
    run_id: str | None = None
    record_id: str | None = None
    record_index: int | None = None
    trace_id: str | None = None
    project_id: str | None = None
    metric_name: str | None = None
    scorer: str | None = None
    evaluator_type: str | None = None
    status: str | None = None
    score: float | None = None
    label: str | None = None
    reasoning: str | None = None
    is_passed: bool | None = None
    threshold: float | None = None
    confidence: float | None = None
    metric_args: dict[str, Any] | None = None
    eval_metadata: dict[str, Any] | None = None
    evaluation_cost: float | None = None
    error_message: str | None = None
    record: dict[str, Any] | None = None
    created_at: str | None = None
    completed_at: str | None = None


@dataclass
class ExportLink(Model):
    url: str = ""
    expires_at: str | None = None
    format: str | None = None
    size_bytes: int | None = None


@dataclass
class ApiKey(Model):
    id: str = ""
    name: str | None = None
    prefix: str | None = None
    role: str | None = None
    created_at: str | None = None
    last_used_at: str | None = None
    expires_at: str | None = None
    revoked: bool | None = None
    key: str | None = None  # only on creation, once


@dataclass
class GroupStats(Model):
    mean: float | None = None
    pass_rate: float | None = None
    count: int | None = None


@dataclass
class MetricComparison(Model):
    _nested: ClassVar[dict[str, tuple[type[Model], str]]] = {
        "run": (GroupStats, "one"),
        "baseline": (GroupStats, "one"),
    }
    metric_name: str = ""
    run: GroupStats | None = None
    baseline: GroupStats | None = None
    mean_delta: float | None = None
    pass_rate_delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    paired_count: int | None = None
    improved: int | None = None
    regressed: int | None = None
    unchanged: int | None = None


@dataclass
class RecordChange(Model):
    record_id: str = ""
    metric_name: str | None = None
    score: float | None = None
    baseline_score: float | None = None
    delta: float | None = None
    is_passed: bool | None = None
    baseline_is_passed: bool | None = None


@dataclass
class Comparison(Model):
    _nested: ClassVar[dict[str, tuple[type[Model], str]]] = {
        "metrics": (MetricComparison, "list"),
        "regressions": (RecordChange, "list"),
        "improvements": (RecordChange, "list"),
    }
    run_id: str = ""
    baseline_run_id: str | None = None
    confidence_level: float | None = None
    method: str | None = None
    verdict: str | None = None  # regressed | improved | no_significant_change
    metrics: list[MetricComparison] = field(default_factory=list)
    regressions: list[RecordChange] = field(default_factory=list)
    improvements: list[RecordChange] = field(default_factory=list)
    unmatched: dict[str, int] | None = None
