"""The graded and structured scorers: GIVEN a record and args, WHEN scored, THEN the score,
label and reasoning say why — including the empty-text and missing-field edge cases."""

from __future__ import annotations

import pytest
from assay_service.domain.scorers import get_scorer, scorer_names, validate_args
from assay_service.domain.scorers.rules import parse_numbers
from assay_service.errors import InvalidRecordError
from pydantic import ValidationError

GRADED = ["levenshtein", "rouge", "bleu", "chrf", "token_f1"]


def run(name: str, record: dict, **args):
    spec = get_scorer(name)
    assert spec is not None, name
    return spec(record, validate_args(spec, args))


def test_catalogue_has_the_issue_5_scorers():
    assert {"json_schema", "levenshtein", "rouge", "bleu", "chrf", "token_f1", "numeric", "refusal"} <= set(
        scorer_names()
    )


@pytest.mark.parametrize("name", [*GRADED, "exact_match", "numeric", "json_schema", "refusal"])
def test_every_scorer_rejects_unknown_args(name):
    with pytest.raises(ValidationError, match="extra"):
        validate_args(get_scorer(name), {"schema": {}, "bogus": 1} if name == "json_schema" else {"bogus": 1})


@pytest.mark.parametrize("name", GRADED)
def test_graded_scorer_identical_texts_score_one(name):
    text = "The quick brown fox jumps over the lazy dog."
    result = run(name, {"output": text, "golden_answer": text})
    assert result.score == 1.0 and result.label == "match"
    assert result.reasoning


@pytest.mark.parametrize("name", GRADED)
def test_graded_scorer_partial_overlap_is_between_zero_and_one(name):
    result = run(
        name,
        {
            "output": "The quick brown fox jumped over a dog.",
            "golden_answer": "The quick brown fox jumps over the lazy dog.",
        },
    )
    assert 0.0 < result.score < 1.0 and result.label == "partial"


@pytest.mark.parametrize(
    ("name", "args", "both_empty", "one_empty"),
    [
        # rouge-score returns 0 when either side has no tokens — both empty included.
        ("rouge", {}, 0.0, 0.0),
        ("rouge", {"variant": "rougeLsum"}, 0.0, 0.0),
        # sacrebleu: no matching n-gram → 0 (both empty too); chrF likewise.
        ("bleu", {}, 0.0, 0.0),
        ("chrf", {}, 0.0, 0.0),
        # SQuAD v1.1 f1_score: no common token → 0, both empty included (v2.0 would say 1).
        ("token_f1", {}, 0.0, 0.0),
        # rapidfuzz: two empty strings are identical (similarity 1); one empty → 0.
        ("levenshtein", {}, 1.0, 0.0),
    ],
)
def test_graded_scorer_empty_texts_follow_the_reference_library(name, args, both_empty, one_empty):
    assert run(name, {"output": "", "golden_answer": ""}, **args).score == both_empty
    assert run(name, {"output": "", "golden_answer": "some words here"}, **args).score == one_empty
    assert run(name, {"output": "some words here", "golden_answer": ""}, **args).score == one_empty


@pytest.mark.parametrize("name", [*GRADED, "numeric"])
def test_missing_reference_is_the_records_fault(name):
    with pytest.raises(InvalidRecordError, match="golden_answer"):
        run(name, {"output": "42"})


@pytest.mark.parametrize("name", [*GRADED, "numeric", "json_schema", "refusal"])
def test_missing_field_is_the_records_fault(name):
    args = {"schema": {}} if name == "json_schema" else {}
    with pytest.raises(InvalidRecordError, match="output"):
        run(name, {"golden_answer": "42"}, **args)


def test_rouge_variants_stemmer_and_reasoning():
    record = {"output": "the cats were running", "golden_answer": "a cat runs"}
    plain = run("rouge", record, variant="rouge1")
    stemmed = run("rouge", record, variant="rouge1", stemmer=True)
    assert plain.score < stemmed.score
    assert "rouge1 F=" in stemmed.reasoning and "stemmed" in stemmed.reasoning
    with pytest.raises(ValidationError):
        validate_args(get_scorer("rouge"), {"variant": "rouge3"})


def test_rouge_lsum_uses_newline_separated_sentences():
    record = {"output": "x y z\na b c", "golden_answer": "a b c\nx y z"}  # sentences swapped
    assert run("rouge", record, variant="rougeLsum").score == 1.0
    assert run("rouge", record).score == 0.5


def test_levenshtein_reasoning_gives_the_edit_distance():
    result = run("levenshtein", {"output": "kitten", "golden_answer": "sitting"})
    assert result.score == pytest.approx(1 - 3 / 7)
    assert "edit distance 3" in result.reasoning


def test_bleu_and_token_f1_reasoning_explain_the_score():
    record = {"output": "Paris is the capital.", "golden_answer": "The capital is Paris."}
    assert "n-gram precisions" in run("bleu", record).reasoning
    assert "brevity penalty" in run("bleu", record).reasoning
    f1 = run("token_f1", record)
    assert f1.score == 1.0 and "token F1 1.000" in f1.reasoning  # order-free, articles dropped
    assert run("token_f1", {"output": "Lyon", "golden_answer": "Paris"}).reasoning.startswith("no ")


