"""The ``assay`` command line, built on ``assay.Client``."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from assay import __version__
from assay._format import (
    CONCEPTS,
    ProgressBar,
    clip,
    json_text,
    num,
    pct,
    run_summary,
    safe,
    signed,
    table,
)
from assay.client import Client
from assay.errors import ApiError, AssayError, MissingApiKeyError, NotReadyError, RunTimeoutError
from assay.gate import GateResult, decide, error_result, junit_xml, markdown, parse_thresholds
from assay.models import Comparison, Dataset, Eval, EvalRun, Evaluation, Model
from assay.records import RecordFileError
from assay.report import render

EXIT_OK, EXIT_GATE_FAILED, EXIT_ERROR, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EPILOG = """\
environment:
  ASSAY_URL       the API's base URL (default http://127.0.0.1:3000, the local stack)
  ASSAY_API_KEY   the API key (ask_...)

exit codes:
  0    success (for `assay ci`: the gate passed)
  1    `assay ci`: the gate failed (a metric below its threshold, or a significant regression);
       `assay local invoke`: the function's handler raised
  2    error: bad arguments or files, an API error (its code and request id are printed), the
       service unreachable, a run that ended failed/cancelled while waiting, or (`assay local
       up`) a port in use
  3    `--wait` / `assay ci`: the run did not finish within --timeout; `assay health --wait`:
       the service did not answer (or accept the key) within --timeout
  130  interrupted (Ctrl-C)

Human-readable output by default; --json prints the API's JSON (one document) on stdout, and
every list as {"items": [...], "count": N, "next_cursor": ...}. Progress bars, info lines and
hints of the next command go to stderr; -q hides them (results and errors stay).
"""


def _docs_pointer() -> str:
    """Where the docs are: the package's documentation URL when its metadata declares one
    (``[project.urls]``), else the file in the repository (a bare path means nothing after
    ``pip install``)."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata("assay").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):
        urls = []
    found = {label.strip().lower(): url.strip() for label, _, url in (e.partition(",") for e in urls)}
    for label in ("documentation", "docs", "homepage", "repository", "source"):
        if found.get(label):
            return f"Docs: {found[label]}"
    return "Docs: see docs/cli.md in the Assay repository."


NO_API_KEY = (
    "no API key: pass --api-key KEY or set ASSAY_API_KEY (an owner's `assay keys create` makes "
    "one; on the local stack it is the ASSAY_BOOTSTRAP_KEY it was started with)"
)


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
        self.result: Any = None  # what the command printed last (for the next-command hint)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.args.url, self.args.api_key, timeout=self.args.http_timeout)
        return self._client

    def out(self, human: str, data: Any) -> None:
        self.result = data
        if self.json:
            _print(json_text(_plain(data)))
        elif human:
            _print(human)

    def progress(self, label: str, unit: str = "") -> ProgressBar | None:
        return None if self.args.quiet else ProgressBar(label, unit=unit)

    def info(self, message: str) -> None:
        """A progress or info line on stderr ("run … scheduled"): -q hides it; results (stdout)
        and errors are never hidden."""
        if not self.args.quiet:
            _print(message, file=sys.stderr, flush=True)

    def hint(self, message: str) -> None:
        """What to run next, on stderr: hidden by -q, and by --json (a script reads stdout and
        needs no advice)."""
        if not (self.args.quiet or self.json):
            _print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- names and lists
def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _resolve(ctx: Ctx, kind: str, value: str | None) -> str | None:
    """A dataset's or an eval's id, given its id or its exact name. A name is looked up in the
    list (the API takes ids only): one match is its id; none or several is a one-line error
    saying what to do, before anything is created or scheduled."""
    if value is None or _is_id(value):
        return value
    pages: Callable[[], Iterator[Dataset] | Iterator[Eval]] = (
        ctx.client.iter_datasets if kind == "dataset" else ctx.client.iter_evals
    )
    matches = [item.id for item in pages() if item.name == value]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"no {kind} named {value!r} — see `assay {kind}s list`")
    raise CliError(f"{len(matches)} {kind}s are named {value!r}: {', '.join(matches)} — pass one id instead")


