"""Batch planning covers every line exactly once; cursors cannot be steered elsewhere."""

from __future__ import annotations

import base64
import json

import pytest
from assay_service.domain.cursors import decode_cursor, encode_cursor
from assay_service.errors import InvalidRequestError
from assay_service.services.workflow import error_message, plan_batches
from hypothesis import given
from hypothesis import strategies as st


@given(st.lists(st.integers(1, 500), max_size=300), st.integers(1, 50))
def test_plan_batches_covers_every_record_once(lengths, size):
    batches = plan_batches(lengths, size)
    assert sum(b.count for b in batches) == len(lengths)
    offset = record = 0
    for i, b in enumerate(batches):
        assert b.index == i and b.first_record == record and b.byte_start == offset
        assert 1 <= b.count <= size
        offset = b.byte_end + 1
        record += b.count
    assert offset == sum(lengths)


def test_cursor_round_trip_and_partition_binding():
    key = {"GSI1PK": "T#a#RUNS", "GSI1SK": "2026#x", "PK": "p", "SK": "s"}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, partition=("GSI1PK", "T#a#RUNS")) == key
    with pytest.raises(InvalidRequestError):
        decode_cursor(cursor, partition=("GSI1PK", "T#b#RUNS"))


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "e30",
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(json.dumps({"GSI1PK": "T#a#RUNS", "x": {"S": "y"}}).encode()).decode(),
    ],
)
def test_garbage_cursors_are_a_400(cursor):
    with pytest.raises(InvalidRequestError):
        decode_cursor(cursor, partition=("GSI1PK", "T#a#RUNS"))


def test_error_message_unwraps_lambda_errors():
    cause = json.dumps({"errorType": "ValueError", "errorMessage": "bad batch"})
    assert error_message({"Error": "ValueError", "Cause": cause}) == "ValueError: bad batch"
    assert error_message({"Error": "States.Timeout", "Cause": ""}) == "States.Timeout"
    assert error_message(None) == "the run failed"


def test_error_message_names_a_batch_that_could_not_be_scored():
    """GIVEN the Map failed because a batch failed after its retries WHEN the run is marked
    failed THEN its message says so (not only Step Functions' error name)."""
    exceeded = error_message(
        {
            "Error": "States.ExceedToleratedFailureThreshold",
            "Cause": "The specified tolerated failure threshold was exceeded",
        },
        "running",
    )
    assert exceeded.startswith("a batch of records could not be scored after its retries")
    assert "a batch timed out (ScoreBatchFunction's 300 s)" in exceeded
    assert exceeded.endswith(
        "(States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was exceeded)"
    )
    cause = json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: 1 Error: Task timed out after 300.00 seconds",
        }
    )
    timed_out = error_message({"Error": "Sandbox.Timedout", "Cause": cause}, "running")
    assert timed_out == (
        "a batch of records could not be scored after its retries: a batch timed out "
        "(ScoreBatchFunction's 300 s) (Sandbox.Timedout: RequestId: 1 Error: Task timed out "
        "after 300.00 seconds)"
    )
    # A timeout while the run is still pending is prepare's; finalize's is 900 s.
    assert error_message({"Error": "Sandbox.Timedout", "Cause": cause}, "pending").startswith(
        "Sandbox.Timedout"
    )
    finalize = cause.replace("300.00", "900.00")
    assert error_message({"Error": "Sandbox.Timedout", "Cause": finalize}, "running").startswith(
        "Sandbox.Timedout"
    )


def test_the_batch_timeout_named_in_messages_is_the_templates():
    from pathlib import Path

    from assay_service.services.workflow import SCORE_BATCH_TIMEOUT_S

    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    function = template.split("\n  ScoreBatchFunction:\n")[1].split("\n  Finalize")[0]
    timeout = next(
        line.split(":")[1] for line in function.splitlines() if line.strip().startswith("Timeout:")
    )
    assert int(timeout) == SCORE_BATCH_TIMEOUT_S
