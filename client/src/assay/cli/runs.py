"""``assay runs …``: schedule (and follow), get, list, evaluations, cancel, delete, export,
compare, report (``assay runs sweep``: ``assay.cli.sweep``)."""

from __future__ import annotations

import sys
from pathlib import Path

from assay._format import clip, describe_generation, num, pct, run_summary, safe, signed, table
from assay.cli.context import (
    Ctx,
    data_warnings,
    deleted,
    echo,
    listing,
    more_hint,
    page_through,
    resolve,
    resolve_eval_version,
    wait_for,
)
from assay.cli.generation import generation_args, run_generation
from assay.exit_codes import ExitCode
from assay.models import Comparison, EvalRun, Evaluation
from assay.report import render


def _schedule(ctx: Ctx) -> EvalRun:
    a = ctx.args
    gen = generation_args(a)  # flags checked and prompt files read before any request
    a.dataset = resolve(ctx, "dataset", a.dataset)
    a.eval_version = resolve_eval_version(ctx, a.eval_version)
    generation = run_generation(ctx, gen, a.eval_version)
    if generation:
        ctx.info(f"model under test: {describe_generation(generation)}")
    run = ctx.client.schedule_run(
        a.dataset,
        a.eval_version,
        dataset_version=a.dataset_version,
        name=a.name,
        threshold=getattr(a, "run_threshold", None),
        batch_size=a.batch_size,
        generation=generation,
        cache=a.cache,
    )
    data_warnings(run.warnings)  # e.g. records without the field a metric needs
    return run


def cmd_runs_schedule(ctx: Ctx) -> int:
    run = _schedule(ctx)
    if not ctx.args.wait:
        ctx.out(f"run {run.id}  {run.status}  ({run.item_count} records)", run)
        return ExitCode.OK
    if not ctx.json:
        ctx.info(f"run {run.id} scheduled")
    run = wait_for(ctx, run, ctx.args.timeout)
    ctx.out(run_summary(run), run)
    return ExitCode.OK if run.status == "completed" else ExitCode.ERROR


def cmd_runs_get(ctx: Ctx) -> int:
    run = ctx.client.get_run(ctx.args.run)
    ctx.out(run_summary(run), run)
    return ExitCode.OK


def cmd_runs_list(ctx: Ctx) -> int:
    a = ctx.args
    filters = {
        "dataset_id": resolve(ctx, "dataset", a.dataset),
        "eval_id": resolve(ctx, "eval", a.eval),
        "eval_version_id": resolve_eval_version(ctx, a.eval_version),
        "status": a.status,
        "offset": a.offset or None,
    }
    raw, cursor, first = page_through(ctx, "/v1/eval-runs", filters, a.limit, 100)
    runs, count = [EvalRun.from_api(r) for r in raw], first.get("count", len(raw))
    rows = [
        [
            r.id,
            r.status,
            r.name or "",
            f"{r.scored_count}/{r.item_count}",
            num(r.result),
            r.verdict or "",
            r.created_at,
        ]
        for r in runs
    ]
    human = table(["id", "status", "name", "scored", "result", "verdict", "created"], rows, right=(3, 4))
    # "total": the runs matching the filters (the API's count), beyond this page
    ctx.out(f"{human}\n\n{len(runs)} of {count} run(s)", listing(runs, cursor, total=count))
    more_hint(
        ctx,
        "runs list",
        cursor,
        ("--dataset", a.dataset),
        ("--eval", a.eval),
        ("--eval-version", a.eval_version),
        ("--status", a.status),
    )
    return ExitCode.OK


def cmd_runs_evaluations(ctx: Ctx) -> int:
    a = ctx.args
    passed = False if a.failed else (True if a.passed else None)
    params = {"metric": a.metric, "passed": passed}
    raw, cursor, _ = page_through(ctx, f"/v1/eval-runs/{a.run}/evaluations", params, a.limit, 1000)
    items = [Evaluation.from_api(e) for e in raw]
    rows = [
        [
            e.record_id,
            e.metric_name,
            num(e.score),
            "pass" if e.is_passed else "FAIL",
            clip(e.reasoning or e.error_message or "", 70),
        ]
        for e in items
    ]
    ctx.out(table(["record", "metric", "score", "", "why"], rows, right=(2,)), listing(items, cursor))
    more_hint(
        ctx,
        f"runs evaluations {a.run}",
        cursor,
        ("--metric", a.metric),
        ("--failed", a.failed),
        ("--passed", a.passed),
    )
    return ExitCode.OK