def _resolve_eval_version(ctx: Ctx, value: str | None) -> str | None:
    """An eval version's id, given its id, an eval's name (its latest version) or NAME@N
    (version N of that eval)."""
    if value is None or _is_id(value):
        return value
    name, at, number = value.rpartition("@")
    if not (at and number.isdigit()):
        name, number = value, ""
    eval_id = _resolve(ctx, "eval", name)
    assert eval_id is not None
    versions = ctx.client.list_eval_versions(eval_id)
    if not versions:
        raise CliError(f"eval {name!r} has no version yet — `assay evals create --file eval.yaml` adds one")
    if number:
        picked = next((v for v in versions if v.version == int(number)), None)
        if picked is None:
            have = ", ".join(str(v.version) for v in sorted(versions, key=lambda v: v.version or 0))
            raise CliError(f"eval {name!r} has no version {number} (it has {have})")
        return picked.id
    latest = max(versions, key=lambda v: v.version or 0)
    ctx.info(f"eval {name!r}: its latest version, v{latest.version} ({latest.id})")
    return latest.id


def _listing(items: Sequence[Any], next_cursor: str | None = None, **extra: Any) -> dict[str, Any]:
    """Every list's --json shape: ``{"items": [...], "count": N, "next_cursor": ...}`` — ``count``
    the number of items in this document, ``next_cursor`` (``--cursor``) where the next page
    starts, ``null`` at the end."""
    return {"items": _plain(list(items)), "count": len(items), "next_cursor": next_cursor, **extra}


def _page_through(
    ctx: Ctx, path: str, params: dict[str, Any], limit: int, page_max: int
) -> tuple[list[dict[str, Any]], str | None, dict[str, Any]]:
    """Up to ``limit`` items of a cursor-paged list from ``--cursor`` on (``params`` are sent
    with the first page; the cursor carries them on), the cursor after the last one returned
    (``None``: nothing more), and the first page as the API sent it."""
    items: list[dict[str, Any]] = []
    cursor = getattr(ctx.args, "cursor", None)
    first: dict[str, Any] | None = None
    while len(items) < limit:
        sent = {**(params if first is None else {k: v for k, v in params.items() if k != "offset"})}
        page = ctx.client._json(
            "GET", path, params={**sent, "limit": min(page_max, limit - len(items)), "cursor": cursor}
        )
        first = first or page
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items[:limit], cursor, first or {}


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
    if a.strict and a.file is None:
        raise CliError("--strict checks the records of --file: give --file too")
    if a.file is None:
        dataset = ctx.client.create_dataset(a.name, description=a.description, project_id=a.project)
        ctx.out(f"dataset {dataset.id}  {dataset.name}", {"dataset": dataset.to_dict()})
        return EXIT_OK
    if not a.file.is_file():  # checked before anything is created
        raise CliError(f"{a.file}: no such file")
    # The file is parsed locally first; then one request creates the dataset with version 1
    # (a bad record creates nothing). A file too large to send inline goes through a presigned
    # upload, which needs the dataset first: the client deletes the dataset again if that fails.
    bar = ctx.progress(f"upload {a.file.name}", unit="B")
    try:
        with _strict_refusal():
            dataset, version = ctx.client.create_dataset_from_file(
                a.name,
                a.file,
                description=a.description,
                project_id=a.project,
                fmt=a.format,
                via=a.via,
                progress=(lambda d, t: bar.update(d, t)) if bar else None,
                strict=a.strict,
            )
    finally:
        if bar:
            bar.close()
    _data_warnings(version.warnings)
    ctx.out(
        f"dataset {dataset.id}  {dataset.name}\n"
        f"version {version.version}  {version.record_count} records  ({version.id})",
        {"dataset": dataset.to_dict(), "version": version.to_dict()},
    )
    return EXIT_OK


def _deleted(ctx: Ctx, kind: str, object_id: str) -> int:
    ctx.out(f"deleted {kind} {object_id}", {"deleted": {"kind": kind, "id": object_id}})
    return EXIT_OK


def cmd_datasets_delete(ctx: Ctx) -> int:
    dataset_id = _resolve(ctx, "dataset", ctx.args.dataset)
    assert dataset_id is not None
    ctx.client.delete_dataset(dataset_id)
    return _deleted(ctx, "dataset", dataset_id)


