"""Scoring a batch of records against a run's metrics — pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from pydantic import ValidationError

from assay_service.domain.ids import evaluation_id
from assay_service.domain.scorers import get_scorer, validate_args
from assay_service.domain.scorers.judges import JudgeRuntime, judge_runtime
from assay_service.errors import InvalidRecordError, InvalidRequestError, TransientScoringError
from assay_service.models.domain import Evaluation, Metric, Record, utcnow


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    evaluations: list[Evaluation]
    completed: int  # records whose every metric was scored
    failed: int  # records with at least one evaluation that could not be scored


def check_metrics(metrics: Sequence[Metric]) -> None:
    """Reject an eval version's metrics with a 400 that names the metric at fault."""
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"metrics[{index}] ({metric.name})"
        if metric.name in seen:
            raise InvalidRequestError(f"{where}: duplicate metric name",
                                      details={"metric": metric.name, "index": index})
        seen.add(metric.name)
        spec = get_scorer(metric.scorer)
        if spec is None:
            raise InvalidRequestError(f"{where}: unknown scorer {metric.scorer!r}",
                                      details={"metric": metric.name, "index": index})
        try:
            validate_args(spec, metric.args)
        except ValidationError as exc:
            problems = [
                f"args.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}".replace("args.: ", "args: ")
                for err in exc.errors()
            ]
            raise InvalidRequestError(f"{where}: invalid args — {'; '.join(problems)}",
                                      details={"metric": metric.name, "index": index,
                                               "errors": problems}) from None


def score_batch(
    *,
    run_id: UUID,
    project_id: UUID,
    metrics: Sequence[Metric],
    records: Iterable[tuple[int, Record]],
    judge: JudgeRuntime | None = None,
) -> BatchOutcome:
    """Score every (record, metric). A record a scorer cannot handle becomes a failed
    evaluation; a transient judge failure propagates so the workflow retries the batch.
    ``judge`` (client, settings, prices) is what the ``llm`` scorers call."""
    with judge_runtime(judge):
        return _score_batch(run_id=run_id, project_id=project_id, metrics=metrics,
                            records=records)


def _score_batch(
    *,
    run_id: UUID,
    project_id: UUID,
    metrics: Sequence[Metric],
    records: Iterable[tuple[int, Record]],
) -> BatchOutcome:
    prepared = []
    for metric in metrics:
        spec = get_scorer(metric.scorer)
        if spec is None:  # versions are validated at creation; this is a corrupted run
            raise InvalidRequestError(f"unknown scorer {metric.scorer!r}")
        prepared.append((metric, spec, validate_args(spec, metric.args)))

    evaluations: list[Evaluation] = []
    completed = failed = 0
    for record_index, record in records:
        row = record.model_dump()
        record_failed = False
        for metric_index, (metric, spec, args) in enumerate(prepared):
            started = utcnow()
            score = label = reasoning = error = None
            confidence = cost = passed = None
            metadata: dict | None = None
            try:
                result = spec(row, args)
                score, label, reasoning = result.score, result.label, result.reasoning
                confidence, metadata = result.confidence, (result.metadata or None)
                cost, passed = result.cost, result.passed
            except TransientScoringError:
                raise
            except InvalidRecordError as exc:
                error = exc.message
            except Exception as exc:  # noqa: BLE001 — one bad record must not fail the run
                error = f"{type(exc).__name__}: {exc}"
                # A judge that answered but could not be understood still spent tokens.
                cost, metadata = getattr(exc, "cost", None), getattr(exc, "metadata", None)
            record_failed = record_failed or error is not None
            finished = utcnow()
            evaluations.append(Evaluation(
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
                is_passed=score is not None and (
                    passed if passed is not None else score >= metric.threshold),
                threshold=metric.threshold,
                confidence=confidence,
                metric_args=metric.args or None,
                eval_metadata=metadata,
                evaluation_cost=cost,
                error_message=error,
                created_at=finished,
                started_at=started,
                completed_at=finished,
            ))
        if record_failed:
            failed += 1
        else:
            completed += 1
    return BatchOutcome(evaluations=evaluations, completed=completed, failed=failed)
