"""Text-similarity metrics, equal to their reference libraries (rapidfuzz, shipped, for
Levenshtein; our own code for the rest).

Each function reproduces a reference implementation's arithmetic (same tokenizer, same
order of floating-point operations), so results match to the last bit in practice and
within 1e-9 by contract (tests/parity):

- ROUGE-N / ROUGE-L / ROUGE-Lsum F-measure — Google's ``rouge-score`` (``RougeScorer``,
  default tokenizer, optional Porter stemmer, rougeLsum split on newlines);
- BLEU and chrF — ``sacrebleu``'s ``sentence_bleu`` / ``sentence_chrf`` with default
  settings (13a tokenizer, exp smoothing, effective order; chrF char order 6, beta 2);
- Levenshtein normalized similarity — ``rapidfuzz.distance.Levenshtein``;
- token F1 — the SQuAD v1.1 evaluation script (``normalize_answer`` / ``f1_score``).

Speed: the inner loops run in the ``_fastmetrics`` C extension (``_fastmetrics.c``, built
for the host and for the Lambda's arm64 by tools/native.py; decision 0009) — the n-gram
multiset intersections of BLEU, chrF, ROUGE-N and token F1, ROUGE-L's longest common
subsequence, and the tokenizers' regex passes (13a's rules; ROUGE's and SQuAD's on ASCII
text). The arithmetic stays here, in each reference's order. Where the extension is not
built, the pure-Python twins below (occurrence frozensets intersected in C, a bit-parallel
LCS on Python integers, the regular expressions) give the same numbers, a few times
slower (bench/scorers.py). Tokenizations are memoised per input string.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from assay_service.domain.scorers.porter import stem

try:
    # A built C extension: mypy reads no module from a .so.
    from assay_service.domain.scorers import _fastmetrics as _loaded  # type: ignore[attr-defined]
except ImportError:  # not built for this platform: the pure-Python twins below
    _loaded = None
_native = _loaded  # what the metrics call; None: the pure-Python twins


def implementation() -> str:
    """``native`` when the C extension is in use, else ``python``."""
    return "python" if _native is None else "native"


def use_native(enabled: bool) -> str:
    """Run on the C extension (if it is built) or on the pure-Python twins — tests and
    benchmarks compare the two — with the caches emptied so that no tokenization from the
    other path is reused. Returns the implementation now in use."""
    global _native
    _native = _loaded if enabled else None
    clear_caches()
    return implementation()


_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class _TextCached(Protocol[_T_co]):
    """A function memoised by ``_text_cache``: positional arguments only."""

    cache_clear: Callable[[], None]

    def __call__(self, *args: Any) -> _T_co: ...


def _text_cache(budget: int) -> Callable[[Callable[..., _T]], _TextCached[_T]]:
    """Memoise a function of (text, *options) for texts seen again (a reference scored by
    several metrics, rouge1 + rougeL on the same pair, repeated golden answers). Bounded by
    the total length of the cached texts, not their number — a few long outputs must not
    grow a Lambda's memory: when ``budget`` characters are held, the cache starts afresh.
    Budgets are sized from the measured bytes per character of each cache (tests/data/parity
    corpus) to stay under ~150 MB in all. A miss costs ~0.2 µs (one dict probe and store)."""

    def decorate(fn: Callable[..., _T]) -> _TextCached[_T]:
        store: dict[tuple[Any, ...], _T] = {}
        held = 0

        def cached(*args: Any) -> _T:
            nonlocal held
            value = store.get(args)
            if value is None:
                value = fn(*args)
                held += len(args[0])
                if held > budget:
                    store.clear()
                    held = len(args[0])
                store[args] = value
            return value

        def cache_clear() -> None:
            nonlocal held
            store.clear()
            held = 0

        cached.__doc__ = fn.__doc__
        cached.__name__ = fn.__name__
        memoised = cast("_TextCached[_T]", cached)
        memoised.cache_clear = cache_clear
        return memoised

    return decorate


class PRF(NamedTuple):  # immutable and ~3x cheaper to build than a frozen dataclass
    precision: float
    recall: float
    fmeasure: float


def _fmeasure(precision: float, recall: float) -> float:
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


_ZERO = PRF(0, 0, 0)


def _occurrences(grams: tuple | list) -> frozenset:
    """A multiset as a set: the k-th repeat of ``g`` becomes ``g + "\\n" * k`` (a word) or
    ``g + ("\\n",) * k`` (an n-gram tuple). The size of the intersection of two such sets is
    the multiset intersection (sum of min counts), and computing it is one C-level
    ``frozenset.__and__`` — the hot path of every n-gram metric. No token contains
    whitespace (tokens are split on it) and a repeat key of an n-gram is longer than n, so a
    repeat key never equals a real gram."""
    unique = frozenset(grams)
    if len(unique) == len(grams):  # no repeats: the common case for n > 1
        return unique
    counts = Counter(grams)
    out = list(counts)
    for gram, count in counts.items():
        if count > 1:
            pad = ("\n",) if isinstance(gram, tuple) else "\n"
            out.extend(gram + pad * k for k in range(1, count))
    return frozenset(out)


def _gram_set(tokens: tuple[str, ...], n: int) -> frozenset:
    """The word n-grams of ``tokens`` (tuples; words for n = 1) as an occurrence set."""
    if n == 1:
        return _occurrences(tokens)
    # zip over shifted copies, as tuples: no string is built for an n-gram. Without a
    # repeat (the usual case) the set has one entry per position and is already exact.
    shifted = [tokens[i:] for i in range(n)]
    unique = frozenset(zip(*shifted, strict=False))
    if len(unique) == max(len(tokens) - n + 1, 0):
        return unique
    return _occurrences(list(zip(*shifted, strict=False)))


def ngram_matches(a: tuple[str, ...], b: tuple[str, ...], max_n: int) -> tuple[int, ...]:
    """Per order n = 1..max_n: the size of the multiset intersection of the n-grams of
    ``a`` and ``b`` (sum of min counts, ``Counter & Counter``)."""
    if _native is not None and max_n <= 64:  # the extension's bound
        return _native.ngram_matches(a, b, max_n)
    return tuple(len(_gram_set(a, n) & _gram_set(b, n)) for n in range(1, max_n + 1))


# ------------------------------------------------------------------ ROUGE (rouge-score)
_ALNUM_RUN = re.compile(r"[a-z0-9]+")


@_text_cache(1_000_000)
def rouge_tokens(text: str, use_stemmer: bool = False) -> tuple[str, ...]:
    """rouge-score's default tokenizer: lowercase, non-[a-z0-9] runs split, stem words > 3."""
    line = text.lower()
    # Either way, = re.sub(r"[^a-z0-9]+", " ", line).split()
    native = _native is not None and line.isascii()
    tokens = _native.alnum_runs(line) if native else _ALNUM_RUN.findall(line)
    if use_stemmer:
        tokens = [stem(t) if len(t) > 3 else t for t in tokens]
        tokens = [t for t in tokens if t and t.isascii() and t.isalnum()]
    return tuple(tokens)


