"""The command a user most likely runs next, after a command that succeeded."""

from __future__ import annotations

from assay.cli.context import Ctx
from assay.models import EvalRun


def next_hint(ctx: Ctx) -> None:
    """After a command that succeeded, the command a user most likely runs next (stderr; not with
    -q or --json). Read from what the command printed, so each command stays as it is."""
    a, result = ctx.args, ctx.result
    command = f"{a.group} {getattr(a, 'command', '') or ''}".strip()
    schedule = "assay runs schedule --dataset {ds} --eval-version {ev} --wait"
    hint = None
    if command == "datasets create" and isinstance(result, dict):
        dataset = result.get("dataset") or {}
        if not result.get("version"):
            hint = f"assay datasets upload {dataset.get('id')} records.jsonl   (JSONL, JSON or CSV)"
        else:
            hint = schedule.format(ds=dataset.get("id"), ev="EVAL_VERSION")
    elif command == "datasets upload" and result is not None:
        hint = schedule.format(ds=a.dataset, ev="EVAL_VERSION")
    elif command == "evals create" and isinstance(result, dict):
        hint = schedule.format(ds="DATASET", ev=(result.get("version") or {}).get("id"))
    elif command == "runs schedule" and isinstance(result, EvalRun):
        hint = (
            f"assay runs evaluations {result.id} --failed   or   assay runs report {result.id} -o report.html"
            if result.finished
            else f"assay runs get {result.id}   (or schedule with --wait to follow it)"
        )
    elif command == "runs sweep" and isinstance(result, dict) and result.get("items"):
        best, comparison = result.get("best_run_id"), result.get("comparison") or {}
        if best and comparison.get("baseline_run_id"):
            hint = f"assay runs compare {best} --baseline {comparison['baseline_run_id']}"
        elif best:
            hint = f"assay runs report {best} -o report.html"
        elif not a.wait:
            hint = "assay runs get RUN   (or sweep with --wait to compare the runs when they finish)"
    elif command == "keys create" and result is not None:
        hint = "export ASSAY_API_KEY=…   (the secret above; it is not shown again)"
    if hint:
        ctx.hint(f"next: {hint}")
