"""Rule-scorer throughput, ours vs the reference libraries, on one core.

    .venv/bin/python bench/scorers.py [--records 10000] [--python]   # or: make bench-scorers

Ours is the C extension's inner loops (decision 0009) unless ``--python`` measures the
pure-Python fallback.

Records: --records sentence pairs drawn by the parity corpus builder
(tests/data/parity/build_corpus.py: CPython docstring sentences and edits of them; its
first 1,200 are the committed parity fixture) with **every text distinct**: a text drawn
again gets a record number appended, so no tokenization is ever a cache hit across records
(real eval datasets rarely repeat an output). Every pass starts with the memo caches
emptied. Each of our rows calls the registered scorer the way a scoring batch does
(``spec(record, args)``, ScoreResult and reasoning included); the reference library runs
on the same records in the same run, and ``max |Δ|`` is the largest score difference.

Not a timed test: it prints the table and the targets (mix >= 20,000 records/s/core,
ROUGE-L >= 3x rouge-score with identical scores).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

import jsonschema  # noqa: E402
import sacrebleu  # noqa: E402
from assay_service.domain.scorers import get_scorer, textmetrics, validate_args  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from tests.data.parity.build_corpus import build  # noqa: E402
from tests.parity.references import squad_f1_score  # noqa: E402

Record = dict[str, str]


def distinct_pairs(size: int) -> list[tuple[str, str]]:
    """``size`` (candidate, reference) pairs in which no text occurs twice."""
    seen: set[str] = set()
    out = []
    for i, pair in enumerate(build(size)):
        texts = []
        for text in (pair["candidate"], pair["reference"]):
            if text in seen:
                text = f"{text} (record {i})"
            seen.add(text)
            texts.append(text)
        out.append((texts[0], texts[1]))
    return out


def _records(kind: str, pairs: list[tuple[str, str]]) -> list[Record]:
    out = []
    for i, (cand, gold) in enumerate(pairs):
        if kind == "json":
            cand = json.dumps({"answer": cand, "n": i}) if i % 5 else cand
        elif kind == "numeric":
            cand = f"{cand} The total is ${1000 + i:,}.50."
            gold = f"{1000 + i + (i % 3) * 0.25}"
        out.append({"output": cand, "golden_answer": gold})
    return out


SCHEMA = {
    "type": "object",
    "required": ["answer", "n"],
    "additionalProperties": False,
    "properties": {"answer": {"type": "string", "minLength": 1}, "n": {"type": "integer", "minimum": 0}},
}
_RS: dict[str, rouge_scorer.RougeScorer] = {}


def _rouge_ref(variant: str) -> Callable[[Record], float]:
    scorer = _RS.setdefault(variant, rouge_scorer.RougeScorer([variant]))
    return lambda r: scorer.score(r["golden_answer"], r["output"])[variant].fmeasure


_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _json_schema_ref(r: Record) -> float:
    try:
        instance = json.loads(r["output"])
    except ValueError:
        return 0.0
    return 1.0 if _VALIDATOR.is_valid(instance) else 0.0


# name, scorer, args, record kind, reference label, reference fn
ROWS: list[tuple[str, str, dict, str, str, Callable[[Record], float] | None]] = [
    (
        "exact_match",
        "exact_match",
        {"case_sensitive": False, "normalize_whitespace": True, "ignore_punctuation": True},
        "text",
        "",
        None,
    ),
    ("contains", "contains", {"substrings": ["the", "module"], "case_sensitive": False}, "text", "", None),
    ("not_contains", "not_contains", {"substring": "deprecated"}, "text", "", None),
    ("regex", "regex", {"pattern": r"\b(file|module)s?\b", "flags": ["i"]}, "text", "", None),
    ("starts_with", "starts_with", {"prefix": "Return", "case_sensitive": False}, "text", "", None),
    ("json_valid", "json_valid", {}, "json", "", None),
    ("json_schema", "json_schema", {"schema": SCHEMA}, "json", "jsonschema", _json_schema_ref),
    ("length", "length", {"min": 5, "max": 40, "unit": "words"}, "text", "", None),
    ("numeric", "numeric", {"abs_tol": 0.3}, "numeric", "", None),
    ("refusal", "refusal", {}, "text", "", None),
    (
        "levenshtein",
        "levenshtein",
        {},
        "text",
        "rapidfuzz",
        lambda r: Levenshtein.normalized_similarity(r["output"], r["golden_answer"]),
    ),
    ("rouge1", "rouge", {"variant": "rouge1"}, "text", "rouge-score", _rouge_ref("rouge1")),
    ("rouge2", "rouge", {"variant": "rouge2"}, "text", "rouge-score", _rouge_ref("rouge2")),
    ("rougeL", "rouge", {"variant": "rougeL"}, "text", "rouge-score", _rouge_ref("rougeL")),
    ("rougeLsum", "rouge", {"variant": "rougeLsum"}, "text", "rouge-score", _rouge_ref("rougeLsum")),
    (
        "bleu",
        "bleu",
        {},
        "text",
        "sacrebleu",
        lambda r: sacrebleu.sentence_bleu(r["output"], [r["golden_answer"]]).score / 100,
    ),
    (
        "chrf",
        "chrf",
        {},
        "text",
        "sacrebleu",
        lambda r: sacrebleu.sentence_chrf(r["output"], [r["golden_answer"]]).score / 100,
    ),
    (
        "token_f1",
        "token_f1",
        {},
        "text",
        "squad v1.1",
        lambda r: squad_f1_score(r["output"], r["golden_answer"]),
    ),
]

# The target mix: a reference-based QA/summarisation eval (exact answer, containment,
# SQuAD F1, ROUGE-L, BLEU). The second mix swaps containment for character edit distance,
# the one metric whose pure-Python cost (a Python-level loop per character) dominates.
# A third mix leaves BLEU out (the costliest of them: four n-gram orders per text) for a
# QA/format eval: exact answer, containment, a regex, SQuAD F1, ROUGE-L.
MIXES = {
    "mix A (5)": ["exact_match", "contains", "token_f1", "rougeL", "bleu"],
    "mix B (5)": ["exact_match", "token_f1", "levenshtein", "rougeL", "bleu"],
    "mix C (5)": ["exact_match", "contains", "regex", "token_f1", "rougeL"],
}


def _ours(name: str) -> Callable[[Record], float]:
    _, scorer_name, args, *_ = next(row for row in ROWS if row[0] == name)
    spec = get_scorer(scorer_name)
    validated = validate_args(spec, args)
    return lambda r: spec(r, validated).score


def _rate(fn: Callable[[Record], float], records: list[Record]) -> float:
    """Records per second over one pass, every memo cache emptied first."""
    gc.collect()
    gc.disable()
    try:
        textmetrics.clear_caches()
        start = time.perf_counter()
        for record in records:
            fn(record)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return len(records) / elapsed


def _best(fn, records, repeats: int = 3) -> float:
    return max(_rate(fn, records) for _ in range(repeats))


def _fmt(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument(
        "--python", action="store_true", help="measure the pure-Python fallback, not the C extension"
    )
    options = parser.parse_args()
    size = options.records
    textmetrics.use_native(not options.python)
    pairs = distinct_pairs(size)
    kinds = {k: _records(k, pairs) for k in ("text", "json", "numeric")}

    version = sys.version.split()[0]
    print(
        f"{size:,} record pairs, {2 * size:,} distinct texts, caches emptied before each "
        f"pass; Python {version}, one core; text metrics: {textmetrics.implementation()}\n"
    )
    header = f"{'scorer':<13} {'ours/s':>10}  {'reference':<12} {'ref/s':>10} {'speed-up':>9} {'max |Δ|':>9}"
    print(header)
    print("-" * len(header))
    rates: dict[str, float] = {}
    deltas: dict[str, float] = {}
    for name, _scorer, _args, kind, ref_label, ref_fn in ROWS:
        ours = _ours(name)
        rate = rates[name] = _best(ours, kinds[kind])
        ref_rate = delta = None
        if ref_fn is not None:
            ref_rate = rates[f"{name}_ref"] = _best(ref_fn, kinds[kind], repeats=1)
            delta = deltas[name] = max(abs(ours(r) - ref_fn(r)) for r in kinds[kind])
        speedup = f"{rate / ref_rate:.1f}x" if ref_rate else ""
        print(
            f"{name:<13} {_fmt(rate):>10}  {ref_label or '—':<12} {_fmt(ref_rate):>10} "
            f"{speedup:>9} {'' if delta is None else f'{delta:.1e}':>9}"
        )

    ref_fns = {row[0]: row[5] for row in ROWS}
    print("-" * len(header))
    mix_rates = {}
    for label, names in MIXES.items():
        fns = [_ours(n) for n in names]
        refs = [ref_fns[n] or _ours(n) for n in names]

        def mix(record: Record, fns=fns) -> float:
            return sum(fn(record) for fn in fns)

        def mix_reference(record: Record, refs=refs) -> float:
            return sum(fn(record) for fn in refs)

        rate = mix_rates[label] = _best(mix, kinds["text"])
        ref_rate = _best(mix_reference, kinds["text"], repeats=1)
        print(
            f"{label:<13} {_fmt(rate):>10}  {'references':<12} {_fmt(ref_rate):>10} {rate / ref_rate:>8.1f}x"
        )
    print()
    for label, names in MIXES.items():
        print(
            f"{label} = {' + '.join(names)} (records/s; reference side: the libraries, ours "
            "where there is none)"
        )
    for label, rate in mix_rates.items():
        print(
            f"target {label} >= 20,000 records/s/core: {rate:,.0f} -> {'OK' if rate >= 20_000 else 'MISSED'}"
        )
    ratio = rates["rougeL"] / rates["rougeL_ref"]
    same = deltas["rougeL"] <= 1e-9
    print(
        f"target ROUGE-L >= 3x rouge-score, identical scores: {ratio:.1f}x, max |Δ| "
        f"{deltas['rougeL']:.1e} -> {'OK' if ratio >= 3 and same else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