def rouge_n(target: str, prediction: str, n: int, use_stemmer: bool = False) -> PRF:
    """ROUGE-N of ``prediction`` against ``target`` (rouge-score ``_score_ngrams``)."""
    t_tokens = rouge_tokens(target, use_stemmer)
    p_tokens = rouge_tokens(prediction, use_stemmer)
    inter = ngram_matches(t_tokens, p_tokens, n)[n - 1]
    precision = inter / max(len(p_tokens) - n + 1, 1)
    recall = inter / max(len(t_tokens) - n + 1, 1)
    return PRF(precision, recall, _fmeasure(precision, recall))


def _match_masks(tokens: tuple[str, ...]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << i)
    return masks


def lcs_length(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö)."""
    if _native is not None:
        length = _native.lcs_length(a, b)
        if length is not None:  # None: too large for its bit tables
            return length
    return _py_lcs_length(a, b)


def _py_lcs_length(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    if not a or not b:
        return 0
    masks = _match_masks(a)
    full = (1 << len(a)) - 1
    v = full
    get = masks.get
    for token in b:
        m = get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(target: str, prediction: str, use_stemmer: bool = False) -> PRF:
    """ROUGE-L (rouge-score ``_score_lcs``)."""
    t_tokens = rouge_tokens(target, use_stemmer)
    p_tokens = rouge_tokens(prediction, use_stemmer)
    if not t_tokens or not p_tokens:
        return _ZERO
    lcs = lcs_length(t_tokens, p_tokens)
    precision = lcs / len(p_tokens)
    recall = lcs / len(t_tokens)
    return PRF(precision, recall, _fmeasure(precision, recall))


def _lcs_indices(ref: tuple[str, ...], can: tuple[str, ...]) -> list[int]:
    """The LCS rouge-score's ``_backtrack_norec`` reads out (indices into ``ref``).

    Rows of the DP table are kept as bit vectors over ``can``: cell (i, j) is the number of
    zero bits of row i below bit j, so the backtrack visits the same cells as the
    reference and picks the same subsequence."""
    if not ref or not can:
        return []
    masks = _match_masks(can)
    full = (1 << len(can)) - 1
    rows = [full]
    v = full
    for token in ref:
        m = masks.get(token, 0)
        u = v & m
        v = ((v + u) | (v - u)) & full
        rows.append(v)

    def cell(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    i, j = len(ref), len(can)
    picked: list[int] = []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            picked.append(i - 1)
            i -= 1
            j -= 1
        elif cell(i, j - 1) > cell(i - 1, j):
            j -= 1
        else:
            i -= 1
    picked.reverse()
    return picked


def _sentences(text: str) -> list[str]:
    return [s for s in text.split("\n") if len(s)]


def rouge_lsum(target: str, prediction: str, use_stemmer: bool = False) -> PRF:
    """ROUGE-Lsum: summary-level union LCS over newline-separated sentences
    (rouge-score ``_summary_level_lcs``)."""
    if "\n" not in target and "\n" not in prediction:
        return rouge_l(target, prediction, use_stemmer)  # one sentence each: identical
    ref_sents = [rouge_tokens(s, use_stemmer) for s in _sentences(target)]
    can_sents = [rouge_tokens(s, use_stemmer) for s in _sentences(prediction)]
    if not ref_sents or not can_sents:
        return _ZERO
    m = sum(map(len, ref_sents))
    n = sum(map(len, can_sents))
    if not n or not m:
        return _ZERO
    counts_r: Counter = Counter()
    counts_c: Counter = Counter()
    for s in ref_sents:
        counts_r.update(s)
    for s in can_sents:
        counts_c.update(s)
    hits = 0
    for r in ref_sents:
        union: set[int] = set()
        for c in can_sents:
            union.update(_lcs_indices(r, c))
        for index in sorted(union):
            token = r[index]
            if counts_c[token] > 0 and counts_r[token] > 0:
                hits += 1
                counts_c[token] -= 1
                counts_r[token] -= 1
    recall = hits / m
    precision = hits / n
    return PRF(precision, recall, _fmeasure(precision, recall))


def rouge(target: str, prediction: str, variant: str, use_stemmer: bool = False) -> PRF:
    if variant == "rougeL":
        return rouge_l(target, prediction, use_stemmer)
    if variant == "rougeLsum":
        return rouge_lsum(target, prediction, use_stemmer)
    if variant.startswith("rouge") and variant[5:].isdigit() and int(variant[5:]) > 0:
        return rouge_n(target, prediction, int(variant[5:]), use_stemmer)
    raise ValueError(f"unknown ROUGE variant {variant!r}")


# ------------------------------------------------------------------ BLEU (sacrebleu)
# mteval-v13a's first rule pads every character of a class that includes the space; padding
# a space with spaces changes no token (the later rules see a space next to the same
# characters either way), so the space is left out of the class: same tokens, ~6x faster.
_13A_PAD = re.compile(r"([\{-\~\[-\`\!-\&\(-\+\:-\@\/])")
_13A_POINT = (
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
)
_13A_DASH = (re.compile(r"([0-9])(-)"), r"\1 \2 ")


@_text_cache(1_000_000)
def tokenize_13a(line: str) -> tuple[str, ...]:
    """sacrebleu's default ``13a`` tokenizer (mteval-v13a), as a token tuple."""
    line = line.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    if _native is not None:
        return tuple(_native.pad_13a(line).split())
    line = _13A_PAD.sub(r" \1 ", f" {line} ")
    if "." in line or "," in line:
        for pattern, repl in _13A_POINT:
            line = pattern.sub(repl, line)
    if "-" in line:
        line = _13A_DASH[0].sub(_13A_DASH[1], line)
    return tuple(line.split())


