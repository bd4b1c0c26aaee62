"""``assay runs sweep``: one sibling run per (model × prompt file) on one dataset and eval
version, then (``--wait``) a table comparing them and the best run, checked against the
runner-up with the compare endpoint (docs/generation.md)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from assay._format import describe_generation, num, pct, table, usd
from assay.cli.context import CliError, Ctx, data_warnings, echo, poll_all, resolve, resolve_eval_version
from assay.cli.generation import (
    GenerationArgs,
    Prompt,
    generation_args,
    generation_block,
    sweep_name,
    version_generation,
)
from assay.errors import ApiError, AssayError, RunTimeoutError
from assay.exit_codes import ExitCode
from assay.models import Comparison, EvalRun


@dataclass
class Trial:
    """One run of the sweep: the model and prompt file it tries."""

    model: str
    prompt: Prompt | None
    generation: dict[str, Any]
    run: EvalRun

    @property
    def prompt_label(self) -> str:
        return self.prompt.label if self.prompt else "(eval version's)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.generation.get("provider"),
            "prompt_file": str(self.prompt.path) if self.prompt else None,
            "run": self.run.to_dict(),
        }


def cmd_runs_sweep(ctx: Ctx) -> int:
    a = ctx.args
    gen = generation_args(a)  # prompt files read, flags checked, before any request
    for flag, value in (("--timeout", a.timeout), ("--poll-interval", a.poll_interval)):
        if value <= 0:
            raise CliError(f"{flag} must be more than 0 seconds (got {value:g})")
    a.dataset = resolve(ctx, "dataset", a.dataset)
    a.eval_version = resolve_eval_version(ctx, a.eval_version)
    base = version_generation(ctx, a.eval_version)
    prompts: list[Prompt | None] = list(gen.prompts) or [None]
    trials = _schedule_all(ctx, base, gen, prompts)
    ctx.info(f"sweep: {len(trials)} runs scheduled ({len(gen.models)} model(s) × {len(prompts)} prompt(s))")
    if not a.wait:
        ctx.out(_table(trials, waited=False), _document(trials))
        return ExitCode.OK
    timed_out = _wait_all(ctx, trials)
    best = _best(trials)
    comparison = _against_runner_up(ctx, trials, best) if best else None
    ctx.out(_report(trials, best, comparison), _document(trials, best, comparison))
    unfinished = [t for t in trials if not t.run.finished]
    if timed_out and unfinished:
        raise RunTimeoutError(
            f"{len(unfinished)} of {len(trials)} runs still running after {a.timeout:g} s; they keep "
            f"running (`assay runs cancel RUN` stops one)"
        )
    not_completed = [t for t in trials if t.run.status != "completed"]
    if not_completed:
        names = ", ".join(f"{t.run.name or t.run.id} {t.run.status}" for t in not_completed)
        echo(f"error: {len(not_completed)} of {len(trials)} runs did not complete: {names}", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


def _schedule_all(
    ctx: Ctx, base: dict[str, Any], gen: GenerationArgs, prompts: list[Prompt | None]
) -> list[Trial]:
    """One run per (model, prompt); an API error part-way names the runs already scheduled."""
    a = ctx.args
    trials: list[Trial] = []
    for model in gen.models:
        for prompt in prompts:
            generation = generation_block(base, gen, model, prompt)
            try:
                run = ctx.client.schedule_run(
                    a.dataset,
                    a.eval_version,
                    dataset_version=a.dataset_version,
                    name=sweep_name(a.name or "sweep", model, prompt),
                    threshold=a.run_threshold,
                    batch_size=a.batch_size,
                    generation=generation,
                    cache=a.cache,
                )
            except AssayError:
                if trials:
                    echo(
                        f"sweep stopped after {len(trials)} run(s) scheduled: "
                        + ", ".join(t.run.id for t in trials)
                        + " (`assay runs cancel RUN` stops one)",
                        file=sys.stderr,
                    )
                raise
            if not trials:  # the same dataset and metrics for every run: warn once
                data_warnings(run.warnings)
            ctx.info(f"run {run.id} scheduled: {run.name} — {describe_generation(generation)}")
            trials.append(Trial(model, prompt, generation, run))
    return trials


def _wait_all(ctx: Ctx, trials: list[Trial]) -> bool:
    """Poll every unfinished run until all finished (``False``) or ``--timeout`` passed (``True``),
    with one progress bar over all their records."""

    def step() -> tuple[bool, int, int, str]:
        for trial in trials:
            if not trial.run.finished:
                trial.run = ctx.client.get_run(trial.run.id)
        done = sum(1 for t in trials if t.run.finished)
        return (
            done == len(trials),
            sum(t.run.scored_count for t in trials),
            sum(t.run.item_count or 0 for t in trials),
            f"sweep: {done}/{len(trials)} runs finished",
        )

    return poll_all(ctx, f"sweep of {len(trials)} runs", step)


def _best(trials: list[Trial]) -> Trial | None:
    """The completed run with the highest result (then pass rate, then the lower model cost)."""
    scored = [t for t in trials if t.run.status == "completed" and t.run.result is not None]
    if not scored:
        return None
    return max(
        scored,
        key=lambda t: (t.run.result or 0.0, t.run.pass_rate or 0.0, -(t.run.total_cost or 0.0)),
    )


def _against_runner_up(ctx: Ctx, trials: list[Trial], best: Trial) -> Comparison | None:
    """The best run compared with the runner-up (``GET /v1/eval-runs/{id}/compare``): whether its
    lead is significant. ``None`` with one completed run, or when the comparison fails."""
    rest = [t for t in trials if t is not best and t.run.status == "completed" and t.run.result is not None]
    if not rest:
        return None
    runner_up = max(rest, key=lambda t: (t.run.result or 0.0, t.run.pass_rate or 0.0))
    try:
        return ctx.client.compare_runs(best.run.id, runner_up.run.id, limit=1)
    except ApiError as exc:
        ctx.info(f"sweep: could not compare the best run with the runner-up: {exc.message}")
        return None


def _metric_names(trials: list[Trial]) -> list[str]:
    names: dict[str, None] = {}
    for trial in trials:
        names.update(dict.fromkeys(trial.run.aggregate_results or {}))
    return list(names)


def _table(trials: list[Trial], *, waited: bool = True, best: Trial | None = None) -> str:
    """One row per run: model, prompt, status, result, pass rate, each metric's mean, the cost of
    generation and of judging, the generator's tokens, the run id (``*`` marks the best)."""
    metrics = _metric_names(trials) if waited else []
    rows = []
    for t in trials:
        run, cost = t.run, t.run.cost_breakdown
        generator = run.usage("generator")
        aggregates = run.aggregate_results or {}
        row: list[Any] = [("* " if t is best else "  ") + t.model, t.prompt_label, run.status]
        if waited:
            row += [num(run.result), pct(run.pass_rate)]
            row += [num(aggregates[m].mean) if m in aggregates else "–" for m in metrics]
            row += [
                usd(cost.generation) if cost else "–",
                usd(cost.judging) if cost else (usd(run.total_cost) if run.finished else "–"),
                f"{sum(u.tokens for u in generator):,}" if generator else "–",
            ]
        rows.append([*row, run.id])
    headers = ["  model", "prompt", "status"]
    if waited:
        headers += ["result", "pass rate", *(f"{m} mean" for m in metrics)]
        headers += ["gen. cost", "judge cost", "gen. tokens"]
    right = tuple(range(3, len(headers))) if waited else ()
    return table([*headers, "run"], rows, right=right)


