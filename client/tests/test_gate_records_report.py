"""Pure parts of the client package: the gate's decision, JUnit and Markdown; dataset files; the report."""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET

import pytest

from assay import cli
from assay.gate import decide, error_result, junit_xml, markdown, parse_thresholds
from assay.models import Comparison, EvalRun, Evaluation
from assay.records import RecordFileError, iter_records
from assay.report import FAIL_COLOUR, OTHER_COLOUR, PASS_COLOUR, banner_colour, histogram, render

from tests.support.junit import validate_junit


def make_run(status: str = "completed", verdict: str | None = "pass", **means: float) -> EvalRun:
    means = means or {"exact": 0.5, "f1": 0.9}
    aggs = {
        name: {
            "metric": name,
            "scorer": "exact_match",
            "evaluator_type": "rule",
            "threshold": 1.0,
            "mean": mean,
            "pass_rate": mean,
            "count": 4,
            "passed": int(4 * mean),
            "unscored": 0,
            "is_gte_threshold": mean >= 1.0,
        }
        for name, mean in means.items()
    }
    return EvalRun.from_api(
        {
            "id": "run-1",
            "status": status,
            "verdict": verdict,
            "result": 0.7,
            "threshold": 0.6,
            "item_count": 4,
            "completed_count": 4,
            "failed_count": 0,
            "aggregate_results": aggs,
            "error_message": None if status == "completed" else "States.Timeout",
        }
    )


def make_evals() -> list[Evaluation]:
    rows = [
        ("r1", "exact", 1.0, True),
        ("r2", "exact", 0.0, False),
        ("r3", "exact", 0.0, False),
        ("r1", "f1", 1.0, True),
        ("r2", "f1", 0.6, False),
    ]
    return [
        Evaluation.from_api(
            {
                "id": f"{r}{m}",
                "record_id": r,
                "metric_name": m,
                "score": s,
                "is_passed": p,
                "reasoning": f"why {r} <&>",
                "record": {"output": f"out {r}"},
            }
        )
        for r, m, s, p in rows
    ]


def parse(xml: bytes) -> ET.Element:
    """Our JUnit, checked for what a JUnit consumer needs (counts, names, messages)."""
    return validate_junit(xml)


def test_parse_thresholds_takes_a_default_and_per_metric_values():
    assert parse_thresholds(["0.8", "exact=0.5", "f1=1"]) == (0.8, {"exact": 0.5, "f1": 1.0})
    assert parse_thresholds(None) == (None, {})
    for bad in (["high"], ["exact=2"], ["-0.1"]):
        with pytest.raises(ValueError, match="--threshold"):
            parse_thresholds(bad)


def test_gate_passes_only_when_every_metric_mean_reaches_its_threshold():
    run, evals = make_run(), make_evals()
    assert decide(run, evals, default_threshold=0.5).exit_code == 0
    failed = decide(run, evals, default_threshold=0.6)
    assert failed.exit_code == 1 and [m.name for m in failed.metrics if not m.passed] == ["exact"]
    assert [e.record_id for e in failed.metrics[0].failing] == ["r2", "r3"]
    # per-metric overrides beat the default; with none, each metric's own threshold (1.0) applies
    assert decide(run, evals, default_threshold=0.6, per_metric={"exact": 0.5}).exit_code == 0
    assert decide(run, evals).exit_code == 1


def test_gate_errors_on_an_unfinished_run_or_an_unknown_metric():
    assert decide(make_run("failed", None), []).exit_code == 2
    assert "States.Timeout" in (decide(make_run("failed", None), []).error or "")
    assert decide(make_run(), make_evals(), per_metric={"nope": 0.1}).exit_code == 2


