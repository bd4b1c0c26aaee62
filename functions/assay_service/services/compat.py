"""Read-only compatibility views over the native data, in the shapes other vendors document.

* Aegis ``GET /runs/{run_id}``: 0–100 scale, labels for run type/source, every evaluation
  with its record truncated to 100 characters per string field.
* Aymara ``GET /v2/eval-runs`` (and ``/{eval_run_uuid}``): ``{items, count}`` with
  Aymara's statuses and, per record, a "response" (passed all metrics, explanation,
  confidence, whether the model refused); ``/v2/eval-runs/{eval_run_uuid}/responses`` pages
  through a run's responses by offset, reading only the batches the page spans.
* Aymara ``GET /v2/evals`` (and ``/{eval_uuid}``): an Assay eval, described by its latest
  version's metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from itertools import islice
from typing import Any
from uuid import UUID

from assay_service.dependencies import DEPLOYED
from assay_service.errors import NotFoundError, found
from assay_service.models.domain import Eval, EvalVersion, Metric, Principal, Run
from assay_service.ports import Ports
from assay_service.services import runs as run_service

AEGIS_MAX_EVALUATIONS = 1000
# A run in one of these has its batches and counters frozen (no batch is recorded after it
# left "running": the batch's write is conditional on that status).
FINISHED = frozenset({"completed", "failed", "cancelled"})
AYMARA_MAX_RESPONSES = 100
# Evals read per request while counting the tenant's evals for the Aymara list (they have
# no counter, as runs do): one index query each.
AYMARA_EVALS_SCAN_PAGE = 1000
AYMARA_STATUS = {
    "pending": "created",
    "running": "processing",
    "completed": "finished",
    "failed": "failed",
    "cancelled": "failed",
}


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 6)


def _money(value: float | None) -> str | None:
    return None if value is None else f"{Decimal(str(value)):.15f}"


def _evaluations(run: Run, *, ports: Ports) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for batch in ports.runs.iter_batches(run):
        records = {r["id"]: r for r in batch["records"]}
        for raw in batch["evaluations"]:
            yield raw, records.get(raw["record_id"], {})


def recorded_evaluations(run: Run) -> int:
    """How many evaluations the run's recorded batches hold, from its counters: a batch is
    recorded in the same transaction that adds its records to ``completed_count`` (every
    metric scored) or ``failed_count`` (at least one not), and holds one evaluation per
    record and metric."""
    return (run.completed_count + run.failed_count) * len(run.metrics)


def aegis_run(principal: Principal, run_id: UUID, *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    run = run_service.get_run(principal, run_id, ports=ports)
    dataset = ports.datasets.get(principal.tenant_id, run.dataset_id)
    version = ports.evals.get_version(principal.tenant_id, run.eval_version_id)
    model = version.judge.model if version and version.judge else None
    evaluations: list[dict[str, Any]] = []
    total = 0
    # A finished run's batches are read only as far as the page needs (its total comes from
    # its counters); a running one's are all read and counted (its counters were read
    # before its batches, and batches may have been recorded in between).
    finished = run.status in FINISHED
    for raw, record in _evaluations(run, ports=ports):
        if len(evaluations) >= AEGIS_MAX_EVALUATIONS:
            if finished:
                total = recorded_evaluations(run)
                break
            total += 1
            continue
        total += 1
        evaluations.append(
            {
                "id": raw["id"],
                "run_id": str(run.id),
                "record_index": raw["record_index"],
                "metric": raw["metric_name"],
                "record": {
                    k: record.get(k) for k in ("id", "prompt", "input", "context", "output", "golden_answer")
                },
                "result": _pct(raw["score"]),
                "threshold": _pct(raw["threshold"]),
                "explanation": raw["reasoning"] or raw.get("error_message"),
                "model_slug": model if raw["evaluator_type"] == "llm" else None,
                "metric_args": raw.get("metric_args"),
                "started_at": raw["started_at"],
                "finished_at": raw["completed_at"],
                "evaluation_cost": _money(raw.get("evaluation_cost")),
                "is_success": raw["status"] == "complete",
                "is_gte_threshold": raw["is_passed"],
                "eval_metadata": raw.get("eval_metadata"),
            }
        )
    return {
        "id": str(run.id),
        "user": None,
        "author_email": "",
        "run_type": "Dataset",
        "run_source": "API Call",
        "dataset": dataset.name if dataset else None,
        "data_collection": None,
        "org_id": None,
        "number_of_metrics": len(run.metrics),
        "result": _pct(run.result),
        "threshold": _pct(run.threshold),
        "model_slug": run.generation.model if run.generation else model,
        "alias": run.name,
        "aggregate_results": None
        if run.aggregates is None
        else {a.metric: _pct(a.mean) for a in run.aggregates},
        "total_cost": _money(run.total_cost),
        "started_at": (run.started_at or run.created_at).isoformat(),
        "finished_at": run.completed_at.isoformat() if run.completed_at else None,
        "is_gte_threshold": run.is_gte_threshold,
        "status": run.status,
        "evaluations": evaluations,
        "evaluations_total": total,
        "evaluations_truncated": total > len(evaluations),
    }


def _response(record: dict[str, Any], evs: list[dict[str, Any]]) -> dict[str, Any]:
    """One Aymara response: a record's evaluations (one per metric) as one outcome — passed
    every metric, why (the first failing metric's reasoning, else the first metric's), how
    sure (the mean of the judges' confidences), refused?"""
    failing = [e for e in evs if not e["is_passed"]]
    confidences = [e["confidence"] for e in evs if e.get("confidence") is not None]
    refused = any((e.get("eval_metadata") or {}).get("ai_refused") for e in evs)
    explanation = failing[0] if failing else evs[0]
    return {
        "prompt_uuid": record.get("trace_id") or str(evs[0]["trace_id"]),
        "thread_uuid": None,
        "turn_number": 1,
        "continue_thread": False,
        "content": record.get("output"),
        "content_type": "text",
        "exclude_from_scoring": False,
        "ai_refused": refused,
        "response_uuid": record.get("id") or evs[0]["record_id"],
        "explanation": f"{explanation['metric_name']}: "
        f"{explanation['reasoning'] or explanation.get('error_message')}",
        "confidence": sum(confidences) / len(confidences) if confidences else None,
        "is_passed": not failing,
        "next_prompt": None,
    }


def batch_responses(batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A recorded batch's responses, one per record, in record order."""
    records = {r["id"]: r for r in batch["records"]}
    by_record: dict[int, list[dict[str, Any]]] = {}
    for raw in batch["evaluations"]:
        by_record.setdefault(raw["record_index"], []).append(raw)
    for index in sorted(by_record):
        evs = by_record[index]
        yield _response(records.get(evs[0]["record_id"], {}), evs)


def _responses(run: Run, *, ports: Ports) -> list[dict[str, Any]]:
    """The run's first AYMARA_MAX_RESPONSES responses (batches read only as far as needed)."""
    every = (r for batch in ports.runs.iter_batches(run) for r in batch_responses(batch))
    return list(islice(every, AYMARA_MAX_RESPONSES))


def recorded_records(run: Run) -> int:
    """Records the run's recorded batches hold (each counted once, completed or failed, in
    the transaction that records its batch)."""
    return run.completed_count + run.failed_count


def response_page(run: Run, *, offset: int, limit: int, ports: Ports) -> list[dict[str, Any]]:
    """Responses ``offset`` to ``offset + limit`` of the run's recorded records, in record
    order. Batch ``i`` holds records ``i × batch_size`` onwards, so when every batch is
    recorded (every record counted: any completed run) the page starts at the batch holding
    record ``offset`` and reads no other batch than those the page spans. A run with batches
    missing (running, or failed/cancelled part-way) cannot tell where its ``offset``-th
    recorded record is without reading the batches before it: those are read (not turned
    into responses) from the first on."""
    if limit <= 0:
        return []
    if recorded_records(run) >= run.item_count:
        first, skip = divmod(offset, run.batch_size)
    else:
        first, skip = 0, offset
    out: list[dict[str, Any]] = []
    for batch in ports.runs.iter_batches(run, first=first):
        held = len(batch["records"])
        if skip >= held:
            skip -= held
            continue
        for response in islice(batch_responses(batch), skip, None):
            out.append(response)
            if len(out) >= limit:
                return out
        skip = 0
    return out


def aymara_run(run: Run, ev: Eval | None, *, with_responses: bool, ports: Ports = DEPLOYED) -> dict[str, Any]:
    status = AYMARA_STATUS[run.status]
    evaluation = (
        None
        if ev is None
        else {
            "eval_uuid": str(ev.id),
            "name": ev.name,
            "ai_description": ev.description or "",
            "ai_instructions": None,
            "eval_type": "accuracy",
            "eval_instructions": None,
            "language": "en",
            "modality": "text",
            "ground_truth": None,
            "num_prompts": run.item_count,
            "prompt_examples": None,
            "is_jailbreak": False,
            "is_sandbox": False,
            "workspace_uuid": str(ev.project_id),
            "status": status,
            "created_at": ev.created_at.isoformat(),
            "updated_at": ev.created_at.isoformat(),
        }
    )
    return {
        "eval_run_uuid": str(run.id),
        "eval_uuid": str(run.eval_id),
        "name": run.name,
        "status": status,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "evaluation": evaluation,
        "ai_description": ev.description if ev else None,
        "workspace_uuid": str(run.project_id),
        "pass_rate": run.pass_rate,
        "num_prompts": run.item_count,
        "num_responses_scored": run.completed_count + run.failed_count,
        "responses": _responses(run, ports=ports) if with_responses and run.status == "completed" else None,
    }


def aymara_runs(
    principal: Principal,
    *,
    eval_uuid: UUID | None,
    workspace_uuid: UUID | None,
    limit: int,
    offset: int,
    with_responses: bool,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    criteria = {
        k: str(v) for k, v in {"eval_id": eval_uuid, "project_id": workspace_uuid}.items() if v is not None
    }
    items, _, total = run_service.list_runs(
        principal, criteria=criteria, limit=limit, offset=offset, cursor=None, ports=ports
    )
    evals: dict[UUID, Eval | None] = {}
    for run in items:
        if run.eval_id not in evals:
            evals[run.eval_id] = ports.evals.get(principal.tenant_id, run.eval_id)
    return {
        "items": [aymara_run(r, evals[r.eval_id], with_responses=with_responses, ports=ports) for r in items],
        "count": total,
    }


def _run_in(principal: Principal, run_id: UUID, workspace_uuid: UUID | None, *, ports: Ports) -> Run:
    """The tenant's run (404 otherwise), in ``workspace_uuid`` when one is named (a run of
    another project is a 404 too)."""
    run = run_service.get_run(principal, run_id, ports=ports)
    if workspace_uuid is not None and run.project_id != workspace_uuid:
        raise NotFoundError("eval run")
    return run


def aymara_get_run(
    principal: Principal,
    run_id: UUID,
    *,
    workspace_uuid: UUID | None,
    with_responses: bool,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    run = _run_in(principal, run_id, workspace_uuid, ports=ports)
    ev = ports.evals.get(principal.tenant_id, run.eval_id)
    return aymara_run(run, ev, with_responses=with_responses, ports=ports)


def aymara_run_responses(
    principal: Principal,
    run_id: UUID,
    *,
    workspace_uuid: UUID | None,
    limit: int,
    offset: int,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    """A page of the run's responses, ``{items, count}``; ``count`` is every response the
    run has recorded (its records scored so far, completed or failed)."""
    run = _run_in(principal, run_id, workspace_uuid, ports=ports)
    return {
        "items": response_page(run, offset=offset, limit=limit, ports=ports),
        "count": recorded_records(run),
    }


def _number(value: float) -> str:
    return f"{value:g}"


def eval_instructions(version: EvalVersion) -> str:
    """What an Assay eval version checks, in words (Aymara's evals carry instructions, not
    metrics)."""
    metrics = "; ".join(_metric(m) for m in version.metrics)
    return (
        f"Assay eval version {version.version}: a record passes when it passes every metric; "
        f"the run passes when the mean of the metric means is at least {_number(version.threshold)}. "
        f"Metrics: {metrics}."
    )


def _metric(metric: Metric) -> str:
    return f"{metric.name} ({metric.scorer}, threshold {_number(float(metric.threshold))})"


def aymara_eval(ev: Eval, latest: EvalVersion | None) -> dict[str, Any]:
    """An Assay eval in Aymara's ``Eval`` shape, described by its latest version: ready
    (``finished``) once it has a version, ``created`` before."""
    return {
        "eval_uuid": str(ev.id),
        "name": ev.name,
        "ai_description": ev.description or "",
        "ai_instructions": None,
        "eval_type": "accuracy",
        "eval_instructions": eval_instructions(latest) if latest else None,
        "language": "en",
        "modality": "text",
        "ground_truth": None,
        "num_prompts": None,
        "prompt_examples": None,
        "is_jailbreak": False,
        "is_sandbox": False,
        "workspace_uuid": str(ev.project_id),
        "status": "finished" if ev.version_count > 0 else "created",
        "created_at": ev.created_at.isoformat(),
        "updated_at": (latest.created_at if latest else ev.created_at).isoformat(),
        "created_by": None,
    }


def _latest_version(principal: Principal, ev: Eval, *, ports: Ports) -> EvalVersion | None:
    if ev.version_count == 0:
        return None
    versions = ports.evals.list_versions(principal.tenant_id, ev.id)
    return max(versions, key=lambda v: v.version, default=None)


def aymara_get_eval(
    principal: Principal, eval_id: UUID, *, workspace_uuid: UUID | None, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    ev = found(ports.evals.get(principal.tenant_id, eval_id), "eval")
    if workspace_uuid is not None and ev.project_id != workspace_uuid:
        raise NotFoundError("eval")
    return aymara_eval(ev, _latest_version(principal, ev, ports=ports))


def aymara_evals(
    principal: Principal,
    *,
    workspace_uuid: UUID | None,
    limit: int,
    offset: int,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    """The tenant's evals (in ``workspace_uuid`` when named), newest first, ``{items,
    count}`` with ``count`` every match. Evals are not counted as runs are: the tenant's
    eval index is read to the end (one query per AYMARA_EVALS_SCAN_PAGE evals), only the
    page's evals are kept, and only theirs have their versions read."""
    window: list[Eval] = []
    total = 0
    cursor: str | None = None
    while True:
        evals, cursor = ports.evals.list_page(
            principal.tenant_id, limit=AYMARA_EVALS_SCAN_PAGE, cursor=cursor
        )
        for ev in evals:
            if workspace_uuid is not None and ev.project_id != workspace_uuid:
                continue
            if offset <= total < offset + limit:
                window.append(ev)
            total += 1
        if cursor is None:
            break
    return {
        "items": [aymara_eval(ev, _latest_version(principal, ev, ports=ports)) for ev in window],
        "count": total,
    }
