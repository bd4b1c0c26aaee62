"""Comparing two runs record by record — pure (no numpy, no I/O).

For each metric the two runs share, records are matched by record id; a *pair* is a record
scored in both runs (an evaluation that could not be scored has no score and pairs with
nothing). Per pair, ``delta = run score − baseline score`` (scores are 0–1, higher is better).

Two tests, both on the paired deltas:

* an exact two-sided **sign test** (binomial, p = ½) on improved vs regressed pairs, ties
  dropped;
* a **paired bootstrap** percentile confidence interval of the mean delta: ``RESAMPLES``
  resamples of the pairs with replacement, from a seed derived from the two run ids and the
  metric (the same comparison always gives the same interval).

A metric's difference is *significant* when the interval excludes 0 **and** the sign test's
p-value is below ``1 − confidence``. The comparison's verdict is ``regressed`` if any metric
is significantly worse, else ``improved`` if any is significantly better, else
``no_significant_change``.

The bootstrap draws the *counts* of each distinct delta value from a multinomial (a chain of
binomials) rather than indices one by one, which is the same distribution as resampling
indices and costs O(resamples × distinct values) instead of O(resamples × pairs): rule
metrics have a handful of distinct deltas, so 100,000 pairs cost what 100 do. When there are
more than ``MAX_EXACT_VALUES`` distinct deltas (continuous scores), the deltas' spread is
taken from their values rounded to a 1/100 grid and the interval is centred on the exact
mean: the grid moves no mean, and changes the variance by at most 1/120,000.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

RESAMPLES = 2_000
MAX_EXACT_VALUES = 201
GRID = 100  # rounding grid (1/GRID) for continuous deltas
TIE = 1e-12  # |delta| at or below this is "unchanged" (float noise, not a difference)

Verdict = Literal["regressed", "improved", "no_significant_change"]


def method_text(confidence: float) -> str:
    return (
        f"paired by record id; two-sided exact sign test (ties dropped) and paired "
        f"bootstrap percentile CI of the mean delta ({RESAMPLES} resamples, seed from the "
        f"run ids); significant = CI excludes 0 and p < {1 - confidence:.2f}"
    )


@dataclass(frozen=True, slots=True)
class Scored:
    """One evaluation as a comparison sees it: ``score`` is None when it could not be scored."""

    score: float | None
    is_passed: bool


MetricScores = Mapping[str, Scored]  # record id → evaluation


@dataclass(frozen=True, slots=True)
class Summary:
    mean: float | None
    pass_rate: float | None
    count: int  # evaluations scored


@dataclass(frozen=True, slots=True)
class RecordChange:
    record_id: str
    metric_name: str
    score: float
    baseline_score: float
    delta: float
    is_passed: bool
    baseline_is_passed: bool


@dataclass(frozen=True, slots=True)
class MetricComparison:
    metric_name: str
    run: Summary
    baseline: Summary
    mean_delta: float | None
    pass_rate_delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    paired_count: int
    improved: int
    regressed: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class Unmatched:
    run_only: int
    baseline_only: int


@dataclass(frozen=True, slots=True)
class Comparison:
    run_id: str
    baseline_run_id: str
    confidence_level: float
    method: str
    verdict: Verdict
    metrics: list[MetricComparison]
    regressions: list[RecordChange]
    improvements: list[RecordChange]
    unmatched: Unmatched = field(default_factory=lambda: Unmatched(0, 0))


# ---------------------------------------------------------------- statistics
def sign_test_p_value(improved: int, regressed: int) -> float:
    """Two-sided exact sign test: P(|X − n/2| ≥ |k − n/2|), X ~ Binomial(n, ½), n = the
    non-tied pairs. Summed in log space from the tail's largest term, so n = 10⁶ is cheap."""
    n = improved + regressed
    k = min(improved, regressed)
    if n == 0 or 2 * k == n:
        return 1.0
    log_half_n = n * math.log(0.5)
    log_term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n
    # Σ_{i=0..k} C(n,i) = C(n,k) · (1 + k/(n−k+1) + …): terms shrink going down from k.
    ratio_sum, ratio, i = 1.0, 1.0, k
    while i > 0:
        ratio *= i / (n - i + 1)
        ratio_sum += ratio
        if ratio < 1e-17 * ratio_sum:
            break
        i -= 1
    tail = math.exp(log_term + math.log(ratio_sum))
    return min(1.0, 2.0 * tail)


