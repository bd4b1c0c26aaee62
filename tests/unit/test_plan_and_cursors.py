"""Batch planning covers every line exactly once; cursors cannot be steered elsewhere."""

from __future__ import annotations

import base64
import json

import pytest
from assay_service.errors import InvalidRequestError
from assay_service.services.pagination import decode_cursor, encode_cursor
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


@pytest.mark.parametrize("cursor", ["!!!", "e30", base64.urlsafe_b64encode(b"[1]").decode(),
                                    base64.urlsafe_b64encode(json.dumps(
                                        {"GSI1PK": "T#a#RUNS", "x": {"S": "y"}}).encode()).decode()])
def test_garbage_cursors_are_a_400(cursor):
    with pytest.raises(InvalidRequestError):
        decode_cursor(cursor, partition=("GSI1PK", "T#a#RUNS"))


def test_error_message_unwraps_lambda_errors():
    cause = json.dumps({"errorType": "ValueError", "errorMessage": "bad batch"})
    assert error_message({"Error": "ValueError", "Cause": cause}) == "ValueError: bad batch"
    assert error_message({"Error": "States.Timeout", "Cause": ""}) == "States.Timeout"
    assert error_message(None) == "the run failed"
