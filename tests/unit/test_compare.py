"""Run comparison statistics: known answers, and identical runs never differ."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from assay_service.domain.compare import (
    MAX_EXACT_VALUES,
    RESAMPLES,
    Scored,
    bootstrap_mean_ci,
    compare_runs,
    sign_test_p_value,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def exact_sign_p(improved: int, regressed: int) -> float:
    """The textbook definition, in exact integers."""
    n, k = improved + regressed, min(improved, regressed)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


@pytest.mark.parametrize(
    ("improved", "regressed", "expected"),
    [
        (9, 1, 22 / 1024),  # 2·(C(10,0)+C(10,1))/2¹⁰, by hand
        (15, 5, 2 * 21_700 / 2**20),  # 2·Σ_{i≤5} C(20,i)/2²⁰ = 0.04138946533203125
        (1, 9, 22 / 1024),  # symmetric
        (10, 0, 2 / 1024),
        (5, 5, 1.0),
        (0, 0, 1.0),
        (3, 2, 1.0),
    ],
)
def test_sign_test_p_value_matches_hand_computation(improved, regressed, expected):
    assert sign_test_p_value(improved, regressed) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.integers(0, 400))
def test_sign_test_p_value_equals_the_exact_binomial_sum(improved, regressed):
    assert sign_test_p_value(improved, regressed) == pytest.approx(
        exact_sign_p(improved, regressed), rel=1e-9, abs=1e-300
    )


def test_sign_test_p_value_at_scale_agrees_with_the_normal_tail():
    # n = 100,000, 500 below n/2: P(X ≤ 49,500) ≈ Φ(−499.5/158.11) (continuity-corrected)
    p = sign_test_p_value(50_500, 49_500)
    z = 499.5 / math.sqrt(100_000 / 4)
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.01)


def index_bootstrap(deltas, confidence, resamples, seed):
    """The plain definition: resample indices with replacement."""
    rng = random.Random(seed)
    n = len(deltas)
    means = sorted(sum(deltas[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    a = 1 - confidence
    return means[math.floor(a / 2 * resamples)], means[math.ceil((1 - a / 2) * resamples) - 1]


def test_bootstrap_ci_agrees_with_resampling_indices():
    rng = random.Random(7)
    deltas = [rng.choice([-1.0, -0.5, 0.0, 0.0, 0.25, 1.0]) for _ in range(300)]
    lo, hi = bootstrap_mean_ci(deltas, confidence=0.9, seed=1, resamples=4000)
    ref_lo, ref_hi = index_bootstrap(deltas, 0.9, 4000, 2)
    se = statistics.pstdev(deltas) / math.sqrt(len(deltas))
    assert abs(lo - ref_lo) < 0.15 * se and abs(hi - ref_hi) < 0.15 * se


def test_bootstrap_ci_of_continuous_deltas_is_centred_on_the_exact_mean_and_normal_wide():
    rng = random.Random(11)
    deltas = [rng.random() - rng.random() + 0.01 for _ in range(20_000)]
    assert len(set(deltas)) > MAX_EXACT_VALUES  # the grid path
    lo, hi = bootstrap_mean_ci(deltas, confidence=0.95, seed=3)
    mean = statistics.fmean(deltas)
    se = statistics.pstdev(deltas) / math.sqrt(len(deltas))
    assert lo == pytest.approx(mean - 1.96 * se, abs=0.12 * se)
    assert hi == pytest.approx(mean + 1.96 * se, abs=0.12 * se)


def test_bootstrap_ci_is_deterministic_for_a_seed_and_degenerate_for_constant_deltas():
    deltas = [0.0, 1.0, -1.0, 1.0] * 50
    assert bootstrap_mean_ci(deltas, confidence=0.95, seed=5) == bootstrap_mean_ci(
        deltas, confidence=0.95, seed=5
    )
    assert bootstrap_mean_ci([0.25] * 1000, confidence=0.95, seed=5) == (0.25, 0.25)


def run_of(scores: dict[str, dict[str, float | None]], threshold: float = 0.5):
    return {
        m: {r: Scored(s, s is not None and s >= threshold) for r, s in recs.items()}
        for m, recs in scores.items()
    }


def test_a_known_regression_is_significant_and_listed_worst_first():
    ids = [f"r{i}" for i in range(200)]
    base = run_of({"exact": dict.fromkeys(ids, 1.0), "len": dict.fromkeys(ids, 1.0)})
    now = {i: (0.0 if n % 4 == 0 else 1.0) for n, i in enumerate(ids)}  # 50 of 200 drop
    run = run_of({"exact": now, "len": dict.fromkeys(ids, 1.0)})
    out = compare_runs(run, base, run_id="a", baseline_run_id="b", limit=7)
    exact, length = out.metrics
    assert out.verdict == "regressed"
    assert (exact.paired_count, exact.regressed, exact.improved, exact.unchanged) == (200, 50, 0, 150)
    assert exact.mean_delta == pytest.approx(-0.25) and exact.pass_rate_delta == pytest.approx(-0.25)
    assert exact.ci_high < 0 and exact.p_value == pytest.approx(2 / 2**50) and exact.significant
    assert not length.significant and length.mean_delta == 0 and length.p_value == 1.0
    assert len(out.regressions) == 7 and out.improvements == []
    assert [r.record_id for r in out.regressions] == sorted([i for n, i in enumerate(ids) if n % 4 == 0])[:7]
    assert out.regressions[0].baseline_is_passed and not out.regressions[0].is_passed
    assert "p < 0.05" in out.method and "CI excludes 0" in out.method


def test_an_improvement_and_a_noise_level_change():
    ids = [f"r{i}" for i in range(100)]
    base = run_of({"m": {i: (1.0 if n % 2 else 0.0) for n, i in enumerate(ids)}})
    better = run_of({"m": dict.fromkeys(ids, 1.0)})
    assert compare_runs(better, base, run_id="a", baseline_run_id="b").verdict == "improved"
    # 3 up, 2 down out of 100: not significant at 95 %.
    noisy = {i: s.score for i, s in base["m"].items()}
    for i, s in zip(ids[:5], [1.0, 1.0, 1.0, 0.0, 0.0], strict=True):
        noisy[i] = s if noisy[i] != s else 1.0 - s
    out = compare_runs(run_of({"m": noisy}), base, run_id="a", baseline_run_id="b")
    assert out.verdict == "no_significant_change" and not out.metrics[0].significant


def test_significance_needs_both_the_interval_and_the_sign_test():
    # Five of five records drop: the CI is [−1, −1], but the sign test's p = 2/2⁵ = 0.0625.
    ids = [f"r{i}" for i in range(5)]
    out = compare_runs(
        run_of({"m": dict.fromkeys(ids, 0.0)}),
        run_of({"m": dict.fromkeys(ids, 1.0)}),
        run_id="a",
        baseline_run_id="b",
    )
    m = out.metrics[0]
    assert (m.ci_low, m.ci_high) == (-1.0, -1.0) and m.p_value == pytest.approx(0.0625)
    assert not m.significant and out.verdict == "no_significant_change"
    # At 0.90 confidence the same evidence is enough.
    loose = compare_runs(
        run_of({"m": dict.fromkeys(ids, 0.0)}),
        run_of({"m": dict.fromkeys(ids, 1.0)}),
        run_id="a",
        baseline_run_id="b",
        confidence=0.9,
    )
    assert loose.verdict == "regressed"


def test_metrics_in_one_run_only_and_unmatched_records():
    run = run_of({"shared": {"a": 1.0, "b": 0.0, "x": 1.0}, "new": {"a": 1.0}})
    base = run_of({"shared": {"a": 1.0, "b": 1.0, "y": 0.0, "z": None}, "old": {"a": 0.0}})
    out = compare_runs(run, base, run_id="a", baseline_run_id="b", metric_order=["shared", "new"])
    by = {m.metric_name: m for m in out.metrics}
    assert list(by) == ["shared", "new", "old"]
    assert (out.unmatched.run_only, out.unmatched.baseline_only) == (1, 2)
    new, old = by["new"], by["old"]
    assert new.mean_delta is None and new.pass_rate_delta is None and new.ci_low is None
    assert new.baseline.count == 0 and new.baseline.mean is None and new.run.count == 1
    assert old.run.count == 0 and old.paired_count == 0 and not old.significant
    assert by["shared"].paired_count == 2 and by["shared"].baseline.count == 3  # z unscored


def test_unscored_evaluations_pair_with_nothing():
    run = run_of({"m": {"a": None, "b": 1.0}})
    base = run_of({"m": {"a": 1.0, "b": 1.0}})
    m = compare_runs(run, base, run_id="a", baseline_run_id="b").metrics[0]
    assert m.paired_count == 1 and m.run.count == 1 and m.run.pass_rate == 0.5


scores = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=4), st.one_of(st.none(), st.floats(0, 1)), max_size=60
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["m1", "m2", "m3"]), scores, min_size=1),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_identical_runs_give_zero_deltas_and_no_significance(metrics, confidence):
    run = run_of(metrics)
    out = compare_runs(run, run_of(metrics), run_id="a", baseline_run_id="a", confidence=confidence)
    assert out.verdict == "no_significant_change"
    assert out.regressions == [] and out.improvements == []
    assert (out.unmatched.run_only, out.unmatched.baseline_only) == (0, 0)
    for m in out.metrics:
        assert not m.significant and m.improved == m.regressed == 0
        assert m.mean_delta in (0.0, None) and m.pass_rate_delta in (0.0, None)
        assert m.p_value in (1.0, None) and (m.ci_low, m.ci_high) in ((0.0, 0.0), (None, None))


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text("abc", min_size=1, max_size=3), st.floats(0, 1), min_size=1, max_size=80),
    st.integers(0, 2**32),
)
def test_swapping_the_runs_mirrors_the_comparison(base_scores, seed):
    rng = random.Random(seed)
    now = {r: min(1.0, max(0.0, s + rng.choice([-0.3, 0.0, 0.2]))) for r, s in base_scores.items()}
    ab = compare_runs(run_of({"m": now}), run_of({"m": base_scores}), run_id="a", baseline_run_id="b")
    ba = compare_runs(run_of({"m": base_scores}), run_of({"m": now}), run_id="a", baseline_run_id="b")
    x, y = ab.metrics[0], ba.metrics[0]
    assert x.mean_delta == pytest.approx(-y.mean_delta, abs=1e-12)
    assert (x.improved, x.regressed, x.p_value) == (y.regressed, y.improved, y.p_value)
    assert x.ci_low <= x.mean_delta <= x.ci_high or x.paired_count < 3


def test_a_hundred_thousand_pairs_cost_resamples_times_distinct_values(monkeypatch):
    """The bootstrap draws bin counts, not indices: 100,000 binary pairs must cost at most
    resamples × distinct deltas binomial draws (index resampling would make 2·10⁸ draws)."""
    draws = 0
    real = random.Random.binomialvariate

    def counted(self, n=1, p=0.5):
        nonlocal draws
        draws += 1
        return real(self, n, p)

    monkeypatch.setattr(random.Random, "binomialvariate", counted)
    rng = random.Random(1)
    ids = [str(i) for i in range(100_000)]
    base = run_of({"m": {i: float(rng.random() < 0.7) for i in ids}})
    run = run_of({"m": {i: float(rng.random() < 0.69) for i in ids}})
    out = compare_runs(run, base, run_id="a", baseline_run_id="b")
    assert out.metrics[0].paired_count == 100_000
    # deltas ∈ {−1, 0, 1}: two drawn bins per resample (the last takes the rest), and
    # binomialvariate(n, p > ½) calls itself once for 1 − p.
    assert 0 < draws <= 2 * RESAMPLES * 3
