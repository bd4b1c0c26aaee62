"""``assay ci``: the CI gate. Schedule a run, wait, decide (assay.gate), write the JUnit XML,
Markdown and HTML reports (also when the gate errored), print the gate table."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay._format import CONCEPTS, describe_generation, num, pct, safe, signed, table
from assay.cli.context import NO_API_KEY, CliError, Ctx, echo, is_id, resolve, resolve_eval_version, wait_for
from assay.cli.generation import generation_args, run_generation
from assay.errors import ApiError, AssayError, MissingApiKeyError, RunTimeoutError
from assay.exit_codes import ExitCode
from assay.gate import GateResult, decide, error_result, junit_xml, markdown, parse_thresholds
from assay.models import EvalRun, Evaluation
from assay.records import RecordFileError
from assay.report import render


def cmd_ci(ctx: Ctx) -> int:
    """The gate. Whatever happens after the arguments are read, ``--junit`` and ``--markdown`` are
    written: a gate that errored (API error, unreachable service, timeout) gets an ``error`` test
    case and a summary saying why, so the pull request still shows what went wrong."""
    a = ctx.args
    run: EvalRun | None = None
    try:
        try:
            default, per_metric = parse_thresholds(a.threshold)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        generation = _check_ci_options(ctx, per_metric)
        run = ctx.client.schedule_run(
            a.dataset,
            a.eval_version,
            dataset_version=a.dataset_version,
            name=a.name,
            batch_size=a.batch_size,
            generation=generation,
            cache=a.cache,
        )
        ctx.info(f"assay ci: run {run.id} scheduled")
        run = wait_for(ctx, run, a.timeout)
        evaluations = ctx.client.export_evaluations(run.id) if run.status == "completed" else []
        comparison = (
            ctx.client.compare_runs(run.id, a.baseline, limit=100)
            if a.baseline and run.status == "completed"
            else None
        )
    except RunTimeoutError as exc:
        run = exc.run or run
        hint = f"; it keeps running (`assay runs cancel {run.id}` stops it)" if run else ""
        _ci_reports(ctx, error_result(f"{exc}{hint}", run, kind="timeout"))
        echo(f"error: {exc}", file=sys.stderr)
        return ExitCode.TIMEOUT
    except (AssayError, CliError, RecordFileError) as exc:
        kind = "usage" if isinstance(exc, CliError) else "api"
        _ci_reports(ctx, error_result(_describe_error(exc), run, kind=kind))
        raise  # main() prints it (with the code and request id) and exits 2
    result = decide(run, evaluations, default_threshold=default, per_metric=per_metric, comparison=comparison)
    _ci_reports(ctx, result, evaluations)
    if ctx.json:
        return result.exit_code
    # The gate judges each metric's mean (the metric level); the run verdict (the run level) is
    # printed beside it by ``summary`` so a passing run and a failing gate never look contradictory.
    rows = [
        [
            m.name,
            num(m.mean),
            pct(m.pass_rate),
            num(m.threshold, 2),
            m.source,
            "ok" if m.passed else "FAIL",
            len(m.failing),
        ]
        + ([signed(m.mean_delta) + ("*" if m.significant else "")] if comparison else [])
        for m in result.metrics
    ]
    headers = ["metric", "mean", "pass rate", "gate thr.", "threshold from", "gate", "failing records"]
    echo("gate: each metric's mean vs its gate threshold (scores 0–1, rates in %)")
    echo(table(headers + (["Δ mean vs baseline"] if comparison else []), rows, right=(1, 2, 3, 6)))
    if comparison:
        echo(
            f"\nbaseline {comparison.baseline_run_id}: {comparison.verdict} "
            f"({sum(m.regressed or 0 for m in comparison.metrics)} record-metric pair(s) regressed)"
        )
    echo(f"\n{safe(result.summary(), multiline=False)}\ndefinitions: {CONCEPTS}")
    return result.exit_code


def _check_ci_options(ctx: Ctx, per_metric: dict[str, float]) -> dict[str, Any] | None:
    """Every gate setting checked before the run is scheduled: a typo must cost seconds, not
    the whole run's wait. Names become ids; a per-metric threshold must name a metric of the
    eval version; the baseline run must exist; prompt files are read. Returns the run's
    ``generation`` override (``--model``), or ``None``."""
    a = ctx.args
    gen = generation_args(a)
    for flag, value in (("--timeout", a.timeout), ("--poll-interval", a.poll_interval)):
        if value <= 0:
            raise CliError(f"{flag} must be more than 0 seconds (got {value:g})")
    for flag, count in (("--batch-size", a.batch_size), ("--dataset-version", a.dataset_version)):
        if count is not None and count < 1:
            raise CliError(f"{flag} must be 1 or more (got {count})")
    a.dataset = resolve(ctx, "dataset", a.dataset)
    a.eval_version = resolve_eval_version(ctx, a.eval_version)
    if per_metric:
        version = ctx.client.get_eval_version(a.eval_version)
        known = [m.name for m in version.metrics]
        for name in per_metric:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise CliError(
                    f"--threshold {name}=…: eval version {a.eval_version} has no metric {name!r} "
                    f"({hint}its metrics: {', '.join(known) or 'none'})"
                )
    if a.baseline:
        if not is_id(a.baseline):
            raise CliError(f"--baseline {a.baseline!r} is not a run id (runs have no names: assay runs list)")
        ctx.client.get_run(a.baseline)  # a mistyped baseline: a 404 now, not after the run
    generation = run_generation(ctx, gen, a.eval_version)
    if generation:
        ctx.info(f"assay ci: model under test {describe_generation(generation)}")
    return generation


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, MissingApiKeyError):
        return NO_API_KEY
    if isinstance(exc, ApiError):
        return f"{exc.message} (code {exc.code}, HTTP {exc.status}, request {exc.request_id or '-'})"
    return str(exc)


def _ci_reports(ctx: Ctx, result: GateResult, evaluations: Sequence[Evaluation] = ()) -> None:
    """--junit, --markdown, --report (only for a run that finished) and, with --json, the result."""
    a = ctx.args
    if a.junit:
        Path(a.junit).write_bytes(junit_xml(result))
    if a.markdown:
        Path(a.markdown).write_text(markdown(result), encoding="utf-8")
    run, comparison = result.run, result.comparison
    if a.report and run is not None and run.finished:
        Path(a.report).write_text(render(run, list(evaluations), comparison=comparison), encoding="utf-8")
    if ctx.json:
        ctx.out(
            "",
            {
                "passed": result.passed,
                "exit_code": int(result.exit_code),
                "error": result.error,
                "error_kind": result.error_kind if result.error else None,
                "gate_verdict": result.verdict,
                "summary": result.summary(),
                "run": run.to_dict() if run else None,
                "comparison": comparison.to_dict() if comparison else None,
                "metrics": [
                    {
                        "metric": m.name,
                        "mean": m.mean,
                        "pass_rate": m.pass_rate,
                        "threshold": m.threshold,
                        "threshold_from": m.source,
                        "passed": m.passed,
                        "failing_records": [e.record_id for e in m.failing],
                    }
                    for m in result.metrics
                ],
            },
        )
