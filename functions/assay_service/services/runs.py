"""Eval runs from the API's side: schedule, read, list, evaluations, export."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from assay_service.dependencies import DEPLOYED
from assay_service.domain import coverage
from assay_service.domain.cursors import decode_position, encode_cursor
from assay_service.domain.ids import parse_evaluation_id
from assay_service.errors import ConflictError, InvalidRequestError, NotFoundError, found
from assay_service.models.api import ScheduleEvalRunRequest
from assay_service.models.domain import (
    TERMINAL_STATUSES,
    DatasetVersion,
    Evaluation,
    EvalVersion,
    GenerationSettings,
    JudgeSettings,
    Metric,
    Principal,
    Run,
    utcnow,
)
from assay_service.ports import Ports, RunQuery
from assay_service.services.catalog import check_generation, get_dataset, get_eval_version
from assay_service.settings import get_settings


def apply_overrides(metrics: list[Metric], overrides: dict[str, dict[str, Any]] | None) -> list[Metric]:
    """Merge per-run ``metric_args`` into the version's metrics (validated like a version)."""
    if not overrides:
        return metrics
    known = {m.name for m in metrics}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidRequestError(
            f"metric_args: unknown metric {unknown[0]!r} (the eval version has {', '.join(sorted(known))})",
            details={"field": "metric_args", "metric": unknown[0]},
        )
    from assay_service.domain.scoring import check_metrics  # the scorers: ~80 ms to import

    merged = [m.model_copy(update={"args": {**m.args, **overrides.get(m.name, {})}}) for m in metrics]
    check_metrics(merged)
    return merged


