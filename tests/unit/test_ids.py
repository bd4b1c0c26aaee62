"""Derived evaluation ids: deterministic, decodable, and never confused with other UUIDs."""

from __future__ import annotations

import uuid

from assay_service.domain.ids import evaluation_id, parse_evaluation_id, run_key
from hypothesis import given
from hypothesis import strategies as st


@given(st.uuids(version=4), st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_evaluation_id_round_trips(run_id, record_index, metric_index):
    eid = evaluation_id(run_id, record_index, metric_index)
    assert eid.version == 8
    ref = parse_evaluation_id(eid)
    assert ref is not None
    assert (ref.run_key, ref.record_index, ref.metric_index) == (run_key(run_id), record_index, metric_index)


def test_evaluation_id_is_deterministic_and_distinct():
    run_id = uuid.uuid4()
    assert evaluation_id(run_id, 3, 1) == evaluation_id(run_id, 3, 1)
    ids = {evaluation_id(run_id, r, m) for r in range(50) for m in range(4)}
    assert len(ids) == 200


@given(st.uuids())
def test_random_uuids_are_not_evaluation_ids_unless_checksummed(value):
    ref = parse_evaluation_id(value)
    if value.version != 8:
        assert ref is None


def test_tampered_evaluation_id_is_rejected():
    eid = evaluation_id(uuid.uuid4(), 7, 2)
    raw = bytearray(eid.bytes)
    raw[12] ^= 0x01  # another record index, stale check byte
    assert parse_evaluation_id(uuid.UUID(bytes=bytes(raw))) is None