def cmd_evals_delete(ctx: Ctx) -> int:
    eval_id = _resolve(ctx, "eval", ctx.args.eval)
    assert eval_id is not None
    ctx.client.delete_eval(eval_id)
    return _deleted(ctx, "eval", eval_id)


def cmd_runs_delete(ctx: Ctx) -> int:
    ctx.client.delete_run(ctx.args.run)
    return _deleted(ctx, "run", ctx.args.run)


def _upload(ctx: Ctx, dataset_id: str, path: Path, fmt: str | None, via: str, *, strict: bool = False) -> Any:
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    bar = ctx.progress(f"upload {path.name}", unit="B")
    try:
        with _strict_refusal():
            return ctx.client.upload_file(
                dataset_id,
                path,
                fmt=fmt,
                via=via,
                progress=(lambda d, t: bar.update(d, t)) if bar else None,
                strict=strict,
            )
    finally:
        if bar:
            bar.close()


def _data_warnings(warnings: Sequence[dict[str, Any]] | None) -> None:
    """The server's warnings about the records (a CSV column ``Output`` stored in metadata, no
    ``output`` anywhere), one line each on stderr: stdout stays the result (or its JSON)."""
    for warning in warnings or ():
        _print(f"warning: {warning.get('message') or warning}", file=sys.stderr)


@contextlib.contextmanager
def _strict_refusal() -> Iterator[None]:
    """A ``--strict`` refusal names one problem in its message; print them all first."""
    try:
        yield
    except ApiError as exc:
        _data_warnings((exc.details or {}).get("warnings"))
        raise


def cmd_datasets_upload(ctx: Ctx) -> int:
    a = ctx.args
    a.dataset = _resolve(ctx, "dataset", a.dataset)  # an id, or a dataset's exact name
    version = _upload(ctx, a.dataset, a.file, a.format, a.via, strict=a.strict)
    _data_warnings(version.warnings)
    ctx.out(
        f"dataset {a.dataset}  version {version.version}  {version.record_count} records  ({version.id})",
        version,
    )
    return EXIT_OK


def _more(ctx: Ctx, command: str, cursor: str | None, *filters: tuple[str, Any]) -> None:
    """The command that shows the next page (the same filters, from ``cursor``)."""
    if cursor:
        options = "".join(
            f" {flag}" if value is True else f" {flag} {value}" for flag, value in filters if value
        )
        ctx.hint(f"more: assay {command}{options} --limit {ctx.args.limit} --cursor {cursor}")


def _list_named(ctx: Ctx, noun: str, model: type[Dataset] | type[Eval]) -> int:
    """Datasets or evals, up to --limit, as an id/name/versions/created table."""
    raw, cursor, _ = _page_through(ctx, f"/v1/{noun}", {}, ctx.args.limit, 100)
    items = [model.from_api(i) for i in raw]
    ctx.out(
        table(
            ["id", "name", "versions", "created"],
            [[i.id, i.name, i.version_count, i.created_at] for i in items],
        ),
        _listing(items, cursor),
    )
    if not items and not ctx.args.cursor:
        first = (
            "assay datasets create NAME --file records.jsonl"
            if noun == "datasets"
            else "assay evals create --file eval.yaml"
        )
        ctx.hint(f"no {noun} yet: {first}")
    _more(ctx, f"{noun} list", cursor)
    return EXIT_OK


def cmd_datasets_list(ctx: Ctx) -> int:
    return _list_named(ctx, "datasets", Dataset)


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
    return _list_named(ctx, "evals", Eval)


def _schedule(ctx: Ctx) -> EvalRun:
    a = ctx.args
    a.dataset = _resolve(ctx, "dataset", a.dataset)
    a.eval_version = _resolve_eval_version(ctx, a.eval_version)
    run = ctx.client.schedule_run(
        a.dataset,
        a.eval_version,
        dataset_version=a.dataset_version,
        name=a.name,
        threshold=getattr(a, "run_threshold", None),
        batch_size=a.batch_size,
    )
    _data_warnings(run.warnings)  # e.g. records without the field a metric needs
    return run


