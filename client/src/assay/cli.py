"""The ``assay`` command line, built on ``assay.Client``."""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assay import __version__
from assay._format import ProgressBar, json_text, num, pct, run_summary, safe, signed, table
from assay.client import Client
from assay.errors import ApiError, AssayError, NotReadyError, RunTimeoutError
from assay.gate import GateResult, decide, error_result, junit_xml, markdown, parse_thresholds
from assay.models import Comparison, EvalRun, Evaluation, Model
from assay.records import RecordFileError
from assay.report import render

EXIT_OK, EXIT_GATE_FAILED, EXIT_ERROR, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EPILOG = """\
environment:
  ASSAY_URL       the API's base URL (default http://127.0.0.1:3000, the local stack)
  ASSAY_API_KEY   the API key (ask_...)

exit codes:
  0    success (for `assay ci`: the gate passed)
  1    `assay ci`: the gate failed (a metric below its threshold, or a significant regression)
  2    error: bad arguments or files, an API error (its code and request id are printed), the
       service unreachable, or a run that ended failed/cancelled while waiting
  3    `--wait` / `assay ci`: the run did not finish within --timeout; `assay health --wait`:
       the service did not answer (or accept the key) within --timeout
  130  interrupted (Ctrl-C)

Human-readable output by default; --json prints the API's JSON (one document) on stdout.
Progress bars go to stderr. Docs: docs/cli.md
"""


class CliError(Exception):
    """A usage problem the user can fix (exit 2)."""


def _print(*values: Any, **kwargs: Any) -> None:
    """``print``, each value through ``safe``: what the CLI writes to a terminal is never
    a raw control character from the server (names, record text, error messages)."""
    print(*(safe(v) for v in values), **kwargs)


# ---------------------------------------------------------------------------- helpers
class Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = args.json
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.args.url, self.args.api_key, timeout=self.args.http_timeout)
        return self._client

    def out(self, human: str, data: Any) -> None:
        if self.json:
            _print(json_text(_plain(data)))
        elif human:
            _print(human)

    def progress(self, label: str, unit: str = "") -> ProgressBar | None:
        return None if self.args.quiet else ProgressBar(label, unit=unit)


def _plain(data: Any) -> Any:
    if isinstance(data, Model):
        return data.to_dict()
    if isinstance(data, list | tuple):
        return [_plain(d) for d in data]
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    return data


def _load_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            spec = json.loads(text)
        except ValueError as exc:
            raise CliError(f"{path}: not valid JSON ({exc})") from None
    else:
        import yaml

        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CliError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise CliError(f"{path}: expected a mapping with name and metrics")
    return spec


def _wait(ctx: Ctx, run: EvalRun, timeout: float | None) -> EvalRun:
    bar = ctx.progress(f"run {run.id[:8]}")

    def show(current: EvalRun) -> None:
        if bar:
            bar.update(
                current.scored_count, current.item_count or 0, f"run {current.id[:8]} {current.status:<9}"
            )

    try:
        return ctx.client.wait_for_run(
            run.id, timeout=timeout, poll_interval=ctx.args.poll_interval, on_progress=show
        )
    finally:
        if bar:
            bar.close()


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


# ---------------------------------------------------------------------------- commands
def cmd_datasets_create(ctx: Ctx) -> int:
    a = ctx.args
    dataset = ctx.client.create_dataset(a.name, description=a.description, project_id=a.project)
    result: dict[str, Any] = {"dataset": dataset.to_dict()}
    human = f"dataset {dataset.id}  {dataset.name}"
    if a.file:
        version = _upload(ctx, dataset.id, a.file, a.format, a.via)
        result["version"] = version.to_dict()
        human += f"\nversion {version.version}  {version.record_count} records  ({version.id})"
    ctx.out(human, result)
    return EXIT_OK


def _upload(ctx: Ctx, dataset_id: str, path: Path, fmt: str | None, via: str) -> Any:
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    bar = ctx.progress(f"upload {path.name}", unit="B")
    try:
        return ctx.client.upload_file(
            dataset_id, path, fmt=fmt, via=via, progress=(lambda d, t: bar.update(d, t)) if bar else None
        )
    finally:
        if bar:
            bar.close()


