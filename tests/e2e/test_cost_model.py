"""The cost model's counted coefficients are what the code really does.

Runs the cost command's measurement (three real runs on a metered local stack) and checks
that ``assay_service.domain.cost.COEFFICIENTS`` agree with the counts: a new state, an
extra DynamoDB write or S3 request per batch, a bigger batch item… fails here until
`make cost` is re-run and the coefficients updated. Lambda GB-s depend on the machine:
the command warns on their drift instead.
"""

from __future__ import annotations

import pytest
from assay_local.cost import drift, fit, run_measurements
from assay_service.domain.cost import COEFFICIENTS, COUNTED, EXACT, TOLERANCE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def measured():
    measurements = run_measurements(1_000, 3, 100, small=200)
    return measurements, fit(measurements)


def test_counted_coefficients_match_the_calls_the_code_makes(measured):
    _, coefficients = measured
    assert [p for p in drift(coefficients, COEFFICIENTS) if p.split(":")[0] in COUNTED] == []
    # Structure, exactly: 3 parent states + (1 child execution + 1 Task) per batch; one
    # Lambda request per batch plus schedule, prepare and finalize.
    assert coefficients["transitions"] == COEFFICIENTS["transitions"]
    assert coefficients["lambda_requests"] == COEFFICIENTS["lambda_requests"]


def test_a_batch_is_recorded_in_one_dynamodb_write(measured):
    """The WRU tolerance allows for compressed sizes, not for an extra write: the number of
    write requests is exact — a constant per run plus one transaction per batch."""
    measurements, _ = measured
    per_run = {m.dynamodb_write_requests - m.batches for m in measurements}
    assert len(per_run) == 1, [(m.batches, m.dynamodb_write_requests) for m in measurements]
    assert 0 < per_run.pop() <= 6


def test_the_shipped_model_predicts_each_measured_run(measured):
    measurements, _ = measured  # run_measurements raised if any DynamoDB request went unmetered
    for m in measurements:
        for name in COUNTED:
            predicted = COEFFICIENTS[name].amount(m.batches, m.records * m.metrics)
            assert predicted == pytest.approx(m.quantities[name], rel=TOLERANCE.get(name, EXACT), abs=0.5), (
                name,
                m,
            )
        assert m.quantities["dynamodb_wru"] > 0 and m.quantities["lambda_gb_seconds"] > 0
