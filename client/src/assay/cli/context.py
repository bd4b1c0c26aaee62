"""What every command shares: the context (``Ctx``: the client, --json/-q output, info lines
and hints), name → id resolution, cursor paging and the --json list shape, waiting on a run."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from assay._format import ProgressBar, json_text, safe, table
from assay.client import Client
from assay.exit_codes import ExitCode
from assay.models import Dataset, Eval, EvalRun, Model

NO_API_KEY = (
    "no API key: pass --api-key KEY or set ASSAY_API_KEY (an owner's `assay keys create` makes "
    "one; on the local stack it is the ASSAY_BOOTSTRAP_KEY it was started with)"
)


class CliError(Exception):
    """A usage problem the user can fix (exit 2)."""


def echo(*values: Any, **kwargs: Any) -> None:
    """``print``, each value through ``safe``: what the CLI writes to a terminal is never
    a raw control character from the server (names, record text, error messages)."""
    print(*(safe(v) for v in values), **kwargs)


class Ctx:
    """One command's run: its arguments, the API client (made on first use by ``make_client``,
    ``Client`` by default) and where its output goes."""

    def __init__(self, args: argparse.Namespace, make_client: Callable[..., Client] = Client) -> None:
        self.args = args
        self.json: bool = args.json
        self._make_client = make_client
        self._client: Client | None = None
        self.result: Any = None  # what the command printed last (for the next-command hint)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._make_client(self.args.url, self.args.api_key, timeout=self.args.http_timeout)
        return self._client

    def out(self, human: str, data: Any) -> None:
        self.result = data
        if self.json:
            echo(json_text(plain(data)))
        elif human:
            echo(human)

    def progress(self, label: str, unit: str = "") -> ProgressBar | None:
        return None if self.args.quiet else ProgressBar(label, unit=unit)

    def info(self, message: str) -> None:
        """A progress or info line on stderr ("run … scheduled"): -q hides it; results (stdout)
        and errors are never hidden."""
        if not self.args.quiet:
            echo(message, file=sys.stderr, flush=True)

    def hint(self, message: str) -> None:
        """What to run next, on stderr: hidden by -q, and by --json (a script reads stdout and
        needs no advice)."""
        if not (self.args.quiet or self.json):
            echo(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- names and lists
def is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def resolve(ctx: Ctx, kind: str, value: str | None) -> str | None:
    """A dataset's or an eval's id, given its id or its exact name. A name is looked up in the
    list (the API takes ids only): one match is its id; none or several is a one-line error
    saying what to do, before anything is created or scheduled."""
    if value is None or is_id(value):
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


def resolve_eval_version(ctx: Ctx, value: str | None) -> str | None:
    """An eval version's id, given its id, an eval's name (its latest version) or NAME@N
    (version N of that eval)."""
    if value is None or is_id(value):
        return value
    name, at, number = value.rpartition("@")
    if not (at and number.isdigit()):
        name, number = value, ""
    eval_id = resolve(ctx, "eval", name)
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


def listing(items: Sequence[Any], next_cursor: str | None = None, **extra: Any) -> dict[str, Any]:
    """Every list's --json shape: ``{"items": [...], "count": N, "next_cursor": ...}`` — ``count``
    the number of items in this document, ``next_cursor`` (``--cursor``) where the next page
    starts, ``null`` at the end."""
    return {"items": plain(list(items)), "count": len(items), "next_cursor": next_cursor, **extra}


def page_through(
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


def plain(data: Any) -> Any:
    if isinstance(data, Model):
        return data.to_dict()
    if isinstance(data, list | tuple):
        return [plain(d) for d in data]
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    return data


# ---------------------------------------------------------------------------- what commands print
def more_hint(ctx: Ctx, command: str, cursor: str | None, *filters: tuple[str, Any]) -> None:
    """The command that shows the next page (the same filters, from ``cursor``)."""
    if cursor:
        options = "".join(
            f" {flag}" if value is True else f" {flag} {value}" for flag, value in filters if value
        )
        ctx.hint(f"more: assay {command}{options} --limit {ctx.args.limit} --cursor {cursor}")


def list_named(ctx: Ctx, noun: str, model: type[Dataset] | type[Eval]) -> int:
    """Datasets or evals, up to --limit, as an id/name/versions/created table."""
    raw, cursor, _ = page_through(ctx, f"/v1/{noun}", {}, ctx.args.limit, 100)
    items = [model.from_api(i) for i in raw]
    ctx.out(
        table(
            ["id", "name", "versions", "created"],
            [[i.id, i.name, i.version_count, i.created_at] for i in items],
        ),
        listing(items, cursor),
    )
    if not items and not ctx.args.cursor:
        first = (
            "assay datasets create NAME --file records.jsonl"
            if noun == "datasets"
            else "assay evals create --file eval.yaml"
        )
        ctx.hint(f"no {noun} yet: {first}")
    more_hint(ctx, f"{noun} list", cursor)
    return ExitCode.OK


def deleted(ctx: Ctx, kind: str, object_id: str) -> int:
    ctx.out(f"deleted {kind} {object_id}", {"deleted": {"kind": kind, "id": object_id}})
    return ExitCode.OK


def data_warnings(warnings: Sequence[dict[str, Any]] | None) -> None:
    """The server's warnings about the records (a CSV column ``Output`` stored in metadata, no
    ``output`` anywhere), one line each on stderr: stdout stays the result (or its JSON)."""
    for warning in warnings or ():
        echo(f"warning: {warning.get('message') or warning}", file=sys.stderr)


def wait_for(ctx: Ctx, run: EvalRun, timeout: float | None) -> EvalRun:
    """The run once it finished (``--wait``, ``assay ci``), with a progress bar on stderr unless -q."""
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


def poll_all(ctx: Ctx, title: str, step: Callable[[], tuple[bool, int, int, str]]) -> bool:
    """Call ``step`` — it reads again what has not finished and answers (all finished, done,
    total, text) for the progress bar on stderr — until all finished (``False``) or
    ``--timeout`` passed (``True``), waiting 0.25 s at first, then twice as long each time up
    to ``--poll-interval``."""
    a = ctx.args
    bar = ctx.progress(title)
    deadline = time.monotonic() + a.timeout
    delay = min(0.25, a.poll_interval)
    try:
        while True:
            finished, done, total, text = step()
            if bar:
                bar.update(done, total, text)
            if finished:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(delay, left))
            delay = min(a.poll_interval, delay * 2)
    finally:
        if bar:
            bar.close()
