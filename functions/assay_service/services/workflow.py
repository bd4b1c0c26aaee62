"""The workflow steps: prepare → score batches (Distributed Map) → finalize | mark failed."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from uuid import UUID

from assay_service.dependencies import DEPLOYED
from assay_service.domain.aggregation import Aggregator
from assay_service.domain.exports import FORMATS, encode_csv, encode_json, encode_jsonl
from assay_service.domain.generation import (
    ChatReply,
    ChatRequest,
    UsageMeter,
    generate,
    generation_requests,
    merge_usage,
)
from assay_service.domain.scorers import get_scorer
from assay_service.domain.scorers.judges import JudgeRuntime
from assay_service.domain.scoring import BatchOutcome, Continue, Stopped, judge_first_calls, score_batch
from assay_service.errors import TransientStoreError, found
from assay_service.models.api import EvalRunResponse, EvaluationResponse
from assay_service.models.domain import Evaluation, JudgeSettings, Record, Run, utcnow
from assay_service.models.workflow import (
    BatchRef,
    ExecutionEnded,
    FinalizeResult,
    PrepareResult,
    ScoreBatchInput,
    ScoreBatchResult,
)
from assay_service.ports import Ports
from assay_service.services.model_calls import ModelCalls, limits_for, parse_limits
from assay_service.settings import get_settings

TRUNCATE = 100
_TEXT_FIELDS = ("prompt", "input", "context", "output", "golden_answer")


def _run(tenant_id: UUID, run_id: UUID, *, ports: Ports) -> Run:
    return found(ports.runs.get(tenant_id, run_id), "eval run")


def _object_key(run: Run, *, ports: Ports) -> str:
    version = ports.datasets.get_version(run.tenant_id, run.dataset_id, run.dataset_version)
    return found(version, "dataset version")[1]


def plan_batches(line_lengths: Iterable[int], batch_size: int) -> list[BatchRef]:
    """Byte ranges of consecutive batches of ``batch_size`` lines (one pass, O(1) memory
    per line)."""
    batches: list[BatchRef] = []
    offset = start = first = count = 0

    def close() -> None:
        batches.append(
            BatchRef(
                index=len(batches), first_record=first, count=count, byte_start=start, byte_end=offset - 1
            )
        )

    for length in line_lengths:
        if count == 0:
            start = offset
        offset += length
        count += 1
        if count == batch_size:
            close()
            first, count = first + count, 0
    if count:
        close()
    return batches


def prepare(tenant_id: UUID, run_id: UUID, *, ports: Ports = DEPLOYED) -> PrepareResult:
    run = _run(tenant_id, run_id, ports=ports)
    store = ports.artifacts
    key = store.manifest_key(tenant_id, run_id)
    batches = plan_batches(
        (len(line) for line in store.iter_lines(_object_key(run, ports=ports))), run.batch_size
    )
    store.put_json(key, [b.model_dump() for b in batches])
    # pending → running once; a retried prepare finds it running and carries on.
    ports.runs.set_status(run, "running", expect=["pending"], fields={"started_at": utcnow().isoformat()})
    return PrepareResult(
        tenant_id=tenant_id,
        run_id=run_id,
        manifest_key=key,
        batch_count=len(batches),
        max_concurrency=run.max_concurrency or get_settings().map_max_concurrency,
    )


def truncated(record: Record) -> dict[str, Any]:
    """The record as views show it: each text field cut to 100 characters."""
    row: dict[str, Any] = {"id": record.id, "trace_id": str(record.trace_id)}
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        row[name] = value[:TRUNCATE] if isinstance(value, str) else value
    return row


# Model calls of a batch start within this many seconds of its start: what is left of
# ScoreBatchFunction's 300 s records the batch (and a call in flight has its own timeout).
MODEL_CALLS_BUDGET_S = 200


def model_calls(run: Run, meter: UsageMeter, *, ports: Ports) -> ModelCalls:
    """The batch's way to the models: the run's cache choice, the deployment's limits
    (``MODEL_RATE_LIMITS``) under the run's override, the shared limiter."""
    deployment = parse_limits(get_settings().model_rate_limits)
    return ModelCalls(
        tenant_id=run.tenant_id,
        clients=ports.model_client,
        limiter=ports.rate_limiter,
        cache=ports.response_cache if run.cache else None,
        limits=lambda provider, model: limits_for(provider, model, deployment, run.rate_limits),
        meter=meter,
        deadline=time.time() + MODEL_CALLS_BUDGET_S,
    )


