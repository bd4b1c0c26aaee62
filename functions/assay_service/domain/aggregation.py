"""Per-metric aggregates and the run's verdict — pure.

Definitions (documented in docs/concepts.md):
* a metric's ``mean`` is over the evaluations that were scored; its ``pass_rate`` is
  passed / all evaluations of the metric (an evaluation that could not be scored did
  not pass); ``unscored`` counts those that could not be scored; its
  ``is_gte_threshold`` (the metric level) is ``mean ≥ the metric's threshold``;
* the run's ``result`` is the mean of the metric means (metrics with nothing scored
  left out), ``pass_rate`` the share of records that passed every metric, and
  ``is_gte_threshold`` (the run level, ``verdict`` pass) is ``result ≥ the run's
  threshold``. The two levels are independent: a run can pass with metrics below theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from assay_service.domain.scorers import get_scorer
from assay_service.models.domain import Evaluation, Metric, MetricAggregate


@dataclass
class _Acc:
    total: float = 0.0
    count: int = 0
    passed: int = 0
    unscored: int = 0


@dataclass
class Aggregator:
    """Streams evaluations in; never holds them."""

    metrics: Sequence[Metric]
    _acc: dict[str, _Acc] = field(init=False)
    _record_ok: dict[int, bool] = field(init=False, default_factory=dict)
    total_cost: float = 0.0

    def __post_init__(self) -> None:
        self._acc = {m.name: _Acc() for m in self.metrics}

    def add(self, evaluations: Iterable[Evaluation]) -> None:
        for ev in evaluations:
            acc = self._acc[ev.metric_name]
            if ev.status == "complete" and ev.score is not None:
                acc.total += ev.score
                acc.count += 1
                acc.passed += ev.is_passed
            else:
                acc.unscored += 1
            self._record_ok[ev.record_index] = self._record_ok.get(ev.record_index, True) and ev.is_passed
            self.total_cost += ev.evaluation_cost or 0.0

    def aggregates(self) -> list[MetricAggregate]:
        out = []
        for metric in self.metrics:
            acc = self._acc[metric.name]
            spec = get_scorer(metric.scorer)
            mean = acc.total / acc.count if acc.count else None
            attempts = acc.count + acc.unscored
            out.append(
                MetricAggregate(
                    metric=metric.name,
                    scorer=metric.scorer,
                    evaluator_type=spec.evaluator_type if spec else "rule",
                    threshold=metric.threshold,
                    mean=round(mean, 12) if mean is not None else None,
                    pass_rate=round(acc.passed / attempts, 12) if attempts else None,
                    count=acc.count,
                    passed=acc.passed,
                    unscored=acc.unscored,
                    is_gte_threshold=None if mean is None else mean >= metric.threshold,
                )
            )
        return out

    def verdict(self, threshold: float) -> tuple[float | None, float | None, bool | None]:
        """(result, pass_rate, is_gte_threshold) of the run."""
        means = [a.mean for a in self.aggregates() if a.mean is not None]
        result = round(sum(means) / len(means), 12) if means else None
        records = len(self._record_ok)
        pass_rate = round(sum(self._record_ok.values()) / records, 12) if records else None
        return result, pass_rate, None if result is None else result >= threshold
