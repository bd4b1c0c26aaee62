"""GIVEN 1,200 real sentence pairs (tests/data/parity), WHEN each similarity scorer runs,
THEN it equals its reference library within 1e-9 on every pair."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from assay_service.domain.scorers import get_scorer, validate_args
from assay_service.domain.scorers.porter import stem
from nltk.stem.porter import PorterStemmer

from tests.parity import references as ref

TOL = 1e-9
PAIRS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "parity" / "pairs.jsonl")
    .read_text("utf-8")
    .splitlines()
]


def score(name: str, candidate: str, reference: str, **args) -> float:
    spec = get_scorer(name)
    result = spec({"output": candidate, "golden_answer": reference}, validate_args(spec, args))
    assert 0.0 <= result.score <= 1.0
    return result.score


def _mismatches(name: str, reference_fn, **args) -> list[tuple[int, float, float]]:
    bad = []
    for pair in PAIRS:
        got = score(name, pair["candidate"], pair["reference"], **args)
        want = reference_fn(pair["candidate"], pair["reference"])
        if abs(got - want) > TOL:
            bad.append((pair["id"], got, want))
    return bad


def test_corpus_is_large_and_varied():
    assert len(PAIRS) >= 1000
    kinds = {p["kind"] for p in PAIRS}
    assert {"edited", "related", "multiline", "identical", "unrelated", "empty"} <= kinds


@pytest.mark.parametrize("stemmer", [False, True])
def test_rouge_equals_rouge_score(stemmer):
    bad = []
    for pair in PAIRS:
        want = ref.rouge_all(pair["candidate"], pair["reference"], stemmer)
        for variant in ref.ROUGE_VARIANTS:
            got = score("rouge", pair["candidate"], pair["reference"], variant=variant, stemmer=stemmer)
            if abs(got - want[variant]) > TOL:
                bad.append((pair["id"], variant, got, want[variant]))
    assert not bad, bad[:5]


@pytest.mark.parametrize(
    ("name", "reference_fn"),
    [
        ("bleu", ref.bleu),
        ("chrf", ref.chrf),
        ("levenshtein", ref.levenshtein),
        ("levenshtein", ref.levenshtein_dp),
        ("token_f1", ref.token_f1),
    ],
)
def test_metric_equals_reference(name, reference_fn):
    bad = _mismatches(name, reference_fn)
    assert not bad, bad[:5]


def test_porter_stemmer_equals_nltk_on_every_corpus_word():
    nltk = PorterStemmer()
    words = {
        w
        for p in PAIRS
        for text in (p["candidate"], p["reference"])
        for w in re.findall(r"[a-z0-9]+", text.lower())
    }
    assert len(words) > 2000
    assert [w for w in words if stem(w) != nltk.stem(w)] == []
