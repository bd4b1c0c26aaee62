"""GIVEN arbitrary text pairs (unicode, empty, overlapping words, multi-line), WHEN each
similarity scorer runs, THEN it equals its reference library within 1e-9.

Derandomized and bounded: the same examples every run, a few seconds in all."""

from __future__ import annotations

from assay_service.domain.scorers import get_scorer, validate_args
from assay_service.domain.scorers.porter import stem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk.stem.porter import PorterStemmer

from tests.parity import references as ref

TOL = 1e-9
PARITY = settings(
    derandomize=True,
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Words that overlap often (so scores are not all 0), with inflections for the stemmer,
# punctuation and numbers for the tokenizers, and non-ASCII letters.
_WORDS = st.sampled_from(
    [
        "the",
        "a",
        "an",
        "cat",
        "cats",
        "sat",
        "sitting",
        "on",
        "mat",
        "mats",
        "running",
        "runs",
        "ran",
        "generalization",
        "generalizations",
        "happily",
        "relational",
        "3.5",
        "1,000",
        "x-ray",
        "it's",
        "&amp;",
        "<skipped>",
        "U.S.",
        "é",
        "naïve",
        "Straße",
        "İstanbul",
        "猫",
        "😀",
        "—",
        ".",
        ",",
        "!",
        "?",
        "-",
        "(",
        ")",
        '"',
        "'",
    ]
)
_SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\t", "-\n", ""])


@st.composite
def sentences(draw) -> str:
    words = draw(st.lists(_WORDS, max_size=30))
    out = ""
    for word in words:
        out += word + draw(_SEPARATORS)
    return out


TEXT = st.one_of(sentences(), st.text(max_size=80), st.just(""))


def score(name: str, candidate: str, reference: str, **args) -> float:
    spec = get_scorer(name)
    result = spec({"output": candidate, "golden_answer": reference}, validate_args(spec, args))
    assert 0.0 <= result.score <= 1.0
    return result.score


@PARITY
@given(candidate=TEXT, reference=TEXT, stemmer=st.booleans())
def test_rouge_property(candidate, reference, stemmer):
    want = ref.rouge_all(candidate, reference, stemmer)
    for variant in ref.ROUGE_VARIANTS:
        got = score("rouge", candidate, reference, variant=variant, stemmer=stemmer)
        assert abs(got - want[variant]) <= TOL, variant


@PARITY
@given(candidate=TEXT, reference=TEXT)
def test_bleu_chrf_levenshtein_token_f1_property(candidate, reference):
    assert abs(score("bleu", candidate, reference) - ref.bleu(candidate, reference)) <= TOL
    assert abs(score("chrf", candidate, reference) - ref.chrf(candidate, reference)) <= TOL
    assert abs(score("levenshtein", candidate, reference) - ref.levenshtein(candidate, reference)) <= TOL
    assert abs(score("levenshtein", candidate, reference) - ref.levenshtein_dp(candidate, reference)) <= TOL
    assert abs(score("token_f1", candidate, reference) - ref.token_f1(candidate, reference)) <= TOL


@PARITY
@given(st.from_regex(r"[a-z0-9]{1,14}", fullmatch=True))
def test_porter_stem_property(word):
    assert stem(word) == PorterStemmer().stem(word)


@PARITY
@given(text=st.text(max_size=200))
def test_levenshtein_property_long_unicode(text):
    edited = text[::-1][: len(text) // 2] + text
    assert abs(score("levenshtein", edited, text) - ref.levenshtein(edited, text)) <= TOL