def test_gate_fails_on_a_significant_regression_against_the_baseline():
    comparison = Comparison.from_api(
        {
            "run_id": "run-1",
            "baseline_run_id": "run-0",
            "verdict": "regressed",
            "metrics": [
                {
                    "metric_name": "exact",
                    "mean_delta": -0.5,
                    "significant": True,
                    "ci_low": -0.8,
                    "ci_high": -0.2,
                    "p_value": 0.01,
                }
            ],
            "regressions": [{"record_id": "r2", "metric_name": "exact", "score": 0.0, "baseline_score": 1.0}],
            "improvements": [],
        }
    )
    result = decide(make_run(), make_evals(), default_threshold=0.1, comparison=comparison)
    assert result.exit_code == 1 and all(m.passed for m in result.metrics)
    root = parse(junit_xml(result))
    baseline = root.find("./testsuite/testcase[@name='no significant regression']")
    assert baseline is not None and "r2 exact: 1.000 → 0.000" in baseline.find("failure").text
    assert "-0.500 (significant)" in markdown(result)
    comparison.verdict = "no_significant_change"
    assert decide(make_run(), make_evals(), default_threshold=0.1, comparison=comparison).exit_code == 0


def test_junit_has_one_testcase_per_metric_and_lists_failing_records():
    root = parse(junit_xml(decide(make_run(), make_evals(), default_threshold=0.6)))
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("errors") == "0"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"exact", "f1"} and cases["f1"].find("failure") is None
    failure = cases["exact"].find("failure")
    assert failure.get("message") == "metric 'exact' mean 0.500 < 0.60 (--threshold 0.6)"
    assert "r2: score 0.000 — why r2 <&> — output='out r2'" in failure.text and "r1:" not in failure.text
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run.id"] == "run-1" and props["run.verdict"] == "pass"
    assert props["gate.verdict"] == "fail"


def test_junit_reports_an_unfinished_run_as_an_error():
    root = parse(junit_xml(decide(make_run("cancelled", None), [])))
    assert root.get("errors") == "1" and root.find("./testsuite/testcase/error") is not None


def test_junit_and_markdown_of_a_gate_that_could_not_decide_say_why():
    # an API error before any run exists
    result = error_result("dataset not found (code resource.not_found, HTTP 404, request req-1)", kind="api")
    assert result.exit_code == 2 and not result.passed
    root = parse(junit_xml(result))
    assert root.get("tests") == "1" and root.get("errors") == "1" and root.get("failures") == "0"
    error = root.find("./testsuite/testcase[@name='gate ran']/error")
    assert error is not None and error.get("type") == "api" and "req-1" in error.get("message")
    # no run, so no run.* property; the gate's own verdict is there, and says it could not decide
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert set(props) == {"gate.verdict", "gate.summary"} and props["gate.verdict"] == "error"
    assert props["gate.summary"].startswith("gate ERROR: dataset not found")
    text = markdown(result)
    assert text.startswith("### Assay eval gate: ⚠️ error")
    assert "**The gate could not decide (API error):** dataset not found" in text
    assert "No run was scheduled." in text
    # a timeout: exit 3, and the run it waited for is named
    timed_out = error_result("run run-1 still running after 5 s", make_run("running", None), kind="timeout")
    assert timed_out.exit_code == 3
    root = parse(junit_xml(timed_out))
    case = root.find("./testsuite/testcase[@name='run completed']")
    assert case is not None and case.find("error").get("type") == "timeout"
    assert {p.get("name"): p.get("value") for p in root.iter("property")}["run.id"] == "run-1"
    assert "(the run did not finish in time):** run run-1 still running" in markdown(timed_out)
    with pytest.raises(ValueError, match="kind"):
        error_result("x", kind="bogus")


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (
            b'<testsuites tests="2"><testsuite name="s" tests="1" failures="0" errors="0">'
            b'<testcase name="a" classname="c"/></testsuite></testsuites>',
            "<testsuites> says tests=2",
        ),
        (
            b'<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            b'<testcase name="a" classname="c"><failure message="m"/></testcase></testsuite></testsuites>',
            "failures=0, its test cases say 1",
        ),
        (
            b'<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            b'<testcase name="a"/></testsuite></testsuites>',
            "lacks classname",
        ),
        (
            b'<testsuites><testsuite name="s" tests="1" failures="1" errors="0">'
            b'<testcase name="a" classname="c"><failure>why</failure></testcase></testsuite></testsuites>',
            "has no message",
        ),
        (
            b'<testsuites><testsuite name="s" tests="1" errors="0">'
            b'<testcase name="a" classname="c"/></testsuite></testsuites>',
            "lacks the failures attribute",
        ),
        (b"<results/>", "not <testsuites>"),
    ],
)
def test_the_junit_validator_rejects_what_a_consumer_would_misread(broken, complaint):
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        validate_junit(b'<?xml version="1.0" encoding="utf-8"?>\n' + broken)