def cmd_datasets_upload(ctx: Ctx) -> int:
    a = ctx.args
    version = _upload(ctx, a.dataset, a.file, a.format, a.via)
    ctx.out(
        f"dataset {a.dataset}  version {version.version}  {version.record_count} records  ({version.id})",
        version,
    )
    return EXIT_OK


def _list_named(ctx: Ctx, pages: Any) -> int:
    """Datasets or evals, up to --limit, as an id/name/versions/created table."""
    items = list(itertools.islice(pages(page_size=min(100, ctx.args.limit)), ctx.args.limit))
    ctx.out(
        table(
            ["id", "name", "versions", "created"],
            [[i.id, i.name, i.version_count, i.created_at] for i in items],
        ),
        items,
    )
    return EXIT_OK


def cmd_datasets_list(ctx: Ctx) -> int:
    return _list_named(ctx, ctx.client.iter_datasets)


def cmd_evals_create(ctx: Ctx) -> int:
    spec = _load_spec(ctx.args.file)
    ev, version, created = ctx.client.create_eval_from_spec(spec)
    rows = [[m.name, m.scorer, num(m.threshold, 2), json.dumps(m.args or {})] for m in version.metrics]
    ctx.out(
        f"eval {ev.id}  {ev.name}{' (new)' if created else ''}\n"
        f"eval version {version.id}  v{version.version}  run threshold {num(version.threshold, 2)}\n\n"
        + table(["metric", "scorer", "threshold", "args"], rows),
        {"eval": ev.to_dict(), "version": version.to_dict(), "created_eval": created},
    )
    return EXIT_OK


def cmd_evals_list(ctx: Ctx) -> int:
    return _list_named(ctx, ctx.client.iter_evals)


def _schedule(ctx: Ctx) -> EvalRun:
    a = ctx.args
    return ctx.client.schedule_run(
        a.dataset,
        a.eval_version,
        dataset_version=a.dataset_version,
        name=a.name,
        threshold=getattr(a, "run_threshold", None),
        batch_size=a.batch_size,
    )


def cmd_runs_schedule(ctx: Ctx) -> int:
    run = _schedule(ctx)
    if not ctx.args.wait:
        ctx.out(f"run {run.id}  {run.status}  ({run.item_count} records)", run)
        return EXIT_OK
    if not ctx.json:
        _print(f"run {run.id} scheduled", file=sys.stderr)
    run = _wait(ctx, run, ctx.args.timeout)
    ctx.out(run_summary(run), run)
    return EXIT_OK if run.status == "completed" else EXIT_ERROR


def cmd_runs_get(ctx: Ctx) -> int:
    run = ctx.client.get_run(ctx.args.run)
    ctx.out(run_summary(run), run)
    return EXIT_OK


def cmd_runs_list(ctx: Ctx) -> int:
    a = ctx.args
    runs, count = ctx.client.list_runs(
        limit=a.limit,
        offset=a.offset,
        dataset_id=a.dataset,
        eval_id=a.eval,
        eval_version_id=a.eval_version,
        status=a.status,
    )
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
    ctx.out(f"{human}\n\n{len(runs)} of {count} run(s)", {"items": _plain(runs), "count": count})
    return EXIT_OK


def cmd_runs_evaluations(ctx: Ctx) -> int:
    a = ctx.args
    passed = False if a.failed else (True if a.passed else None)
    items = []
    for e in ctx.client.iter_evaluations(a.run, metric=a.metric, passed=passed, page_size=min(1000, a.limit)):
        items.append(e)
        if len(items) >= a.limit:
            break
    rows = [
        [
            e.record_id,
            e.metric_name,
            num(e.score),
            "pass" if e.is_passed else "FAIL",
            (e.reasoning or e.error_message or "")[:70],
        ]
        for e in items
    ]
    ctx.out(table(["record", "metric", "score", "", "why"], rows, right=(2,)), items)
    return EXIT_OK


def cmd_runs_cancel(ctx: Ctx) -> int:
    run = ctx.client.cancel_run(ctx.args.run)
    ctx.out(f"run {run.id}  {run.status}", run)
    return EXIT_OK


