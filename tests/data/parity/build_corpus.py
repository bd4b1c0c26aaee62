"""Build tests/data/parity/pairs.jsonl: candidate/reference sentence pairs for the parity
tests of the text-similarity scorers.

The sentences are docstrings of CPython's standard library (PSF License 2.0), read with
``ast`` from the running interpreter's ``Lib/`` — nothing is downloaded. Pairs are
deterministic for a given stdlib (seeded RNG). The committed file is the fixture; rerun
only to regenerate it on purpose:

    .venv/bin/python tests/data/parity/build_corpus.py
"""

from __future__ import annotations

import ast
import json
import random
import re
import sys
import sysconfig
from pathlib import Path

OUT = Path(__file__).with_name("pairs.jsonl")
SEED = 20261122
TARGET = 1200

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_CODEY = re.compile(r">>>|\.\.\.|[{}\[\]=<>|\\`_]|::|\(\)|\w\.\w+\(")


def _docstrings() -> list[tuple[str, list[str]]]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(lib.glob("*.py")) + sorted(lib.glob("[a-z]*/*.py")):
        if "test" in path.parts or "idlelib" in path.parts or "site-packages" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    found.append((str(path.relative_to(lib)), doc))
    out = []
    for source, doc in found:
        sentences = []
        for paragraph in re.split(r"\n\s*\n", doc):
            flat = " ".join(paragraph.split())
            for sentence in _SENTENCE_END.split(flat):
                words = sentence.split()
                if 5 <= len(words) <= 40 and not _CODEY.search(sentence) and sentence[0].isupper():
                    sentences.append(sentence)
        if sentences:
            out.append((source, sentences))
    return out


def _edit(sentence: str, rng: random.Random, vocabulary: list[str]) -> str:
    words = sentence.split()
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["drop", "swap", "substitute", "insert", "inflect", "case", "punct"])
        i = rng.randrange(len(words))
        if op == "drop" and len(words) > 3:
            del words[i]
        elif op == "swap" and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == "substitute":
            words[i] = rng.choice(vocabulary)
        elif op == "insert":
            words.insert(i, rng.choice(vocabulary))
        elif op == "inflect":
            words[i] = words[i] + rng.choice(["s", "ed", "ing", "ly", "ation"])
        elif op == "case":
            words[i] = words[i].upper() if rng.random() < 0.5 else words[i].lower()
        elif op == "punct":
            words[i] = words[i].strip(".,;:!?") + rng.choice(["", ",", ".", "!", ";"])
    return " ".join(words)


def build(target: int = TARGET) -> list[dict]:
    """``target`` pairs; the first TARGET are the committed fixture's (same seed), more
    are drawn the same way (bench/scorers.py uses 10,000)."""
    rng = random.Random(SEED)
    docs = _docstrings()
    vocabulary = sorted({w for _, ss in docs for s in ss for w in s.split() if w.isalpha()})
    multi = [(src, ss) for src, ss in docs if len(ss) >= 2]
    pairs: list[dict] = []

    def add(kind: str, source: str, candidate: str, reference: str) -> None:
        pairs.append(
            {"id": len(pairs), "kind": kind, "source": source, "candidate": candidate, "reference": reference}
        )

    plan = (
        ["edited"] * 45
        + ["related"] * 25
        + ["multiline"] * 12
        + ["identical"] * 8
        + ["unrelated"] * 8
        + ["empty"] * 2
    )
    while len(pairs) < target:
        kind = rng.choice(plan)
        if kind in ("related", "multiline"):
            source, sentences = rng.choice(multi)
            i = rng.randrange(len(sentences) - 1)
            if kind == "related":
                add(kind, source, sentences[i + 1], sentences[i])
            else:
                chunk = sentences[i : i + rng.randint(2, 3)]
                edited = [_edit(s, rng, vocabulary) for s in chunk]
                if rng.random() < 0.3:
                    edited.reverse()
                add(kind, source, "\n".join(edited), "\n".join(chunk))
            continue
        source, sentences = rng.choice(docs)
        sentence = rng.choice(sentences)
        if kind == "edited":
            add(kind, source, _edit(sentence, rng, vocabulary), sentence)
        elif kind == "identical":
            add(kind, source, sentence, sentence)
        elif kind == "unrelated":
            other_source, others = rng.choice(docs)
            add(kind, f"{source} | {other_source}", rng.choice(others), sentence)
        else:
            add(kind, source, *(("", sentence) if rng.random() < 0.5 else (sentence, "")))
    return pairs


def main() -> None:
    pairs = build()
    with OUT.open("w", encoding="utf-8") as fh:
        for pair in pairs:
            fh.write(json.dumps(pair, ensure_ascii=False) + "\n")
    print(f"{len(pairs)} pairs from Python {sys.version.split()[0]}'s stdlib → {OUT}")


if __name__ == "__main__":
    main()
