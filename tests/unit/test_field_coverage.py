"""Field coverage (domain/coverage.py) and what each scorer needs (``requires``).

GIVEN records WHEN counted THEN each field's count, the metadata keys that look like a
misnamed field (bounded) and the warnings they draw; GIVEN a metric's args THEN the record
fields it cannot be scored without, as docs/scorers.md tables them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from assay_service.domain import coverage
from assay_service.domain.coverage import MAX_NAME_CHARS, MAX_UNKNOWN_FIELDS, Coverage, suggestion
from assay_service.domain.scorers import describe_requires, get_scorer, scorer_names, validate_args
from assay_service.domain.scorers.base import (
    FIELD,
    Needs,
    ScorerArgs,
    ScoreResult,
    required_fields,
    scorer,
)
from assay_service.errors import InvalidRecordError
from assay_service.models.domain import Record

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scorers.md"


def record(**fields) -> Record:
    return Record(id=fields.pop("id", "r"), trace_id=uuid.uuid4(), **fields)


def counted(*records: Record) -> Coverage:
    out = Coverage()
    for r in records:
        out.add(r)
    return out


# ---------------------------------------------------------------- coverage
def test_counts_fields_present_empty_strings_included():
    cov = counted(
        record(output="a", golden_answer=""), record(input="q", output=""), record(prompt="p", context="c")
    )
    assert cov.records == 3
    assert cov.fields == {"prompt": 1, "input": 1, "context": 1, "output": 2, "golden_answer": 1}


def test_metadata_keys_that_look_like_fields_are_unknown_fields_with_counts():
    cov = counted(
        *[record(metadata={"Output": "a", "golden": "b", "topic": "t"}) for _ in range(3)],
        record(output="x", metadata={"expected": "y"}),
    )
    assert cov.unknown_fields() == {"Output": 3, "golden": 3, "expected": 1}


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("Output", "output"),
        ("OUTPUT", "output"),
        ("golden answer", "golden_answer"),
        ("Golden-Answer", "golden_answer"),
        ("golden", "golden_answer"),
        ("expected_output", "golden_answer"),
        ("ground_truth", "golden_answer"),
        ("response", "output"),
        ("outptu", "output"),
        ("contexts", "context"),
        ("ID", "id"),
        ("Input ", "input"),
        ("Prompt", "prompt"),
    ],
)
def test_suggestion_for_a_misnamed_field(name, field):
    assert suggestion(name) == field


@pytest.mark.parametrize(
    "name", ["topic", "category", "source", "difficulty", "", "x" * 300, "notes", "score"]
)
def test_no_suggestion_for_ordinary_metadata(name):
    assert suggestion(name) is None


def test_unknown_fields_are_bounded_in_number_and_length():
    long = "output" + "_" * 40 + "x" * 100  # no suggestion: too far from any field
    names = [f"Output{i}" for i in range(MAX_UNKNOWN_FIELDS + 20)]
    cov = counted(record(metadata={n: 1 for n in names}), record(metadata={long: 1}))
    found = cov.unknown_fields()
    assert len(found) <= MAX_UNKNOWN_FIELDS
    assert all(len(n) <= MAX_NAME_CHARS for n in found)


def test_keys_examined_are_bounded():
    """A key per record (ids as keys) stops being examined at MAX_KEYS_EXAMINED."""
    cov = counted(*[record(metadata={f"k{i}": 1}) for i in range(coverage.MAX_KEYS_EXAMINED + 50)])
    assert len(cov._examined) == coverage.MAX_KEYS_EXAMINED
    assert cov.unknown_fields() == {}


def test_warnings_from_stored_coverage():
    fields = {"prompt": 0, "input": 10, "context": 0, "output": 0, "golden_answer": 0}
    got = coverage.warnings(10, fields, {"Output": 10, "golden": 10})
    assert [(w["code"], w["field"], w["count"], w["suggestion"]) for w in got] == [
        ("unknown_field", "Output", 10, "output"),
        ("unknown_field", "golden", 10, "golden_answer"),
        ("missing_field", "output", 10, None),
    ]
    assert got[0]["message"] == (
        "'Output' is not a record field; it was stored in metadata "
        "(10 of 10 records) — did you mean 'output'?"
    )
    assert got[2]["message"].startswith("no record has 'output' (0 of 10)")


def test_partial_output_and_none_for_old_versions():
    fields = {"prompt": 0, "input": 0, "context": 0, "output": 7, "golden_answer": 10}
    (partial,) = coverage.warnings(10, fields, {})
    assert (partial["code"], partial["count"]) == ("partial_field", 3)
    assert coverage.warnings(10, {**fields, "output": 10}, {}) == []
    assert coverage.warnings(10, None, None) == []  # stored before coverage was recorded


def test_a_metadata_key_spelt_like_the_field_says_so():
    (warning, _) = coverage.warnings(1, dict.fromkeys(coverage.TEXT_FIELDS, 0), {"output": 1})
    assert warning["message"] == ("'output' was stored in metadata (1 of 1 records), not as the record field")


# ---------------------------------------------------------------- requires
@pytest.mark.parametrize("name", scorer_names())
def test_every_scorer_declares_what_it_needs_and_reads_nothing_else(name):
    """Each scorer needs at least its candidate field; given a record with exactly the
    fields it declares (and nothing else) it does not fail for want of a field, and
    without the candidate field it does."""
    spec = get_scorer(name)
    if not spec.requires:  # OpenAI's graders (what their templates name) and `recorded`
        assert name in {
            "string_check",
            "text_similarity",
            "cosine_similarity",
            "score_model",
            "label_model",
            "recorded",
        }
        assert {"input"} <= set(spec.args_model.model_fields) or name == "recorded"
        return
    assert spec.requires[0] == FIELD
    if spec.evaluator_type == "llm":
        return  # they call a judge: their fields are checked through `requires` alone
    args = validate_args(spec, _minimal_args(name))
    needed = required_fields(spec, args)
    full = {f: "1" for f in needed}
    spec(full, args)  # scores (any score): no InvalidRecordError for a missing field
    for field in needed:
        with pytest.raises(InvalidRecordError, match=field):
            spec({f: v for f, v in full.items() if f != field}, args)


def _minimal_args(name: str) -> dict:
    return {"regex": {"pattern": "1"}, "length": {"max": 5}, "json_schema": {"schema": {}}}.get(name, {})


@pytest.mark.parametrize(
    ("name", "args", "fields"),
    [
        ("exact_match", {}, ["output", "golden_answer"]),
        ("exact_match", {"field": "input", "reference_field": "context"}, ["input", "context"]),
        ("contains", {}, ["output", "golden_answer"]),
        ("contains", {"substring": "x"}, ["output"]),
        ("not_contains", {"substrings": ["x"]}, ["output"]),
        ("starts_with", {"prefix": ""}, ["output"]),
        ("starts_with", {}, ["output", "golden_answer"]),
        ("refusal", {}, ["output"]),
        ("faithfulness", {}, ["output", "context"]),
        ("answer_relevance", {"question_field": "input"}, ["output", "input"]),
        ("answer_correctness", {}, ["output", "golden_answer"]),
        ("rubric", {"criteria": "c", "labels": ["a", "b"], "passing_labels": ["a"]}, ["output"]),
        (
            "rubric",
            {
                "criteria": "c",
                "labels": ["a", "b"],
                "passing_labels": ["a"],
                "include_context": True,
                "include_reference": True,
            },
            ["output", "context", "golden_answer"],
        ),
        ("exact_match", {"field": "output", "reference_field": "output"}, ["output"]),
    ],
)
def test_required_fields_follow_the_args(name, args, fields):
    spec = get_scorer(name)
    assert required_fields(spec, validate_args(spec, args)) == fields


def test_docs_table_matches_the_declarations():
    """docs/scorers.md "What each scorer needs" shows every scorer's `requires`."""
    text = DOCS.read_text()
    section = text.split("## What each scorer needs", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (.+?) \|$", section, re.M))
    assert rows == {name: describe_requires(get_scorer(name)) for name in scorer_names()}


def test_a_scorer_must_declare_requires_naming_its_own_args():
    def fn(record, args):
        return ScoreResult(1.0, "ok", "ok")

    with pytest.raises(TypeError):
        scorer("no_requires_test", ScorerArgs)(fn)  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match="does not have"):
        scorer("bad_requires_test", ScorerArgs, requires=(Needs("answer_field"),))(fn)
    assert get_scorer("bad_requires_test") is None


