"""GIVEN 1,200 real sentence pairs (tests/data/parity) and generated texts, WHEN OpenAI's
text_similarity grader runs each metric through its templates, THEN it equals the metric's
reference within 1e-9; and string_check does what OpenAI's guide says of each operation.

References (docs/scorers.md, "OpenAI graders"): rapidfuzz ``fuzz.ratio`` (and an LCS
oracle independent of rapidfuzz), sacrebleu ``sentence_bleu``, NLTK ``sentence_gleu`` and
``meteor_score`` (without WordNet: its ``wordnet`` here has no synsets) on sacrebleu's own
13a tokens, rouge-score ``RougeScorer`` F-measure. Runs on the C extension and on the
pure-Python twins (conftest.py); the references are computed once."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from assay_service.domain.scorers import get_scorer, validate_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk.translate.gleu_score import sentence_gleu
from nltk.translate.meteor_score import meteor_score
from rapidfuzz import fuzz
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from tests.parity import references as ref

TOL = 1e-9
PAIRS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "parity" / "pairs.jsonl")
    .read_text("utf-8")
    .splitlines()
]
ROUGE = {f"rouge_{n}": f"rouge{n}" for n in range(1, 6)} | {"rouge_l": "rougeL"}
METRICS = ["fuzzy_match", "bleu", "gleu", "meteor", *ROUGE]
PARITY = settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class _NoWordNet:
    """A WordNet with no synsets: NLTK's synonym stage then pairs nothing (as ours)."""

    def synsets(self, word):
        return []


_13A = Tokenizer13a()
_ROUGE = rouge_scorer.RougeScorer(list(ROUGE.values()), use_stemmer=False)


def _tokens(text: str) -> list[str]:
    return _13A(text.rstrip()).split()  # as sacrebleu tokenizes a sentence


def _lcs_ratio(a: str, b: str) -> float:
    """rapidfuzz's ratio from its definition, 1 - Indel distance / (len a + len b), the
    Indel distance being len a + len b - 2 LCS (a textbook DP over characters)."""
    if not a and not b:
        return 1.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return 1.0 - (len(a) + len(b) - 2 * previous[-1]) / (len(a) + len(b))


def reference_values(candidate: str, reference: str) -> dict[str, float]:
    hyp, refs = _tokens(candidate), [_tokens(reference)]
    rouge = _ROUGE.score(reference, candidate)
    return {
        "fuzzy_match": fuzz.ratio(candidate, reference) / 100,
        "bleu": ref.bleu(candidate, reference),
        "gleu": sentence_gleu(refs, hyp),
        "meteor": meteor_score(refs, hyp, wordnet=_NoWordNet()),
        **{name: rouge[variant].fmeasure for name, variant in ROUGE.items()},
    }


@cache
def corpus_references(pair_id: int) -> dict[str, float]:
    pair = PAIRS[pair_id]
    assert pair["id"] == pair_id
    return reference_values(pair["candidate"], pair["reference"])


@cache
def _args(scorer: str, **args):
    return get_scorer(scorer), validate_args(get_scorer(scorer), args)


def similarity(metric: str, candidate: str, reference: str) -> float:
    """The grader as an OpenAI eval uses it: the output against an item's key."""
    spec, args = _args(
        "text_similarity",
        input="{{sample.output_text}}",
        reference="{{item.answer}}",
        evaluation_metric=metric,
    )
    result = spec({"output": candidate, "metadata": {"item": {"answer": reference}}}, args)
    assert 0.0 <= result.score <= 1.0 and result.reasoning
    return result.score


def test_corpus_is_large_and_varied():
    assert len(PAIRS) >= 1000
    assert {"edited", "related", "multiline", "identical", "unrelated", "empty"} <= {p["kind"] for p in PAIRS}


@pytest.mark.parametrize("metric", METRICS)
def test_metric_equals_its_reference_on_the_corpus(metric):
    worst = 0.0
    bad = []
    for pair in PAIRS:
        want = corpus_references(pair["id"])[metric]
        got = similarity(metric, pair["candidate"], pair["reference"])
        worst = max(worst, abs(got - want))
        if abs(got - want) > TOL:
            bad.append((pair["id"], got, want))
    assert not bad, (metric, len(bad), bad[:5])
    assert worst <= TOL


@pytest.fixture
def once(implementation):
    """For what does not run on textmetrics (string_check, rapidfuzz): the native pass."""
    if implementation == "python":
        pytest.skip("does not use the C extension: checked in the native pass")


