"""Graded text-similarity scorers: levenshtein, rouge, bleu, chrf, token_f1.

Each compares the record's ``field`` (the candidate, default ``output``) with its
``reference_field`` (default ``golden_answer``) and returns the metric in [0, 1]. The
arithmetic lives in :mod:`textmetrics`, which equals the reference libraries (rapidfuzz,
rouge-score, sacrebleu, the SQuAD v1.1 script) — see docs/scorers.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from assay_service.domain.scorers import textmetrics as tm
from assay_service.domain.scorers.base import (
    FIELD,
    REFERENCE,
    ScorerArgs,
    ScoreResult,
    scorer,
    text_of,
)


def unit_score(score: float) -> float:
    """Clamp float noise (sacrebleu's exp(log(100)) / 100 is 1.0000000000000004) into [0, 1]."""
    return 1.0 if score > 1.0 else (0.0 if score < 0.0 else score)


def similarity_label(score: float) -> str:
    """``match`` (1), ``partial`` (between), ``no_match`` (0)."""
    if score >= 1.0:
        return "match"
    return "partial" if score > 0.0 else "no_match"


def _pair(record: Mapping[str, Any], args: ScorerArgs) -> tuple[str, str]:
    return text_of(record, args.field), text_of(record, args.reference_field)


# ------------------------------------------------------------------ levenshtein
@scorer("levenshtein", ScorerArgs, requires=(FIELD, REFERENCE))
def levenshtein(record: Mapping[str, Any], args: ScorerArgs) -> ScoreResult:
    """Normalized Levenshtein similarity: 1 - edit distance / length of the longer text."""
    candidate, reference = _pair(record, args)
    score, dist = tm.levenshtein_similarity(candidate, reference)
    longest = max(len(candidate), len(reference))
    return ScoreResult(
        score, similarity_label(score), f"edit distance {dist} over {longest} chars → similarity {score:.3f}"
    )


# ------------------------------------------------------------------ rouge
class RougeArgs(ScorerArgs):
    variant: Literal["rouge1", "rouge2", "rougeL", "rougeLsum"] = "rougeL"
    stemmer: bool = False


@scorer("rouge", RougeArgs, requires=(FIELD, REFERENCE))
def rouge(record: Mapping[str, Any], args: RougeArgs) -> ScoreResult:
    """ROUGE F-measure (rouge1, rouge2, rougeL, rougeLsum), optionally Porter-stemmed."""
    candidate, reference = _pair(record, args)
    prf = tm.rouge(reference, candidate, args.variant, args.stemmer)
    score = unit_score(prf.fmeasure)
    return ScoreResult(
        score,
        similarity_label(score),
        f"{args.variant} F={score:.3f} (precision {prf.precision:.3f}, "
        f"recall {prf.recall:.3f}{', stemmed' if args.stemmer else ''})",
    )


# ------------------------------------------------------------------ bleu
@scorer("bleu", ScorerArgs, requires=(FIELD, REFERENCE))
def bleu(record: Mapping[str, Any], args: ScorerArgs) -> ScoreResult:
    """Sentence BLEU (sacrebleu defaults: 13a tokens, exp smoothing, effective order) / 100."""
    candidate, reference = _pair(record, args)
    result = tm.bleu(candidate, reference)
    score = unit_score(result.score)
    p1, p2, p3, p4 = result.precisions
    return ScoreResult(
        score,
        similarity_label(score),
        f"BLEU {score:.3f}: n-gram precisions {p1:.1f}/{p2:.1f}/{p3:.1f}/{p4:.1f}, "
        f"brevity penalty {result.bp:.3f} ({result.sys_len} vs {result.ref_len} tokens)",
    )


# ------------------------------------------------------------------ chrf
@scorer("chrf", ScorerArgs, requires=(FIELD, REFERENCE))
def chrf(record: Mapping[str, Any], args: ScorerArgs) -> ScoreResult:
    """Sentence chrF (sacrebleu defaults: char 6-grams, beta 2, whitespace ignored) / 100."""
    candidate, reference = _pair(record, args)
    result = tm.chrf(candidate, reference)
    score = unit_score(result.score)
    return ScoreResult(
        score,
        similarity_label(score),
        f"chrF {score:.3f} (char n-gram precision {result.precision:.3f}, recall {result.recall:.3f})",
    )


# ------------------------------------------------------------------ token_f1
@scorer("token_f1", ScorerArgs, requires=(FIELD, REFERENCE))
def token_f1(record: Mapping[str, Any], args: ScorerArgs) -> ScoreResult:
    """SQuAD v1.1 token F1 after normalization (lowercase, no punctuation/articles)."""
    candidate, reference = _pair(record, args)
    prf = tm.token_f1(candidate, reference)
    score = unit_score(prf.fmeasure)
    if score == 0.0:
        return ScoreResult(0.0, "no_match", "no normalized token in common (F1 0)")
    return ScoreResult(
        score,
        similarity_label(score),
        f"token F1 {score:.3f} (precision {prf.precision:.3f}, recall {prf.recall:.3f})",
    )