def request_hash(dataset_id: UUID, req: ScheduleEvalRunRequest) -> str:
    canonical = json.dumps(
        {"dataset_id": str(dataset_id), **req.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# A batch is recorded in one DynamoDB transaction (at most 4 MB): bound the evaluations it
# holds. A rule evaluation packs to ~40-100 bytes; an LLM-judge one to ~1 KB (its reasoning
# is cut at judges.REASONING_CHARS). Judge calls also take seconds, so judge-heavy batches
# default to a few records, well inside ScoreBatchFunction's timeout.
MAX_EVALUATIONS_PER_BATCH = 20_000
MAX_JUDGED_PER_BATCH = 60  # 15 rounds at judge.concurrency 4: ~10 s a call fits 300 s
JUDGE_BATCH_SIZE = 10


def batch_size_for(
    metrics: list[Any], requested: int | None, default: int, *, generates: bool = False
) -> int:
    """The run's batch size: the request's, checked against the bounds above, or the
    deployment's default reduced to fit them (and to JUDGE_BATCH_SIZE with LLM metrics or
    generation: each generated answer is one model call more per record)."""
    from assay_service.domain.scorers import get_scorer  # deferred: the catalogue is heavy

    judged = sum(
        1 for m in metrics if (spec := get_scorer(m.scorer)) is not None and spec.evaluator_type == "llm"
    ) + (1 if generates else 0)
    bound = min(
        MAX_EVALUATIONS_PER_BATCH // max(len(metrics), 1),
        MAX_JUDGED_PER_BATCH // judged if judged else MAX_EVALUATIONS_PER_BATCH,
    )
    if requested is None:
        return max(1, min(default, bound, JUDGE_BATCH_SIZE if judged else default))
    if requested > bound:
        raise InvalidRequestError(
            f"batch_size: at most {bound} for this run ({len(metrics)} metrics, {judged} model "
            f"calls per record: a batch holds at most {MAX_EVALUATIONS_PER_BATCH:,} evaluations "
            f"and {MAX_JUDGED_PER_BATCH} model calls), got {requested}",
            details={"field": "batch_size", "max": bound},
        )
    return requested


def check_fields(
    metrics: list[Metric], dataset_version: DatasetVersion, generation: GenerationSettings | None = None
) -> list[dict[str, Any]]:
    """The eval's metrics against the version's stored field coverage: a metric that needs a
    field no record has is a 400 (the run could score nothing of it); one that some records
    lack is a warning, as ``DataWarning`` dicts (those evaluations will fail as not
    scorable).

    Versions created before coverage was recorded have none (``fields`` is None) and are
    not checked: finding out would mean reading every record of the version here.

    With ``generation`` the records' ``output`` is generated (not needed), and the fields
    its templates name are needed instead (a metadata key is not checked)."""
    if dataset_version.fields is None:
        return []
    from assay_service.domain.generation import template_fields
    from assay_service.domain.scorers import get_scorer, required_fields, validate_args

    total = dataset_version.record_count
    unknown = dataset_version.unknown_fields or {}
    problems: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    needs: list[tuple[str, str, str, str]] = []  # (who, name, scorer, field)
    if generation is not None:
        fields, keys = template_fields(generation)
        needs += [("generation", "generation", "generation", f) for f in sorted(fields) if f != "id"]
        warnings += [
            {
                "code": "unchecked_field",
                "metric": "generation",
                "field": f"metadata.{key}",
                "count": 0,
                "suggestion": None,
                "message": f"the generation template reads the metadata key {key!r}, which is not "
                "checked before the run: records without it end errored",
            }
            for key in sorted(keys)
        ]
    for metric in metrics:
        spec = get_scorer(metric.scorer)
        if spec is None:  # check_metrics refused it when the eval version was created
            continue
        try:
            args = validate_args(spec, metric.args)
        except ValidationError:  # likewise; the scoring reports it per evaluation
            continue
        needs += [
            ("metric", metric.name, metric.scorer, field)
            for field in required_fields(spec, args)
            if not (generation is not None and field == "output")
        ]
    for who, name, scorer, field in needs:
        have = dataset_version.fields.get(field, 0)
        if have >= total:
            continue
        named = (
            f"metric {name!r} ({scorer}) needs the record field {field!r}"
            if who == "metric"
            else f"the generation template needs the record field {field!r}"
        )
        if have == 0:
            lookalikes = [k for k in unknown if coverage.suggestion(k) == field]
            hint = (
                f" ({', '.join(map(repr, lookalikes))} in their metadata looks like it)" if lookalikes else ""
            )
            problems.append(
                {
                    "metric": name,
                    "scorer": scorer,
                    "field": field,
                    "records_with_field": 0,
                    "record_count": total,
                    "message": f"{named}, but 0 of {total:,} records of dataset version "
                    f"{dataset_version.version} have it{hint}",
                }
            )
        else:
            warnings.append(
                {
                    "code": "partial_field",
                    "metric": name,
                    "field": field,
                    "count": total - have,
                    "suggestion": None,
                    "message": f"{named}: {total - have:,} of {total:,} records lack it; "
                    "those evaluations will fail as not scorable",
                }
            )
    if problems:
        raise InvalidRequestError(
            f"{problems[0]['message']}; the run was not scheduled"
            + (f" ({len(problems) - 1} more problem(s) in details.fields)" if len(problems) > 1 else ""),
            details={"fields": problems},
        )
    return warnings


PROVIDER_SETUP_HINT = (
    "on the local stack start it with --judge-base-url URL (an OpenAI-compatible endpoint, "
    "ASSAY_JUDGE_API_KEY for its key) and use provider 'openai'; on AWS the template "
    "parameter JudgeProviders lists the providers a deployment offers"
)


def check_providers(
    metrics: list[Metric],
    version: EvalVersion,
    generation: GenerationSettings | None,
    offered: frozenset[str],
) -> None:
    """A 400 when the run would call a model provider this deployment cannot call
    (``JudgeProviders``: the local stack cannot call Bedrock, nor an OpenAI-compatible
    endpoint it was not given): every such call would fail after the retries."""
    from assay_service.domain.scorers import get_scorer  # deferred: the catalogue is heavy

    judged = [m for m in metrics if (spec := get_scorer(m.scorer)) and spec.evaluator_type == "llm"]
    uses: list[tuple[str, str, str, dict[str, str]]] = []  # (provider, who, settings, details)
    if generation is not None:
        uses.append((generation.provider, "the run generates its outputs, and generation", "generation", {}))
    if judged:
        metric = judged[0]
        uses.append(
            (
                (version.judge or JudgeSettings()).provider,
                f"metric {metric.name!r} ({metric.scorer}) is an LLM judge, and judge",
                "judge",
                {"metric": metric.name},
            )
        )
    for provider, who, where, about in uses:
        if provider in offered:
            continue
        available = ", ".join(sorted(offered)) or "none"
        if "openai" in offered:
            hint = (
                f"use provider 'openai' in the eval's {where} settings "
                f'("{where}": {{"provider": "openai", "model": "<the endpoint\'s model name>"}})'
            )
        else:
            hint = PROVIDER_SETUP_HINT
        raise InvalidRequestError(
            f"{who} provider {provider!r} is not available in this deployment (available: "
            f"{available}); {hint}. The run was not scheduled",
            details={
                "field": f"{where}.provider",
                **about,
                "provider": provider,
                "available": sorted(offered),
            },
        )


def schedule_run(
    principal: Principal,
    dataset_id: UUID,
    req: ScheduleEvalRunRequest,
    *,
    idempotency_key: str | None = None,
    ports: Ports = DEPLOYED,
) -> tuple[Run, list[dict[str, Any]]]:
    """The scheduled run, and the warnings of ``check_fields`` about its data."""
    dataset = get_dataset(principal, dataset_id, ports=ports)
    version = get_eval_version(principal, req.eval_version_id, ports=ports)
    stored = ports.datasets.get_version(principal.tenant_id, dataset.id, req.dataset_version)
    if stored is None and req.dataset_version is None:
        raise ConflictError(
            "the dataset has no version yet: create one first", details={"dataset_id": str(dataset.id)}
        )
    dataset_version, _ = found(stored, "dataset version")
    ev = found(ports.evals.get(principal.tenant_id, version.eval_id), "eval")
    metrics = apply_overrides(version.metrics, req.metric_args)
    settings = get_settings()
    generation = req.generation or version.generation
    if req.generation is not None:
        check_generation(req.generation)
    check_providers(metrics, version, generation, settings.offered_judge_providers)
    warnings = check_fields(metrics, dataset_version, generation)
    batch_size = batch_size_for(
        metrics, req.batch_size, settings.default_batch_size, generates=generation is not None
    )
    if req.max_concurrency is not None and req.max_concurrency > settings.map_max_concurrency:
        raise InvalidRequestError(
            f"max_concurrency: at most {settings.map_max_concurrency} on this deployment "
            f"(MapMaxConcurrency), got {req.max_concurrency}",
            details={"field": "max_concurrency", "max": settings.map_max_concurrency},
        )
    now = utcnow()
    run = Run(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        project_id=dataset.project_id,
        dataset_id=dataset.id,
        dataset_version_id=dataset_version.id,
        dataset_version=dataset_version.version,
        eval_id=ev.id,
        eval_version_id=version.id,
        name=req.name,
        status="pending",
        item_count=dataset_version.record_count,
        threshold=req.threshold if req.threshold is not None else version.threshold,
        metrics=metrics,
        batch_size=batch_size,
        max_concurrency=req.max_concurrency,
        generation=generation,
        cache=req.cache,
        rate_limits=req.rate_limits,
        created_at=now,
        updated_at=now,
    )
    idempotency = (idempotency_key, request_hash(dataset.id, req)) if idempotency_key else None
    standing = ports.runs.create(
        run, idempotency=idempotency, max_in_flight=get_settings().max_runs_in_flight
    )
    if standing != run.id:  # a replay of an earlier request: same run, no second run
        run = get_run(principal, standing, ports=ports)
        if run.status != "pending":
            return run, warnings
    try:
        # Idempotent too: the execution is named by the run id.
        ports.workflow.start(tenant_id=run.tenant_id, run_id=run.id)
    except Exception:
        # Never leave a run pending with no execution behind it.
        ports.runs.set_status(
            run,
            "failed",
            expect=["pending"],
            fields={
                "error_message": "the workflow could not be started",
                "completed_at": utcnow().isoformat(),
            },
        )
        raise
    return run, warnings


def get_run(principal: Principal, run_id: UUID, *, ports: Ports = DEPLOYED) -> Run:
    return found(ports.runs.get(principal.tenant_id, run_id), "eval run")


def list_runs(
    principal: Principal,
    *,
    criteria: dict[str, str],
    limit: int,
    offset: int,
    cursor: str | None,
    ports: Ports = DEPLOYED,
) -> tuple[list[Run], str | None, int]:
    """A page of the tenant's runs matching every criterion, and how many match in all.

    Served by one index partition of the tenant (never a Scan); ``cursor`` continues a
    previous page, ``offset`` skips from the start (ignored with a cursor)."""
    query = RunQuery(
        tenant_id=principal.tenant_id, criteria=criteria, limit=limit, offset=offset, cursor=cursor
    )
    items, after = ports.runs.list_page(query)
    return items, after, ports.runs.count(query)


def get_evaluation(principal: Principal, evaluation_id: UUID, *, ports: Ports = DEPLOYED) -> Evaluation:
    ref = parse_evaluation_id(evaluation_id)
    run = ports.runs.get_by_key(principal.tenant_id, ref.run_key) if ref else None
    if ref is None or run is None or ref.metric_index >= len(run.metrics):
        raise NotFoundError("evaluation")
    batch = ports.runs.get_batch(principal.tenant_id, ref.run_key, ref.record_index // run.batch_size)
    for raw in (batch or {}).get("evaluations", []):
        if raw["id"] == str(evaluation_id):
            return Evaluation.model_validate(raw)
    raise NotFoundError("evaluation")


def export_location(
    principal: Principal, run_id: UUID, fmt: str, *, ports: Ports = DEPLOYED
) -> tuple[Run, str, int]:
    """The finished run's export artifact: (run, key, size). 409 while the run is unfinished."""
    run = get_run(principal, run_id, ports=ports)
    if run.status != "completed":
        raise ConflictError(
            f"the run is {run.status}; exports exist once it has completed", details={"status": run.status}
        )
    store = ports.artifacts
    key = store.export_key(run.tenant_id, run.id, fmt)
    size = store.size(key)
    if size is None:
        raise ConflictError("the run's export is not available", details={"format": fmt})
    return run, key, size


@dataclass(frozen=True)
class RunExport:
    """A finished run's export as the API delivers it: ``body`` inline, or ``link`` (a
    presigned URL and its expiry) when a link is asked for or the export is too large to
    inline (``EXPORT_INLINE_MAX_BYTES``)."""

    run: Run
    filename: str
    content_type: str
    size: int
    body: str | None = None
    link: tuple[str, datetime] | None = None


def export_run(
    principal: Principal, run_id: UUID, fmt: str, *, link: bool, ports: Ports = DEPLOYED
) -> RunExport:
    from assay_service.domain.exports import FORMATS

    run, key, size = export_location(principal, run_id, fmt, ports=ports)
    export = RunExport(run=run, filename=f"eval-run-{run.id}.{fmt}", content_type=FORMATS[fmt], size=size)
    settings = get_settings()
    if link or size > settings.export_inline_max_bytes:
        presigned = ports.artifacts.presign_get(
            key,
            filename=export.filename,
            content_type=export.content_type,
            expires_in=settings.presign_expiry_seconds,
        )
        return replace(export, link=presigned)
    return replace(export, body=ports.artifacts.get_bytes(key).decode())


def cancel_run(principal: Principal, run_id: UUID, *, ports: Ports = DEPLOYED) -> Run:
    """Stop a pending or running run; its counts stay as they were (batch writes require
    ``running``). A finished run cannot be cancelled."""
    run = get_run(principal, run_id, ports=ports)
    now = utcnow().isoformat()
    if run.status in TERMINAL_STATUSES or not ports.runs.set_status(
        run, "cancelled", expect=["pending", "running"], fields={"completed_at": now}
    ):
        current = get_run(principal, run_id, ports=ports)
        raise ConflictError(f"the run is already {current.status}", details={"status": current.status})
    ports.workflow.stop(run.id, cause="cancelled through the API")
    return get_run(principal, run_id, ports=ports)


def delete_run(principal: Principal, run_id: UUID, *, ports: Ports = DEPLOYED) -> Run:
    """A finished run: its S3 objects (manifest, exports), its batches of evaluations and
    the run item, which leaves the run counters in the same transaction. A pending or
    running run is refused: its execution would go on writing (cancel it first)."""
    from assay_service.domain.exports import FORMATS

    run = get_run(principal, run_id, ports=ports)
    if run.status not in TERMINAL_STATUSES:
        raise ConflictError(
            f"the run is {run.status}; cancel it first (POST /v1/eval-runs/{run.id}/cancel), then delete it",
            details={"status": run.status},
        )
    store = ports.artifacts
    store.delete_keys(
        [
            store.manifest_key(run.tenant_id, run.id),
            *(store.export_key(run.tenant_id, run.id, fmt) for fmt in FORMATS),
        ]
    )
    if not ports.runs.delete(run):
        current = get_run(principal, run_id, ports=ports)  # deleted meanwhile: 404
        raise ConflictError(
            f"the run changed while it was being deleted (now {current.status}); retry",
            details={"status": current.status},
        )
    return run


EVALUATION_FILTERS = ("metric", "status", "passed")
MAX_ITEMS_PER_PAGE = 50  # batch items (a large batch is several) read per page: ≤ ~17 MB


def list_evaluations(
    principal: Principal,
    run_id: UUID,
    *,
    metric: str | None,
    status: str | None,
    passed: bool | None,
    limit: int,
    cursor: str | None,
    ports: Ports = DEPLOYED,
) -> tuple[list[tuple[Evaluation, dict[str, Any]]], str | None]:
    """A page of a run's evaluations in record order, each with its truncated record.

    Reads at most MAX_ITEMS_PER_PAGE batch items per request, so a very selective filter
    may return a short page with a cursor to continue."""
    run = get_run(principal, run_id, ports=ports)
    first_batch, skip = decode_position(cursor, partition=("run", str(run_id)), fields=("batch", "offset"))
    out: list[tuple[Evaluation, dict[str, Any]]] = []
    read = 0
    for batch in ports.runs.iter_batches(run, first=first_batch):
        read += batch["parts"]
        records = {r["id"]: r for r in batch["records"]}
        rows = batch["evaluations"]
        start = skip if batch["batch"] == first_batch else 0
        for offset in range(start, len(rows)):
            raw = rows[offset]
            if (
                (metric is None or raw["metric_name"] == metric)
                and (status is None or raw["status"] == status)
                and (passed is None or raw["is_passed"] is passed)
            ):
                out.append((Evaluation.model_validate(raw), records.get(raw["record_id"], {})))
                if len(out) == limit:
                    nxt = (batch["batch"], offset + 1)
                    return out, encode_position(run_id, nxt)
        if read >= MAX_ITEMS_PER_PAGE:
            return out, encode_position(run_id, (batch["batch"] + 1, 0))
    return out, None


def encode_position(run_id: UUID, position: tuple[int, int]) -> str:
    return encode_cursor({"run": str(run_id), "batch": position[0], "offset": position[1]}) or ""
