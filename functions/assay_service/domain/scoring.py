"""Scoring a batch of records against a run's metrics — pure, no I/O.

What a tenant writes into an eval (a regex, a JSON Schema) runs under budgets
(``scorers/budgets.py``): an evaluation over its budget is a failed evaluation saying so,
and a batch bounds what such scorers may cost it in all — after ``BREAKER_OVERRUNS``
overruns of one metric its remaining evaluations in the batch fail at once, and past
``BATCH_BUDGET_S`` of budgeted scoring every remaining budgeted evaluation does.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from assay_service.domain.generation import ChatRequest, judge_request
from assay_service.domain.ids import evaluation_id
from assay_service.domain.scorers import budgets, get_scorer, scorer_names, validate_args
from assay_service.domain.scorers.base import ScorerArgs, ScoreResult, ScorerSpec
from assay_service.domain.scorers.budgets import BudgetExceededError
from assay_service.domain.scorers.judges import JudgeRuntime, judge_runtime
from assay_service.errors import InvalidRecordError, InvalidRequestError, TransientScoringError
from assay_service.models.domain import Evaluation, JudgeSettings, Metric, Record, utcnow


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    evaluations: list[Evaluation]
    completed: int  # records whose every metric was scored
    failed: int  # records with at least one evaluation that could not be scored
    stopped: bool = False  # ``should_continue`` said no: nothing to record


# How often (seconds) the scoring loop asks ``should_continue``, e.g. whether the run is
# still running: a cancelled run's batches stop within about this, plus one evaluation.
CONTINUE_CHECK_S = 1.0


class Stopped(Exception):
    """The run stopped running (``Continue.check``)."""


class Continue:
    """Calls ``should_continue`` at most once every CONTINUE_CHECK_S (by whichever thread
    comes first); once it said no, every ``check`` raises Stopped without asking again."""

    def __init__(self, should_continue: Callable[[], bool] | None) -> None:
        self._ask = should_continue
        self._next = time.monotonic() + CONTINUE_CHECK_S
        self._stopped = False
        self._lock = threading.Lock()

    def check(self) -> None:
        if self._ask is None:
            return
        with self._lock:
            due = not self._stopped and time.monotonic() >= self._next
            if due:
                self._next = time.monotonic() + CONTINUE_CHECK_S
        if due and not self._ask():
            self._stopped = True
        if self._stopped:
            raise Stopped


class _Breaker:
    """The batch's bounds on budgeted scorers (``ScorerSpec.budgeted``): after
    ``overruns`` budget overruns of one metric its further evaluations are not run, nor
    any budgeted evaluation once ``batch_seconds`` (wall clock: what ScoreBatchFunction's
    timeout counts) have been spent in them."""

    def __init__(self, metrics: int, overruns: int, batch_seconds: float) -> None:
        self.overruns = [0] * metrics
        self.limit = overruns
        self.batch_seconds = batch_seconds
        self.spent = 0.0

    def refusal(self, index: int, spec: ScorerSpec) -> BudgetExceededError | None:
        if self.overruns[index] >= self.limit:
            return BudgetExceededError(
                f"{spec.name}: not evaluated: this metric exceeded its budget on "
                f"{self.overruns[index]} records of this batch (circuit breaker)"
            )
        if self.spent >= self.batch_seconds:
            return BudgetExceededError(
                f"{spec.name}: not evaluated: this batch spent its {self.batch_seconds:g} s "
                "budget for regex and json_schema metrics (use a smaller batch_size)"
            )
        return None

    def account(self, index: int, cell: _Cell) -> None:
        self.spent += (cell.finished - cell.started).total_seconds()
        if isinstance(cell.error, BudgetExceededError):
            self.overruns[index] += 1


class _Asked(Exception):
    pass


@dataclass
class _Recorder:
    """A JudgeClient that keeps the call it is asked (a judge's question, or a model
    grader's conversation) and stops the judge there."""

    calls: list[ChatRequest]

    def complete(self, system: str, user: str, settings: JudgeSettings) -> Any:
        self.calls.append(judge_request(system, user, settings))
        raise _Asked

    def complete_chat(self, request: ChatRequest) -> Any:
        self.calls.append(request)
        raise _Asked


def judge_first_calls(
    metrics: Sequence[Metric], records: Iterable[tuple[int, Record]], settings: JudgeSettings
) -> list[ChatRequest]:
    """The first call each LLM metric's judge makes for each record — what a batch reads
    from the response cache in one go before it scores. Each judge runs against a client
    that records the call and stops it there; a record a judge cannot ask about (a missing
    field) makes no call."""
    calls: list[ChatRequest] = []
    recorder = _Recorder(calls)
    judged = []
    for metric in metrics:
        spec = get_scorer(metric.scorer)
        if spec is None or spec.evaluator_type != "llm":
            continue
        try:
            judged.append((spec, validate_args(spec, metric.args)))
        except ValidationError:
            continue
    if not judged:
        return calls
    with judge_runtime(JudgeRuntime(client=recorder, settings=settings)):
        for _, record in records:
            row = record.model_dump()
            for spec, args in judged:
                try:
                    spec(row, args)
                except Exception:  # noqa: S112 - _Asked, or the record's fault: no call either way
                    continue
    return calls


def check_metrics(metrics: Sequence[Metric]) -> None:
    """Reject an eval version's metrics with a 400 that names the metric at fault."""
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"metrics[{index}] ({metric.name})"
        if metric.name in seen:
            raise InvalidRequestError(
                f"{where}: duplicate metric name", details={"metric": metric.name, "index": index}
            )
        seen.add(metric.name)
        spec = get_scorer(metric.scorer)
        if spec is None:
            # The catalogue is short (~20 names): list it, so the fix is in the message.
            known = scorer_names()
            close = difflib.get_close_matches(metric.scorer, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidRequestError(
                f"{where}: unknown scorer {metric.scorer!r}{hint} (known: {', '.join(known)})",
                details={"metric": metric.name, "index": index, "known_scorers": known},
            )
        try:
            validate_args(spec, metric.args)
        except ValidationError as exc:
            problems = [
                f"args.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}".replace("args.: ", "args: ")
                for err in exc.errors()
            ]
            raise InvalidRequestError(
                f"{where}: invalid args — {'; '.join(problems)}",
                details={"metric": metric.name, "index": index, "errors": problems},
            ) from None


def score_batch(
    *,
    run_id: UUID,
    project_id: UUID,
    metrics: Sequence[Metric],
    records: Iterable[tuple[int, Record]],
    judge: JudgeRuntime | None = None,
    should_continue: Callable[[], bool] | None = None,
    breaker_overruns: int | None = None,
    batch_budget_s: float | None = None,
    unscorable: Mapping[int, str] | None = None,
) -> BatchOutcome:
    """Score every (record, metric). A record a scorer cannot handle becomes a failed
    evaluation; a transient judge failure propagates so the workflow retries the batch.
    ``judge`` (client, settings, prices) is what the ``llm`` scorers call; up to
    ``judge.settings.concurrency`` judge calls of the batch are in flight at once.
    ``should_continue`` is asked about once a second; when it says no, scoring stops and
    the outcome is ``stopped`` (no evaluations). The circuit breaker's bounds default to
    ``budgets.BREAKER_OVERRUNS`` and ``budgets.BATCH_BUDGET_S``. ``unscorable`` maps a
    record index to why that record cannot be scored (its answer could not be generated):
    each of its evaluations fails with that message."""
    breaker = _Breaker(
        len(metrics),
        budgets.BREAKER_OVERRUNS if breaker_overruns is None else breaker_overruns,
        budgets.BATCH_BUDGET_S if batch_budget_s is None else batch_budget_s,
    )
    try:
        with judge_runtime(judge):
            return _score_batch(
                run_id=run_id,
                project_id=project_id,
                metrics=metrics,
                records=records,
                parallelism=judge.settings.concurrency if judge else 1,
                breaker=breaker,
                keep_going=Continue(should_continue),
                unscorable=unscorable or {},
            )
    except Stopped:
        return BatchOutcome(evaluations=[], completed=0, failed=0, stopped=True)


@dataclass(slots=True)
class _Cell:
    """One (record, metric) scored: the scorer's result or the error that stopped it."""

    started: datetime
    finished: datetime
    result: ScoreResult | None = None
    error: Exception | None = None


def _apply(spec: ScorerSpec, row: dict[str, Any], args: ScorerArgs) -> _Cell:
    started = utcnow()
    try:
        result, error = spec(row, args), None
    except Exception as exc:
        result, error = None, exc
    return _Cell(started=started, finished=utcnow(), result=result, error=error)


def _refused(error: Exception) -> _Cell:
    now = utcnow()
    return _Cell(started=now, finished=now, error=error)


def _rule_cell(
    index: int, spec: ScorerSpec, row: dict[str, Any], args: ScorerArgs | Exception, breaker: _Breaker
) -> _Cell:
    if isinstance(args, Exception):
        return _refused(args)
    if not spec.budgeted:
        return _apply(spec, row, args)
    refusal = breaker.refusal(index, spec)
    if refusal is not None:
        return _refused(refusal)
    cell = _apply(spec, row, args)
    breaker.account(index, cell)
    return cell


def _judge_cells(
    prepared: list[tuple[Metric, ScorerSpec, ScorerArgs | Exception]],
    rows: list[tuple[int, Record, dict[str, Any]]],
    parallelism: int,
    keep_going: Continue,
    unscorable: Mapping[int, str],
) -> dict[tuple[int, int], _Cell]:
    """Every ``llm`` (record, metric) of the batch, ``parallelism`` calls at a time. The
    first transient failure cancels what has not started and propagates (the batch is
    retried whole; nothing has been recorded); so does a stop (``keep_going``)."""
    jobs = [
        (position, metric_index, spec, row, args)
        for position, (record_index, _, row) in enumerate(rows)
        if record_index not in unscorable
        for metric_index, (_, spec, args) in enumerate(prepared)
        if spec.evaluator_type == "llm" and not isinstance(args, Exception)
    ]
    if not jobs:
        return {}
    if parallelism <= 1 or len(jobs) == 1:
        cells = {}
        for position, metric_index, spec, row, args in jobs:
            keep_going.check()
            cell = _apply(spec, row, args)
            if isinstance(cell.error, TransientScoringError):
                raise cell.error
            cells[position, metric_index] = cell
        return cells
    with ThreadPoolExecutor(max_workers=min(parallelism, len(jobs)), thread_name_prefix="judge") as pool:
        futures = {
            pool.submit(_apply, spec, row, args): (position, metric_index)
            for position, metric_index, spec, row, args in jobs
        }
        cells = {}
        try:
            for future in as_completed(futures):
                keep_going.check()
                cell = future.result()
                if isinstance(cell.error, TransientScoringError):
                    raise cell.error
                cells[futures[future]] = cell
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return cells


def _score_batch(
    *,
    run_id: UUID,
    project_id: UUID,
    metrics: Sequence[Metric],
    records: Iterable[tuple[int, Record]],
    parallelism: int = 1,
    breaker: _Breaker,
    keep_going: Continue,
    unscorable: Mapping[int, str],
) -> BatchOutcome:
    prepared: list[tuple[Metric, ScorerSpec, ScorerArgs | Exception]] = []
    for metric in metrics:
        spec = get_scorer(metric.scorer)
        if spec is None:  # versions are validated at creation; this is a corrupted run
            raise InvalidRequestError(f"unknown scorer {metric.scorer!r}")
        try:
            args: ScorerArgs | Exception = validate_args(spec, metric.args)
        except ValidationError as exc:
            # Valid when the version was created, not under today's rules (e.g. a pattern
            # past budgets.PATTERN_EXPANSION_LIMIT): that metric's evaluations fail.
            problems = "; ".join(err["msg"] for err in exc.errors())
            args = InvalidRecordError(f"{metric.scorer}: the metric's args are no longer valid: {problems}")
        prepared.append((metric, spec, args))

    rows = [(record_index, record, record.model_dump()) for record_index, record in records]
    judged = _judge_cells(prepared, rows, parallelism, keep_going, unscorable)
    evaluations: list[Evaluation] = []
    completed = failed = 0
    for position, (record_index, record, row) in enumerate(rows):
        keep_going.check()
        record_failed = False
        reason = unscorable.get(record_index)
        for metric_index, (metric, spec, args) in enumerate(prepared):
            if reason is not None:
                cell = _refused(InvalidRecordError(reason))
            else:
                cell = judged.get((position, metric_index)) or _rule_cell(
                    metric_index, spec, row, args, breaker
                )
            score = label = reasoning = error = None
            confidence = cost = passed = None
            metadata: dict | None = None
            if cell.result is not None:
                result = cell.result
                score, label, reasoning = result.score, result.label, result.reasoning
                confidence, metadata = result.confidence, (result.metadata or None)
                cost, passed = result.cost, result.passed
            elif isinstance(cell.error, TransientScoringError):
                raise cell.error
            elif isinstance(cell.error, InvalidRecordError):
                error = cell.error.message
            else:  # one bad record must not fail the run
                failure = cell.error
                error = f"{type(failure).__name__}: {failure}"
                # A judge that answered but could not be understood still spent tokens.
                cost, metadata = getattr(failure, "cost", None), getattr(failure, "metadata", None)
            record_failed = record_failed or error is not None
            evaluations.append(
                Evaluation(
                    id=evaluation_id(run_id, record_index, metric_index),
                    run_id=run_id,
                    trace_id=record.trace_id,
                    project_id=project_id,
                    record_id=record.id,
                    record_index=record_index,
                    metric_name=metric.name,
                    scorer=metric.scorer,
                    evaluator_type=spec.evaluator_type,
                    status="failed" if error else "complete",
                    score=score,
                    label=label,
                    reasoning=reasoning,
                    is_passed=score is not None
                    and (passed if passed is not None else score >= metric.threshold),
                    threshold=metric.threshold,
                    confidence=confidence,
                    metric_args=metric.args or None,
                    eval_metadata=metadata,
                    evaluation_cost=cost,
                    error_message=error,
                    created_at=cell.finished,
                    started_at=cell.started,
                    completed_at=cell.finished,
                )
            )
        if record_failed:
            failed += 1
        else:
            completed += 1
    return BatchOutcome(evaluations=evaluations, completed=completed, failed=failed)