def test_markdown_summary_has_the_verdict_table_and_failing_records():
    text = markdown(decide(make_run(), make_evals(), default_threshold=0.6))
    assert text.startswith("### Assay eval gate: ❌ failed")
    assert "| exact | exact_match | 0.500 | 50.0% | 0.60 | --threshold 0.6 | ❌ |" in text
    assert "| exact | `r2` | 0.000 | why r2 <&> |" in text
    assert markdown(decide(make_run(), make_evals(), default_threshold=0.5)).startswith(
        "### Assay eval gate: ✅"
    )


def test_records_from_csv_jsonl_and_json(tmp_path):
    csv_file = tmp_path / "d.csv"
    csv_file.write_text('id,input,output,metadata,team\nq1,"Hi, there",Hello,"{""k"": 1}",a\nq2,,,,\n')
    assert list(iter_records(csv_file)) == [
        {"id": "q1", "input": "Hi, there", "output": "Hello", "metadata": {"k": 1, "team": "a"}},
        {"id": "q2"},
    ]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"id": "a"}\n\n{"id": "b"\n')
    with pytest.raises(RecordFileError, match=r"d\.jsonl:3: not valid JSON"):
        list(iter_records(jsonl))
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps([{"id": "a"}, 3]))
    with pytest.raises(RecordFileError, match="record 2: a record must be a JSON object"):
        list(iter_records(as_json))
    with pytest.raises(RecordFileError, match="--format"):
        list(iter_records(tmp_path / "d.txt"))


def test_report_banner_colour_follows_the_verdict():
    assert banner_colour(make_run(verdict="pass")) == PASS_COLOUR
    assert banner_colour(make_run(verdict="fail")) == FAIL_COLOUR
    assert banner_colour(make_run("failed", None)) == OTHER_COLOUR


def test_report_shows_judge_cost_and_the_aws_estimate_when_present():
    run = make_run()
    run.total_cost, run.estimated_aws_cost = 0.0123, 0.00042
    page = render(run, make_evals())
    assert "$0.0123" in page and "AWS cost (est.)" in page and "$0.0004" in page
    assert "AWS cost" not in render(make_run(), make_evals())


def test_report_escapes_record_text_and_bins_scores():
    evals = make_evals()
    evals[1].record = {"output": "<script>alert(1)</script>"}
    page = render(make_run(), evals)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    svg = histogram([0.0, 0.05, 0.5, 1.0, 1.0], threshold=1.0)
    assert "0.0–0.1: 2" in svg and "0.5–0.6: 1" in svg and "0.9–1.0: 2" in svg


def test_cli_local_up_without_the_local_stack_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert cli.main(["local", "up"]) == 2
    assert "make install" in capsys.readouterr().err


def test_cli_bad_threshold_exits_2_before_calling_the_api(capsys):
    code = cli.main(
        [
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "k",
            "ci",
            "--dataset",
            "d",
            "--eval-version",
            "e",
            "--threshold",
            "abc",
        ]
    )
    assert code == 2 and "--threshold 'abc'" in capsys.readouterr().err