def cmd_runs_schedule(ctx: Ctx) -> int:
    run = _schedule(ctx)
    if not ctx.args.wait:
        ctx.out(f"run {run.id}  {run.status}  ({run.item_count} records)", run)
        return EXIT_OK
    if not ctx.json:
        ctx.info(f"run {run.id} scheduled")
    run = _wait(ctx, run, ctx.args.timeout)
    ctx.out(run_summary(run), run)
    return EXIT_OK if run.status == "completed" else EXIT_ERROR


def cmd_runs_get(ctx: Ctx) -> int:
    run = ctx.client.get_run(ctx.args.run)
    ctx.out(run_summary(run), run)
    return EXIT_OK


def cmd_runs_list(ctx: Ctx) -> int:
    a = ctx.args
    filters = {
        "dataset_id": _resolve(ctx, "dataset", a.dataset),
        "eval_id": _resolve(ctx, "eval", a.eval),
        "eval_version_id": _resolve_eval_version(ctx, a.eval_version),
        "status": a.status,
        "offset": a.offset or None,
    }
    raw, cursor, first = _page_through(ctx, "/v1/eval-runs", filters, a.limit, 100)
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
    ctx.out(f"{human}\n\n{len(runs)} of {count} run(s)", _listing(runs, cursor, total=count))
    _more(
        ctx,
        "runs list",
        cursor,
        ("--dataset", a.dataset),
        ("--eval", a.eval),
        ("--eval-version", a.eval_version),
        ("--status", a.status),
    )
    return EXIT_OK