@pytest.mark.usefixtures("once")
def test_fuzzy_match_equals_the_indel_definition_on_short_pairs():
    """An oracle that is not rapidfuzz (the scorer calls rapidfuzz itself)."""
    short = [p for p in PAIRS if len(p["candidate"]) * len(p["reference"]) <= 2_000]
    assert len(short) >= 200
    for pair in short:
        got = similarity("fuzzy_match", pair["candidate"], pair["reference"])
        assert abs(got - _lcs_ratio(pair["candidate"], pair["reference"])) <= TOL, pair["id"]


def test_meteor_uses_stems_and_scores_word_order():
    # "cats"/"cat" and "sitting"/"sit" align by stem; the order changes the chunks.
    assert similarity("meteor", "the cats are sitting", "the cat is sitting") > similarity(
        "meteor", "the dogs are sleeping", "the cat is sitting"
    )
    assert similarity("meteor", "b a", "a b") < similarity("meteor", "a b", "a b")


# ---------------------------------------------------------------- generated texts
_WORDS = st.sampled_from(
    [
        *["the", "a", "an", "cat", "cats", "Cat", "sat", "sitting", "sits", "on", "mat", "mats"],
        *["running", "runs", "ran", "happily"],
        *["generalization", "generalizations", "relational", "relate", "connected", "connection"],
        *["3.5", "1,000", "x-ray", "it's", "U.S.", "&amp;", "naïve", "Straße", "İstanbul", "猫"],
        *[".", ",", "!", "?", "-", "(", ")", '"', "'", "—", "😀"],
    ]
)
_SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\t", "-\n", ""])


@st.composite
def sentences(draw) -> str:
    out = ""
    for word in draw(st.lists(_WORDS, max_size=25)):
        out += word + draw(_SEPARATORS)
    return out


TEXT = st.one_of(sentences(), sentences(), st.text(max_size=60), st.just(""))


@PARITY
@given(candidate=TEXT, reference=TEXT)
def test_every_metric_equals_its_reference_on_generated_texts(candidate, reference):
    want = reference_values(candidate, reference)
    for metric in METRICS:
        assert abs(similarity(metric, candidate, reference) - want[metric]) <= TOL, metric


# ---------------------------------------------------------------- string_check
def check(operation: str, text: str, reference: str) -> float:
    spec, args = _args(
        "string_check", input="{{sample.output_text}}", reference="{{item.ref}}", operation=operation
    )
    result = spec({"output": text, "metadata": {"item": {"ref": reference}}}, args)
    assert result.label == ("pass" if result.score == 1.0 else "fail") and result.reasoning
    return result.score


_CHECK = settings(PARITY, max_examples=80)
_SHORT = st.one_of(st.text(max_size=12), st.text(alphabet="aAbB%_ İıßẞ", max_size=6))


@pytest.mark.usefixtures("once")
@_CHECK
@given(text=_SHORT, reference=_SHORT)
def test_string_check_operations_as_openai_defines_them(text, reference):
    """eq/ne: case-sensitive (in)equality; like: case-sensitive "contains" (no SQL
    wildcards); ilike: "contains" on lowercased texts."""
    assert check("eq", text, reference) == float(text == reference)
    assert check("ne", text, reference) == float(text != reference)
    assert check("like", text, reference) == float(reference in text)
    assert check("ilike", text, reference) == float(reference.lower() in text.lower())


@pytest.mark.usefixtures("once")
@_CHECK
@given(prefix=_SHORT, reference=_SHORT, suffix=_SHORT)
def test_string_check_properties(prefix, reference, suffix):
    text = prefix + reference + suffix
    assert check("like", text, reference) == 1.0  # a text contains each of its parts
    assert check("ilike", text.upper(), reference.lower()) == float(reference.lower() in text.upper().lower())
    assert check("ilike", text, reference) >= check("like", text, reference)
    assert check("eq", text, reference) + check("ne", text, reference) == 1.0
    assert check("eq", reference, text) == check("eq", text, reference)
    assert check("eq", reference, reference) == check("like", reference, reference) == 1.0


@pytest.mark.usefixtures("once")
def test_like_is_a_substring_test_not_a_sql_pattern():
    assert check("like", "100% sure", "100%") == 1.0
    assert check("like", "abc", "a%") == 0.0
    assert check("like", "abc", "a_c") == 0.0
    assert check("like", "Paris", "paris") == 0.0
    assert check("ilike", "The answer is PARIS.", "paris") == 1.0
    assert check("like", "anything", "") == 1.0  # "" is in every text, as in Python