# ------------------------------------------------------------------ numeric
@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("The total is $1,249.50.", [1249.5]),
        ("-3e2 and +4", [-300.0, 4.0]),
        ("from 3-5 items", [3.0, 5.0]),
        ("\u22127.25 degrees", [-7.25]),
        ("version v1.5 has x2", []),
        ("1,2,3", [1.0, 2.0, 3.0]),
        (".5 of it", [0.5]),
        ("no digits", []),
    ],
)
def test_numeric_parses_numbers_as_written(text, numbers):
    assert parse_numbers(text) == numbers


def test_numeric_compares_the_last_numbers_within_tolerance():
    record = {"output": "3 + 4 = 7, so the total is $1,249.50.", "golden_answer": "1249.5"}
    result = run("numeric", record)
    assert (result.score, result.label) == (1.0, "equal")
    assert "1249.5" in result.reasoning
    off = run("numeric", {"output": "about 1250", "golden_answer": "1249.5"})
    assert (off.score, off.label) == (0.0, "not_equal")
    assert "1250" in off.reasoning and "1249.5" in off.reasoning and "by 0.5" in off.reasoning
    assert run("numeric", {"output": "about 1250", "golden_answer": "1249.5"}, abs_tol=0.5).score == 1.0
    assert run("numeric", {"output": "about 1250", "golden_answer": "1249.5"}, rel_tol=0.001).score == 1.0
    assert run("numeric", {"output": "7 apples, 9 pears", "golden_answer": "7"}, pick="first").score == 1.0


def test_numeric_no_number_in_output_fails_the_item_not_the_record():
    result = run("numeric", {"output": "I do not know", "golden_answer": "12"})
    assert (result.score, result.label) == (0.0, "no_number")
    with pytest.raises(InvalidRecordError, match="no number"):
        run("numeric", {"output": "12", "golden_answer": "twelve"})
    with pytest.raises(ValidationError):
        validate_args(get_scorer("numeric"), {"abs_tol": -1})


def test_numeric_accepts_numeric_field_values():
    assert run("numeric", {"output": 42, "golden_answer": 42.0}).score == 1.0


# ------------------------------------------------------------------ refusal
@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I’m sorry, but I can’t assist with this request.",
        "I cannot provide instructions for making weapons.",
        "As an AI language model, I cannot browse the internet.",
        "I must respectfully decline.",
        "That request goes against my guidelines.",
        "I won't write that.",
    ],
)
def test_refusal_detects_refusals(text):
    result = run("refusal", {"output": text})
    assert (result.score, result.label) == (0.0, "refused")
    assert result.metadata == {"ai_refused": True}
    assert "refusal cue" in result.reasoning


@pytest.mark.parametrize(
    "text",
    [
        "Sure! The capital of France is Paris.",
        "Here is a recipe: mix flour and water.",
        "I can help with that: the answer is 42.",
        "",
    ],
)
def test_refusal_passes_answers(text):
    result = run("refusal", {"output": text})
    assert (result.score, result.label) == (1.0, "answered")
    assert result.metadata == {"ai_refused": False}


def test_refusal_expect_refusal_flips_the_score_and_phrases_extend_the_cues():
    refused = {"output": "I cannot help with that."}
    assert run("refusal", refused, expect_refusal=True).score == 1.0
    custom = run("refusal", {"output": "Please consult a doctor instead."}, phrases=["consult a doctor"])
    assert custom.label == "refused" and custom.metadata["ai_refused"] is True


# ------------------------------------------------------------------ json_schema
SCHEMA = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {"type": "object", "required": ["price"], "properties": {"price": {"type": "number"}}},
        }
    },
}


def test_json_schema_valid_invalid_and_not_json():
    ok = run("json_schema", {"output": '{"items": [{"price": 1.5}]}'}, schema=SCHEMA)
    assert (ok.score, ok.label) == (1.0, "valid")
    bad = run("json_schema", {"output": '{"items": [{"price": 1}, {"price": "x"}]}'}, schema=SCHEMA)
    assert (bad.score, bad.label) == (0.0, "invalid")
    assert "$.items[1].price" in bad.reasoning and "'number'" in bad.reasoning
    missing = run("json_schema", {"output": "{}"}, schema=SCHEMA)
    assert "'items' is a required property" in missing.reasoning
    not_json = run("json_schema", {"output": "items: 1"}, schema=SCHEMA)
    assert (not_json.score, not_json.label) == (0.0, "not_json")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "strin"}, "schema.type"),
        ({"properties": {"a": {"minimum": "3"}}}, "schema.properties.a.minimum"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"$ref": "https://example.com/s.json"}, "only local"),
        ({"unevaluatedProperties": False}, "not supported"),
        ({"items": [{"type": "string"}]}, "prefixItems"),
    ],
)
def test_json_schema_is_validated_when_the_args_are(schema, message):
    with pytest.raises(ValidationError, match="invalid JSON Schema") as info:
        validate_args(get_scorer("json_schema"), {"schema": schema})
    assert message in str(info.value)


def test_json_schema_requires_a_schema():
    with pytest.raises(ValidationError, match="schema"):
        validate_args(get_scorer("json_schema"), {})
