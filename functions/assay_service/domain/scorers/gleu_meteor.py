"""GLEU and METEOR for OpenAI's ``text_similarity`` grader, equal to NLTK's.

Hand-written because the Lambda cannot ship their reference, NLTK: the Lambda package's
third-party code is ``[project] dependencies`` in pyproject.toml, exported into
layers/deps/requirements.txt (pydantic, powertools, rapidfuzz, regex); NLTK (~3 MB of
Python, plus data such as WordNet that is downloaded at run time, which a Lambda cannot do)
is a test dependency only, for the parity tests. Both metrics reuse what the other text
metrics already have (:mod:`textmetrics`): sacrebleu's ``13a`` tokenizer, the n-gram
multiset intersection of the ``_fastmetrics`` extension, and the Porter stemmer
(:mod:`porter`, NLTK's ``PorterStemmer`` transcribed).

- **GLEU** — ``nltk.translate.gleu_score.sentence_gleu([reference], hypothesis)`` (1- to
  4-grams): the n-grams both texts share over the larger of their n-gram counts, i.e. the
  minimum of n-gram precision and recall. Tokens: ``13a`` (case kept), as Hugging Face
  ``evaluate``'s ``google_bleu``, which wraps the same NLTK function, tokenizes by default.
- **METEOR** — ``nltk.translate.meteor_score.meteor_score([reference], hypothesis)`` with
  NLTK's defaults (lowercased tokens, alpha 0.9, beta 3, gamma 0.5), aligning by exact
  match, then by Porter stem — and **no WordNet synonym stage**: WordNet is a corpus NLTK
  downloads, which neither this package nor the Lambda has. The parity tests call NLTK
  with a ``wordnet`` whose ``synsets()`` is empty, which is exactly this. On text where
  NLTK with WordNet would pair two synonyms ("big"/"large"), its score is higher than ours.
  Tokens: ``13a``, as for GLEU (NLTK's ``word_tokenize`` needs the Punkt model, data as
  well).
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from assay_service.domain.scorers import textmetrics as tm
from assay_service.domain.scorers.porter import stem

GLEU_MAX_N = 4
METEOR_ALPHA = 0.9
METEOR_BETA = 3.0
METEOR_GAMMA = 0.5


class GleuScore(NamedTuple):
    score: float
    matches: int  # n-grams (orders 1-4) in common
    hyp_ngrams: int
    ref_ngrams: int


def gleu(hypothesis: str, reference: str) -> GleuScore:
    """``sentence_gleu([reference_tokens], hypothesis_tokens)`` on ``13a`` tokens."""
    hyp = tm.tokenize_13a(hypothesis)
    ref = tm.tokenize_13a(reference)
    tp = sum(tm.ngram_matches(hyp, ref, GLEU_MAX_N))
    tpfp = sum(max(len(hyp) - n + 1, 0) for n in range(1, GLEU_MAX_N + 1))
    tpfn = sum(max(len(ref) - n + 1, 0) for n in range(1, GLEU_MAX_N + 1))
    n_all = max(tpfp, tpfn)
    return GleuScore(tp / n_all if n_all else 0.0, tp, tpfp, tpfn)


class MeteorScore(NamedTuple):
    score: float
    exact: int  # tokens aligned by exact (lowercased) match
    stemmed: int  # then by Porter stem
    chunks: int  # runs of aligned tokens adjacent in both texts
    hyp_len: int
    ref_len: int


def _match(
    hyp: list[tuple[int, str]], ref: list[tuple[int, str]]
) -> tuple[list[tuple[int, int]], list, list]:
    """NLTK's ``_match_enums``: from the last hypothesis word back, pair it with the last
    still-unpaired reference word equal to it. Returns the pairs (hypothesis index,
    reference index) and the unpaired words of each side, in order."""
    positions: defaultdict[str, list[int]] = defaultdict(list)
    for j, (_, word) in enumerate(ref):
        positions[word].append(j)
    pairs: list[tuple[int, int]] = []
    hyp_done: set[int] = set()
    ref_done: set[int] = set()
    for i in range(len(hyp) - 1, -1, -1):
        free = positions.get(hyp[i][1])
        if free:
            j = free.pop()
            hyp_done.add(i)
            ref_done.add(j)
            pairs.append((hyp[i][0], ref[j][0]))
    hyp_left = [pair for i, pair in enumerate(hyp) if i not in hyp_done]
    ref_left = [pair for j, pair in enumerate(ref) if j not in ref_done]
    return pairs, hyp_left, ref_left


def _chunks(matches: list[tuple[int, int]]) -> int:
    """NLTK's ``_count_chunks``: 1 + the breaks between consecutive aligned pairs."""
    chunks = 1
    for (h0, r0), (h1, r1) in zip(matches, matches[1:], strict=False):
        if not (h1 == h0 + 1 and r1 == r0 + 1):
            chunks += 1
    return chunks


def meteor(hypothesis: str, reference: str) -> MeteorScore:
    """``meteor_score([reference_tokens], hypothesis_tokens)`` on ``13a`` tokens, without
    the WordNet synonym stage (see the module's docstring)."""
    hyp = [(i, w.lower()) for i, w in enumerate(tm.tokenize_13a(hypothesis))]
    ref = [(j, w.lower()) for j, w in enumerate(tm.tokenize_13a(reference))]
    exact, hyp_left, ref_left = _match(hyp, ref)
    stemmed, _, _ = _match([(i, stem(w)) for i, w in hyp_left], [(j, stem(w)) for j, w in ref_left])
    # (NLTK's third stage pairs a word with a reference word among its WordNet synonyms
    # *or itself*; after the exact stage no unpaired word has an equal unpaired partner, so
    # with no synonyms it pairs nothing.)
    matches = sorted(exact + stemmed, key=lambda pair: pair[0])
    count = len(matches)
    chunks = _chunks(matches)
    if not hyp or not ref or not count:
        return MeteorScore(0.0, len(exact), len(stemmed), chunks if count else 0, len(hyp), len(ref))
    # NLTK's arithmetic, in its order.
    precision = float(count) / len(hyp)
    recall = float(count) / len(ref)
    fmean = (precision * recall) / (METEOR_ALPHA * precision + (1 - METEOR_ALPHA) * recall)
    frag_frac = float(chunks) / count
    penalty = METEOR_GAMMA * frag_frac**METEOR_BETA
    return MeteorScore((1 - penalty) * fmean, len(exact), len(stemmed), chunks, len(hyp), len(ref))
