"""The CI gate's decision and its reports: JUnit XML (one test case per metric) and Markdown.

The gate passes when the run completed and **every metric's mean score reaches the gate
threshold** (``--threshold``: one number for all metrics, or ``name=value`` per metric; by
default each metric's own threshold from the eval version) — the *metric level* of
docs/concepts.md. With a baseline, a comparison whose verdict is ``regressed`` (a metric
significantly worse) also fails the gate.

The gate does not judge the run's own verdict (the *run level*: the mean of the metric means
against the run threshold), and the two can differ either way: a run with verdict ``pass``
fails the gate when one metric's mean is below its threshold, and a run with verdict ``fail``
passes it when every metric reaches a threshold lower than the run's. So every report of the
gate names the rule that decided it and shows the run verdict beside it (``summary``).
Decision and rendering are pure: they take the run, its evaluations and the comparison, and
never call the API.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from assay._format import describe_generation, judge_cost, num, pct, run_verdict, safe, signed, usd
from assay.exit_codes import ExitCode
from assay.models import Comparison, EvalRun, Evaluation

MAX_LISTED_RECORDS = 50


@dataclass
class MetricCheck:
    name: str
    scorer: str | None
    mean: float | None
    pass_rate: float | None
    threshold: float
    count: int
    passed: bool
    failing: list[Evaluation] = field(default_factory=list)
    mean_delta: float | None = None
    significant: bool | None = None
    # Where the gate threshold came from: "--threshold NAME=X", "--threshold X" or the
    # metric's own threshold in the eval version (the default).
    source: str = "the metric's own threshold"

    @property
    def reason(self) -> str:
        """``metric 'exact' mean 0.410 < 0.50 (--threshold exact=0.5)``: what the gate judged."""
        if self.mean is None:
            return (
                f"metric '{self.name}' has no mean (nothing scored) to compare with "
                f"{num(self.threshold, 2)} ({self.source})"
            )
        op = "≥" if self.passed else "<"
        return f"metric '{self.name}' mean {num(self.mean)} {op} {num(self.threshold, 2)} ({self.source})"


# Why a gate could not decide: the run ended failed/cancelled, it did not finish in time, the API
# answered an error (or could not be reached), or the gate was misconfigured.
ERROR_KINDS = ("run", "timeout", "api", "usage")


@dataclass
class GateResult:
    run: EvalRun | None
    metrics: list[MetricCheck]
    comparison: Comparison | None = None
    error: str | None = None
    error_kind: str = "run"

    @property
    def regressed(self) -> bool:
        return self.comparison is not None and self.comparison.verdict == "regressed"

    @property
    def passed(self) -> bool:
        return self.error is None and all(m.passed for m in self.metrics) and not self.regressed

    @property
    def exit_code(self) -> ExitCode:
        if self.error:
            return ExitCode.TIMEOUT if self.error_kind == "timeout" else ExitCode.ERROR
        return ExitCode.OK if self.passed else ExitCode.GATE_FAILED

    @property
    def verdict(self) -> str:
        """The gate's own verdict: ``pass``, ``fail`` or ``error`` (it could not decide)."""
        return "error" if self.error else ("pass" if self.passed else "fail")

    @property
    def reasons(self) -> list[str]:
        """Why the gate failed: each metric below its gate threshold, and a regression."""
        out = [m.reason for m in self.metrics if not m.passed]
        if self.regressed and self.comparison is not None:
            out.append(f"significant regression vs baseline {self.comparison.baseline_run_id} (--baseline)")
        return out

    def summary(self) -> str:
        """One line naming the rule that decided and, beside it, the run verdict, e.g.
        ``gate FAILED: metric 'exact' mean 0.410 < 0.50 (--threshold 0.5); run verdict pass
        (result 0.738 ≥ run threshold 0.70)``."""
        if self.error:
            head = f"gate ERROR: {self.error}"
        elif self.passed:
            head = f"gate PASSED: all {len(self.metrics)} metric means ≥ their gate thresholds" + (
                "; no significant regression" if self.comparison is not None else ""
            )
        else:
            head = "gate FAILED: " + "; ".join(self.reasons)
        return head + ("" if self.run is None else f"; {run_verdict(self.run)}")