def cmd_runs_evaluations(ctx: Ctx) -> int:
    a = ctx.args
    passed = False if a.failed else (True if a.passed else None)
    params = {"metric": a.metric, "passed": passed}
    raw, cursor, _ = _page_through(ctx, f"/v1/eval-runs/{a.run}/evaluations", params, a.limit, 1000)
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
    ctx.out(table(["record", "metric", "score", "", "why"], rows, right=(2,)), _listing(items, cursor))
    _more(
        ctx,
        f"runs evaluations {a.run}",
        cursor,
        ("--metric", a.metric),
        ("--failed", a.failed),
        ("--passed", a.passed),
    )
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
    ctx.info(f"wrote {a.output} ({len(content):,} bytes, {a.format})")
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
        f"wrote {a.output}  (run verdict {run.verdict or run.status}; {len(evaluations)} evaluations)",
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
        _listing(keys),
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
            ctx.info(f"waiting for {client.base_url} (up to {a.timeout:g} s)")
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
    # Checked before anything is built (the stack takes seconds to create its resources, and a
    # port in use would only be found at the very end), the way `serve` itself checks it.
    from assay_local.__main__ import port_problem

    busy = port_problem(ctx.args.port)
    if busy:
        _print(f"error: {busy}", file=sys.stderr)
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
    ctx.info(
        f"starting the local stack: {' '.join(command)} (it prints its URL when ready; "
        "`assay health --wait` waits for it)"
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
        _check_ci_options(ctx, per_metric)
        run = ctx.client.schedule_run(
            a.dataset, a.eval_version, dataset_version=a.dataset_version, name=a.name, batch_size=a.batch_size
        )
        ctx.info(f"assay ci: run {run.id} scheduled")
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
    _print("gate: each metric's mean vs its gate threshold (scores 0–1, rates in %)")
    _print(table(headers + (["Δ mean vs baseline"] if comparison else []), rows, right=(1, 2, 3, 6)))
    if comparison:
        _print(
            f"\nbaseline {comparison.baseline_run_id}: {comparison.verdict} "
            f"({sum(m.regressed or 0 for m in comparison.metrics)} record-metric pair(s) regressed)"
        )
    _print(f"\n{safe(result.summary(), multiline=False)}\ndefinitions: {CONCEPTS}")
    return result.exit_code


def _check_ci_options(ctx: Ctx, per_metric: dict[str, float]) -> None:
    """Every gate setting checked before the run is scheduled: a typo must cost seconds, not
    the whole run's wait. Names become ids; a per-metric threshold must name a metric of the
    eval version; the baseline run must exist."""
    a = ctx.args
    for flag, value in (("--timeout", a.timeout), ("--poll-interval", a.poll_interval)):
        if value <= 0:
            raise CliError(f"{flag} must be more than 0 seconds (got {value:g})")
    for flag, count in (("--batch-size", a.batch_size), ("--dataset-version", a.dataset_version)):
        if count is not None and count < 1:
            raise CliError(f"{flag} must be 1 or more (got {count})")
    a.dataset = _resolve(ctx, "dataset", a.dataset)
    a.eval_version = _resolve_eval_version(ctx, a.eval_version)
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
        if not _is_id(a.baseline):
            raise CliError(f"--baseline {a.baseline!r} is not a run id (runs have no names: assay runs list)")
        ctx.client.get_run(a.baseline)  # a mistyped baseline: a 404 now, not after the run


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
                "exit_code": result.exit_code,
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


# ---------------------------------------------------------------------------- parser
def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options taken before and after the command: ``assay --json runs get`` = ``assay runs get --json``."""
    d = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--url", default=d(None), help="API base URL (default: $ASSAY_URL)")
    parser.add_argument("--api-key", default=d(None), help="API key (default: $ASSAY_API_KEY)")
    parser.add_argument("--json", action="store_true", default=d(False), help="print the API's JSON")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=d(False),
        help="no progress bars, info lines or hints (results and errors stay)",
    )
    parser.add_argument("--http-timeout", type=float, default=d(60.0), help="seconds per HTTP request (60)")


def _run_id(value: str) -> str:
    """A run argument: runs have ids, not names — say so at once instead of the API's
    "Input should be a valid UUID"."""
    if not _is_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a run id (runs have no names: `assay runs list`)")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {number})")
    return number


# Each command's "examples:" (what `assay COMMAND --help` ends with). They are real commands:
# tests/client/test_cli_help.py parses every one with this parser. $DS, $EVV and $RUN stand for
# ids, as in the README's tour (e.g. RUN=$(assay --json runs list --limit 1 | jq -r '.items[0].id')).
EXAMPLES: dict[str, list[str]] = {
    "": [
        "assay health --wait --timeout 120",
        "assay datasets create support-qa --file docs/ci/support_qa.csv",
        "assay evals create --file docs/ci/eval.yaml",
        "assay ci --dataset support-qa --eval-version support-assistant-quality --threshold 0.7",
    ],
    "datasets": ["assay datasets list", "assay datasets upload support-qa outputs.jsonl"],
    "datasets create": [
        "assay datasets create support-qa --file docs/ci/support_qa.csv",
        "assay datasets create support-qa --description 'answers from the help centre'",
    ],
    "datasets upload": [
        "assay datasets upload support-qa outputs.jsonl",
        "assay --json datasets upload $DS big.csv --via upload | jq -r .version",
    ],
    "datasets delete": ["assay datasets delete $DS", "assay datasets delete support-qa"],
    "datasets list": ["assay datasets list --limit 10", "assay --json datasets list | jq -r '.items[].name'"],
    "evals": ["assay evals create --file docs/ci/eval.yaml", "assay evals list"],
    "evals create": ["assay evals create --file docs/ci/eval.yaml"],
    "evals delete": ["assay evals delete support-assistant-quality", "assay evals delete $EVAL --json"],
    "evals list": ["assay evals list --limit 10", "assay --json evals list | jq -r '.items[].id'"],
    "runs": ["assay runs list --status running", "assay runs get $RUN"],
    "runs schedule": [
        "assay runs schedule --dataset support-qa --eval-version support-assistant-quality --wait",
        "assay runs schedule --dataset $DS --eval-version $EVV --dataset-version 2 --name nightly",
    ],
    "runs get": ["assay runs get $RUN", "assay --json runs get $RUN | jq .aggregate_results"],
    "runs list": [
        "assay runs list --status running",
        "assay runs list --dataset support-qa --limit 5",
        "assay --json runs list --limit 1 | jq -r '.items[0].id'",
    ],
    "runs evaluations": [
        "assay runs evaluations $RUN --failed",
        "assay runs evaluations $RUN --metric exact --limit 20",
    ],
    "runs cancel": ["assay runs cancel $RUN"],
    "runs delete": ["assay runs delete $RUN", "assay runs delete $RUN --json"],
    "runs export": [
        "assay runs export $RUN --format jsonl -o run.jsonl",
        "assay runs export $RUN --format csv > run.csv",
    ],
    "runs compare": ["assay runs compare $RUN --baseline $BASELINE"],
    "runs report": [
        "assay runs report $RUN -o report.html",
        "assay runs report $RUN -o report.html --baseline $BASELINE",
    ],
    "keys": ["assay keys create --name ci-bot --role member", "assay keys list"],
    "keys create": [
        "assay keys create --name ci-bot --role member",
        "assay keys create --name dashboard --role viewer --expires-at 2027-01-01T00:00:00Z",
    ],
    "keys list": ["assay keys list", "assay --json keys list | jq -r '.items[] | select(.revoked) | .id'"],
    "keys revoke": ["assay keys revoke $KEY_ID"],
    "health": ["assay health", "assay health --wait --timeout 120"],
    "local": ["ASSAY_BOOTSTRAP_KEY=ask_local_dev_key_change_me assay local up"],
    "local up": [
        "ASSAY_BOOTSTRAP_KEY=ask_local_dev_key_change_me assay local up",
        "ASSAY_PORT=3001 assay local up --ephemeral",
        "assay local up --port 3001 --data-dir /tmp/assay-data",
    ],
    "local invoke": [
        "assay local invoke ApiMetaFunction -e events/api/health.json",
        "assay local invoke ListRunsFunction -e events/api/list_runs.json",
    ],
    "ci": [
        "assay ci --dataset support-qa --eval-version support-assistant-quality --threshold 0.7",
        "assay ci --dataset $DS --eval-version $EVV --threshold exact=0.9 --baseline $RUN "
        "--junit junit.xml --markdown summary.md",
    ],
}


def _add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Every parser's help ends with its examples, then the exit codes and where the docs are."""
    examples = EXAMPLES.get(path, [])
    head = "examples:\n" + "".join(f"  {line}\n" for line in examples) + "\n" if examples else ""
    parser.epilog = f"{head}{EPILOG}{_docs_pointer()}\n"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _add_examples(sub, f"{path} {name}".strip())


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
        sub: Any, name: str, func: Callable[[Ctx], int], help_: str, *, api: bool = True, **kw: Any
    ) -> argparse.ArgumentParser:
        """A command. ``api=False`` (the local stack's commands): only -q, not the API's options
        (--url, --api-key, --json, --http-timeout), which would do nothing there."""
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=fmt, epilog=EPILOG, **kw)
        if api:
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
        p.add_argument(
            "--strict",
            action="store_true",
            help="refuse the records, storing nothing, when the server warns about them (a column "
            "such as Output or golden that is not a record field, no output in any record); "
            "without it the warnings are printed to stderr and the version is created",
        )

    def wait_opts(p: argparse.ArgumentParser, timeout: float) -> None:
        p.add_argument("--timeout", type=float, default=timeout, help=f"seconds to wait ({timeout:g})")
        p.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls (1)")

    def schedule_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", required=True, help="dataset id or exact name")
        p.add_argument(
            "--eval-version",
            required=True,
            help="eval version id, or an eval's exact name (its latest version), or NAME@N (version N)",
        )
        p.add_argument("--dataset-version", type=int, help="dataset version number (default: latest)")
        p.add_argument("--name", help="run name")
        p.add_argument("--batch-size", type=int, help="records per scoring batch (default 100)")

    ds = group("datasets", "datasets and their versions")
    p = leaf(ds, "create", cmd_datasets_create, "create a dataset (and a first version with --file)")
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--project", help="project id (default: the tenant's default project)")
    p.add_argument(
        "--file",
        type=Path,
        help="JSONL, JSON or CSV records for version 1 (checked before "
        "anything is created; a bad record creates nothing)",
    )
    upload_opts(p)
    p = leaf(
        ds,
        "delete",
        cmd_datasets_delete,
        "delete a dataset with its versions and records (refused while runs use it)",
    )
    p.add_argument("dataset", help="dataset id or exact name")
    p = leaf(ds, "upload", cmd_datasets_upload, "add a version from a JSONL, JSON or CSV file")
    p.add_argument("dataset", help="dataset id or exact name")
    p.add_argument("file", type=Path)
    upload_opts(p)
    p = leaf(ds, "list", cmd_datasets_list, "list datasets, newest first")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")

    ev = group("evals", "evals and their versions")
    p = leaf(
        ev,
        "create",
        cmd_evals_create,
        "create an eval version from a YAML (or JSON) file; adds a version to the eval of the same name",
    )
    p.add_argument(
        "--file",
        type=Path,
        required=True,
        help="eval.yaml: name, threshold, metrics, judge "
        "(a new eval is created with its version 1 in one request: a bad spec creates nothing)",
    )
    p = leaf(
        ev, "delete", cmd_evals_delete, "delete an eval and all its versions (refused while runs use it)"
    )
    p.add_argument("eval", help="eval id or exact name")
    p = leaf(ev, "list", cmd_evals_list, "list evals, newest first")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")

    runs = group("runs", "eval runs")
    p = leaf(
        runs, "schedule", cmd_runs_schedule, "schedule a run (--wait: follow it, then print its summary)"
    )
    schedule_opts(p)
    p.add_argument("--threshold", dest="run_threshold", type=float, help="the run-level threshold (0..1)")
    p.add_argument("--wait", action="store_true", help="show a progress bar until the run finishes")
    wait_opts(p, 600)
    p = leaf(runs, "get", cmd_runs_get, "a run's status, per-metric table and verdict")
    p.add_argument("run", type=_run_id, help="run id")
    p = leaf(runs, "list", cmd_runs_list, "list runs, newest first")
    p.add_argument("--dataset", help="only this dataset's runs (id or exact name)")
    p.add_argument("--eval", help="only this eval's runs (id or exact name)")
    p.add_argument("--eval-version", help="only this eval version's runs (id, eval name, or NAME@N)")
    p.add_argument("--status", choices=["pending", "running", "completed", "failed", "cancelled"])
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")
    p = leaf(runs, "evaluations", cmd_runs_evaluations, "a run's evaluations in record order")
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("--metric")
    passed = p.add_mutually_exclusive_group()
    passed.add_argument("--failed", action="store_true", help="only evaluations that did not pass")
    passed.add_argument("--passed", action="store_true", help="only evaluations that passed")
    p.add_argument("--limit", type=_positive, default=100)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")
    p = leaf(runs, "cancel", cmd_runs_cancel, "cancel a pending or running run")
    p.add_argument("run", type=_run_id, help="run id")
    p = leaf(
        runs,
        "delete",
        cmd_runs_delete,
        "delete a finished run with its evaluations and exports (cancel a running one first)",
    )
    p.add_argument("run", type=_run_id, help="run id")
    p = leaf(runs, "export", cmd_runs_export, "download a finished run's export (follows the presigned link)")
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("--format", choices=["json", "jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument(
        "--delivery",
        choices=["inline", "link"],
        default="inline",
        help="inline (follows a 303 for large exports) or link (always through S3)",
    )
    p = leaf(runs, "compare", cmd_runs_compare, "per-metric deltas and significance against a baseline run")
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("--baseline", required=True, type=_run_id, help="the baseline run id")
    p.add_argument("--limit", type=int, default=20, help="records listed per direction (1-100; 20)")
    p.add_argument("--confidence", type=float, help="confidence level (0.8-0.99; default 0.95)")
    p = leaf(runs, "report", cmd_runs_report, "write a self-contained HTML report of a run")
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("-o", "--output", type=Path, required=True, help="report.html")
    p.add_argument("--baseline", type=_run_id, help="also compare with this run (id)")

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
        api=False,
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no 'starting …' line"
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
        api=False,
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
    _add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Ctx(args)
    try:
        code = args.func(ctx)
        if code == EXIT_OK:
            _next_hint(ctx)
        return code
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
    except MissingApiKeyError:  # the client's message speaks Python (api_key=); say it the CLI's way
        _print(f"error: {NO_API_KEY}", file=sys.stderr)
        return EXIT_ERROR
    except (AssayError, CliError, RecordFileError) as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _next_hint(ctx: Ctx) -> None:
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
    elif command == "keys create" and result is not None:
        hint = "export ASSAY_API_KEY=…   (the secret above; it is not shown again)"
    if hint:
        ctx.hint(f"next: {hint}")


if __name__ == "__main__":
    raise SystemExit(main())
