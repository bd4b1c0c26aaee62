"""The AWS cost model (domain/cost.py) and the meter's DynamoDB size rules."""

from __future__ import annotations

import math

import pytest
from assay_local.metering import Meter, attribute_size, item_size, read_units, write_units
from assay_service.domain.cost import COEFFICIENTS, PRICES, Coefficient, estimate, estimated_aws_cost


def test_estimate_is_the_linear_model_at_list_prices():
    coefficients = {name: Coefficient(1, 0, 0) for name in PRICES} | {
        "transitions": Coefficient(3, 2, 0),
        "dynamodb_wru": Coefficient(0, 0, 0.5),
    }
    est = estimate(1_000, 3, 100, coefficients)
    assert est.quantities["transitions"] == 3 + 2 * 10
    assert est.quantities["dynamodb_wru"] == 0.5 * 3_000
    assert est.usd["transitions"] == pytest.approx(23 * 0.025 / 1000)
    assert est.total == pytest.approx(math.fsum(q * PRICES[n] for n, q in est.quantities.items()))


def test_a_hundred_thousand_records_by_three_rule_metrics_meets_the_target():
    # The target: ≤ $0.10 of AWS cost per 100,000 records × 3 rule metrics (default batch 100).
    total = estimate(100_000, 3, 100).total
    assert 0.01 < total <= 0.10
    # Step Functions transitions are the largest part: 2 per batch.
    parts = estimate(100_000, 3, 100).usd
    assert max(parts, key=parts.__getitem__) == "transitions"
    assert estimate(100_000, 3, 500).total < total  # bigger batches, fewer transitions


def test_run_estimate_is_null_for_an_empty_run_and_grows_with_records():
    assert estimated_aws_cost(0, 3, 100) is None
    assert estimated_aws_cost(1_000, 3, 100) < estimated_aws_cost(10_000, 3, 100)
    assert set(COEFFICIENTS) == set(PRICES)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "abc"}, 3),
        ({"S": "é"}, 2),
        ({"N": "123"}, 3),
        ({"N": "-1.5"}, 2),
        ({"BOOL": True}, 1),
        ({"NULL": True}, 1),
        ({"B": "AAEC"}, 3),  # base64 of 3 bytes
        ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + (2 + 1) + (2 + 1)),
        ({"M": {"k": {"S": "ab"}}}, 3 + 1 + 2 + 1),
    ],
)
def test_attribute_sizes_follow_dynamodb_rules(value, size):
    assert attribute_size(value) == size


def test_request_units_round_up_per_kb_and_per_4kb():
    assert item_size({"PK": {"S": "abc"}, "n": {"N": "7"}}) == 2 + 3 + 1 + 2
    assert (write_units(1), write_units(1024), write_units(1025)) == (1, 1, 2)
    assert (read_units(1), read_units(4096), read_units(4097), read_units(4097, True)) == (0.5, 0.5, 1, 2)


def test_meter_bills_transactions_double_and_updates_by_the_stored_item():
    stored = {"PK": {"S": "x" * 1500}}
    meter = Meter(lambda table, key: stored)
    meter.dynamodb(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": {"PK": {"S": "y" * 100}}}},
                {"Update": {"TableName": "t", "Key": {"PK": {"S": "x"}}}},
            ]
        },
        {},
    )
    meter.dynamodb("Query", {}, {"Items": [{"PK": {"S": "z" * 3000}}] * 2})
    meter.dynamodb("GetItem", {"ConsistentRead": True}, {})
    counts = meter.snapshot()
    assert counts["dynamodb.wru"] == 2 * 1 + 2 * 2
    assert counts["dynamodb.rru"] == 1.0 + 1  # 6 KB eventually consistent; a consistent miss
    assert counts["dynamodb.requests"] == 3
