"""A run's batch size keeps each batch's transaction bounded (services.runs.batch_size_for)."""

from __future__ import annotations

import pytest
from assay_service.errors import InvalidRequestError
from assay_service.models.domain import Metric
from assay_service.services.runs import (
    JUDGE_BATCH_SIZE,
    MAX_EVALUATIONS_PER_BATCH,
    MAX_JUDGED_PER_BATCH,
    batch_size_for,
)

RULE = Metric(name="exact", scorer="exact_match")
JUDGE = Metric(name="ans_corr", scorer="answer_correctness")


def test_the_default_applies_when_it_fits():
    assert batch_size_for([RULE] * 3, None, 100) == 100


def test_the_default_shrinks_to_fit_many_metrics():
    metrics = [RULE] * 50
    assert batch_size_for(metrics, None, 1000) == MAX_EVALUATIONS_PER_BATCH // 50 == 400


def test_judge_evals_default_to_small_batches():
    assert batch_size_for([RULE, JUDGE], None, 100) == JUDGE_BATCH_SIZE


def test_a_requested_size_within_the_bounds_is_kept():
    assert batch_size_for([RULE, JUDGE], MAX_JUDGED_PER_BATCH, 100) == MAX_JUDGED_PER_BATCH
    assert batch_size_for([RULE] * 20, 1000, 100) == 1000


@pytest.mark.parametrize(
    ("metrics", "requested", "bound"),
    [
        ([RULE] * 50, 401, 400),
        ([JUDGE] * 2, MAX_JUDGED_PER_BATCH // 2 + 1, MAX_JUDGED_PER_BATCH // 2),
    ],
)
def test_a_requested_size_past_a_bound_is_a_400_naming_the_field(metrics, requested, bound):
    with pytest.raises(InvalidRequestError, match="batch_size: at most") as caught:
        batch_size_for(metrics, requested, 100)
    assert caught.value.details == {"field": "batch_size", "max": bound}