# ---------------------------------------------------------------- the check at schedule time
def _version(fields, record_count=4, unknown=None):
    from datetime import UTC, datetime

    from assay_service.models.domain import DatasetVersion

    return DatasetVersion(
        id=uuid.uuid4(),
        dataset_id=uuid.uuid4(),
        version=2,
        record_count=record_count,
        size_bytes=1,
        created_at=datetime.now(UTC),
        fields=fields,
        unknown_fields=unknown,
    )


def _metric(name, scorer_name, **args):
    from assay_service.models.domain import Metric

    return Metric(name=name, scorer=scorer_name, args=args)


def test_schedule_check_refuses_a_field_no_record_has_naming_metric_field_and_counts():
    from assay_service.errors import InvalidRequestError
    from assay_service.services.runs import check_fields

    fields = {"prompt": 0, "input": 4, "context": 0, "output": 4, "golden_answer": 0}
    with pytest.raises(InvalidRequestError) as caught:
        check_fields(
            [_metric("ans", "exact_match"), _metric("n", "length", max=3)],
            _version(fields, unknown={"golden": 4}),
        )
    assert caught.value.message.startswith(
        "metric 'ans' (exact_match) needs the record field 'golden_answer', but 0 of 4 records "
        "of dataset version 2 have it ('golden' in their metadata looks like it)"
    )
    assert caught.value.details["fields"] == [
        {
            "metric": "ans",
            "scorer": "exact_match",
            "field": "golden_answer",
            "records_with_field": 0,
            "record_count": 4,
            "message": caught.value.details["fields"][0]["message"],
        }
    ]


def test_schedule_check_warns_when_some_records_lack_a_field_and_skips_old_versions():
    from assay_service.services.runs import check_fields

    fields = {"prompt": 0, "input": 4, "context": 0, "output": 4, "golden_answer": 1}
    (warning,) = check_fields([_metric("ans", "exact_match")], _version(fields))
    assert (warning["code"], warning["metric"], warning["field"], warning["count"]) == (
        "partial_field",
        "ans",
        "golden_answer",
        3,
    )
    # Stored before coverage was recorded: not checked (the records are not read to find out).
    assert check_fields([_metric("ans", "exact_match")], _version(None)) == []