def error_result(message: str, run: EvalRun | None = None, *, kind: str = "api") -> GateResult:
    """The gate's result when it could not decide (``kind`` in ``ERROR_KINDS``): its JUnit has an
    ``error`` test case and its Markdown says why, so a pull request still gets both."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"kind must be one of {ERROR_KINDS} (got {kind!r})")
    return GateResult(run, [], None, error=message, error_kind=kind)


def parse_thresholds(values: Sequence[str] | None) -> tuple[float | None, dict[str, float]]:
    """``["0.8", "exact=0.9"]`` → (0.8, {"exact": 0.9}); raises ValueError naming the bad value."""
    default: float | None = None
    per_metric: dict[str, float] = {}
    for value in values or ():
        name, sep, number = value.rpartition("=")
        try:
            threshold = float(number)
        except ValueError:
            raise ValueError(f"--threshold {value!r}: expected a number or NAME=NUMBER") from None
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"--threshold {value!r}: must be between 0 and 1")
        if sep:
            per_metric[name] = threshold
        else:
            default = threshold
    return default, per_metric


def decide(
    run: EvalRun,
    evaluations: Sequence[Evaluation],
    *,
    default_threshold: float | None = None,
    per_metric: Mapping[str, float] | None = None,
    comparison: Comparison | None = None,
) -> GateResult:
    if run.status != "completed":
        return GateResult(
            run,
            [],
            comparison,
            error=f"run {run.id} ended {run.status}: {run.error_message or 'no error message'}",
        )
    per_metric = dict(per_metric or {})
    unknown = set(per_metric) - set(run.aggregate_results or {})
    if unknown:
        return GateResult(
            run, [], comparison, error=f"--threshold names unknown metric(s): {sorted(unknown)}"
        )
    deltas = {m.metric_name: m for m in (comparison.metrics if comparison else [])}
    checks = []
    for name, agg in (run.aggregate_results or {}).items():
        if name in per_metric:
            threshold, source = per_metric[name], f"--threshold {name}={per_metric[name]:g}"
        elif default_threshold is not None:
            threshold, source = default_threshold, f"--threshold {default_threshold:g}"
        else:
            threshold = 0.0 if agg.threshold is None else agg.threshold
            source = "the metric's own threshold"
        failing = [e for e in evaluations if e.metric_name == name and not e.is_passed]
        delta = deltas.get(name)
        checks.append(
            MetricCheck(
                name=name,
                scorer=agg.scorer,
                mean=agg.mean,
                pass_rate=agg.pass_rate,
                threshold=threshold,
                count=agg.count or 0,
                passed=agg.mean is not None and agg.mean >= threshold,
                failing=failing,
                mean_delta=delta.mean_delta if delta else None,
                significant=delta.significant if delta else None,
                source=source,
            )
        )
    return GateResult(run, checks, comparison)


def _record_line(e: Evaluation) -> str:
    record = e.record or {}
    why = e.reasoning or e.error_message or ""
    output = record.get("output")
    return (
        f"{e.record_id}: score {num(e.score)}"
        + (f" — {why}" if why else "")
        + (f" — output={output!r}" if output is not None else "")
    )


def junit_xml(result: GateResult, *, suite_name: str = "assay") -> bytes:
    """JUnit XML: one ``testcase`` per metric (failing records in the failure text), one for the
    baseline comparison when there is one, and an ``error`` test case when the run did not complete.
    The properties keep the two levels apart: ``gate.verdict`` (what decided the exit code) and
    ``run.verdict`` (the run's own result vs run threshold), with ``gate.summary`` naming both."""
    run = result.run
    cases: list[ET.Element] = []
    for check in result.metrics:
        case = ET.Element("testcase", classname=f"{suite_name}.metrics", name=check.name, time="0")
        if not check.passed:
            failure = ET.SubElement(case, "failure", type="threshold", message=check.reason)
            lines = [
                f"gate: {check.reason}",
                f"metric {check.name} ({check.scorer}): mean {num(check.mean)} (0–1), pass rate "
                f"{pct(check.pass_rate)} of its evaluations",
                f"{len(check.failing)} failing record(s):",
            ]
            lines += [f"  {_record_line(e)}" for e in check.failing[:MAX_LISTED_RECORDS]]
            if len(check.failing) > MAX_LISTED_RECORDS:
                lines.append(f"  … and {len(check.failing) - MAX_LISTED_RECORDS} more")
            failure.text = "\n".join(lines)
        else:
            ET.SubElement(case, "system-out").text = (
                f"gate: {check.reason}; pass rate {pct(check.pass_rate)} of its evaluations; "
                f"{len(check.failing)} record(s) below the metric's own threshold"
            )
        cases.append(case)
    if result.comparison is not None:
        comp = result.comparison
        case = ET.Element(
            "testcase", classname=f"{suite_name}.baseline", name="no significant regression", time="0"
        )
        if result.regressed:
            failure = ET.SubElement(
                case, "failure", type="regression", message=f"regressed vs baseline {comp.baseline_run_id}"
            )
            lines = [
                f"{m.metric_name}: mean {signed(m.mean_delta)} (CI {num(m.ci_low)}..{num(m.ci_high)}, "
                f"p={num(m.p_value, 4)})"
                for m in comp.metrics
                if m.significant and (m.mean_delta or 0) < 0
            ]
            lines += [
                f"  {r.record_id} {r.metric_name}: {num(r.baseline_score)} → {num(r.score)}"
                for r in comp.regressions[:MAX_LISTED_RECORDS]
            ]
            failure.text = "\n".join(lines)
        cases.append(case)
    if result.error:
        on_run = result.error_kind in ("run", "timeout")
        case = ET.Element(
            "testcase",
            classname=f"{suite_name}.{'run' if on_run else 'gate'}",
            name="run completed" if on_run else "gate ran",
            time="0",
        )
        ET.SubElement(case, "error", type=result.error_kind, message=result.error).text = result.error
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    root = ET.Element(
        "testsuites", name=suite_name, tests=str(len(cases)), failures=str(failures), errors=str(errors)
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"{suite_name} run {run.id}" if run else suite_name,
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time="0",
        timestamp=((run.completed_at or run.created_at or "") if run else "")[:19],
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="gate.verdict", value=result.verdict)
    ET.SubElement(props, "property", name="gate.summary", value=result.summary())
    for key in (
        "id",
        "dataset_id",
        "dataset_version",
        "eval_id",
        "eval_version_id",
        "status",
        "verdict",
        "result",
        "threshold",
        "total_cost",
    ):
        value = getattr(run, key) if run else None
        if value is not None:
            ET.SubElement(props, "property", name=f"run.{key}", value=str(value))
    if run is not None and run.generation:
        ET.SubElement(props, "property", name="run.model", value=describe_generation(run.generation))
    suite.extend(cases)
    for element in root.iter():  # XML 1.0 allows no control character but tab, LF and CR
        element.text = None if element.text is None else safe(element.text)
        for name, value in element.attrib.items():
            element.set(name, safe(value))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _md(text: object) -> str:
    return safe(str(text).replace("|", "\\|").replace("\n", " "))


_ERROR_TITLES = {
    "run": "the run did not complete",
    "timeout": "the run did not finish in time",
    "api": "API error",
    "usage": "bad gate settings",
}


def markdown(result: GateResult, *, title: str = "Assay eval gate") -> str:
    """A summary for a pull-request comment: verdict, the metric table, failing records."""
    run = result.run
    head = ("✅ passed" if result.passed else "❌ failed") if not result.error else "⚠️ error"
    out = [f"### {title}: {head}", ""]
    if result.error:
        out += [
            f"**The gate could not decide ({_ERROR_TITLES[result.error_kind]}):** {_md(result.error)}",
            "",
        ]
    if not result.error:
        gate = "passed" if result.passed else "failed: " + "; ".join(result.reasons)
        out.append(f"**Gate** (each metric's mean vs its gate threshold): {_md(gate)}")
        out.append("")
    if run is None:
        out.append("No run was scheduled.")
    else:
        out.append(
            f"**Run verdict** (result = mean of the metric means, vs the run threshold; not what "
            f"the gate judges): {_md(run_verdict(run))}"
        )
        out.append("")
        out.append(
            f"Run `{run.id}` · {run.status} · {run.item_count} records, {run.failed_count} with "
            f"evaluations that could not be scored · judge cost {judge_cost(run)} · "
            + (
                f"model under test {_md(describe_generation(run.generation))}, generation cost "
                f"{usd(run.cost_breakdown.generation if run.cost_breakdown else None)} · "
                if run.generation
                else ""
            )
            + "scores on a 0–1 scale"
        )
    if result.metrics:
        baseline = result.comparison is not None
        out += [
            "",
            "| metric | scorer | mean | pass rate | gate threshold | threshold from | gate |"
            + (" Δ mean vs baseline |" if baseline else ""),
            "|---|---|---:|---:|---:|---|---|" + ("---:|" if baseline else ""),
        ]
        for m in result.metrics:
            row = (
                f"| {_md(m.name)} | {_md(m.scorer)} | {num(m.mean)} | {pct(m.pass_rate)} | "
                f"{num(m.threshold, 2)} | {_md(m.source)} | {'✅' if m.passed else '❌'} |"
            )
            if baseline:
                row += f" {signed(m.mean_delta)}{' (significant)' if m.significant else ''} |"
            out.append(row)
    if result.comparison is not None:
        comp = result.comparison
        out += [
            "",
            f"Baseline `{comp.baseline_run_id}`: **{_md(comp.verdict)}** "
            f"({_md(comp.method)}, {pct(comp.confidence_level, 0)} confidence); "
            f"{sum(m.regressed or 0 for m in comp.metrics)} record-metric pair(s) regressed, "
            f"{sum(m.improved or 0 for m in comp.metrics)} improved.",
        ]
    failing = [(m.name, e) for m in result.metrics if not m.passed for e in m.failing]
    if failing:
        out += [
            "",
            f"<details><summary>{len(failing)} failing evaluation(s) in failing metrics</summary>",
            "",
            "| metric | record | score | why |",
            "|---|---|---:|---|",
        ]
        for name, e in failing[:MAX_LISTED_RECORDS]:
            out.append(
                f"| {_md(name)} | `{_md(e.record_id)}` | {num(e.score)} | "
                f"{_md((e.reasoning or e.error_message or '')[:160])} |"
            )
        if len(failing) > MAX_LISTED_RECORDS:
            out.append(f"| … | {len(failing) - MAX_LISTED_RECORDS} more | | |")
        out += ["", "</details>"]
    return safe("\n".join(out)) + "\n"
