"""``assay import openai-evals DIR``: history saved from OpenAI's Evals API (evals, runs, output
items as the API returned them) into Assay's ``/openai/v1``, each run replaying its saved results.

The directory is read and classified first (``assay.openai_import``): a file that cannot be
read stops everything before any request. Then each eval is imported, and each of its runs
that has output items: the items are uploaded as JSONL files of at most 4.5 MB, the run is
imported naming them, and the files are deleted again (the server read them already). An
eval or run imported before (the server's ``imported_from``) is not imported twice, so the
command can be run again after a failure. A refused object is reported and the rest goes
on; a rejected key or an unreachable service stops the import.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay._format import safe
from assay.cli.context import CliError, Ctx, echo, poll_all
from assay.errors import (
    ApiError,
    AssayError,
    AuthenticationError,
    PermissionDeniedError,
    RunTimeoutError,
)
from assay.exit_codes import ExitCode
from assay.openai_import import (
    FILE_LIMIT,
    MAX_FILES_PER_RUN,
    LineTooLargeError,
    Saved,
    SavedHistory,
    SavedHistoryError,
    Skipped,
    read_history,
    split_sizes,
)

RUNNING = ("queued", "in_progress")
MAX_WARNINGS = 20  # printed one a line; the rest are counted (--json lists them all)


@dataclass
class RunPlan:
    saved: Saved
    items: int
    files: int
    new_id: str | None = None
    outcome: str = "planned"  # imported, already imported, refused
    run: dict[str, Any] | None = None  # the imported run as the server last returned it
    error: dict[str, Any] | None = None

    def to_dict(self, new_eval_id: str | None) -> dict[str, Any]:
        run = self.run or {}
        saved_counts = self.saved.obj.get("result_counts")
        counts = run.get("result_counts")
        return {
            "id": self.saved.id,
            "eval_id": self.saved.obj.get("eval_id"),
            "name": self.saved.obj.get("name"),
            "where": self.saved.where,
            "items": self.items,
            "files": self.files,
            "outcome": self.outcome,
            "new_id": self.new_id,
            "new_eval_id": new_eval_id if self.new_id else None,
            "status": run.get("status"),
            "result_counts": counts,
            "saved_result_counts": saved_counts if isinstance(saved_counts, dict) else None,
            "error": self.error,
        }


@dataclass
class EvalPlan:
    saved: Saved
    runs: list[RunPlan] = field(default_factory=list)
    new_id: str | None = None
    outcome: str = "planned"
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.saved.id,
            "name": self.saved.obj.get("name"),
            "where": self.saved.where,
            "outcome": self.outcome,
            "new_id": self.new_id,
            "error": self.error,
        }


@dataclass
class Plan:
    evals: list[EvalPlan]
    skipped: list[Skipped]
    duplicates: int


def cmd_import_openai_evals(ctx: Ctx) -> int:
    a = ctx.args
    for flag, value in (("--timeout", a.timeout), ("--poll-interval", a.poll_interval)):
        if value <= 0:
            raise CliError(f"{flag} must be more than 0 seconds (got {value:g})")
    with _read(a.dir) as history:
        plan = make_plan(history)
        _warn(plan.skipped)
        if not plan.evals:
            raise CliError(
                f"{a.dir}: no saved eval in {len(history.files)} file(s) "
                f"({len(history.runs)} run(s), {sum(p.items for p in _orphans(history))} output item(s) "
                'found): an import starts from the evals (objects with "object": "eval")'
            )
        if plan.duplicates:
            ctx.info(f"{plan.duplicates} duplicate(s) (the same id again) ignored")
        if a.dry_run:
            ctx.out(_report(plan, dry_run=True), _document(plan, dry_run=True))
            return ExitCode.OK
        try:
            _import(ctx, history, plan)
        except AssayError:
            if any(e.new_id for e in plan.evals):  # what was done before it stopped
                ctx.out(_report(plan, dry_run=False), _document(plan, dry_run=False))
            raise
    code = _wait_and_check(ctx, plan) if a.wait else ExitCode.OK
    if not a.wait:
        ctx.out(_report(plan, dry_run=False), _document(plan, dry_run=False))
    refused = [o for o in _outcomes(plan) if o == "refused"]
    if not refused and code == ExitCode.OK:
        _next_hint(ctx, plan)
    return ExitCode.ERROR if refused else code


def _next_hint(ctx: Ctx, plan: Plan) -> None:
    """An imported run is an Assay run too: its id is the UUID in ``evalrun_<hex>``."""
    run = next((r.new_id for e in plan.evals for r in e.runs if r.new_id), None)
    if run and run.startswith("evalrun_") and len(run) == 40:
        h = run.removeprefix("evalrun_")
        ctx.hint(
            f"next: assay runs get {h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}   "
            "(an imported run in Assay's own view: per-metric table; `assay runs report` for HTML)"
        )


def _read(root: Path) -> SavedHistory:
    """DIR, read and classified before any request: every problem with it is exit 2."""
    if not root.exists():
        raise CliError(f"{root}: no such directory")
    try:
        history = read_history(root)
    except SavedHistoryError as exc:
        raise CliError(f"{exc} — nothing was imported") from None
    except OSError as exc:
        raise CliError(f"{root}: {exc.strerror or exc}") from None
    if not history.files:
        history.close()
        raise CliError(f"{root}: no .json or .jsonl files in it (saved evals, runs and output items)")
    return history


def _wait_and_check(ctx: Ctx, plan: Plan) -> int:
    """``--wait``: the imported runs once finished, printed; exit 3 when one is still going at
    ``--timeout``, 2 when one did not complete."""
    timed_out = _wait(ctx, plan)
    ctx.out(_report(plan, dry_run=False), _document(plan, dry_run=False))
    imported = [r for e in plan.evals for r in e.runs if r.new_id]
    if timed_out:
        pending = [r for r in imported if (r.run or {}).get("status") in RUNNING]
        raise RunTimeoutError(
            f"{len(pending)} imported run(s) still going after {ctx.args.timeout:g} s; they keep running "
            "(`assay runs get RUN` follows one)"
        )
    unfinished = [r for r in imported if (r.run or {}).get("status") != "completed"]
    if unfinished:
        names = ", ".join(f"{r.new_id} {(r.run or {}).get('status')}" for r in unfinished)
        echo(f"error: {len(unfinished)} imported run(s) did not complete: {names}", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


# ---------------------------------------------------------------------------- the plan
@dataclass
class _Orphan:
    run_id: str
    items: int
    where: str


def _orphans(history: SavedHistory) -> list[_Orphan]:
    return [_Orphan(r, n, w) for r, (n, w) in history.orphan_items().items()]


def _created(saved: Saved) -> tuple[int, str]:
    created = saved.obj.get("created_at")
    return (created if isinstance(created, int) and not isinstance(created, bool) else 0, saved.id)


def make_plan(history: SavedHistory) -> Plan:
    """What will be imported, in order (evals, then each one's runs, oldest first), and what
    is skipped, with why."""
    skipped = list(history.skipped)
    evals = {eval_id: EvalPlan(saved) for eval_id, saved in sorted(history.evals.items())}
    for run in sorted(history.runs.values(), key=_created):
        eval_id, count = str(run.obj["eval_id"]), history.item_count(run.id)
        parent = evals.get(eval_id)
        if parent is None:
            reason = f"a run of eval {eval_id}, which is not in the directory"
            skipped.append(
                Skipped(run.where, reason, "eval.run", run.id, "runs whose eval is not in the directory")
            )
            continue
        if not count:
            reason = "a run without output items: nothing to replay"
            skipped.append(Skipped(run.where, reason, "eval.run", run.id, "runs without output items"))
            continue
        try:
            files = len(split_sizes(history.item_sizes(run.id), FILE_LIMIT))
        except LineTooLargeError as exc:
            reason = (
                f"a run with an output item of {exc.size:,} bytes, over the {FILE_LIMIT:,} "
                "an upload file holds"
            )
            skipped.append(Skipped(run.where, reason, "eval.run", run.id, "runs too large to upload"))
            continue
        if files > MAX_FILES_PER_RUN:
            reason = (
                f"a run whose {count:,} output items need {files} upload files, over the "
                f"{MAX_FILES_PER_RUN} a run may take"
            )
            skipped.append(Skipped(run.where, reason, "eval.run", run.id, "runs too large to upload"))
            continue
        parent.runs.append(RunPlan(run, count, files))
    for orphan in _orphans(history):
        reason = f"{orphan.items} output item(s) of run {orphan.run_id}, which is not in the directory"
        skipped.append(
            Skipped(
                orphan.where,
                reason,
                "eval.run.output_item",
                None,
                "output items whose run is not in the directory",
            )
        )
    ordered = sorted(evals.values(), key=lambda e: _created(e.saved))
    return Plan(ordered, skipped, history.duplicates)


def _warn(skipped: list[Skipped]) -> None:
    for skip in skipped[:MAX_WARNINGS]:
        what = f" {skip.id}" if skip.id else ""
        echo(f"warning: {skip.where}: skipped{what}: {skip.reason}", file=sys.stderr)
    if len(skipped) > MAX_WARNINGS:
        echo(
            f"warning: … and {len(skipped) - MAX_WARNINGS} more skipped (counted in the summary; "
            "--json lists each)",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------- importing
def _refusal(exc: ApiError) -> dict[str, Any]:
    return {
        "message": exc.message,
        "param": exc.details.get("param"),
        "code": exc.code,
        "status": exc.status,
        "request_id": exc.request_id,
    }


def _refused(what: str, where: str, exc: ApiError) -> None:
    param = exc.details.get("param")
    echo(
        f"error: {what} ({where}) refused: {exc.message}"
        + (f" (param {param})" if param else "")
        + f" — {exc.code}, HTTP {exc.status}",
        file=sys.stderr,
    )


def _fatal(exc: ApiError) -> bool:
    """An error no other object would escape: the key, its role."""
    return isinstance(exc, AuthenticationError | PermissionDeniedError)


def _import(ctx: Ctx, history: SavedHistory, plan: Plan) -> None:
    client = ctx.client
    before = {str(e.get("imported_from")): e for e in client.iter_openai_evals() if e.get("imported_from")}
    for ev in plan.evals:
        done_runs: dict[str, dict[str, Any]] = {}
        if ev.saved.id in before:
            ev.new_id, ev.outcome = str(before[ev.saved.id]["id"]), "already imported"
            done_runs = {
                str(r.get("imported_from")): r
                for r in client.iter_openai_runs(ev.new_id)
                if r.get("imported_from")
            }
        else:
            try:
                ev.new_id, ev.outcome = str(client.import_openai_eval(ev.saved.obj)["id"]), "imported"
            except ApiError as exc:
                if _fatal(exc):
                    raise
                ev.outcome, ev.error = "refused", _refusal(exc)
                _refused(f"eval {ev.saved.id}", ev.saved.where, exc)
                for run in ev.runs:
                    run.outcome = "not imported: its eval was refused"
                continue
        _line(
            ctx,
            f"eval {ev.saved.id} → {ev.new_id}  {safe(ev.saved.obj.get('name') or '', multiline=False)}"
            + ("  (already imported)" if ev.outcome == "already imported" else ""),
        )
        for run in ev.runs:
            if run.saved.id in done_runs:
                run.run = done_runs[run.saved.id]
                run.new_id, run.outcome = str(run.run["id"]), "already imported"
            else:
                _import_run(ctx, history, ev.new_id, run)
            if run.new_id:
                _line(
                    ctx,
                    f"  run {run.saved.id} → {run.new_id}  "
                    f"{safe(run.saved.obj.get('name') or '', multiline=False)}  ({run.items:,} output items"
                    + (", already imported)" if run.outcome == "already imported" else ")"),
                )


def _line(ctx: Ctx, text: str) -> None:
    """One imported object, as it happens (humans; --json prints one document at the end)."""
    if not ctx.json:
        echo(text, flush=True)


def _import_run(ctx: Ctx, history: SavedHistory, eval_id: str, run: RunPlan) -> None:
    client, uploaded = ctx.client, []
    try:
        for n, content in enumerate(history.item_files(run.saved.id, FILE_LIMIT), start=1):
            ctx.info(
                f"run {run.saved.id}: uploading its output items, file {n} of {run.files} "
                f"({len(content):,} bytes)"
            )
            uploaded.append(
                str(client.upload_openai_file(content, filename=f"{run.saved.id}-items-{n}.jsonl")["id"])
            )
        run.run = client.import_openai_run(eval_id, run.saved.obj, uploaded)
        run.new_id, run.outcome = str(run.run["id"]), "imported"
    except ApiError as exc:
        if _fatal(exc):
            raise
        run.outcome, run.error = "refused", _refusal(exc)
        _refused(f"run {run.saved.id}", run.saved.where, exc)
    finally:
        for file_id in uploaded:  # read by the server during the import: not needed any more
            with contextlib.suppress(AssayError):
                client.delete_openai_file(file_id)


# ---------------------------------------------------------------------------- waiting
def _wait(ctx: Ctx, plan: Plan) -> bool:
    """Poll the imported runs until none is queued or in progress (``False``) or ``--timeout``
    passed (``True``)."""
    runs = [(e.new_id, r) for e in plan.evals for r in e.runs if r.new_id and e.new_id]
    if not runs:
        return False

    def step() -> tuple[bool, int, int, str]:
        for eval_id, run in runs:
            if (run.run or {}).get("status", "queued") in RUNNING:
                assert eval_id is not None and run.new_id is not None
                run.run = ctx.client.get_openai_run(eval_id, run.new_id)
        done = sum(1 for _, r in runs if (r.run or {}).get("status") not in RUNNING)
        return done == len(runs), done, len(runs), f"imported runs: {done}/{len(runs)} finished"

    return poll_all(ctx, f"waiting for {len(runs)} imported run(s)", step)


# ---------------------------------------------------------------------------- output
def _outcomes(plan: Plan) -> list[str]:
    return [e.outcome for e in plan.evals] + [r.outcome for e in plan.evals for r in e.runs]


def _counts(plan: Plan) -> dict[str, int]:
    runs = [r for e in plan.evals for r in e.runs]
    return {
        "evals": sum(e.outcome == "imported" for e in plan.evals),
        "runs": sum(r.outcome == "imported" for r in runs),
        "items": sum(r.items for r in runs if r.outcome == "imported"),
        "already_imported": sum(o == "already imported" for o in _outcomes(plan)),
        "refused": sum(o == "refused" for o in _outcomes(plan)),
        "skipped": len(plan.skipped) + sum(r.outcome.startswith("not imported") for r in runs),
        "duplicates": plan.duplicates,
    }


def _document(plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    runs = [r.to_dict(e.new_id) for e in plan.evals for r in e.runs]
    ids = {e.saved.id: e.new_id for e in plan.evals if e.new_id}
    ids.update({r["id"]: r["new_id"] for r in runs if r["new_id"]})
    return {
        "dry_run": dry_run,
        "ids": ids,
        "evals": [e.to_dict() for e in plan.evals],
        "runs": runs,
        "skipped": [s.to_dict() for s in plan.skipped],
        "counts": _counts(plan),
    }


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _report(plan: Plan, *, dry_run: bool) -> str:
    lines: list[str] = []
    runs = [r for e in plan.evals for r in e.runs]
    if dry_run:
        for ev in plan.evals:
            lines.append(f"eval {ev.saved.id}  {safe(ev.saved.obj.get('name') or '', multiline=False)}")
            for run in ev.runs:
                lines.append(
                    f"  run {run.saved.id}  {safe(run.saved.obj.get('name') or '', multiline=False)}  "
                    f"({run.items:,} output items, {_plural(run.files, 'upload file')})"
                )
        items = sum(r.items for r in runs)
        head = (
            f"dry run: would import {_plural(len(plan.evals), 'eval')}, {_plural(len(runs), 'run')}, "
            f"{_plural(items, 'output item')}"
        )
    else:
        for run in runs:
            counts = (run.run or {}).get("result_counts")
            status = (run.run or {}).get("status")
            if run.new_id and status and status not in RUNNING and isinstance(counts, dict):
                saved = run.saved.obj.get("result_counts")
                same = (
                    ""
                    if not isinstance(saved, dict)
                    else (
                        "  (as saved)" if _same_counts(counts, saved) else f"  (saved: {_counts_text(saved)})"
                    )
                )
                lines.append(f"run {run.new_id} {status}: {_counts_text(counts)}{same}")
        c = _counts(plan)
        head = (
            f"imported {_plural(c['evals'], 'eval')}, {_plural(c['runs'], 'run')}, "
            f"{_plural(c['items'], 'output item')}"
        )
        if c["already_imported"]:
            head += f"; {c['already_imported']:,} already imported before"
        if c["refused"]:
            head += f"; {c['refused']:,} refused (see the errors above)"
    by_reason: dict[str, int] = {}
    for skip in plan.skipped:
        by_reason[skip.category] = by_reason.get(skip.category, 0) + 1
    for run in runs:
        if run.outcome.startswith("not imported"):
            by_reason["runs of a refused eval"] = by_reason.get("runs of a refused eval", 0) + 1
    if by_reason:
        head += f"; skipped {sum(by_reason.values()):,} — " + ", ".join(
            f"{why}: {n:,}" for why, n in by_reason.items()
        )
    return "\n".join([*lines, head])


def _counts_text(counts: dict[str, Any]) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "errored", "total"))


def _same_counts(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("passed", "failed", "errored", "total"))
