"""OpenAI's rule graders (string_check, text_similarity): GIVEN their args THEN they are
checked when the eval version is created (a 400 naming the metric); GIVEN a record WHEN
their templates render THEN a placeholder the record lacks fails that evaluation, naming
the placeholder, and what renders is what OpenAI's templates give."""

from __future__ import annotations

import pytest
from assay_service.domain import openai_templates
from assay_service.domain.scorers import get_scorer, required_fields, validate_args
from assay_service.domain.scorers.openai_graders import MAX_RENDERED_CHARS, MAX_TEMPLATE_CHARS, _render
from assay_service.domain.scoring import check_metrics
from assay_service.errors import InvalidRecordError, InvalidRequestError
from assay_service.models.domain import Metric
from pydantic import ValidationError

OUTPUT = "{{sample.output_text}}"
RECORD = {
    "output": "The capital of France is Paris.",
    "metadata": {
        "item": {"answer": "Paris", "facts": {"capital": "Paris", "rank": 1}, "turns": ["hi", "bye"]},
        "sample": {"model": "gpt-x"},
    },
}


def run(name: str, record: dict, **args):
    spec = get_scorer(name)
    assert spec is not None, name
    return spec(record, validate_args(spec, args))


def check(**args):
    return run("string_check", RECORD, **args)


def similar(metric: str, record: dict = RECORD, **args):
    return run(
        "text_similarity",
        record,
        **({"input": OUTPUT, "reference": "{{item.answer}}", "evaluation_metric": metric} | args),
    )


# ---------------------------------------------------------------- rendering
@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        (OUTPUT, "The capital of France is Paris."),
        ("{{ item.answer }}", "Paris"),  # spaces inside the braces
        ("{{item.facts.capital}} is #{{item.facts.rank}}", "Paris is #1"),  # a number as text
        ("{{item.turns.1}}", "bye"),  # a list index
        ("{{item.facts}}", '{"capital":"Paris","rank":1}'),  # an object as compact JSON
        ("{{sample.model}}", "gpt-x"),
        ("no placeholder", "no placeholder"),
        ("", ""),
    ],
)
def test_templates_render_as_openai_templates_do(template, rendered):
    assert _render(template, RECORD, "input") == rendered == openai_templates.render(template, RECORD)


@pytest.mark.parametrize(
    ("template", "record", "message"),
    [
        (
            "{{item.question}}",
            RECORD,
            r"reference: template placeholder \{\{item.question\}\}: the record has no 'question'",
        ),
        ("{{item.facts.capitol}}", RECORD, r"\{\{item.facts.capitol\}\}: the record has no 'capitol'"),
        ("{{item.turns.2}}", RECORD, r"\{\{item.turns.2\}\}: the record has no '2'"),
        ("{{item.answer}}", {"output": "x"}, r"\{\{item.answer\}\}: the record has no 'answer'"),
        ("{{sample.output_json.a}}", RECORD, r"\{\{sample.output_json.a\}\}: the output is not JSON"),
    ],
)
def test_a_placeholder_the_record_lacks_fails_the_evaluation_naming_it(template, record, message):
    for name, args in (
        ("string_check", {"operation": "eq"}),
        ("text_similarity", {"evaluation_metric": "rouge_l"}),
    ):
        spec = get_scorer(name)
        validated = validate_args(spec, {"input": OUTPUT, "reference": template, **args})
        with pytest.raises(InvalidRecordError, match=message):
            spec(record, validated)


def test_a_record_without_output_fails_naming_the_input_placeholder():
    with pytest.raises(InvalidRecordError, match=r"^input: template placeholder \{\{sample.output_text\}\}"):
        run("string_check", {"metadata": {"item": {}}}, input=OUTPUT, reference="x", operation="eq")


def test_a_rendered_text_longer_than_a_record_field_fails_the_evaluation():
    big = {"output": "x" * 60_000}
    assert len(_render(OUTPUT, big, "input")) == 60_000
    with pytest.raises(
        InvalidRecordError, match=f"input: the rendered template is longer than {MAX_RENDERED_CHARS:,}"
    ):
        run("string_check", big, input=OUTPUT * 2, reference="x", operation="like")


# ---------------------------------------------------------------- args
@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("string_check", {"input": OUTPUT, "reference": "x"}, "operation"),
        ("string_check", {"input": OUTPUT, "reference": "x", "operation": "contains"}, "operation"),
        ("string_check", {"reference": "x", "operation": "eq"}, "input"),
        (
            "string_check",
            {"input": "{{output}}", "reference": "x", "operation": "eq"},
            r"\{\{output\}\}: use",
        ),
        (
            "string_check",
            {"input": OUTPUT, "reference": "{{item.a + 1}}", "operation": "eq"},
            "no expressions",
        ),
        (
            "string_check",
            {"input": "x" * (MAX_TEMPLATE_CHARS + 1), "reference": "x", "operation": "eq"},
            "at most",
        ),
        ("string_check", {"input": OUTPUT, "reference": "x", "operation": "eq", "bogus": 1}, "extra"),
        (
            "string_check",
            {"input": OUTPUT, "reference": "x", "operation": "eq", "field": "input"},
            "'field' does not apply",
        ),
        (
            "text_similarity",
            {"input": OUTPUT, "reference": "x", "evaluation_metric": "rouge", "reference_field": "input"},
            "'reference_field' does not apply",
        ),
        (
            "text_similarity",
            {"input": OUTPUT, "reference": "x", "evaluation_metric": "cosine"},
            "cosine needs an embeddings model; not available as a rule scorer",
        ),
        ("text_similarity", {"input": OUTPUT, "reference": "x", "evaluation_metric": "rougeL"}, "rouge_l"),
        ("text_similarity", {"input": OUTPUT, "reference": "x"}, "evaluation_metric"),
    ],
)
def test_invalid_args_are_refused_at_validation(name, args, message):
    with pytest.raises(ValidationError, match=message):
        validate_args(get_scorer(name), args)


