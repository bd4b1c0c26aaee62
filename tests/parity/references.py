"""The reference implementations the scorers must equal, called the way the spec says.

``squad_*`` is a transcription of the official SQuAD v1.1 evaluation script
(``evaluate-v1.1.py``: ``normalize_answer`` and ``f1_score``), kept verbatim in logic.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import cache

import sacrebleu
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer

ROUGE_VARIANTS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


# ---- SQuAD v1.1 evaluate-v1.1.py, transcribed ------------------------------------------
def squad_normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


# ---- rouge-score, sacrebleu, rapidfuzz ---------------------------------------------------
@cache
def _rouge(use_stemmer: bool) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_VARIANTS), use_stemmer=use_stemmer)


def rouge_f(candidate: str, reference: str, variant: str, use_stemmer: bool) -> float:
    return _rouge(use_stemmer).score(reference, candidate)[variant].fmeasure


def rouge_all(candidate: str, reference: str, use_stemmer: bool) -> dict[str, float]:
    scores = _rouge(use_stemmer).score(reference, candidate)
    return {v: scores[v].fmeasure for v in ROUGE_VARIANTS}


def bleu(candidate: str, reference: str) -> float:
    return sacrebleu.sentence_bleu(candidate, [reference]).score / 100


def chrf(candidate: str, reference: str) -> float:
    return sacrebleu.sentence_chrf(candidate, [reference]).score / 100


def levenshtein(candidate: str, reference: str) -> float:
    return Levenshtein.normalized_similarity(candidate, reference)


def levenshtein_dp(candidate: str, reference: str) -> float:
    """The textbook Wagner-Fischer edit distance, normalised as rapidfuzz does: an oracle
    independent of rapidfuzz, which the scorer itself calls (so comparing the two alone
    would only test the wrapper)."""
    previous = list(range(len(reference) + 1))
    for i, a in enumerate(candidate, start=1):
        current = [i]
        for j, b in enumerate(reference, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    longest = max(len(candidate), len(reference))
    return 1.0 - previous[-1] / longest if longest else 1.0


def token_f1(candidate: str, reference: str) -> float:
    return squad_f1_score(candidate, reference)
