"""The adapter's own DynamoDB attribute-value codec against boto3's TypeSerializer and
TypeDeserializer (the adapter no longer imports them: boto3 costs ~380 ms of cold start)."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from assay_service.adapters.dynamodb import _attribute, _value, deserialize, serialize
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

BOTO_OUT = TypeSerializer()
BOTO_IN = TypeDeserializer()

numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=Decimal("-1e20"), max_value=Decimal("1e20")
    ),
    # any precision and scale: some beyond DynamoDB's 38 digits or its exponent range
    st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-(10**45), 10**45), st.integers(-170, 170)),
)
scalars = st.one_of(st.none(), st.booleans(), st.text(max_size=20), numbers, st.binary(max_size=20))
sets = st.one_of(
    st.frozensets(st.text(max_size=8), min_size=1, max_size=5),
    st.frozensets(numbers, min_size=1, max_size=5),
    st.frozensets(st.binary(max_size=8), min_size=1, max_size=5),
).map(set)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def plain(value):
    """boto3's Python side in the adapter's terms: int/float for Decimal, bytes for Binary."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return {plain(v) for v in value}
    return value


def outcome(fn, value):
    try:
        return "ok", fn(value)
    except (TypeError, decimal.DecimalException) as exc:
        return "error", type(exc)


@settings(max_examples=400, deadline=None)
@given(values)
def test_serializes_exactly_as_boto3_and_rejects_what_it_rejects(value) -> None:
    assert outcome(_attribute, value) == outcome(BOTO_OUT.serialize, value)


@settings(max_examples=400, deadline=None)
@given(values)
def test_deserializes_as_boto3_and_round_trips(value) -> None:
    try:
        wire = BOTO_OUT.serialize(value)
    except (TypeError, decimal.DecimalException):
        return  # not storable: covered by the test above
    assert _value(wire) == plain(BOTO_IN.deserialize(wire))
    assert _value(_attribute(value)) == plain(value)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_stored_as_their_repr(x: float) -> None:
    # boto3 refuses floats; the adapter stores the shortest repr, exactly (and refuses
    # what DynamoDB cannot hold, e.g. 5e-324, as boto3 refuses that Decimal).
    assert outcome(_attribute, x) == outcome(BOTO_OUT.serialize, Decimal(repr(x)))
    if outcome(_attribute, x)[0] == "ok":
        # Integral values come back as int (e.g. 1e16 → 10**16): equal as floats.
        assert float(_value(_attribute(x))) == x


def test_item_helpers_skip_top_level_none_and_keep_nested() -> None:
    item = {"PK": "T#1", "gone": None, "blob": b"\x00\xff", "doc": {"a": None, "n": [1, 2.5]}}
    wire = serialize(item)
    assert "gone" not in wire
    assert wire["blob"] == {"B": b"\x00\xff"}
    assert wire["doc"] == {"M": {"a": {"NULL": True}, "n": {"L": [{"N": "1"}, {"N": "2.5"}]}}}
    assert deserialize(wire) == {"PK": "T#1", "blob": b"\x00\xff", "doc": {"a": None, "n": [1, 2.5]}}


@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        set(),
        {1, "a"},
        object(),
        {"nested": object()},
    ],
)
def test_unstorable_values_raise_type_error(bad) -> None:
    with pytest.raises(TypeError):
        _attribute(bad)


def test_unknown_attribute_type_is_refused() -> None:
    with pytest.raises(TypeError):
        _value({"X": "1"})