def test_the_eval_version_create_check_names_the_metric():
    metric = Metric(
        name="sim",
        scorer="text_similarity",
        args={"input": OUTPUT, "reference": "{{ground_truth}}", "evaluation_metric": "bleu"},
    )
    with pytest.raises(
        InvalidRequestError,
        match=r"metrics\[0\] \(sim\): invalid args — args.reference: .*\{\{ground_truth\}\}",
    ):
        check_metrics([metric])
    cosine = Metric(
        name="cos",
        scorer="text_similarity",
        args={"input": OUTPUT, "reference": "x", "evaluation_metric": "cosine"},
    )
    with pytest.raises(InvalidRequestError, match=r"\(cos\).*cosine needs an embeddings model"):
        check_metrics([cosine])


@pytest.mark.parametrize("name", ["string_check", "text_similarity"])
def test_no_record_field_is_required_before_rendering(name):
    """What they read is what their templates name: nothing to check at schedule time."""
    spec = get_scorer(name)
    assert spec.requires == ()
    args = {"string_check": {"operation": "eq"}, "text_similarity": {"evaluation_metric": "bleu"}}[name]
    assert (
        required_fields(spec, validate_args(spec, {"input": "{{item.a}}", "reference": "{{item.b}}", **args}))
        == []
    )
    # A record with only an item scores.
    assert (
        spec(
            {"metadata": {"item": {"a": "x", "b": "x"}}},
            validate_args(spec, {"input": "{{item.a}}", "reference": "{{item.b}}", **args}),
        ).score
        == 1.0
    )


# ---------------------------------------------------------------- scoring
def test_string_check_operations_labels_and_reasoning():
    assert check(input=OUTPUT, reference="{{item.answer}}", operation="like").label == "pass"
    result = check(input=OUTPUT, reference="paris", operation="like")
    assert (result.score, result.label) == (0.0, "fail")
    assert result.reasoning == "input 'The capital of France is Paris.' does not contain reference 'paris'"
    assert check(input=OUTPUT, reference="paris", operation="ilike").score == 1.0
    assert check(input="{{item.answer}}", reference="Paris", operation="eq").score == 1.0
    assert check(input="{{item.answer}}", reference="Paris", operation="ne").score == 0.0
    assert check(input="{{item.facts.rank}}", reference="1", operation="eq").score == 1.0
    long = check(input=OUTPUT, reference="{{item.answer}}" + "!" * 80, operation="eq").reasoning
    assert "…" in long and len(long) < 200


@pytest.mark.parametrize(
    "metric",
    [
        "fuzzy_match",
        "bleu",
        "gleu",
        "meteor",
        "rouge_1",
        "rouge_2",
        "rouge_3",
        "rouge_4",
        "rouge_5",
        "rouge_l",
    ],
)
def test_each_metric_scores_identical_text_one_and_unrelated_text_less(metric):
    same = similar(
        metric,
        input="{{item.facts.capital}} is the capital of France today",
        reference="{{item.facts.capital}} is the capital of France today",
    )
    if metric == "meteor":  # one chunk of 7 tokens still pays NLTK's fragmentation penalty
        assert same.score == 1 - 0.5 * (1 / 7) ** 3
    else:
        assert (same.score, same.label) == (1.0, "match")
    other = similar(metric, input="Lyon has a large river", reference="Paris is the capital of France")
    assert 0.0 <= other.score < 1.0 and other.label in {"partial", "no_match"}
    assert other.reasoning


def test_reasoning_says_how_each_score_came_about():
    assert similar("fuzzy_match").reasoning.startswith("fuzzy_match 0.")
    assert "brevity penalty" in similar("bleu").reasoning
    assert "shared 1-4-grams" in similar("gleu").reasoning
    assert "no synonyms" in similar("meteor").reasoning
    assert similar("rouge_3").reasoning.startswith("rouge3 F=")
    assert similar("rouge_l").reasoning.startswith("rougeL F=")


def test_empty_texts_follow_the_references():
    empty = {"output": "", "metadata": {"item": {"answer": ""}}}
    assert similar("fuzzy_match", empty).score == 1.0  # rapidfuzz: two empty strings are equal
    for metric in ("bleu", "gleu", "meteor", "rouge_1", "rouge_l"):
        assert similar(metric, empty).score == 0.0, metric