def comparison_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def bootstrap_mean_ci(
    deltas: Sequence[float], *, confidence: float, seed: int, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """Percentile CI of the mean of ``deltas`` under resampling with replacement."""
    n = len(deltas)
    if n == 0:
        raise ValueError("no deltas")
    exact_mean = math.fsum(deltas) / n
    counts = Counter(deltas)
    if len(counts) == 1:  # every resample is the sample itself
        return exact_mean, exact_mean
    shift = 0.0
    if len(counts) > MAX_EXACT_VALUES:
        counts = Counter(round(d * GRID) / GRID for d in deltas)
        shift = exact_mean - math.fsum(v * c for v, c in counts.items()) / n
    bins = sorted(counts.items(), key=lambda vc: vc[1], reverse=True)  # big bins first
    last = len(bins) - 1
    rng = random.Random(seed)
    means = []
    for _ in range(resamples):
        left, rest, total = n, n, 0.0
        for i, (value, count) in enumerate(bins):
            # Multinomial as a chain: this bin's share of what is left, given the bins before.
            drawn = left if i == last else rng.binomialvariate(left, count / rest)
            total += drawn * value
            left -= drawn
            rest -= count
            if left == 0:
                break
        means.append(total / n + shift)
    means.sort()
    alpha = 1.0 - confidence
    lo = means[max(0, math.floor(alpha / 2 * resamples))]
    hi = means[min(resamples - 1, math.ceil((1 - alpha / 2) * resamples) - 1)]
    return lo, hi


# ---------------------------------------------------------------- comparison
def summarize(scores: MetricScores) -> Summary:
    scored = [e.score for e in scores.values() if e.score is not None]
    total = len(scores)
    return Summary(
        mean=round(math.fsum(scored) / len(scored), 12) if scored else None,
        pass_rate=round(sum(e.is_passed for e in scores.values()) / total, 12) if total else None,
        count=len(scored),
    )


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 12)


def compare_metric(
    name: str, run: MetricScores | None, baseline: MetricScores | None, *, confidence: float, seed: int
) -> tuple[MetricComparison, list[RecordChange]]:
    """One metric's comparison, and every pair whose score changed."""
    run_summary = summarize(run or {})
    base_summary = summarize(baseline or {})
    changes: list[RecordChange] = []
    deltas: list[float] = []
    improved = regressed = 0
    if run is not None and baseline is not None:
        for record_id in sorted(run.keys() & baseline.keys()):
            now, then = run[record_id], baseline[record_id]
            if now.score is None or then.score is None:
                continue
            delta = now.score - then.score
            deltas.append(delta)
            if abs(delta) > TIE:
                improved += delta > 0
                regressed += delta < 0
                changes.append(
                    RecordChange(
                        record_id,
                        name,
                        now.score,
                        then.score,
                        round(delta, 12),
                        now.is_passed,
                        then.is_passed,
                    )
                )
    both = run is not None and baseline is not None
    ci_low = ci_high = p_value = mean_delta = None
    significant = False
    if deltas:
        mean_delta = round(math.fsum(deltas) / len(deltas), 12)
        lo, hi = bootstrap_mean_ci(deltas, confidence=confidence, seed=seed)
        ci_low, ci_high = round(lo, 12), round(hi, 12)
        p_value = sign_test_p_value(improved, regressed)
        significant = (ci_low > 0 or ci_high < 0) and p_value < 1 - confidence
    return MetricComparison(
        metric_name=name,
        run=run_summary,
        baseline=base_summary,
        mean_delta=mean_delta,
        pass_rate_delta=_delta(run_summary.pass_rate, base_summary.pass_rate) if both else None,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        significant=significant,
        paired_count=len(deltas),
        improved=improved,
        regressed=regressed,
        unchanged=len(deltas) - improved - regressed,
    ), changes


def compare_runs(
    run: Mapping[str, MetricScores],
    baseline: Mapping[str, MetricScores],
    *,
    run_id: str,
    baseline_run_id: str,
    confidence: float = 0.95,
    limit: int = 20,
    metric_order: Sequence[str] = (),
) -> Comparison:
    """Compare ``run`` with ``baseline`` (each: metric name → record id → evaluation).

    Metrics come in ``metric_order`` first (the run's, then the baseline's), then by name;
    a metric in only one run is reported with null deltas. ``regressions`` and
    ``improvements`` are the ``limit`` largest changes across metrics, biggest first."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    names = list(dict.fromkeys([*metric_order, *sorted(run.keys() | baseline.keys())]))
    names = [n for n in names if n in run or n in baseline]
    metrics: list[MetricComparison] = []
    worse: list[RecordChange] = []
    better: list[RecordChange] = []
    for name in names:
        result, changes = compare_metric(
            name,
            run.get(name),
            baseline.get(name),
            confidence=confidence,
            seed=comparison_seed(run_id, baseline_run_id, name),
        )
        metrics.append(result)
        worse = heapq.nsmallest(
            limit,
            [*worse, *(c for c in changes if c.delta < 0)],
            key=lambda c: (c.delta, c.metric_name, c.record_id),
        )
        better = heapq.nsmallest(
            limit,
            [*better, *(c for c in changes if c.delta > 0)],
            key=lambda c: (-c.delta, c.metric_name, c.record_id),
        )
    significant = [m for m in metrics if m.significant]
    verdict: Verdict = (
        "regressed"
        if any((m.ci_high or 0) < 0 for m in significant)
        else "improved"
        if any((m.ci_low or 0) > 0 for m in significant)
        else "no_significant_change"
    )
    run_records = set().union(*(s.keys() for s in run.values()))
    base_records = set().union(*(s.keys() for s in baseline.values()))
    return Comparison(
        run_id=run_id,
        baseline_run_id=baseline_run_id,
        confidence_level=confidence,
        method=method_text(confidence),
        verdict=verdict,
        metrics=metrics,
        regressions=worse,
        improvements=better,
        unmatched=Unmatched(
            run_only=len(run_records - base_records), baseline_only=len(base_records - run_records)
        ),
    )
