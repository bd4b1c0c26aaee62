"""Rule scorers: GIVEN a record and args, WHEN scored, THEN the score/label/reasoning say why."""

from __future__ import annotations

import pytest
from assay_service.domain.scorers import get_scorer, scorer_names, validate_args
from assay_service.errors import InvalidRecordError
from pydantic import ValidationError


def run(name: str, record: dict, **args):
    spec = get_scorer(name)
    assert spec is not None, name
    return spec(record, validate_args(spec, args))


def test_catalogue_has_the_foundation_scorers():
    assert {"exact_match", "contains", "not_contains", "regex", "starts_with", "json_valid", "length"} <= set(
        scorer_names()
    )


@pytest.mark.parametrize(
    ("output", "golden", "args", "expected"),
    [
        ("Paris", "Paris", {}, 1.0),
        ("paris", "Paris", {}, 0.0),
        ("paris", "Paris", {"case_sensitive": False}, 1.0),
        ("  Paris   is  nice ", "Paris is nice", {"normalize_whitespace": True}, 1.0),
        ("Paris.", "Paris", {}, 0.0),
        ("Paris.", "paris", {"ignore_punctuation": True, "case_sensitive": False}, 1.0),
    ],
)
def test_exact_match_normalizations(output, golden, args, expected):
    result = run("exact_match", {"output": output, "golden_answer": golden}, **args)
    assert result.score == expected
    assert result.label == ("match" if expected else "mismatch")


def test_exact_match_reasoning_shows_both_sides():
    result = run("exact_match", {"output": "Lyon", "golden_answer": "Paris"})
    assert "'Lyon'" in result.reasoning and "'Paris'" in result.reasoning


def test_contains_defaults_to_the_golden_answer():
    record = {"output": "The capital of France is Paris.", "golden_answer": "paris"}
    assert run("contains", record).score == 0.0
    assert run("contains", record, case_sensitive=False).score == 1.0


def test_contains_any_and_all_modes():
    record = {"output": "red and green"}
    assert run("contains", record, substrings=["blue", "green"]).score == 1.0
    assert run("contains", record, substrings=["blue", "green"], mode="all").score == 0.0
    assert run("contains", record, substrings=["red", "green"], mode="all").score == 1.0


def test_not_contains_flags_forbidden_text():
    result = run(
        "not_contains", {"output": "As an AI model I cannot"}, substring="as an ai", case_sensitive=False
    )
    assert result.score == 0.0 and result.label == "present"
    assert run("not_contains", {"output": "Sure: 42"}, substring="as an AI").score == 1.0


def test_contains_rejects_both_substring_forms():
    spec = get_scorer("contains")
    with pytest.raises(ValidationError):
        validate_args(spec, {"substring": "a", "substrings": ["b"]})


def test_regex_search_fullmatch_and_flags():
    record = {"output": "Total: 42 EUR"}
    assert run("regex", record, pattern=r"\d+").score == 1.0
    assert run("regex", record, pattern=r"\d+", mode="fullmatch").score == 0.0
    assert run("regex", record, pattern=r"total", flags=["i"]).score == 1.0
    failed = run("regex", record, pattern=r"^\d+$")
    assert failed.score == 0.0 and "did not search" in failed.reasoning


def test_regex_invalid_pattern_is_rejected_at_validation():
    with pytest.raises(ValidationError, match="invalid regular expression"):
        validate_args(get_scorer("regex"), {"pattern": "(unclosed"})


def test_starts_with():
    assert run("starts_with", {"output": "Yes, indeed"}, prefix="yes", case_sensitive=False).score == 1.0
    assert run("starts_with", {"output": "No"}, prefix="Yes").score == 0.0


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"a": 1}', True),
        ("[1, 2]", True),
        ("42", True),
        ("{'a': 1}", False),
        ('{"a": 1,}', False),
        ("", False),
    ],
)
def test_json_valid(text, ok):
    result = run("json_valid", {"output": text})
    assert result.score == (1.0 if ok else 0.0)
    assert result.label == ("valid" if ok else "invalid")


def test_length_bounds_in_chars_and_words():
    assert run("length", {"output": "one two three"}, max=2, unit="words").label == "too_long"
    assert run("length", {"output": "abc"}, min=5).label == "too_short"
    assert run("length", {"output": "abc"}, min=1, max=3).score == 1.0
    with pytest.raises(ValidationError):
        validate_args(get_scorer("length"), {})
    with pytest.raises(ValidationError):
        validate_args(get_scorer("length"), {"min": 5, "max": 1})


def test_field_and_reference_field_select_record_fields():
    record = {"output": "x", "context": "Paris", "golden_answer": "Paris"}
    assert run("exact_match", record, field="context").score == 1.0
    assert run("exact_match", record, reference_field="context", field="golden_answer").score == 1.0


def test_missing_field_is_the_records_fault():
    with pytest.raises(InvalidRecordError, match="golden_answer"):
        run("exact_match", {"output": "Paris"})


def test_unknown_args_are_rejected():
    with pytest.raises(ValidationError, match="case_sensitiv"):
        validate_args(get_scorer("exact_match"), {"case_sensitiv": False})


def test_exact_match_ignore_punctuation_covers_unicode_punctuation():
    record = {"output": "“Paris” — of course…", "golden_answer": "Paris of course"}
    assert run("exact_match", record, ignore_punctuation=True).score == 1.0
    assert run("exact_match", record, normalize_whitespace=True).score == 0.0


def test_exact_match_casefold_handles_non_ascii_case():
    assert (
        run("exact_match", {"output": "STRASSE", "golden_answer": "straße"}, case_sensitive=False).score
        == 1.0
    )


def test_contains_rejects_empty_needles():
    for args in ({"substring": ""}, {"substrings": ["a", ""]}, {"substrings": []}):
        with pytest.raises(ValidationError):
            validate_args(get_scorer("contains"), args)
    with pytest.raises(InvalidRecordError, match="empty"):
        run("contains", {"output": "anything", "golden_answer": ""})


def test_contains_all_mode_names_what_is_missing():
    result = run("contains", {"output": "red and green"}, substrings=["red", "blue"], mode="all")
    assert result.score == 0.0 and "'blue'" in result.reasoning


def test_not_contains_all_mode_passes_when_some_are_absent():
    result = run("not_contains", {"output": "red and green"}, substrings=["red", "blue"], mode="all")
    assert result.score == 1.0 and "'blue'" in result.reasoning
    both = run("not_contains", {"output": "red and blue"}, substrings=["red", "blue"], mode="all")
    assert both.score == 0.0 and both.label == "present"