def judge_for(run: Run, calls: ModelCalls, *, ports: Ports = DEPLOYED) -> JudgeRuntime | None:
    """The judge (the batch's model calls, the eval version's settings, prices) when a
    metric needs one."""
    if not any((spec := get_scorer(m.scorer)) and spec.evaluator_type == "llm" for m in run.metrics):
        return None
    version = ports.evals.get_version(run.tenant_id, run.eval_version_id)
    settings = (version.judge if version else None) or JudgeSettings()
    return JudgeRuntime(client=calls, settings=settings, prices=ports.judge_prices())


def _still_running(run: Run, *, ports: Ports) -> Callable[[], bool]:
    """Whether the run is still ``running`` (one GetItem; score_batch asks about once a
    second). A store that cannot answer now is no reason to stop: record_batch's own
    condition has the last word."""

    def ask() -> bool:
        try:
            current = ports.runs.get(run.tenant_id, run.id)
        except TransientStoreError:
            return True
        return current is not None and current.status == "running"

    return ask


def _generate_and_score(
    run: Run, indexed: list[tuple[int, Record]], calls: ModelCalls, *, ports: Ports
) -> tuple[BatchOutcome, list[dict[str, Any]]] | None:
    """The batch scored — after its answers were generated, when the run generates — and
    its records as stored (truncated, each with its generation); None when the run stopped
    running meanwhile."""
    generations: dict[int, dict[str, Any]] = {}
    unscorable: dict[int, str] = {}
    still_running = _still_running(run, ports=ports)
    if run.generation is not None:
        calls.prefetch(generation_requests(indexed, run.generation))
        keep_going = Continue(still_running)

        def call(request: ChatRequest) -> tuple[ChatReply, bool]:
            keep_going.check()  # a cancelled run's batch makes no more calls
            return calls.call(request, "generator")

        try:
            generated = generate(indexed, run.generation, call)
        except Stopped:
            return None
        indexed, generations, unscorable = generated.records, generated.generations, generated.unscorable
    judge = judge_for(run, calls, ports=ports)
    if judge is not None and run.cache:
        scorable = [(i, r) for i, r in indexed if i not in unscorable]
        calls.prefetch(judge_first_calls(run.metrics, scorable, judge.settings))
    outcome = score_batch(
        run_id=run.id,
        project_id=run.project_id,
        metrics=run.metrics,
        records=indexed,
        judge=judge,
        should_continue=still_running,
        unscorable=unscorable,
    )
    if outcome.stopped:
        return None
    rows = []
    for index, record in indexed:
        row = truncated(record)
        if index in generations:
            row["generation"] = generations[index]
        rows.append(row)
    return outcome, rows


def score(event: ScoreBatchInput, *, ports: Ports = DEPLOYED) -> ScoreBatchResult:
    run = _run(event.tenant_id, event.run_id, ports=ports)
    batch = event.batch
    if run.status != "running":
        return ScoreBatchResult(batch=batch.index, completed=0, failed=0, outcome="inactive")
    if ports.runs.batch_recorded(run, batch.index):
        return ScoreBatchResult(batch=batch.index, completed=0, failed=0, outcome="duplicate")
    raw = ports.artifacts.get_bytes(
        _object_key(run, ports=ports), byte_range=(batch.byte_start, batch.byte_end)
    )
    records = [Record.model_validate_json(line) for line in raw.splitlines() if line.strip()]
    if len(records) != batch.count:
        raise ValueError(f"batch {batch.index}: expected {batch.count} records, read {len(records)}")
    meter = UsageMeter(prices=ports.judge_prices())
    calls = model_calls(run, meter, ports=ports)
    try:
        scored = _generate_and_score(
            run, list(enumerate(records, start=batch.first_record)), calls, ports=ports
        )
    finally:
        calls.flush()  # the answers paid for are kept, whatever happens to the batch now
    if scored is None:  # cancelled (or ended) meanwhile: nothing to record
        return ScoreBatchResult(batch=batch.index, completed=0, failed=0, outcome="inactive")
    outcome, rows = scored
    recorded = ports.runs.record_batch(
        run,
        batch.index,
        completed=outcome.completed,
        failed=outcome.failed,
        records=rows,
        evaluations=outcome.evaluations,
        now=utcnow().isoformat(),
        usage=meter.rows(),
        cache=(meter.hits, meter.misses),
    )
    return ScoreBatchResult(
        batch=batch.index, completed=outcome.completed, failed=outcome.failed, outcome=recorded
    )


