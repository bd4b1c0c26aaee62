"""One verdict story: the terminal, the HTML report, the gate and JUnit tell the same one.

A run has two levels of verdict (docs/concepts.md): the *run level* (``verdict``: the mean of
the metric means against the run threshold) and the *metric level* (each metric's mean against
its own threshold). They can disagree — the example below is a new user's first run: verdict
``pass`` (0.738 ≥ 0.70) while three of four metric means are below their thresholds — so every
surface must say which level it shows. These tests fail when one surface drops a level, names
it ambiguously, or disagrees with another about which metrics are below.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from assay import cli
from assay._format import metric_level, run_summary, run_verdict
from assay.gate import decide, junit_xml, markdown
from assay.models import EvalRun, Evaluation, MetricAggregate
from assay.report import PASS_COLOUR, banner_colour, render

from cli_support import DS_ID, EVV_ID, RUN_ID, ci_args, run_cli
from fake_api import fake_api, reply
from tests.support.junit import validate_junit

# metric: (mean, own threshold, passed, scored, unscored). Mean of means = 2.952 / 4 = 0.738.
MEANS = {
    "exact": (0.41, 0.5, 29, 118, 2),
    "f1": (0.65, 0.9, 40, 120, 0),
    "judge": (0.892, 0.95, 70, 120, 0),
    "rouge": (1.0, 0.8, 120, 120, 0),
}
BELOW = ["exact", "f1", "judge"]


def aggregate(
    name: str,
    mean: float,
    threshold: float,
    passed: int,
    count: int,
    unscored: int,
    *,
    old_name: bool = False,
) -> dict:
    return {
        "metric": name,
        "scorer": "exact_match",
        "evaluator_type": "rule",
        "threshold": threshold,
        "mean": mean,
        "pass_rate": passed / (count + unscored),
        "count": count,
        "passed": passed,
        ("failed" if old_name else "unscored"): unscored,
        "is_gte_threshold": mean >= threshold,
    }


def run_doc(*, result: float = 0.738, threshold: float = 0.7, **extra) -> dict:
    verdict = "pass" if result >= threshold else "fail"
    return {
        "id": RUN_ID,
        "status": "completed",
        "item_count": 120,
        "completed_count": 118,
        "failed_count": 2,
        "dataset_id": "d1",
        "eval_version_id": "ev1",
        "result": result,
        "threshold": threshold,
        "is_gte_threshold": verdict == "pass",
        "verdict": verdict,
        "pass_rate": 0.242,
        "total_cost": 0.0,
        "aggregate_results": {name: aggregate(name, *values) for name, values in MEANS.items()},
        **extra,
    }


def evaluations() -> list[Evaluation]:
    return [
        Evaluation.from_api(
            {
                "id": f"e-{name}",
                "record_id": f"r-{name}",
                "metric_name": name,
                "score": 0.0,
                "is_passed": False,
                "reasoning": "wrong",
            }
        )
        for name in BELOW
    ]


def text(markup: str) -> str:
    """What a reader of the page sees: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def metric_card(page: str, name: str) -> str:
    card = re.search(rf'<section class="metric"><h3>{name}</h3>.*?</section>', page)
    assert card, f"no card for {name}"
    return " ".join(text(card.group()).split())


# ---------------------------------------------------------------------------- the report
def test_the_report_banner_judges_the_run_and_the_cards_judge_each_metric():
    run = EvalRun.from_api(run_doc())
    page = render(run, evaluations())
    banner = re.search(r'<div class="banner" id="verdict"[^>]*>(.*?)</div>', page).group(1)
    headline = " ".join(text(re.search(r"<h1>.*?</h1>", banner).group()).split())
    assert headline == "Run verdict: PASS (result 0.738 ≥ run threshold 0.70)"
    assert banner_colour(run) == PASS_COLOUR
    words = " ".join(text(banner).split())
    assert "result = mean of the metric means" in words
    # the green banner itself says the metric level disagrees, instead of leaving it to the cards
    assert "Metric level: 3 of 4 metric means below their own thresholds (exact, f1, judge)" in words
    for name, (mean, threshold, *_) in MEANS.items():
        card = metric_card(page, name)
        op = "<" if name in BELOW else "≥"
        assert f"Metric level: metric mean {mean:.3f} {op} metric threshold {threshold:.2f}" in card
    # the pass rate's denominator is every evaluation, and what could not be scored is named so
    assert (
        "pass rate 24.2% (29 of 120 evaluations ≥ metric threshold; 2 could not be scored)"
    ) in metric_card(page, "exact")
    assert "mean below threshold" not in page and " failed)" not in page
    assert "Records with unscored evaluations" in page and "Completed / failed" not in page


