"""Scoring a batch and aggregating it: failures are per record, the verdict follows the spec."""

from __future__ import annotations

import uuid

import pytest
from assay_service.domain import scoring
from assay_service.domain.aggregation import Aggregator
from assay_service.domain.scorers.base import ScoreResult
from assay_service.errors import InvalidRequestError, TransientScoringError
from assay_service.models.domain import Metric, Record

METRICS = [
    Metric(name="em", scorer="exact_match", args={"case_sensitive": False}, threshold=1.0),
    Metric(name="json", scorer="json_valid", threshold=0.5),
]


def record(i: int, output: str | None, golden: str | None = "x") -> tuple[int, Record]:
    return i, Record(id=f"r{i}", trace_id=uuid.uuid4(), output=output, golden_answer=golden)


def test_score_batch_scores_every_record_metric_pair():
    outcome = scoring.score_batch(run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=METRICS,
                                  records=[record(0, "X"), record(1, '{"a":1}')])
    assert len(outcome.evaluations) == 4
    assert (outcome.completed, outcome.failed) == (2, 0)
    by = {(e.record_index, e.metric_name): e for e in outcome.evaluations}
    assert by[(0, "em")].is_passed and not by[(0, "json")].is_passed
    assert by[(1, "json")].is_passed and by[(1, "json")].status == "complete"


def test_a_record_a_scorer_cannot_handle_becomes_a_failed_evaluation():
    outcome = scoring.score_batch(run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=METRICS,
                                  records=[record(0, "x", golden=None)])
    em = next(e for e in outcome.evaluations if e.metric_name == "em")
    assert em.status == "failed" and em.score is None and not em.is_passed
    assert "golden_answer" in (em.error_message or "")
    assert (outcome.completed, outcome.failed) == (0, 1)


def test_transient_scoring_errors_fail_the_batch_for_a_retry(monkeypatch):
    from assay_service.domain.scorers import base

    spec = base.get_scorer("json_valid")

    def boom(record, args) -> ScoreResult:
        raise TransientScoringError("judge throttled")

    monkeypatch.setitem(base._REGISTRY, "json_valid", base.ScorerSpec(
        spec.name, spec.evaluator_type, spec.args_model, boom, spec.summary))
    with pytest.raises(TransientScoringError):
        scoring.score_batch(run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=METRICS,
                            records=[record(0, "x")])


@pytest.mark.parametrize(("metrics", "message"), [
    ([Metric(name="a", scorer="nope")], "metrics[0] (a): unknown scorer 'nope'"),
    ([Metric(name="a", scorer="regex", args={"pattern": "("})], "metrics[0] (a): invalid args"),
    ([Metric(name="a", scorer="json_valid"), Metric(name="a", scorer="json_valid")],
     "metrics[1] (a): duplicate metric name"),
    ([Metric(name="a", scorer="exact_match", args={"bogus": 1})], "args.bogus"),
])
def test_check_metrics_names_the_metric_at_fault(metrics, message):
    with pytest.raises(InvalidRequestError) as caught:
        scoring.check_metrics(metrics)
    assert message in caught.value.message


def test_aggregates_and_verdict():
    run_id = uuid.uuid4()
    outcome = scoring.score_batch(
        run_id=run_id, project_id=uuid.uuid4(), metrics=METRICS,
        records=[record(0, "x"), record(1, "y"), record(2, "x", golden=None), record(3, "[]")])
    agg = Aggregator(METRICS)
    agg.add(outcome.evaluations)
    em, js = agg.aggregates()
    # em: r0 pass, r1 fail, r2 failed to score, r3 fail
    assert (em.count, em.passed, em.failed) == (3, 1, 1)
    assert em.mean == pytest.approx(1 / 3) and em.pass_rate == pytest.approx(1 / 4)
    # json: only r3 ("[]") parses
    assert (js.count, js.passed, js.failed) == (4, 1, 0)
    result, pass_rate, is_gte = agg.verdict(threshold=0.3)
    assert result == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert pass_rate == 0.0  # no record passed both metrics
    assert is_gte is False
    assert agg.verdict(threshold=0.2)[2] is True


def test_a_transaction_cancelled_by_contention_is_transient_not_fatal():
    """Concurrent batches update one run item: DynamoDB cancels with TransactionConflict.
    That must surface as TransientStoreError (retried by the workflow), not a ClientError
    (which fails the run); a failed condition must still reach the caller as is."""
    from assay_service.adapters.dynamodb import Table
    from assay_service.errors import TransientStoreError
    from botocore.exceptions import ClientError

    class Client:
        def __init__(self, reasons):
            self.reasons = reasons

        def transact_write_items(self, **_):
            raise ClientError({"Error": {"Code": "TransactionCanceledException"},
                               "CancellationReasons": [{"Code": c} for c in self.reasons]},
                              "TransactWriteItems")

    with pytest.raises(TransientStoreError):
        Table(Client(["None", "TransactionConflict"]), "t").transact([{}])
    with pytest.raises(ClientError):
        Table(Client(["ConditionalCheckFailed", "TransactionConflict"]), "t").transact([{}])
