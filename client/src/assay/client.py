"""``Client``: the Assay HTTP API as Python calls, typed results, paging iterators, retries."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from assay import __version__
from assay._http import Response, RetryPolicy, Transport
from assay.errors import (
    ApiError,
    AssayError,
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    MissingApiKeyError,
    NotReadyError,
    RunTimeoutError,
    ServerError,
    error_from_response,
)
from assay.models import (
    ApiKey,
    Comparison,
    Dataset,
    DatasetVersion,
    Eval,
    EvalRun,
    Evaluation,
    EvalVersion,
    ExportLink,
    Project,
    Upload,
)
from assay.records import detect_format, iter_records, write_jsonl

DEFAULT_URL = "http://127.0.0.1:3000"
INLINE_MAX_BYTES = 1_000_000  # smaller files go inline as JSON; larger ones through a presigned PUT
INLINE_MAX_RECORDS = 10_000  # the API's cap for inline records

Progress = Callable[[int, int], None]  # (done, total)


class _ProgressReader:
    """A file reader that reports bytes read (for the upload progress bar)."""

    def __init__(self, handle: IO[bytes], total: int, progress: Progress | None) -> None:
        self._handle, self._total, self._progress, self._done = handle, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size if size and size > 0 else 1 << 16)
        self._done += len(chunk)
        if self._progress:
            self._progress(self._done, self._total)
        return chunk

    def close(self) -> None:
        self._handle.close()


class Client:
    """A client for one Assay deployment.

    ``base_url`` defaults to ``$ASSAY_URL`` (else the local stack's ``http://127.0.0.1:3000``),
    ``api_key`` to ``$ASSAY_API_KEY``. 429, 503 and refused connections (nothing was sent) are
    retried for every request; other 5xx and broken connections only for idempotent ones
    (GET/PUT/DELETE, and POSTs that carry an ``Idempotency-Key``, which ``schedule_run`` always
    sends); waits are exponential with full jitter, and a ``Retry-After`` header is honoured.
    Errors raise ``assay.errors.ApiError`` subclasses carrying ``code`` and ``request_id``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("ASSAY_URL") or DEFAULT_URL).rstrip("/")
        if not self.base_url.lower().startswith(("http://", "https://")):
            raise ConfigurationError(f"ASSAY_URL must start with http:// or https:// (got {self.base_url!r})")
        self.api_key = api_key if api_key is not None else os.environ.get("ASSAY_API_KEY")
        self.transport = Transport(
            timeout=timeout,
            retry=retry or RetryPolicy(max_retries=max_retries),
            user_agent=f"assay-python/{__version__}",
        )

    # ------------------------------------------------------------------ plumbing
    def _headers(self, auth: bool = True) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if auth:
            if not self.api_key:
                raise MissingApiKeyError("no API key: set ASSAY_API_KEY (or pass api_key=)")
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        retry_unsafe: bool = False,
        content: bytes | None = None,
    ) -> Response:
        """One request; ``body`` is sent as JSON, ``content`` as it is (with its Content-Type
        in ``headers``)."""
        sent = self._headers(auth)
        data = content
        if body is not None:
            sent["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        sent.update(headers or {})
        response = self.transport.request(
            method, self.base_url + path, params=params, headers=sent, body=data, retry_unsafe=retry_unsafe
        )
        if response.status >= 400:
            raise error_from_response(response.status, response.body, response.headers)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._raw(method, path, **kwargs).json()

    def _pages(self, path: str, params: Mapping[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._json("GET", path, params={**params, "limit": page_size, "cursor": cursor})
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # ------------------------------------------------------------------ meta, projects
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/v1/health", auth=False)

    def check_key(self) -> None:
        """Raise ``AuthenticationError`` unless the API accepts the key (one cheap authenticated read)."""
        self._json("GET", "/v1/projects", params={"limit": 1})

    def wait_until_ready(
        self,
        *,
        timeout: float = 60.0,
        poll_interval: float = 0.5,
        check_key: bool | None = None,
        key_grace: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll ``GET /v1/health`` until the service answers, and return its answer.

        With ``check_key`` (default: when an API key is set) the key must be accepted too; a
        rejected key is retried for ``key_grace`` seconds after the service first answers,
        because the local stack creates its bootstrap key just after it starts listening, then
        raised. Refused or broken connections and 5xx answers are retried until ``timeout``,
        then ``NotReadyError`` (with ``last_error``) is raised."""
        check = bool(self.api_key) if check_key is None else check_key
        probe = Client(self.base_url, self.api_key, timeout=min(self.transport.timeout, 10.0), max_retries=0)
        deadline = clock() + timeout
        healthy_since: float | None = None
        while True:
            try:
                health = probe.health()
                if healthy_since is None:
                    healthy_since = clock()
                if check:
                    probe.check_key()
                return health
            except AuthenticationError as exc:
                last: AssayError = exc
                if healthy_since is not None and clock() - healthy_since >= key_grace:
                    raise
            except (ConnectionFailedError, ServerError) as exc:
                last = exc
            if clock() >= deadline:
                raise NotReadyError(
                    f"{self.base_url} not ready after {timeout:g} s: {last}", last_error=last
                ) from last
            sleep(max(0.0, min(poll_interval, deadline - clock())))

    def iter_projects(self, page_size: int = 100) -> Iterator[Project]:
        return (Project.from_api(p) for p in self._pages("/v1/projects", {}, page_size))

    # ------------------------------------------------------------------ datasets
    def create_dataset(
        self,
        name: str,
        *,
        description: str | None = None,
        project_id: str | None = None,
        records: list[dict[str, Any]] | None = None,
        strict: bool | None = None,
    ) -> Dataset:
        """A dataset; with ``records`` (≤ 10,000) its version 1 too, in one request: a bad record
        creates nothing. Version 1 is ``DatasetVersion.from_api(dataset.raw["version"])``."""
        body = {
            "name": name,
            "description": description,
            "project_id": project_id,
            "records": records,
            "strict": strict,
        }
        return Dataset.from_api(self._json("POST", "/v1/datasets", body=_compact(body)))

    def create_dataset_from_file(
        self,
        name: str,
        path: str | Path,
        *,
        description: str | None = None,
        project_id: str | None = None,
        fmt: str | None = None,
        via: str = "auto",
        progress: Progress | None = None,
        strict: bool = False,
    ) -> tuple[Dataset, DatasetVersion]:
        """A dataset whose version 1 holds the records of a JSONL, JSON or CSV file; nothing is left
        behind when it fails.

        The file is read (and parsed) before any request. Inline (``via`` as in ``upload_file``):
        one request creates both. Through a presigned upload the dataset must exist first (the
        upload URL is the dataset's), so that path cannot be one request: when the upload or the
        version fails, the dataset is deleted again before the error is raised."""
        path = Path(path)
        fmt = detect_format(path, fmt)
        if via not in ("auto", "inline", "upload"):
            raise ConfigurationError(f"via must be auto, inline or upload (got {via!r})")
        if via == "auto":
            via = "inline" if path.stat().st_size <= INLINE_MAX_BYTES else "upload"
        # A bad file fails here, before anything is created. Kept in memory only to send inline.
        records: list[dict[str, Any]] = []
        for record in iter_records(path, fmt):
            if via == "inline" and len(records) <= INLINE_MAX_RECORDS:
                records.append(record)
        if via == "inline" and len(records) <= INLINE_MAX_RECORDS:
            dataset = self.create_dataset(
                name, description=description, project_id=project_id, records=records, strict=strict or None
            )
            if progress:
                size = path.stat().st_size
                progress(size, size)
            return dataset, DatasetVersion.from_api(dataset.raw["version"])
        dataset = self.create_dataset(name, description=description, project_id=project_id)
        try:
            version = self.upload_file(
                dataset.id, path, fmt=fmt, via="upload", progress=progress, strict=strict
            )
        except BaseException:
            with contextlib.suppress(AssayError):  # the version's error is the one to raise
                self.delete_dataset(dataset.id)
            raise
        return Dataset.from_api({**dataset.raw, "version_count": 1}), version

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset with its versions and their records (409 while runs use it)."""
        self._raw("DELETE", f"/v1/datasets/{dataset_id}")

    def get_dataset(self, dataset_id: str) -> Dataset:
        return Dataset.from_api(self._json("GET", f"/v1/datasets/{dataset_id}"))

    def iter_datasets(self, page_size: int = 100) -> Iterator[Dataset]:
        """Every dataset, newest first, following ``next_cursor``."""
        return (Dataset.from_api(d) for d in self._pages("/v1/datasets", {}, page_size))

    def list_dataset_versions(self, dataset_id: str) -> list[DatasetVersion]:
        page = self._json("GET", f"/v1/datasets/{dataset_id}/versions")
        return [DatasetVersion.from_api(v) for v in page["items"]]

    def create_dataset_version(
        self, dataset_id: str, records: list[dict[str, Any]], *, strict: bool = False
    ) -> DatasetVersion:
        """An immutable version from records sent inline (at most 10,000). Its ``warnings`` say
        what looks wrong in the records; ``strict`` makes the server refuse them instead (400)."""
        body: dict[str, Any] = {"records": records, **({"strict": True} if strict else {})}
        return DatasetVersion.from_api(self._json("POST", f"/v1/datasets/{dataset_id}/versions", body=body))

    def create_upload(self, dataset_id: str) -> Upload:
        return Upload.from_api(self._json("POST", f"/v1/datasets/{dataset_id}/uploads"))

    def upload_jsonl(
        self, dataset_id: str, source: Path, *, progress: Progress | None = None, strict: bool = False
    ) -> DatasetVersion:
        """A version from a JSONL file of any size: presigned PUT, then a version from the upload."""
        upload = self.create_upload(dataset_id)
        size = source.stat().st_size
        headers = {
            **(upload.headers or {"Content-Type": "application/x-ndjson"}),
            "Content-Length": str(size),
        }
        put = self.transport.request(
            upload.method or "PUT",
            upload.url,
            headers=headers,
            body=lambda: _ProgressReader(source.open("rb"), size, progress),
        )
        if put.status >= 300:
            raise error_from_response(put.status, put.body, put.headers)
        body: dict[str, Any] = {"upload_id": upload.upload_id, **({"strict": True} if strict else {})}
        return DatasetVersion.from_api(self._json("POST", f"/v1/datasets/{dataset_id}/versions", body=body))

    def upload_file(
        self,
        dataset_id: str,
        path: str | Path,
        *,
        fmt: str | None = None,
        via: str = "auto",
        progress: Progress | None = None,
        strict: bool = False,
    ) -> DatasetVersion:
        """A new version of ``dataset_id`` from a JSONL, JSON or CSV file.

        ``via``: ``inline`` (records in the request body; ≤ 10,000), ``upload`` (presigned PUT
        of JSONL, any size) or ``auto`` (inline below 1 MB, else upload). ``strict``: the server
        refuses records that draw warnings (a CSV column ``Output`` stored in metadata, no
        ``output`` anywhere) instead of storing them with ``warnings``."""
        path = Path(path)
        fmt = detect_format(path, fmt)
        if via not in ("auto", "inline", "upload"):
            raise ConfigurationError(f"via must be auto, inline or upload (got {via!r})")
        if via == "auto":
            via = "inline" if path.stat().st_size <= INLINE_MAX_BYTES else "upload"
        if via == "inline":
            records = list(iter_records(path, fmt))
            if len(records) > INLINE_MAX_RECORDS:
                return self.upload_file(
                    dataset_id, path, fmt=fmt, via="upload", progress=progress, strict=strict
                )
            version = self.create_dataset_version(dataset_id, records, strict=strict)
            if progress:
                size = path.stat().st_size
                progress(size, size)
            return version
        if fmt == "jsonl":
            return self.upload_jsonl(dataset_id, path, progress=progress, strict=strict)
        with tempfile.TemporaryDirectory(prefix="assay-upload-") as tmp:
            converted = Path(tmp) / "records.jsonl"
            with converted.open("wb") as out:
                write_jsonl(iter_records(path, fmt), out)
            return self.upload_jsonl(dataset_id, converted, progress=progress, strict=strict)

    def iter_records(self, dataset_id: str, version: int, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        return self._pages(f"/v1/datasets/{dataset_id}/versions/{version}/records", {}, page_size)

    # ------------------------------------------------------------------ evals
    def create_eval(
        self,
        name: str,
        *,
        description: str | None = None,
        project_id: str | None = None,
        metrics: list[dict[str, Any]] | None = None,
        threshold: float | None = None,
        judge: dict[str, Any] | None = None,
        generation: dict[str, Any] | None = None,
    ) -> Eval:
        """An eval; with ``metrics`` (and ``threshold``, ``judge``, ``generation``) its version 1
        too, in one request: a bad metric creates nothing. Version 1 is
        ``EvalVersion.from_api(ev.raw["version"])``. ``generation`` is the model under test
        (docs/generation.md): each record's answer is generated, then scored."""
        body = {
            "name": name,
            "description": description,
            "project_id": project_id,
            "metrics": metrics,
            "threshold": threshold,
            "judge": judge,
            "generation": generation,
        }
        return Eval.from_api(self._json("POST", "/v1/evals", body=_compact(body)))

    def delete_eval(self, eval_id: str) -> None:
        """Delete an eval and all its versions (409 while runs use it)."""
        self._raw("DELETE", f"/v1/evals/{eval_id}")

    def get_eval(self, eval_id: str) -> Eval:
        return Eval.from_api(self._json("GET", f"/v1/evals/{eval_id}"))

    def iter_evals(self, page_size: int = 100) -> Iterator[Eval]:
        return (Eval.from_api(e) for e in self._pages("/v1/evals", {}, page_size))

    def create_eval_version(
        self,
        eval_id: str,
        metrics: list[dict[str, Any]],
        *,
        threshold: float | None = None,
        judge: dict[str, Any] | None = None,
        generation: dict[str, Any] | None = None,
    ) -> EvalVersion:
        body = _compact(
            {"metrics": metrics, "threshold": threshold, "judge": judge, "generation": generation}
        )
        return EvalVersion.from_api(self._json("POST", f"/v1/evals/{eval_id}/versions", body=body))

    def get_eval_version(self, eval_version_id: str) -> EvalVersion:
        return EvalVersion.from_api(self._json("GET", f"/v1/eval-versions/{eval_version_id}"))

    def list_eval_versions(self, eval_id: str) -> list[EvalVersion]:
        return [EvalVersion.from_api(v) for v in self._json("GET", f"/v1/evals/{eval_id}/versions")["items"]]

    def create_eval_from_spec(self, spec: Mapping[str, Any]) -> tuple[Eval, EvalVersion, bool]:
        """An eval version from a spec ``{name, description?, threshold?, judge?, generation?,
        metrics: [...]}`` (the shape of ``eval.yaml``; ``version: {threshold, metrics, judge,
        generation}`` nesting is accepted too). ``generation`` is sent as it is.

        The version is added to the eval of the same name when one exists (``eval_id`` in the spec
        picks one explicitly); returns ``(eval, version, created_eval)``."""
        body = dict(spec.get("version") or {})
        for key in ("metrics", "threshold", "judge", "generation"):
            if key in spec:
                body[key] = spec[key]
        if not body.get("metrics"):
            raise ConfigurationError("the eval spec declares no metrics")
        name = spec.get("name")
        if spec.get("eval_id"):
            ev, created = self.get_eval(str(spec["eval_id"])), False
        else:
            if not name:
                raise ConfigurationError("the eval spec needs a name (or an eval_id)")
            existing = next((e for e in self.iter_evals() if e.name == name), None)
            if existing is None:  # the eval and version 1 in one request: a bad spec creates nothing
                ev = self.create_eval(
                    name,
                    description=spec.get("description"),
                    project_id=spec.get("project_id"),
                    metrics=list(body["metrics"]),
                    threshold=body.get("threshold"),
                    judge=body.get("judge"),
                    generation=body.get("generation"),
                )
                return ev, EvalVersion.from_api(ev.raw["version"]), True
            ev, created = existing, False
        version = self.create_eval_version(
            ev.id,
            list(body["metrics"]),
            threshold=body.get("threshold"),
            judge=body.get("judge"),
            generation=body.get("generation"),
        )
        return ev, version, created

    # ------------------------------------------------------------------ runs
    def schedule_run(
        self,
        dataset_id: str,
        eval_version_id: str,
        *,
        dataset_version: int | None = None,
        name: str | None = None,
        threshold: float | None = None,
        metric_args: dict[str, dict[str, Any]] | None = None,
        batch_size: int | None = None,
        idempotency_key: str | None = None,
        generation: dict[str, Any] | None = None,
        cache: bool | None = None,
        rate_limits: dict[str, Any] | None = None,
    ) -> EvalRun:
        """Schedule a run (202, status ``pending``). An ``Idempotency-Key`` is always sent (a fresh one
        unless given), so a retry after a lost answer returns the same run instead of a second one.

        ``generation`` replaces the eval version's model under test for this run (docs/generation.md:
        ``{provider, model, system, messages, temperature, max_tokens, seed, …}``); ``cache=False``
        calls the models again instead of reusing cached answers; ``rate_limits``
        (``{requests_per_minute, tokens_per_minute, concurrent}``) limits this run's model calls."""
        body = _compact(
            {
                "eval_version_id": eval_version_id,
                "dataset_version": dataset_version,
                "name": name,
                "threshold": threshold,
                "metric_args": metric_args,
                "batch_size": batch_size,
                "generation": generation,
                "cache": cache,
                "rate_limits": rate_limits,
            }
        )
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return EvalRun.from_api(
            self._json(
                "POST", f"/v1/datasets/{dataset_id}/runs", body=body, headers=headers, retry_unsafe=True
            )
        )

    def get_run(self, run_id: str) -> EvalRun:
        return EvalRun.from_api(self._json("GET", f"/v1/eval-runs/{run_id}"))

    def iter_runs(self, *, page_size: int = 100, **filters: Any) -> Iterator[EvalRun]:
        """Runs, newest first; filters ``eval_id``, ``eval_version_id``, ``dataset_id``, ``project_id``,
        ``status``."""
        return (EvalRun.from_api(r) for r in self._pages("/v1/eval-runs", _compact(filters), page_size))

    def list_runs(self, *, limit: int = 20, offset: int = 0, **filters: Any) -> tuple[list[EvalRun], int]:
        """One page of runs and the number of runs matching the filters."""
        page = self._json(
            "GET", "/v1/eval-runs", params={**_compact(filters), "limit": limit, "offset": offset}
        )
        return [EvalRun.from_api(r) for r in page["items"]], page["count"]

    def cancel_run(self, run_id: str) -> EvalRun:
        return EvalRun.from_api(self._json("POST", f"/v1/eval-runs/{run_id}/cancel"))

    def delete_run(self, run_id: str) -> None:
        """Delete a finished run with its evaluations and exports (409 while it is pending or
        running: cancel it first)."""
        self._raw("DELETE", f"/v1/eval-runs/{run_id}")

    def iter_evaluations(
        self,
        run_id: str,
        *,
        metric: str | None = None,
        status: str | None = None,
        passed: bool | None = None,
        page_size: int = 1000,
    ) -> Iterator[Evaluation]:
        """A run's evaluations in record order (records' text fields cut to 100 characters)."""
        params = _compact({"metric": metric, "status": status, "passed": passed})
        return (
            Evaluation.from_api(e)
            for e in self._pages(f"/v1/eval-runs/{run_id}/evaluations", params, page_size)
        )

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        return Evaluation.from_api(self._json("GET", f"/v1/eval/{evaluation_id}"))

    def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = 600.0,
        poll_interval: float = 1.0,
        on_progress: Callable[[EvalRun], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> EvalRun:
        """Poll until the run is ``completed``, ``failed`` or ``cancelled`` and return it.

        ``on_progress(run)`` is called after every poll. Raises ``RunTimeoutError`` (with the
        last ``run``) after ``timeout`` seconds (``None``: wait forever). Polls start at 0.25 s
        and grow to ``poll_interval``."""
        deadline = None if timeout is None else clock() + timeout
        delay = min(0.25, poll_interval)
        while True:
            run = self.get_run(run_id)
            if on_progress:
                on_progress(run)
            if run.finished:
                return run
            if deadline is not None and clock() >= deadline:
                raise RunTimeoutError(
                    f"run {run_id} still {run.status} after {timeout:g} s "
                    f"({run.scored_count}/{run.item_count} records)",
                    run,
                )
            sleep(delay if deadline is None else max(0.0, min(delay, deadline - clock())))
            delay = min(poll_interval, delay * 2)

    def export_link(self, run_id: str, fmt: str = "jsonl") -> ExportLink:
        return ExportLink.from_api(
            self._json("GET", f"/v1/eval-runs/{run_id}/export", params={"format": fmt, "delivery": "link"})
        )

    def download_export(
        self, run_id: str, fmt: str = "jsonl", path: str | Path | None = None, *, delivery: str = "inline"
    ) -> bytes | Path:
        """The finished run's export (``json``, ``jsonl`` or ``csv``): its bytes, or written to ``path``.

        ``inline`` asks the API and follows a ``303`` to the presigned S3 URL when the export is
        too large to inline; ``link`` asks for the link first. The presigned URL is fetched
        without the API key."""
        if delivery == "link":
            content = self._fetch_presigned(self.export_link(run_id, fmt).url)
        else:
            response = self._raw(
                "GET", f"/v1/eval-runs/{run_id}/export", params={"format": fmt}, headers={"Accept": "*/*"}
            )
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise ApiError(response.status, "http.redirect", "redirect without a Location")
                content = self._fetch_presigned(location)
            else:
                content = response.body
        if path is None:
            return content
        target = Path(path)
        target.write_bytes(content)
        return target

    def _fetch_presigned(self, url: str) -> bytes:
        response = self.transport.request("GET", url)
        if response.status >= 300:
            raise error_from_response(response.status, response.body, response.headers)
        return response.body

    def export_evaluations(self, run_id: str) -> list[Evaluation]:
        """Every evaluation of a finished run, from its JSONL export (one request, any size)."""
        content = self.download_export(run_id, "jsonl")
        assert isinstance(content, bytes)
        return [Evaluation.from_api(json.loads(line)) for line in content.splitlines() if line.strip()]

    def compare_runs(
        self, run_id: str, baseline_run_id: str, *, limit: int | None = None, confidence: float | None = None
    ) -> Comparison:
        """Per-metric deltas, significance and the records that regressed or improved vs a baseline.

        ``limit`` (1–100, server default 20) bounds the ``regressions``/``improvements`` lists (largest
        changes first); the per-metric ``improved``/``regressed`` counts are always complete."""
        return Comparison.from_api(
            self._json(
                "GET",
                f"/v1/eval-runs/{run_id}/compare",
                params=_compact({"baseline": baseline_run_id, "limit": limit, "confidence": confidence}),
            )
        )

    # ------------------------------------------------------------------ OpenAI's Evals API
    # Assay serves OpenAI's Evals API at /openai/v1 (docs/openai-evals.md); the official
    # ``openai`` SDK is its client. These are the calls that SDK lacks (importing history saved
    # from OpenAI) and the few ``assay import openai-evals`` needs around them. Objects are
    # OpenAI's shapes, returned as dicts; errors come in OpenAI's envelope, raised as here.
    def import_openai_eval(self, saved: Mapping[str, Any]) -> dict[str, Any]:
        """An eval saved from OpenAI's API (``"object": "eval"``, as the API returned it),
        imported: the new eval, whose ``imported_from`` is the saved ``id``."""
        return self._json("POST", "/openai/v1/imports/evals", body=dict(saved))

    def upload_openai_file(
        self, content: bytes, *, filename: str = "items.jsonl", purpose: str = "evals"
    ) -> dict[str, Any]:
        """A file for ``/openai/v1`` (at most 5 MB): the file object, ``{"id": "file-…", …}``."""
        boundary = uuid.uuid4().hex
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:200] or "file"
        form = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/jsonl\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self._json("POST", "/openai/v1/files", content=form, headers=headers)

    def delete_openai_file(self, file_id: str) -> None:
        self._raw("DELETE", f"/openai/v1/files/{_segment(file_id)}")

    def import_openai_run(
        self, eval_id: str, saved_run: Mapping[str, Any], output_item_files: list[str]
    ) -> dict[str, Any]:
        """A run saved from OpenAI's API (``"object": "eval.run"``) into an imported eval, with
        its output items (uploaded first: ``upload_openai_file``, JSONL, one saved item a line):
        the new run, ``queued``; it replays the saved results by itself."""
        body = {"run": dict(saved_run), "output_item_files": list(output_item_files)}
        return self._json("POST", f"/openai/v1/imports/evals/{_segment(eval_id)}/runs", body=body)

    def get_openai_run(self, eval_id: str, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/openai/v1/evals/{_segment(eval_id)}/runs/{_segment(run_id)}")

    def iter_openai_evals(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every eval under /openai/v1, oldest first, following ``after``."""
        return self._openai_pages("/openai/v1/evals", page_size)

    def iter_openai_runs(self, eval_id: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        return self._openai_pages(f"/openai/v1/evals/{_segment(eval_id)}/runs", page_size)

    def _openai_pages(self, path: str, page_size: int) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            page = self._json("GET", path, params={"limit": page_size, "order": "asc", "after": after})
            yield from page["data"]
            after = page.get("last_id")
            if not page.get("has_more") or not after:
                return

    # ------------------------------------------------------------------ API keys
    def create_key(
        self, *, name: str | None = None, role: str = "member", expires_at: str | None = None
    ) -> ApiKey:
        """A new API key; its secret (``.key``) is returned this once only."""
        body = _compact({"name": name, "role": role, "expires_at": expires_at})
        return ApiKey.from_api(self._json("POST", "/v1/api-keys", body=body))

    def list_keys(self) -> list[ApiKey]:
        return [ApiKey.from_api(k) for k in self._json("GET", "/v1/api-keys")["items"]]

    def revoke_key(self, key_id: str) -> ApiKey:
        return ApiKey.from_api(self._json("DELETE", f"/v1/api-keys/{key_id}"))


def _segment(value: str) -> str:
    """An id as one path segment (an id read from a file never reaches another route)."""
    return urllib.parse.quote(str(value), safe="")


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