def cmd_runs_cancel(ctx: Ctx) -> int:
    run = ctx.client.cancel_run(ctx.args.run)
    ctx.out(f"run {run.id}  {run.status}", run)
    return ExitCode.OK


def cmd_runs_delete(ctx: Ctx) -> int:
    ctx.client.delete_run(ctx.args.run)
    return deleted(ctx, "run", ctx.args.run)


def cmd_runs_export(ctx: Ctx) -> int:
    a = ctx.args
    content = ctx.client.download_export(a.run, a.format, delivery=a.delivery)
    assert isinstance(content, bytes)
    if a.output in (None, "-"):
        if sys.stdout.isatty():  # to be read, not parsed: no raw control characters
            echo(content.decode("utf-8", errors="replace").replace("\r\n", "\n"), end="")
        else:  # to a pipe or a file: the export's exact bytes
            sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return ExitCode.OK
    Path(a.output).write_bytes(content)
    ctx.info(f"wrote {a.output} ({len(content):,} bytes, {a.format})")
    return ExitCode.OK


def cmd_runs_compare(ctx: Ctx) -> int:
    comp = ctx.client.compare_runs(
        ctx.args.run, ctx.args.baseline, limit=ctx.args.limit, confidence=ctx.args.confidence
    )
    ctx.out(_comparison_text(comp), comp)
    return ExitCode.OK


def _comparison_text(comp: Comparison) -> str:
    rows = [
        [
            m.metric_name,
            num(m.baseline.mean if m.baseline else None),
            num(m.run.mean if m.run else None),
            signed(m.mean_delta),
            signed(m.pass_rate_delta),
            f"{num(m.ci_low)}..{num(m.ci_high)}",
            num(m.p_value, 4),
            "yes" if m.significant else "no",
            f"{m.improved}/{m.regressed}/{m.unchanged}",
        ]
        for m in comp.metrics
    ]
    lines = [
        f"run {comp.run_id} vs baseline {comp.baseline_run_id}: {(comp.verdict or '?').upper()} "
        f"({comp.method}, {pct(comp.confidence_level, 0)} confidence)",
        "",
        table(
            [
                "metric",
                "baseline",
                "run",
                "Δ mean",
                "Δ pass rate",
                "CI (Δ mean)",
                "p",
                "significant",
                "improved/regressed/same",
            ],
            rows,
            right=(1, 2, 3, 4, 6),
        ),
    ]
    for label, changes in (("regressed", comp.regressions), ("improved", comp.improvements)):
        total = sum((m.regressed if label == "regressed" else m.improved) or 0 for m in comp.metrics)
        if changes:
            lines += [
                "",
                f"{total} record-metric pair(s) {label}"
                + (f"; the {len(changes)} largest:" if total > len(changes) else ":"),
            ]
            lines += [
                f"  {safe(c.record_id, multiline=False):<20} {safe(c.metric_name, multiline=False):<20} "
                f"{num(c.baseline_score)} → {num(c.score)}"
                f" ({signed(c.delta)})"
                for c in changes
            ]
    unmatched = comp.unmatched or {}
    if unmatched.get("run_only") or unmatched.get("baseline_only"):
        lines += [
            "",
            f"unmatched records: {unmatched.get('run_only', 0)} only in the run, "
            f"{unmatched.get('baseline_only', 0)} only in the baseline",
        ]
    return "\n".join(lines)


def cmd_runs_report(ctx: Ctx) -> int:
    a = ctx.args
    run = ctx.client.get_run(a.run)
    evaluations = (
        ctx.client.export_evaluations(run.id)
        if run.status == "completed"
        else list(ctx.client.iter_evaluations(run.id))
    )
    comparison = ctx.client.compare_runs(run.id, a.baseline, limit=100) if a.baseline else None
    Path(a.output).write_text(render(run, evaluations, comparison=comparison), encoding="utf-8")
    ctx.out(
        f"wrote {a.output}  (run verdict {run.verdict or run.status}; {len(evaluations)} evaluations)",
        {"path": str(a.output), "run_id": run.id, "verdict": run.verdict},
    )
    return ExitCode.OK