def _export_items(run: Run, *, ports: Ports) -> Iterator[dict[str, Any]]:
    """Every evaluation of the run as an export item (with its truncated record)."""
    for batch in ports.runs.iter_batches(run):
        records = {r["id"]: r for r in batch["records"]}
        for raw in batch["evaluations"]:
            item = EvaluationResponse.of(Evaluation.model_validate(raw)).model_dump(mode="json")
            item["record"] = records.get(raw["record_id"])
            yield item


def write_exports(run: Run, run_document: dict[str, Any], *, ports: Ports = DEPLOYED) -> dict[str, int]:
    """Write every export format in one streaming pass over the batches; returns sizes."""
    store = ports.artifacts
    writers = {
        fmt: store.writer(store.export_key(run.tenant_id, run.id, fmt), ctype)
        for fmt, ctype in FORMATS.items()
    }
    try:
        json_chunks = encode_json(run_document, [])  # header now, items as they stream
        writers["json"].write(next(json_chunks))
        first = True
        header = next(encode_csv([]))
        writers["csv"].write(header)
        for item in _export_items(run, ports=ports):
            line = next(encode_jsonl([item]))
            writers["jsonl"].write(line)
            writers["json"].write((b"" if first else b",") + line[:-1])
            writers["csv"].write(b"".join(encode_csv([item]))[len(header) :])
            first = False
        writers["json"].write(b"]}")
        return {fmt: writer.close() for fmt, writer in writers.items()}
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def finalize(tenant_id: UUID, run_id: UUID, *, ports: Ports = DEPLOYED) -> FinalizeResult:
    run = _run(tenant_id, run_id, ports=ports)
    if run.status != "running":
        return FinalizeResult(run_id=run_id, status=run.status)
    # Pass 1: aggregates (streaming; nothing is held but the per-metric sums).
    aggregator = Aggregator(run.metrics)
    records_seen = 0
    usage: list[list[dict[str, Any]]] = []
    for batch in ports.runs.iter_batches(run):
        aggregator.add(Evaluation.model_validate(e) for e in batch["evaluations"])
        records_seen += len(batch["records"])
        usage.append(batch.get("usage") or [])
    if records_seen != run.item_count or run.completed_count + run.failed_count != run.item_count:
        raise RuntimeError(
            f"run incomplete: {records_seen} of {run.item_count} records recorded "
            f"(completed {run.completed_count}, failed {run.failed_count})"
        )
    result, pass_rate, is_gte = aggregator.verdict(run.threshold)
    per_model_usage = merge_usage(usage)
    generation_cost = math.fsum(u.cost or 0.0 for u in per_model_usage if u.role == "generator")
    total_cost = round(aggregator.total_cost + generation_cost, 10)
    now = utcnow()
    final = run.model_copy(
        update={
            "status": "completed",
            "completed_at": now,
            "updated_at": now,
            "aggregates": aggregator.aggregates(),
            "result": result,
            "pass_rate": pass_rate,
            "is_gte_threshold": is_gte,
            "total_cost": total_cost,
            "per_model_usage": per_model_usage,
        }
    )
    # Pass 2: the export artifacts, written once, streamed.
    write_exports(run, EvalRunResponse.of(final).model_dump(mode="json"), ports=ports)
    changed = ports.runs.set_status(
        run,
        "completed",
        expect=["running"],
        fields={
            "completed_at": now.isoformat(),
            "aggregates": [a.model_dump(mode="json") for a in final.aggregates or []],
            "result": result,
            "pass_rate": pass_rate,
            "is_gte_threshold": is_gte,
            "total_cost": final.total_cost,
            "per_model_usage": [u.model_dump(mode="json") for u in per_model_usage],
        },
    )
    return FinalizeResult(
        run_id=run_id, status="completed" if changed else _run(tenant_id, run_id, ports=ports).status
    )