def test_a_report_with_every_metric_above_its_threshold_has_no_metric_level_warning():
    doc = run_doc()
    for agg in doc["aggregate_results"].values():
        agg["threshold"], agg["is_gte_threshold"] = 0.1, True
    page = render(EvalRun.from_api(doc), [])
    assert "<h1>Run verdict: PASS <span" in page and 'id="metric-level"' not in page


# ---------------------------------------------------------------------------- the gate and JUnit
def test_the_gate_names_the_rule_that_failed_and_shows_the_run_verdict_beside_it():
    run = EvalRun.from_api(run_doc())
    result = decide(run, evaluations())
    assert result.exit_code == 1 and result.verdict == "fail"
    assert result.summary() == (
        "gate FAILED: metric 'exact' mean 0.410 < 0.50 (the metric's own threshold); "
        "metric 'f1' mean 0.650 < 0.90 (the metric's own threshold); "
        "metric 'judge' mean 0.892 < 0.95 (the metric's own threshold); "
        "run verdict pass (result 0.738 ≥ run threshold 0.70)"
    )
    # a per-metric --threshold is named as such
    per_metric = decide(run, evaluations(), default_threshold=0.4, per_metric={"exact": 0.5})
    assert per_metric.summary() == (
        "gate FAILED: metric 'exact' mean 0.410 < 0.50 "
        "(--threshold exact=0.5); run verdict pass (result 0.738 ≥ "
        "run threshold 0.70)"
    )


def test_a_passing_gate_still_shows_a_failing_run_verdict():
    # The gate judges metric means only; with thresholds below the run's, it can pass a run whose
    # own verdict is fail — and must say so rather than imply the run passed.
    run = EvalRun.from_api(run_doc(threshold=0.8))
    result = decide(run, [], default_threshold=0.3)
    assert result.passed and result.summary() == (
        "gate PASSED: all 4 metric means ≥ their gate thresholds; "
        "run verdict fail (result 0.738 < run threshold 0.80)"
    )


def test_junit_carries_both_verdicts_and_fails_each_metric_with_the_gates_reason():
    run = EvalRun.from_api(run_doc())
    result = decide(run, evaluations())
    root = validate_junit(junit_xml(result))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["run.verdict"] == "pass" and props["gate.verdict"] == "fail"
    assert props["gate.summary"] == result.summary()
    failures = {c.get("name"): c.find("failure") for c in root.iter("testcase")}
    assert sorted(n for n, f in failures.items() if f is not None) == BELOW
    for name in BELOW:
        message = failures[name].get("message")
        assert message.startswith(f"metric '{name}' mean ") and message in props["gate.summary"]


def test_the_markdown_summary_separates_the_gate_from_the_run_verdict():
    summary = markdown(decide(EvalRun.from_api(run_doc()), evaluations()))
    assert summary.startswith("### Assay eval gate: ❌ failed")
    assert "**Gate** (each metric's mean vs its gate threshold): failed: metric 'exact' mean 0.410" in summary
    assert (
        "**Run verdict** (result = mean of the metric means, vs the run threshold; not what the "
        "gate judges): run verdict pass (result 0.738 ≥ run threshold 0.70)"
    ) in summary
    assert "120 records, 2 with evaluations that could not be scored" in summary


# ---------------------------------------------------------------------------- the terminal
def test_runs_get_prints_the_run_verdict_and_the_metrics_below_their_own_thresholds(capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, run_doc()))
        assert run_cli(api.url, "runs", "get", RUN_ID) == 0
    out = capsys.readouterr().out
    assert "120 records: 118 fully scored, 2 with evaluations that could not be scored" in out
    assert "run verdict PASS: result 0.738 (mean of the metric means) ≥ run threshold 0.70" in out
    assert "metric level: 3 of 4 metric means below their own thresholds (exact, f1, judge)" in out
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.split() and line.split()[0] in MEANS
    }
    assert sorted(n for n, cells in rows.items() if "BELOW" in cells) == BELOW
    assert rows["exact"][-3:] == ["24.2%", "29/120", "2"]  # pass rate, passed/all, unscored
    assert "0 failed" not in out and "failed of" not in out