def _report(trials: list[Trial], best: Trial | None, comparison: Comparison | None) -> str:
    lines = [
        f"sweep: {len(trials)} runs (* the best; scores 0–1; pass rate: records passing every "
        "metric; cost in USD; gen. tokens: the model under test's prompt + completion tokens)",
        _table(trials, best=best),
        "",
    ]
    if best is None:
        lines.append("best run: none (no run completed with a result)")
        return "\n".join(lines)
    lines.append(
        f"best run: {best.run.name or best.run.id} — result {num(best.run.result)}, pass rate "
        f"{pct(best.run.pass_rate)} (run {best.run.id})"
    )
    if comparison is not None:
        baseline = next((t for t in trials if t.run.id == comparison.baseline_run_id), None)
        significant = [m.metric_name for m in comparison.metrics if m.significant and (m.mean_delta or 0) > 0]
        lead = (
            f"significantly better on {', '.join(significant)}"
            if significant
            else "no significant difference"
        )
        lines.append(
            f"vs the runner-up {baseline.run.name if baseline else comparison.baseline_run_id}: {lead} "
            f"(`assay runs compare {best.run.id} --baseline {comparison.baseline_run_id}`)"
        )
    return "\n".join(lines)


def _document(
    trials: list[Trial], best: Trial | None = None, comparison: Comparison | None = None
) -> dict[str, Any]:
    """``--json``: the runs (with the model and prompt file each tried), the best, the comparison."""
    return {
        "items": [t.to_dict() for t in trials],
        "count": len(trials),
        "next_cursor": None,
        "best_run_id": best.run.id if best else None,
        "comparison": comparison.to_dict() if comparison else None,
    }