BATCH_NOT_SCORED = "a batch of records could not be scored after its retries"
_TIMEOUTS = ("Sandbox.Timedout", "States.Timeout")
_LAMBDA_TIMEOUT = re.compile(r"timed out after (\d+(?:\.\d+)?) seconds")
SCORE_BATCH_TIMEOUT_S = 300  # template.yaml, ScoreBatchFunction's Timeout


def error_message(error: dict[str, Any] | None, run_status: str | None = None) -> str:
    """A readable message from a Step Functions Catch result ``{Error, Cause}``.

    A Distributed Map fails with ``States.ExceedToleratedFailureThreshold`` when a batch
    (a child execution) failed after its retries: the message says so first, since the
    error name alone does not. A Lambda timeout of ScoreBatchFunction's length while the
    run is ``running`` (``run_status``: prepare sets it last, finalize's timeout is longer)
    is a batch that timed out."""
    if not error:
        return "the run failed"
    name, cause = error.get("Error") or "Error", error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict):
            name = parsed.get("errorType") or name
            cause = parsed.get("errorMessage") or cause
    except ValueError:
        pass
    raw = f"{name}: {cause}" if cause else name
    if name == "States.ExceedToleratedFailureThreshold":
        raw = (
            f"{BATCH_NOT_SCORED}, so the Map stopped the run: a batch timed out "
            f"(ScoreBatchFunction's {SCORE_BATCH_TIMEOUT_S} s) or kept failing; the "
            f"batch's own error is in the Map Run's failed child execution ({raw})"
        )
    elif name in _TIMEOUTS and run_status == "running":
        seconds = _LAMBDA_TIMEOUT.search(cause)
        if seconds and float(seconds.group(1)) == SCORE_BATCH_TIMEOUT_S:
            raw = (
                f"{BATCH_NOT_SCORED}: a batch timed out (ScoreBatchFunction's "
                f"{SCORE_BATCH_TIMEOUT_S} s) ({raw})"
            )
    return raw[:2000]


def _end_unfinished(
    tenant_id: UUID, run_id: UUID, status: str, message: str | Callable[[Run], str], *, ports: Ports
) -> FinalizeResult:
    """Move a pending or running run to ``status`` with ``message`` (or the message made
    from the run); a finished run stays."""
    run = ports.runs.get(tenant_id, run_id)
    if run is None:
        return FinalizeResult(run_id=run_id, status=status)
    if callable(message):
        message = message(run)
    changed = ports.runs.set_status(
        run,
        status,
        expect=["pending", "running"],
        fields={"error_message": message, "completed_at": utcnow().isoformat()},
    )
    return FinalizeResult(
        run_id=run_id, status=status if changed else _run(tenant_id, run_id, ports=ports).status
    )


def mark_failed(
    tenant_id: UUID, run_id: UUID, error: dict[str, Any] | None, *, ports: Ports = DEPLOYED
) -> FinalizeResult:
    return _end_unfinished(
        tenant_id, run_id, "failed", lambda run: error_message(error, run.status), ports=ports
    )


def reconcile(ended: ExecutionEnded, *, ports: Ports = DEPLOYED) -> FinalizeResult | None:
    """The backstop behind the Catch path: an execution that ended FAILED, TIMED_OUT or
    ABORTED while its run is still pending or running (an error ``States.ALL`` does not
    catch, the machine's timeout, Mark Run Failed out of retries, a stop from outside
    Assay) ends the run too, so no run stays ``running`` and its in-flight slot is freed.
    A run already finished (the usual case: the Catch path or a cancel got there first)
    is left as it is. Executions that are not a run's are ignored (None)."""
    if not ended.is_a_run or ended.tenant_id is None or ended.run_id is None:
        return None
    message: str | Callable[[Run], str]
    if ended.status == "ABORTED":
        status, message = "cancelled", "the run's workflow execution was stopped outside Assay"
    elif ended.status == "TIMED_OUT":
        status, message = "failed", "States.Timeout: the run's workflow execution timed out"
    else:
        status = "failed"
        error = {"Error": ended.error or "States.Runtime", "Cause": ended.cause}

        def message(run: Run) -> str:
            return error_message(error, run.status)

    return _end_unfinished(ended.tenant_id, ended.run_id, status, message, ports=ports)
