"""jsondoc: the one JSON decoder of request bodies and uploaded JSONL lines, and its limits."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from assay_service.domain import jsondoc
from assay_service.domain.jsondoc import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_VALUE_DEPTH,
    JSONDocumentError,
    decode,
)
from assay_service.errors import InvalidFormatError
from assay_service.models.api import CreateDatasetVersionRequest, RecordIn
from assay_service.models.domain import Record
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json


def nested(levels: int, leaf: Any = 1, key: str = "a") -> Any:
    """``levels`` objects, one inside the other: {"a": {"a": ... leaf}}."""
    value = leaf
    for _ in range(levels):
        value = {key: value}
    return value


def problem(data: str | bytes, where: str = "body") -> JSONDocumentError:
    with pytest.raises(JSONDocumentError) as info:
        decode(data, where)
    assert isinstance(info.value, InvalidFormatError)  # a 400, validation.invalid_format
    return info.value


# ---------------------------------------------------------------- what is accepted
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.text(max_size=10),
        st.integers(-(10**MAX_INT_DIGITS) + 1, 10**MAX_INT_DIGITS - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_valid_json_decodes_as_json_loads_does(value):
    text = json.dumps(value)
    assert decode(text) == json.loads(text)
    assert decode(text.encode()) == json.loads(text)


@pytest.mark.parametrize("levels", [1, 2, MAX_DEPTH - 1, MAX_DEPTH])
def test_documents_up_to_the_depth_limit_are_accepted(levels):
    assert decode(json.dumps(nested(levels))) == nested(levels)


def test_the_deepest_accepted_document_is_readable_by_every_reader_with_room_to_spare():
    # What is stored around a body's content adds a few levels (an export, a workflow
    # message): MAX_DEPTH + 10 must still be readable by pydantic/jiter, json and pydantic's
    # model_validate_json of a record holding it.
    deepest = nested(MAX_DEPTH + 10)
    text = json.dumps(deepest)
    assert from_json(text) == json.loads(text) == deepest
    assert TypeAdapter(Any).validate_json(text) == deepest
    line = json.dumps({"id": "r", "trace_id": "6a0c8e2f-3b1d-4c5e-9f7a-8b9c0d1e2f3a", "metadata": deepest})
    assert Record.model_validate_json(line).metadata == deepest
    assert MAX_DEPTH + 10 < 200  # jiter's own limit: the margin is real


# ---------------------------------------------------------------- depth
def test_one_level_too_deep_is_refused_naming_the_path():
    # body 1, records 2, the record 3, metadata 4 ... the innermost object MAX_DEPTH + 1
    body = {"records": [{"metadata": nested(MAX_DEPTH - 2, key="k")}]}
    decode(json.dumps({"records": [{"metadata": nested(MAX_DEPTH - 3, key="k")}]}))
    error = problem(json.dumps(body))
    assert error.problem == f"nested deeper than {MAX_DEPTH} levels"
    assert error.where == "body.records[0].metadata" + ".k" * (MAX_DEPTH - 3)
    assert error.message == f"{error.where}: nested deeper than {MAX_DEPTH} levels"
    assert error.details == {"errors": [{"loc": error.where, "msg": error.problem}]}


def test_an_empty_container_counts_as_a_level():
    decode(json.dumps(nested(MAX_DEPTH - 1, leaf={})))
    error = problem(json.dumps(nested(MAX_DEPTH, leaf=[])))
    assert error.where == "body" + ".a" * MAX_DEPTH


@pytest.mark.parametrize("levels", [201, 202, 1_500, 100_000])
def test_absurd_nesting_is_a_clean_refusal_never_a_recursion_error(levels):
    error = problem("[" * levels + "]" * levels)
    assert error.problem.startswith(f"nested deeper than {MAX_DEPTH} levels")
    # within jiter's own limit (201 levels) the walk names the place; beyond, the parser
    # stops first, at a position
    assert error.where == ("body" + "[0]" * MAX_DEPTH if levels <= 201 else "body")


def test_arrays_and_odd_keys_are_located_readably():
    value = {"a b": [0, {"x.y": nested(MAX_DEPTH)}], "k" * 60: 1}
    error = problem(json.dumps(value))
    assert error.where.startswith('body["a b"][1]["x.y"].a.a')
    long_key = problem('{"%s": [1e999]}' % ("k" * 60))
    assert long_key.where == "body." + "k" * 40 + "…[0]"


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(literal):
    error = problem('{"metadata": {"x": ' + literal + "}}")
    assert error.problem.startswith(jsondoc.NOT_FINITE)
    assert "line 1, column" in error.problem


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E400", "1" + "0" * 400 + ".5"])
def test_numbers_that_overflow_to_infinity_are_refused_at_their_path(literal):
    error = problem('{"records": [{"metadata": {"x": [' + literal + "]}}]}")
    assert error.where == "body.records[0].metadata.x[0]"
    assert error.problem == jsondoc.OUT_OF_RANGE_FLOAT


def test_integers_are_bounded_to_38_digits():
    biggest = 10**MAX_INT_DIGITS - 1
    assert decode(f"[{biggest}, {-biggest}]") == [biggest, -biggest]
    for number in (10**MAX_INT_DIGITS, -(10**MAX_INT_DIGITS), 10**300):
        assert problem(f'{{"n": {number}}}').where == "body.n"
    huge = problem("[" + "7" * 5_000 + "]")  # beyond Python's 4,300-digit int/str limit
    assert huge.problem.startswith(jsondoc.OUT_OF_RANGE_INT)


def test_python_values_are_checked_too():
    # check(): the same limits on an already-decoded document (e.g. a stored one)
    with pytest.raises(JSONDocumentError) as info:
        jsondoc.check({"a": [1.0, math.nan]}, "stored")
    assert info.value.message == "stored.a[1]: " + jsondoc.NOT_FINITE
    assert jsondoc.check({"a": [1, "x", None, True]}) == {"a": [1, "x", None, True]}


# ---------------------------------------------------------------- text
@pytest.mark.parametrize(
    "raw",
    [
        b'["\\ud800"]',
        b'["\\udc00"]',
        b'["\\ud800\\u0041"]',
        b'{"\\udbff": 1}',
        b'["x\\ud800y"]',
    ],
)
def test_lone_surrogate_escapes_are_refused(raw):
    assert problem(raw).problem.startswith(jsondoc.LONE_SURROGATE)
    assert problem(raw.decode()).problem.startswith(jsondoc.LONE_SURROGATE)


def test_raw_lone_surrogates_and_invalid_utf8_are_refused():
    assert problem('["\ud800"]').problem.startswith(jsondoc.LONE_SURROGATE)  # a str holding one
    for raw in (b'["\xed\xa0\x80"]', b'["\xff"]', b'{"\xc3": 1}'):  # encoded surrogate, bad bytes
        assert problem(raw).problem.startswith("not valid UTF-8")


def test_valid_surrogate_pairs_and_escapes_are_kept():
    assert decode(b'["\\ud83d\\ude00", "tab\\tline\\n"]') == ["\U0001f600", "tab\tline\n"]


@pytest.mark.parametrize(
    "raw", ["{not json", "", "[1,]", "[1] 2", "\ufeff{}", '["a\x01"]', '{"a" 1}', '["\\u12"]']
)
def test_malformed_json_is_refused_as_malformed(raw):
    assert problem(raw).problem.startswith("malformed JSON: ")


@given(st.one_of(st.binary(max_size=60), st.text(max_size=60)))
@settings(max_examples=500, deadline=None)
def test_anything_is_either_decoded_or_refused_never_another_exception(data):
    try:
        value = decode(data)
    except JSONDocumentError as exc:
        assert exc.message.startswith("body")
    else:
        assert json.loads(json.dumps(value)) == value


# ---------------------------------------------------------------- free-form values
def test_value_problem_is_relative_to_the_value():
    assert jsondoc.value_problem(nested(MAX_VALUE_DEPTH)) is None
    where, message = jsondoc.value_problem(nested(MAX_VALUE_DEPTH + 1))
    assert where == ".".join(["a"] * MAX_VALUE_DEPTH) and message == "nested deeper than 32 levels"
    assert jsondoc.value_problem([[1e999]]) == ("[0][0]", jsondoc.OUT_OF_RANGE_FLOAT)
    assert jsondoc.value_problem(math.inf) == ("", jsondoc.OUT_OF_RANGE_FLOAT)


def test_json_size_counts_characters_not_bytes():
    assert jsondoc.json_size({"a": "é" * 10}) == len('{"a":"' + "é" * 10 + '"}')
    assert jsondoc.json_size({"a": [1, 2]}) == len('{"a":[1,2]}')


def record_with(metadata: Any) -> dict[str, Any]:
    return {"id": "r1", "output": "x", "metadata": metadata}


def test_record_metadata_at_the_limits_is_accepted_and_reads_back():
    widest = {"k": "x" * (jsondoc.MAX_METADATA_CHARS - len('{"k":""}'))}
    for metadata in (nested(MAX_VALUE_DEPTH), widest):
        record = RecordIn.model_validate(record_with(metadata))
        stored = Record(
            **record.model_dump(exclude={"trace_id"}), trace_id="6a0c8e2f-3b1d-4c5e-9f7a-8b9c0d1e2f3a"
        ).model_dump_json()
        assert Record.model_validate_json(stored).metadata == metadata
    assert jsondoc.json_size(widest) == jsondoc.MAX_METADATA_CHARS


def test_record_metadata_beyond_the_limits_is_refused_naming_where():
    with pytest.raises(ValidationError) as info:
        CreateDatasetVersionRequest.model_validate(
            {"records": [record_with({}), record_with({"a": nested(MAX_VALUE_DEPTH)})]}
        )
    (error,) = info.value.errors()
    assert error["loc"] == ("records", 1, "metadata")
    assert jsondoc.error_suffix(error) == ".a" * (MAX_VALUE_DEPTH)
    assert error["msg"] == f"nested deeper than {MAX_VALUE_DEPTH} levels"
    with pytest.raises(ValidationError) as info:
        RecordIn.model_validate(record_with({"k": "x" * jsondoc.MAX_METADATA_CHARS}))
    assert "at most 100,000 characters" in info.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, "accepted"),
        (nested(MAX_VALUE_DEPTH), "accepted"),
        ({"t": "line\nnext\ttab"}, "accepted"),
        (nested(MAX_VALUE_DEPTH + 1), "refused"),
        ({"x": math.inf}, "refused"),
        ({"x": math.nan}, "refused"),
        ({"n": 10**40}, "refused"),
        ({"k": "x" * jsondoc.MAX_METADATA_CHARS}, "refused"),
    ],
)
def test_an_upload_line_and_an_inline_record_get_the_same_verdict(metadata, expected):
    from assay_service.services.catalog import parse_record_line

    text = json.dumps(record_with(metadata))  # inf and nan as Infinity and NaN

    def verdict(call):
        try:
            call()
        except (JSONDocumentError, ValidationError):
            return "refused"
        return "accepted"

    inline = verdict(
        lambda: CreateDatasetVersionRequest.model_validate(decode('{"records": [' + text + "]}"))
    )
    assert inline == expected
    assert verdict(lambda: parse_record_line(text.encode())) == expected


def test_each_entry_of_an_object_gets_the_room_of_a_value():
    from assay_service.models.api import ScheduleEvalRunRequest

    base = {"eval_version_id": "6a0c8e2f-3b1d-4c5e-9f7a-8b9c0d1e2f3a"}
    ScheduleEvalRunRequest.model_validate({**base, "metric_args": {"m": nested(MAX_VALUE_DEPTH)}})
    with pytest.raises(ValidationError) as info:
        ScheduleEvalRunRequest.model_validate(
            {**base, "metric_args": {"ok": {}, "odd name": nested(MAX_VALUE_DEPTH + 1)}}
        )
    (error,) = info.value.errors()
    assert error["loc"] == ("metric_args",)
    assert jsondoc.error_suffix(error) == '["odd name"]' + ".a" * MAX_VALUE_DEPTH
    assert error["msg"] == f"nested deeper than {MAX_VALUE_DEPTH} levels"