class BleuScore(NamedTuple):
    score: float  # in [0, 1] (sacrebleu's score / 100)
    precisions: tuple[float, ...]  # per order, in [0, 100] as sacrebleu reports them
    bp: float
    sys_len: int
    ref_len: int


def bleu(hypothesis: str, reference: str) -> BleuScore:
    """``sacrebleu.sentence_bleu(hypothesis, [reference]).score / 100`` (defaults)."""
    hyp = tokenize_13a(hypothesis)
    ref = tokenize_13a(reference)
    sys_len, ref_len = len(hyp), len(ref)
    total = [max(sys_len - n + 1, 0) for n in (1, 2, 3, 4)]
    correct = ngram_matches(hyp, ref, 4)
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0, 0.0, 0.0, 0.0]
    if not any(correct):
        return BleuScore(0.0, tuple(precisions), bp, sys_len, ref_len)
    smooth = 1.0
    eff_order = 4
    for n in range(1, 5):
        if total[n - 1] == 0:
            break
        eff_order = n
        if correct[n - 1] == 0:
            smooth *= 2
            precisions[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    score = bp * math.exp(
        sum([math.log(p) if p != 0.0 else -9999999999 for p in precisions[:eff_order]]) / eff_order
    )
    return BleuScore(score / 100, tuple(precisions), bp, sys_len, ref_len)


# ------------------------------------------------------------------ chrF (sacrebleu)
_CHAR_ORDER = 6
_BETA = 2


class ChrfScore(NamedTuple):
    score: float  # in [0, 1] (sacrebleu's score / 100)
    precision: float  # average char n-gram precision over the effective orders
    recall: float


def chrf(hypothesis: str, reference: str) -> ChrfScore:
    """``sacrebleu.sentence_chrf(hypothesis, [reference]).score / 100`` (chrF, defaults)."""
    hyp = tuple("".join(hypothesis.split()))  # characters, whitespace removed
    ref = tuple("".join(reference.split()))
    matches = ngram_matches(hyp, ref, _CHAR_ORDER)
    factor = _BETA**2
    avg_prec = avg_rec = 0.0
    effective = 0
    for n, match in enumerate(matches, start=1):
        h_total, r_total = len(hyp) - n + 1, len(ref) - n + 1
        if r_total <= 0 or h_total <= 0:
            continue  # the order contributes only when both sides have n-grams
        avg_prec += match / h_total
        avg_rec += match / r_total
        effective += 1
    if effective == 0:
        avg_prec = avg_rec = 0.0
    else:
        avg_prec /= effective
        avg_rec /= effective
    if avg_prec + avg_rec:
        score = (1 + factor) * avg_prec * avg_rec
        score /= (factor * avg_prec) + avg_rec
        return ChrfScore(100 * score / 100, avg_prec, avg_rec)
    return ChrfScore(0.0, avg_prec, avg_rec)


# ------------------------------------------------------------------ Levenshtein (rapidfuzz)
def levenshtein_similarity(a: str, b: str) -> tuple[float, int]:
    """(rapidfuzz ``Levenshtein.normalized_similarity``, the distance) — rapidfuzz itself,
    shipped in the layer: ~40× our pure-Python bit-parallel version (decision 0003)."""
    from rapidfuzz.distance import Levenshtein  # deferred: only the scoring function needs it

    dist = Levenshtein.distance(a, b)
    longest = max(len(a), len(b))
    return (1.0 - dist / longest) if longest else 1.0, dist


# ------------------------------------------------------------------ token F1 (SQuAD v1.1)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ARTICLE_WORDS = frozenset(("a", "an", "the"))
_PUNCT_BYTES = string.punctuation.encode()
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]+")


