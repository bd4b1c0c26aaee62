"""Scoring a batch and aggregating it: failures are per record, the verdict follows the spec."""

from __future__ import annotations

import uuid

import pytest
from assay_service.domain import scoring
from assay_service.domain.aggregation import Aggregator
from assay_service.domain.scorers.base import ScoreResult
from assay_service.errors import InvalidRequestError, TransientScoringError
from assay_service.models.domain import Metric, MetricAggregate, Record

METRICS = [
    Metric(name="em", scorer="exact_match", args={"case_sensitive": False}, threshold=1.0),
    Metric(name="json", scorer="json_valid", threshold=0.5),
]


def record(i: int, output: str | None, golden: str | None = "x") -> tuple[int, Record]:
    return i, Record(id=f"r{i}", trace_id=uuid.uuid4(), output=output, golden_answer=golden)


def test_score_batch_scores_every_record_metric_pair():
    outcome = scoring.score_batch(
        run_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        metrics=METRICS,
        records=[record(0, "X"), record(1, '{"a":1}')],
    )
    assert len(outcome.evaluations) == 4
    assert (outcome.completed, outcome.failed) == (2, 0)
    by = {(e.record_index, e.metric_name): e for e in outcome.evaluations}
    assert by[(0, "em")].is_passed and not by[(0, "json")].is_passed
    assert by[(1, "json")].is_passed and by[(1, "json")].status == "complete"


def test_a_record_a_scorer_cannot_handle_becomes_a_failed_evaluation():
    outcome = scoring.score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=METRICS, records=[record(0, "x", golden=None)]
    )
    em = next(e for e in outcome.evaluations if e.metric_name == "em")
    assert em.status == "failed" and em.score is None and not em.is_passed
    assert "golden_answer" in (em.error_message or "")
    assert (outcome.completed, outcome.failed) == (0, 1)


def test_transient_scoring_errors_fail_the_batch_for_a_retry(monkeypatch):
    from assay_service.domain.scorers import base

    spec = base.get_scorer("json_valid")

    def boom(record, args) -> ScoreResult:
        raise TransientScoringError("judge throttled")

    monkeypatch.setitem(
        base._REGISTRY,
        "json_valid",
        base.ScorerSpec(spec.name, spec.evaluator_type, spec.args_model, boom, spec.summary),
    )
    with pytest.raises(TransientScoringError):
        scoring.score_batch(
            run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=METRICS, records=[record(0, "x")]
        )


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ([Metric(name="a", scorer="nope")], "metrics[0] (a): unknown scorer 'nope'"),
        ([Metric(name="a", scorer="regex", args={"pattern": "("})], "metrics[0] (a): invalid args"),
        (
            [Metric(name="a", scorer="json_valid"), Metric(name="a", scorer="json_valid")],
            "metrics[1] (a): duplicate metric name",
        ),
        ([Metric(name="a", scorer="exact_match", args={"bogus": 1})], "args.bogus"),
    ],
)
def test_check_metrics_names_the_metric_at_fault(metrics, message):
    with pytest.raises(InvalidRequestError) as caught:
        scoring.check_metrics(metrics)
    assert message in caught.value.message


def test_an_unknown_scorer_lists_the_catalogue_and_the_closest_name():
    # The user's fix is in the message: a typo gets the nearest name, and every scorer is
    # listed (the catalogue is short), so nobody has to go looking for docs/scorers.md.
    from assay_service.domain.scorers import scorer_names

    with pytest.raises(InvalidRequestError) as caught:
        scoring.check_metrics([Metric(name="a", scorer="exact_mtch")])
    message = caught.value.message
    assert "unknown scorer 'exact_mtch'; did you mean 'exact_match'?" in message
    assert f"(known: {', '.join(scorer_names())})" in message
    assert caught.value.details["known_scorers"] == scorer_names()


def test_aggregates_and_verdict():
    run_id = uuid.uuid4()
    outcome = scoring.score_batch(
        run_id=run_id,
        project_id=uuid.uuid4(),
        metrics=METRICS,
        records=[record(0, "x"), record(1, "y"), record(2, "x", golden=None), record(3, "[]")],
    )
    agg = Aggregator(METRICS)
    agg.add(outcome.evaluations)
    em, js = agg.aggregates()
    # em: r0 pass, r1 below threshold, r2 could not be scored, r3 below threshold
    assert (em.count, em.passed, em.unscored) == (3, 1, 1)
    assert em.mean == pytest.approx(1 / 3) and em.pass_rate == pytest.approx(1 / 4)
    # json: only r3 ("[]") parses; the others are scored 0, below threshold, not unscored
    assert (js.count, js.passed, js.unscored) == (4, 1, 0)
    result, pass_rate, is_gte = agg.verdict(threshold=0.3)
    assert result == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert pass_rate == 0.0  # no record passed both metrics
    assert is_gte is False
    assert agg.verdict(threshold=0.2)[2] is True


def test_the_run_level_and_the_metric_level_are_independent():
    # A run passes on the mean of its metric means, whatever each metric does against its
    # own threshold (docs/concepts.md): here the run passes with one metric below its own.
    metrics = [
        Metric(name="hi", scorer="json_valid", threshold=0.5),
        Metric(name="lo", scorer="exact_match", threshold=0.9),
    ]
    outcome = scoring.score_batch(
        run_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        metrics=metrics,
        records=[record(0, "[]", golden="[]"), record(1, "[1]", golden="[1]"), record(2, "{}")],
    )
    agg = Aggregator(metrics)
    agg.add(outcome.evaluations)
    hi, lo = agg.aggregates()
    assert (hi.mean, hi.is_gte_threshold) == (1.0, True)
    assert lo.mean == pytest.approx(2 / 3) and lo.is_gte_threshold is False
    result, _, is_gte = agg.verdict(threshold=0.7)
    assert result == pytest.approx(5 / 6) and is_gte is True


def test_an_aggregate_stored_before_the_rename_loads_its_failed_count_as_unscored():
    # Runs finalized before ``failed`` became ``unscored`` keep the old key in DynamoDB's
    # ``aggregates`` JSON; reading them must not fail (extra="forbid") nor lose the count.
    stored = {
        "metric": "em",
        "scorer": "exact_match",
        "evaluator_type": "rule",
        "threshold": 0.5,
        "mean": 0.5,
        "pass_rate": 0.25,
        "count": 2,
        "passed": 1,
        "failed": 2,
        "is_gte_threshold": True,
    }
    old = MetricAggregate.model_validate(stored)
    assert old.unscored == 2
    assert "failed" not in old.model_dump() and old.model_dump()["unscored"] == 2
    new = {**{k: v for k, v in stored.items() if k != "failed"}, "unscored": 3}
    assert MetricAggregate.model_validate(new).unscored == 3


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
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException"},
                    "CancellationReasons": [{"Code": c} for c in self.reasons],
                },
                "TransactWriteItems",
            )

    with pytest.raises(TransientStoreError):
        Table(Client(["None", "TransactionConflict"]), "t").transact([{}])
    with pytest.raises(ClientError):
        Table(Client(["ConditionalCheckFailed", "TransactionConflict"]), "t").transact([{}])