def test_ci_prints_the_gate_rule_and_the_run_verdict_and_writes_both_to_junit(tmp_path, capsys):
    export = "".join(json.dumps(e.raw) + "\n" for e in evaluations()).encode()
    with fake_api() as api:
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, {**run_doc(), "status": "pending"}))
        # `assay ci` checks `--threshold exact=…` against the eval version before scheduling
        api.on(
            "GET",
            f"/v1/eval-versions/{EVV_ID}",
            reply(
                200, {"id": EVV_ID, "metrics": [{"name": name, "scorer": "exact_match"} for name in MEANS]}
            ),
        )
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, run_doc()))
        api.on(
            "GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "application/x-ndjson"}, export)
        )
        code = cli.main(
            ci_args(
                api.url, tmp_path, "--threshold", "0.4", "--threshold", "exact=0.5", "--poll-interval", "0.01"
            )
        )
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "gate FAILED: metric 'exact' mean 0.410 < 0.50 (--threshold exact=0.5); "
        "run verdict pass (result 0.738 ≥ run threshold 0.70)"
    ) in out
    assert "threshold from" in out and "--threshold 0.4" in out
    props = {
        p.get("name"): p.get("value")
        for p in validate_junit((tmp_path / "junit.xml").read_bytes()).iter("property")
    }
    assert (props["run.verdict"], props["gate.verdict"]) == ("pass", "fail")
    assert "<h1>Run verdict: PASS <span" in (tmp_path / "report.html").read_text()


# ---------------------------------------------------------------------------- every surface at once
def test_every_surface_agrees_on_which_metrics_are_below_their_own_thresholds():
    run = EvalRun.from_api(run_doc())
    page = render(run, evaluations())
    in_report = sorted(n for n in MEANS if " < metric threshold " in metric_card(page, n))
    in_terminal = sorted(
        line.split()[0]
        for line in run_summary(run).splitlines()
        if line.split() and line.split()[0] in MEANS and "BELOW" in line.split()
    )
    result = decide(run, evaluations())  # default: each metric's own threshold
    in_gate = sorted(m.name for m in result.metrics if not m.passed)
    root = validate_junit(junit_xml(result))
    in_junit = sorted(c.get("name") for c in root.iter("testcase") if c.find("failure") is not None)
    assert in_report == in_terminal == in_gate == in_junit == BELOW
    # and on the run verdict, worded the same way
    assert run_verdict(run) == "run verdict pass (result 0.738 ≥ run threshold 0.70)"
    assert run_verdict(run) in result.summary()
    assert "result 0.738 ≥ run threshold 0.70" in text(page)


# ---------------------------------------------------------------------------- the unscored count
@pytest.mark.parametrize("old_name", [False, True])
def test_the_client_reads_unscored_from_new_servers_and_failed_from_old_ones(old_name):
    agg = MetricAggregate.from_api(aggregate("exact", 0.41, 0.5, 29, 118, 2, old_name=old_name))
    assert agg.unscored == 2 and agg.evaluations == 120
    assert metric_level(agg) == "metric mean 0.410 < metric threshold 0.50"


def test_a_run_with_no_verdict_says_why():
    run = EvalRun.from_api({**run_doc(), "verdict": None, "result": None, "is_gte_threshold": None})
    assert run_verdict(run) == "no run verdict (no metric could be scored)"
    assert "<h1>No run verdict</h1>" in render(run, [])


# ---------------------------------------------------------------------------- the definitions
def test_concepts_is_linked_and_its_gate_example_is_what_the_gate_prints():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    concepts = (root / "docs" / "concepts.md").read_text()
    assert "docs/concepts.md" in (root / "README.md").read_text()
    assert "(concepts.md)" in (root / "docs" / "cli.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", concepts):  # relative links resolve
        assert (root / "docs" / target).exists(), target
    # the documented line is the gate's own output for that example, not a paraphrase
    doc = run_doc()
    for name in ("f1", "judge"):
        doc["aggregate_results"][name]["threshold"] = 0.5
        doc["aggregate_results"][name]["is_gte_threshold"] = True
    line = decide(EvalRun.from_api(doc), []).summary()
    assert line.startswith("gate FAILED: metric 'exact' mean 0.410 < 0.50") and f"\n{line}\n" in concepts