def cmd_runs_export(ctx: Ctx) -> int:
    a = ctx.args
    content = ctx.client.download_export(a.run, a.format, delivery=a.delivery)
    assert isinstance(content, bytes)
    if a.output in (None, "-"):
        if sys.stdout.isatty():  # to be read, not parsed: no raw control characters
            _print(content.decode("utf-8", errors="replace").replace("\r\n", "\n"), end="")
        else:  # to a pipe or a file: the export's exact bytes
            sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return EXIT_OK
    Path(a.output).write_bytes(content)
    _print(f"wrote {a.output} ({len(content):,} bytes, {a.format})", file=sys.stderr)
    return EXIT_OK


def cmd_runs_compare(ctx: Ctx) -> int:
    comp = ctx.client.compare_runs(
        ctx.args.run, ctx.args.baseline, limit=ctx.args.limit, confidence=ctx.args.confidence
    )
    ctx.out(_comparison_text(comp), comp)
    return EXIT_OK


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
        f"wrote {a.output}  ({run.verdict or run.status}; {len(evaluations)} evaluations)",
        {"path": str(a.output), "run_id": run.id, "verdict": run.verdict},
    )
    return EXIT_OK


def cmd_keys_create(ctx: Ctx) -> int:
    a = ctx.args
    key = ctx.client.create_key(name=a.name, role=a.role, expires_at=a.expires_at)
    ctx.out(f"key {key.id}  role {key.role}  {key.name or ''}\nsecret (shown once): {key.key}", key)
    return EXIT_OK


def cmd_keys_list(ctx: Ctx) -> int:
    keys = ctx.client.list_keys()
    ctx.out(
        table(
            ["id", "prefix", "role", "name", "revoked", "last used", "expires"],
            [
                [
                    k.id,
                    k.prefix,
                    k.role,
                    k.name or "",
                    "yes" if k.revoked else "",
                    k.last_used_at or "",
                    k.expires_at or "",
                ]
                for k in keys
            ],
        ),
        keys,
    )
    return EXIT_OK


def cmd_keys_revoke(ctx: Ctx) -> int:
    key = ctx.client.revoke_key(ctx.args.key_id)
    ctx.out(f"key {key.id} revoked", key)
    return EXIT_OK


def cmd_health(ctx: Ctx) -> int:
    a = ctx.args
    client = ctx.client
    if a.wait:
        if not ctx.json:
            _print(f"waiting for {client.base_url} (up to {a.timeout:g} s)", file=sys.stderr)
        health = client.wait_until_ready(timeout=a.timeout, poll_interval=a.poll_interval)
    else:
        health = client.health()
        if client.api_key:
            client.check_key()
    key = "API key accepted" if client.api_key else "no API key set (ASSAY_API_KEY)"
    ctx.out(
        f"{client.base_url} is up (status {health.get('status')}, version {health.get('version')}); {key}",
        {**health, "url": client.base_url, "key_checked": bool(client.api_key)},
    )
    return EXIT_OK