def drop_ascii_punctuation(text: str) -> str:
    """``text`` without the characters of ``string.punctuation``. ASCII text goes through
    ``bytes.translate`` (~0.2 µs for a sentence: 5x a regex, 12x ``str.translate``)."""
    if text.isascii():
        return text.encode("ascii").translate(None, _PUNCT_BYTES).decode("ascii")
    return _PUNCT.sub("", text)


@_text_cache(1_000_000)
def squad_tokens(text: str) -> tuple[str, ...]:
    """SQuAD v1.1 ``normalize_answer(text).split()``: lower, drop ASCII punctuation and
    the articles a/an/the, split on whitespace."""
    line = text.lower()
    if _native is not None and line.isascii():
        words = _native.squad_words(line)
        if words is not None:
            return words
    words = drop_ascii_punctuation(line).split()
    if "".join(words).isalnum():
        # Every word is all word characters, so \b sits only at word edges: an article is
        # removed exactly when it is a whole word (the regex below, 2x slower, agrees).
        return tuple([w for w in words if w not in _ARTICLE_WORDS])
    return tuple(_ARTICLES.sub(" ", " ".join(words)).split())


def token_f1(prediction: str, ground_truth: str) -> PRF:
    """SQuAD v1.1 ``f1_score`` (0 when nothing is shared, including both empty)."""
    pred = squad_tokens(prediction)
    gold = squad_tokens(ground_truth)
    num_same = ngram_matches(pred, gold, 1)[0]
    if num_same == 0:
        return _ZERO
    precision = 1.0 * num_same / len(pred)
    recall = 1.0 * num_same / len(gold)
    return PRF(precision, recall, (2 * precision * recall) / (precision + recall))


def clear_caches() -> None:
    """Drop every memoised tokenization (benchmarks use it to measure cold costs)."""
    for fn in (rouge_tokens, tokenize_13a, squad_tokens, stem):
        fn.cache_clear()
