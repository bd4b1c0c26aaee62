"""The scorers' C extension: GIVEN arbitrary tokens and lines, WHEN each function runs,
THEN it equals the pure-Python computation it replaces (Counter intersections, a
dynamic-programming LCS, the 13a regular expressions, the tokenizers' regexes), and bad
input raises instead of crashing."""

from __future__ import annotations

import re
import string
from collections import Counter

import pytest
from assay_service.domain.scorers import textmetrics as tm
from hypothesis import given, settings
from hypothesis import strategies as st

native = tm._loaded  # the extension itself, whichever implementation is in use
SETTINGS = settings(derandomize=True, max_examples=500, deadline=None, database=None)
WORDS = st.sampled_from(
    ["a", "b", "c", "the", "cat", "é", "猫", "", " ", "\x00", "\ud800", 1, 1.0, True, 2 << 40]
)  # 1 == 1.0 == True, as Counter counts them
TOKENS = st.lists(WORDS, max_size=40).map(tuple)


def test_the_tests_run_the_extension():
    assert native is not None, "the _fastmetrics extension is not built (make install)"
    assert tm.implementation() == "native"


def counter_matches(a, b, n):
    grams = [Counter(zip(*[x[i:] for i in range(n)], strict=False)) for x in (a, b)]
    return sum((grams[0] & grams[1]).values())


def dp_lcs(a, b):
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


@SETTINGS
@given(a=TOKENS, b=TOKENS, max_n=st.integers(1, 6))
def test_ngram_matches_equal_counter_intersections(a, b, max_n):
    assert native.ngram_matches(a, b, max_n) == tuple(counter_matches(a, b, n) for n in range(1, max_n + 1))


@SETTINGS
@given(a=TOKENS, b=TOKENS)
def test_lcs_equals_dynamic_programming(a, b):
    assert native.lcs_length(a, b) == dp_lcs(a, b) == tm._py_lcs_length(a, b)


@SETTINGS
@given(
    a=st.lists(st.sampled_from("abcd"), min_size=60, max_size=200).map(tuple),
    b=st.lists(st.sampled_from("abcde"), min_size=1, max_size=200).map(tuple),
)
def test_lcs_across_64_bit_words(a, b):
    assert native.lcs_length(a, b) == tm._py_lcs_length(a, b)


class Colliding:
    """Equal by value, every instance hashing alike: equality must decide, not the hash."""

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return 7

    def __eq__(self, other):
        return isinstance(other, Colliding) and self.value == other.value


def test_equal_hashes_are_not_equal_tokens():
    a = tuple(map(Colliding, "abcab"))
    b = tuple(map(Colliding, "bcaxx"))
    assert native.ngram_matches(a, b, 2) == (counter_matches(a, b, 1), counter_matches(a, b, 2))
    assert native.lcs_length(a, b) == dp_lcs(a, b) == 3


def test_inputs_too_large_for_the_bit_tables_fall_back_to_python():
    a = tuple(f"w{i}" for i in range(20_000))  # 20,000 distinct tokens x 313 words > 32 MB
    b = a[::-1][:19_000] + a[:500]
    assert native.lcs_length(a, b) is None
    assert tm.lcs_length(a, b) == 500 == tm._py_lcs_length(a, b)


def test_bad_input_raises():
    with pytest.raises(TypeError, match="tuples"):
        native.ngram_matches(["a"], ("a",), 1)
    with pytest.raises(TypeError, match="unhashable"):
        native.lcs_length((["a"],), ("b",))
    with pytest.raises(ValueError, match="max_n"):
        native.ngram_matches((), (), 0)
    with pytest.raises(ValueError, match="ASCII"):
        native.alnum_runs("café")

    class Broken(Colliding):
        __hash__ = Colliding.__hash__

        def __eq__(self, other):
            raise RuntimeError("no comparing")

    with pytest.raises(RuntimeError, match="no comparing"):
        native.ngram_matches((Broken(1),), (Broken(2),), 1)


# ---- tokenizers ------------------------------------------------------------------------
_13A_CHARS = st.sampled_from(
    list(" .,-0123456789ab\n\t") + list(string.punctuation) + ["é", "\u2028", "\ud800", "\x85"]
)
LINES = st.one_of(st.text(_13A_CHARS, max_size=60), st.text(max_size=60))


def regex_13a(line):
    line = tm._13A_PAD.sub(r" \1 ", f" {line} ")
    for pattern, repl in (*tm._13A_POINT, tm._13A_DASH):
        line = pattern.sub(repl, line)
    return line


@SETTINGS
@given(line=LINES)
def test_pad_13a_equals_the_regular_expressions(line):
    assert native.pad_13a(line) == regex_13a(line)


ASCII = st.text(st.characters(max_codepoint=127), max_size=60)


@SETTINGS
@given(line=st.one_of(ASCII, st.text(st.sampled_from("the a an x1 _-.\x01\x1c\t"), max_size=40)))
def test_ascii_tokenizers_equal_their_regular_expressions(line):
    line = line.lower()
    assert native.alnum_runs(line) == tuple(re.findall(r"[a-z0-9]+", line))
    words = native.squad_words(line)
    no_punct = "".join(ch for ch in line if ch not in string.punctuation)
    want = tuple(re.sub(r"\b(a|an|the)\b", " ", no_punct).split())
    if words is None:  # only where a word holds a control character
        assert any(not (w.isalnum()) for w in no_punct.split())
    else:
        assert words == want