def cmd_local_up(ctx: Ctx) -> int:
    if importlib.util.find_spec("assay_local") is None:
        _print(
            "assay local up needs the embedded local stack (the assay_local package), which comes with the "
            "repository's environment: run `make install` in a clone and use .venv/bin/assay, "
            "or `make local`.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    command = [sys.executable, "-m", "assay_local", "serve"]
    if ctx.args.port is not None:
        command += ["--port", str(ctx.args.port)]
    if ctx.args.data_dir is not None:
        command += ["--data-dir", ctx.args.data_dir]
    if ctx.args.ephemeral:
        command += ["--ephemeral"]
    env = dict(os.environ)
    if ctx.args.bootstrap_key:
        env["ASSAY_BOOTSTRAP_KEY"] = ctx.args.bootstrap_key
    _print(
        f"starting the local stack: {' '.join(command)} (it prints its URL when ready; "
        "`assay health --wait` waits for it)",
        file=sys.stderr,
        flush=True,
    )
    if os.name == "posix":
        # Become the server (same pid): `kill PID`, `kill %1` or Ctrl-C reach it directly, and it
        # stops its workers and moto cleanly on SIGTERM/SIGINT. A child would be left running.
        sys.stdout.flush()
        os.execve(sys.executable, command, env)  # noqa: S606 (our own interpreter and module)
    return _run_forwarding_signals(command, env)


def cmd_local_invoke(ctx: Ctx) -> int:
    if importlib.util.find_spec("assay_local") is None:
        _print(
            "assay local invoke needs the embedded local stack (the assay_local package), which comes with "
            "the repository's environment: run `make install` in a clone and use .venv/bin/assay.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    command = [sys.executable, "-m", "assay_local", "invoke", ctx.args.function]
    if ctx.args.event is not None:
        command += ["--event", ctx.args.event]
    if ctx.args.state_file is not None:
        command += ["--state-file", ctx.args.state_file]
    # Same streams (stdin for `-e -`): the result on stdout, logs on stderr, its exit code.
    return subprocess.run(command, check=False).returncode  # noqa: S603 (our own interpreter and module)


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Where exec is not the real thing (Windows): run the child, pass SIGTERM/SIGINT on to it."""
    child = subprocess.Popen(command, env=env)  # noqa: S603 (our own interpreter and module)
    forwarded = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in forwarded:
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    try:
        return child.wait()
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)


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
        run = ctx.client.schedule_run(
            a.dataset, a.eval_version, dataset_version=a.dataset_version, name=a.name, batch_size=a.batch_size
        )
        _print(f"assay ci: run {run.id} scheduled", file=sys.stderr)
        run = _wait(ctx, run, a.timeout)
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
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except (AssayError, CliError, RecordFileError) as exc:
        kind = "usage" if isinstance(exc, CliError) else "api"
        _ci_reports(ctx, error_result(_describe_error(exc), run, kind=kind))
        raise  # main() prints it (with the code and request id) and exits 2
    result = decide(run, evaluations, default_threshold=default, per_metric=per_metric, comparison=comparison)
    _ci_reports(ctx, result, evaluations)
    if ctx.json:
        return result.exit_code
    rows = [
        [
            m.name,
            num(m.mean),
            pct(m.pass_rate),
            num(m.threshold, 2),
            "ok" if m.passed else "FAIL",
            len(m.failing),
        ]
        + ([signed(m.mean_delta) + ("*" if m.significant else "")] if comparison else [])
        for m in result.metrics
    ]
    headers = ["metric", "mean", "pass rate", "gate thr.", "status", "failing records"]
    _print(table(headers + (["Δ mean vs baseline"] if comparison else []), rows, right=(1, 2, 3, 5)))
    if comparison:
        _print(
            f"\nbaseline {comparison.baseline_run_id}: {comparison.verdict} "
            f"({sum(m.regressed or 0 for m in comparison.metrics)} record-metric pair(s) regressed)"
        )
    verdict = "ERROR: " + result.error if result.error else ("PASSED" if result.passed else "FAILED")
    _print(f"\ngate {verdict}")
    return result.exit_code


def _describe_error(exc: Exception) -> str:
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
                "exit_code": result.exit_code,
                "error": result.error,
                "error_kind": result.error_kind if result.error else None,
                "run": run.to_dict() if run else None,
                "comparison": comparison.to_dict() if comparison else None,
                "metrics": [
                    {
                        "metric": m.name,
                        "mean": m.mean,
                        "pass_rate": m.pass_rate,
                        "threshold": m.threshold,
                        "passed": m.passed,
                        "failing_records": [e.record_id for e in m.failing],
                    }
                    for m in result.metrics
                ],
            },
        )


# ---------------------------------------------------------------------------- parser
def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options taken before and after the command: ``assay --json runs get`` = ``assay runs get --json``."""
    d = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--url", default=d(None), help="API base URL (default: $ASSAY_URL)")
    parser.add_argument("--api-key", default=d(None), help="API key (default: $ASSAY_API_KEY)")
    parser.add_argument("--json", action="store_true", default=d(False), help="print the API's JSON")
    parser.add_argument("-q", "--quiet", action="store_true", default=d(False), help="no progress bars")
    parser.add_argument("--http-timeout", type=float, default=d(60.0), help="seconds per HTTP request (60)")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="assay",
        formatter_class=fmt,
        epilog=EPILOG,
        description="Assay from the terminal and CI: datasets, evals, runs, the CI gate, reports, keys.",
    )
    parser.add_argument("--version", action="version", version=f"assay {__version__}")
    _common(parser, top=True)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def leaf(
        sub: Any, name: str, func: Callable[[Ctx], int], help_: str, **kw: Any
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=fmt, epilog=EPILOG, **kw)
        _common(p, top=False)
        p.set_defaults(func=func)
        return p

    def group(name: str, help_: str) -> Any:
        g = groups.add_parser(name, help=help_, description=help_, formatter_class=fmt, epilog=EPILOG)
        return g.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def upload_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format", choices=["jsonl", "json", "csv"], help="file format (default: from the suffix)"
        )
        p.add_argument(
            "--via",
            choices=["auto", "inline", "upload"],
            default="auto",
            help="inline JSON (≤ 10,000 records), presigned upload (any size), or auto: "
            "inline below 1 MB (default)",
        )

    def wait_opts(p: argparse.ArgumentParser, timeout: float) -> None:
        p.add_argument("--timeout", type=float, default=timeout, help=f"seconds to wait ({timeout:g})")
        p.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls (1)")

    def schedule_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", required=True, help="dataset id")
        p.add_argument("--eval-version", required=True, help="eval version id")
        p.add_argument("--dataset-version", type=int, help="dataset version number (default: latest)")
        p.add_argument("--name", help="run name")
        p.add_argument("--batch-size", type=int, help="records per scoring batch (default 100)")

    ds = group("datasets", "datasets and their versions")
    p = leaf(ds, "create", cmd_datasets_create, "create a dataset (and a first version with --file)")
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--project", help="project id (default: the tenant's default project)")
    p.add_argument("--file", type=Path, help="JSONL, JSON or CSV records for version 1")
    upload_opts(p)
    p = leaf(ds, "upload", cmd_datasets_upload, "add a version from a JSONL, JSON or CSV file")
    p.add_argument("dataset", help="dataset id")
    p.add_argument("file", type=Path)
    upload_opts(p)
    p = leaf(ds, "list", cmd_datasets_list, "list datasets, newest first")
    p.add_argument("--limit", type=int, default=50)

    ev = group("evals", "evals and their versions")
    p = leaf(
        ev,
        "create",
        cmd_evals_create,
        "create an eval version from a YAML (or JSON) file; adds a version to the eval of the same name",
    )
    p.add_argument("--file", type=Path, required=True, help="eval.yaml: name, threshold, metrics, judge")
    p = leaf(ev, "list", cmd_evals_list, "list evals, newest first")
    p.add_argument("--limit", type=int, default=50)

    runs = group("runs", "eval runs")
    p = leaf(
        runs, "schedule", cmd_runs_schedule, "schedule a run (--wait: follow it, then print its summary)"
    )
    schedule_opts(p)
    p.add_argument("--threshold", dest="run_threshold", type=float, help="the run-level threshold (0..1)")
    p.add_argument("--wait", action="store_true", help="show a progress bar until the run finishes")
    wait_opts(p, 600)
    p = leaf(runs, "get", cmd_runs_get, "a run's status, per-metric table and verdict")
    p.add_argument("run")
    p = leaf(runs, "list", cmd_runs_list, "list runs, newest first")
    p.add_argument("--dataset")
    p.add_argument("--eval")
    p.add_argument("--eval-version")
    p.add_argument("--status", choices=["pending", "running", "completed", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--offset", type=int, default=0)
    p = leaf(runs, "evaluations", cmd_runs_evaluations, "a run's evaluations in record order")
    p.add_argument("run")
    p.add_argument("--metric")
    passed = p.add_mutually_exclusive_group()
    passed.add_argument("--failed", action="store_true", help="only evaluations that did not pass")
    passed.add_argument("--passed", action="store_true", help="only evaluations that passed")
    p.add_argument("--limit", type=int, default=100)
    p = leaf(runs, "cancel", cmd_runs_cancel, "cancel a pending or running run")
    p.add_argument("run")
    p = leaf(runs, "export", cmd_runs_export, "download a finished run's export (follows the presigned link)")
    p.add_argument("run")
    p.add_argument("--format", choices=["json", "jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument(
        "--delivery",
        choices=["inline", "link"],
        default="inline",
        help="inline (follows a 303 for large exports) or link (always through S3)",
    )
    p = leaf(runs, "compare", cmd_runs_compare, "per-metric deltas and significance against a baseline run")
    p.add_argument("run")
    p.add_argument("--baseline", required=True, help="the baseline run id")
    p.add_argument("--limit", type=int, default=20, help="records listed per direction (1-100; 20)")
    p.add_argument("--confidence", type=float, help="confidence level (0.8-0.99; default 0.95)")
    p = leaf(runs, "report", cmd_runs_report, "write a self-contained HTML report of a run")
    p.add_argument("run")
    p.add_argument("-o", "--output", type=Path, required=True, help="report.html")
    p.add_argument("--baseline", help="also compare with this run")

    keys = group("keys", "API keys")
    p = leaf(keys, "create", cmd_keys_create, "create an API key (the secret is printed once)")
    p.add_argument("--name")
    p.add_argument("--role", choices=["owner", "member", "viewer"], default="member")
    p.add_argument("--expires-at", help="ISO 8601 date-time in the future")
    leaf(keys, "list", cmd_keys_list, "list API keys (never their secrets)")
    p = leaf(keys, "revoke", cmd_keys_revoke, "revoke an API key")
    p.add_argument("key_id")

    p = leaf(
        groups,
        "health",
        cmd_health,
        "check that the API answers and accepts the API key (--wait: until it does, e.g. after "
        "`assay local up &`); exit 0 ready, 2 error, 3 not ready within --timeout",
    )
    p.add_argument("--wait", action="store_true", help="poll until ready instead of one check")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait (60)")
    p.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls (0.5)")

    local = group("local", "the embedded local stack (needs the repository's environment)")
    p = leaf(
        local,
        "up",
        cmd_local_up,
        "serve the API locally from template.yaml until Ctrl-C or SIGTERM (the command becomes "
        "the server process: `kill PID` stops it); its state (datasets, evals, runs, API keys) is "
        "kept in --data-dir across restarts and crashes, and runs cut short are resumed",
    )
    p.add_argument("--port", type=int, help="HTTP port (default $ASSAY_PORT or 3000)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument(
        "--data-dir",
        metavar="PATH",
        help="where the state is kept (default ./.assay-local/data); one running stack per directory",
    )
    keep.add_argument(
        "--ephemeral", action="store_true", help="keep nothing: start empty, forget everything at stop"
    )
    p.add_argument(
        "--bootstrap-key",
        default=os.environ.get("ASSAY_BOOTSTRAP_KEY"),
        help="owner key of the 'local' tenant (default $ASSAY_BOOTSTRAP_KEY; ≥ 20 characters)",
    )
    p = leaf(
        local,
        "invoke",
        cmd_local_invoke,
        "run one function's handler once against the running local stack (`sam local invoke` "
        "without Docker): the function's environment from template.yaml, its IAM role; the result "
        "on stdout, logs on stderr; exit 0 returned, 1 raised (Lambda's error payload), 2 usage error",
    )
    p.add_argument(
        "function", metavar="FUNCTION", help="the template's logical id (e.g. GetRunFunction) or name"
    )
    p.add_argument(
        "-e",
        "--event",
        metavar="PATH",
        help="event JSON file (e.g. events/api/health.json), - for stdin; default {}",
    )
    p.add_argument("--state-file", help="the running stack's state file (default ./.assay-local.json)")

    p = leaf(
        groups,
        "ci",
        cmd_ci,
        "CI gate: schedule a run, wait, pass when every metric's mean reaches its threshold "
        "(and, with --baseline, nothing regressed significantly); exit 0 pass, 1 fail, 2 error",
    )
    schedule_opts(p)
    p.add_argument(
        "--threshold",
        action="append",
        metavar="[METRIC=]VALUE",
        help="gate threshold for every metric's mean (default: each metric's own threshold); "
        "METRIC=VALUE for one metric; repeatable",
    )
    p.add_argument("--baseline", help="fail on a significant regression against this run")
    p.add_argument("--junit", type=Path, help="write JUnit XML here (one test case per metric)")
    p.add_argument("--markdown", type=Path, help="write a Markdown summary here (for a PR comment)")
    p.add_argument("--report", type=Path, help="write the HTML report here")
    wait_opts(p, 1800)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Ctx(args)
    try:
        return args.func(ctx)
    except KeyboardInterrupt:
        _print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RunTimeoutError, NotReadyError) as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except ApiError as exc:
        _print(
            f"error: {exc.message}\n  code {exc.code} · HTTP {exc.status} · request {exc.request_id or '-'}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except (AssayError, CliError, RecordFileError) as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
