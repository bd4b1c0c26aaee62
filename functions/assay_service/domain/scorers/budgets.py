"""Budgets for what tenants write into an eval: regular expressions and JSON Schemas.

A user's pattern or schema can take exponential time on a short text (``(a|a)+$`` on
``"a"*40 + "!"``, a schema whose ``anyOf`` refers to itself twice). Every evaluation that
runs one is bounded, and an evaluation that exceeds its budget fails with the reason
(``BudgetExceededError``, a failed evaluation like any record a scorer cannot handle); the
batch goes on. ``domain/scoring.py`` adds the per-batch bounds (the circuit breaker and
the batch's time budget). Values and the worst cases they give: docs/scorers.md, "Budgets";
why: docs/decisions/0010-scorer-budgets-and-fairness.md.

Patterns are Python ``re`` syntax, checked by ``re``'s own parser, and run by the ``regex``
package (mrab-regex), whose matcher takes a ``timeout``: ``re`` has none, and a running
``re`` match cannot be interrupted short of killing the process.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

# re's parser: the parse tree ``re`` compiles from, which the expansion estimate walks
# (``regex`` has no public one). Private, but the same in 3.12 and 3.13 (Python is pinned).
from re import _constants as _sre  # type: ignore[attr-defined]  # not in typeshed
from re import _parser as _sre_parse  # type: ignore[attr-defined]  # not in typeshed

import regex as _regex

from assay_service.errors import InvalidRecordError

# Processor time one regex evaluation may take (one ``search``/``fullmatch`` of the regex
# scorer; all the ``pattern``/``patternProperties`` matches of one json_schema evaluation
# together), counted on this thread's clock by ``bounded_search``: a busy or throttled CPU
# stretches it in wall time (a 1,024 MB Lambda has ~0.6 vCPU: ~170 ms). Well-behaved
# patterns take microseconds on a 100,000-character text.
REGEX_BUDGET_MS = 100
# Steps one json_schema evaluation may make: a keyword applied to a value, an enum value
# compared, an item of a uniqueItems array (1-4 µs a step). Room for the densest output a
# record holds: 33,000 numbers in 100,000 characters, each checked by type, minimum and
# maximum, take 99,002 steps (~90 ms).
SCHEMA_STEP_BUDGET = 100_000
# Processor time one json_schema evaluation may take, whatever its steps cost: steps that
# recurse deep cost more (the 96-byte recursive schema reaches 250 ms in ~70,000 steps).
SCHEMA_TIME_BUDGET_MS = 250
# Overruns of one metric in one batch after which its remaining evaluations in that batch
# fail at once (the circuit breaker).
BREAKER_OVERRUNS = 3
# Time one batch may spend in budgeted scorers (regex, json_schema) in all; past it their
# remaining evaluations in the batch fail at once. ScoreBatchFunction's timeout is 300 s.
BATCH_BUDGET_S = 60.0
# A pattern's size once its fixed repeats are unrolled, as ``regex`` compiles them
# (``(a{1000}){1000}`` is 1,000,000). ``regex`` spends ~200 bytes a unit compiling:
# ``((a{1000}){1000}){1000}`` would need 200 GB, so such patterns are rejected up front.
PATTERN_EXPANSION_LIMIT = 100_000

_FLAGS = {"i": _regex.IGNORECASE, "m": _regex.MULTILINE, "s": _regex.DOTALL, "x": _regex.VERBOSE}
_RE_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class BudgetExceededError(InvalidRecordError):
    """An evaluation exceeded its budget (or was not run because its metric tripped the
    batch's circuit breaker): a failed evaluation whose message says which budget."""


class PatternError(ValueError):
    """A pattern that does not compile, or whose compiled form would be too large."""


_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT}


def _expansion(items: _sre_parse.SubPattern | list, limit: int) -> int:
    """An upper bound of the pattern's size with every repeat unrolled to its upper count
    (its lower one when unbounded); stops counting past ``limit``."""
    total = 0
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            count = low if high == _sre.MAXREPEAT else high
            total += max(count, 1) * _expansion(sub, limit)
        elif op is _sre.SUBPATTERN:
            total += 1 + _expansion(av[3], limit)
        elif op is _sre.BRANCH:
            total += 1 + sum(_expansion(branch, limit) for branch in av[1])
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            total += 1 + _expansion(av[1], limit)
        elif op is _sre.ATOMIC_GROUP:
            total += 1 + _expansion(av, limit)
        elif op is _sre.GROUPREF_EXISTS:
            total += 1 + _expansion(av[1], limit) + (_expansion(av[2], limit) if av[2] else 0)
        else:
            total += 1
        if total > limit:
            return total
    return total


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, flags: str = "") -> _regex.Pattern[str]:
    """The pattern compiled by ``regex`` (``re``-compatible VERSION0) with flags among
    ``imsx``; PatternError when ``re`` rejects it or it would unroll past the limit."""
    re_flags = 0
    for flag in flags:
        re_flags |= _RE_FLAGS[flag]
    try:
        parsed = _sre_parse.parse(pattern, re_flags)
    except (re.error, RecursionError, OverflowError) as exc:
        raise PatternError(str(exc)) from None
    if _expansion(parsed, PATTERN_EXPANSION_LIMIT) > PATTERN_EXPANSION_LIMIT:
        raise PatternError(
            f"its repeats unroll to more than {PATTERN_EXPANSION_LIMIT:,} "
            "elements (nested counted repeats such as (a{1000}){1000})"
        )
    regex_flags = _regex.VERSION0
    for flag in flags:
        regex_flags |= _FLAGS[flag]
    try:
        compiled = _regex.compile(pattern, regex_flags)
    except (_regex.error, RecursionError, OverflowError, MemoryError) as exc:
        raise PatternError(str(exc) or type(exc).__name__) from None
    if _fuzzy(pattern, regex_flags):
        raise PatternError(
            "'{' followed by e, i, d or s is a fuzzy-matching constraint in the "
            "regex package but literal text in re: escape it (\\{) to match it"
        )
    return compiled


# ``regex``'s clock is the whole process's CPU time: other threads working meanwhile (judge
# calls, a test harness's concurrent invocations) spend a match's budget too, and a pattern
# that needs microseconds could time out. A timeout counts as an overrun only when this
# thread itself computed for at least half the budget; otherwise the match is tried again,
# at most this many times in all.
MATCH_ATTEMPTS = 3


def bounded_search(
    pattern: _regex.Pattern[str], text: str, budget_s: float, *, fullmatch: bool = False
) -> _regex.Match[str] | None:
    """``pattern.search`` (or ``fullmatch``) of ``text`` within ``budget_s`` of this
    thread's processor time; TimeoutError past it. The GIL is held during the match
    (``concurrent=False``), so this thread's clock is what the match costs."""
    method = pattern.fullmatch if fullmatch else pattern.search
    spent = 0.0
    for _ in range(MATCH_ATTEMPTS):
        started = time.thread_time()
        try:
            return method(text, concurrent=False, timeout=max(budget_s, 1e-6))
        except TimeoutError:
            spent += time.thread_time() - started
            if spent >= budget_s / 2:
                raise
    raise TimeoutError("regex timed out")


def _fuzzy(pattern: str, flags: int) -> bool:
    """Whether ``regex`` reads part of the pattern as a fuzzy constraint (``(?:ab){e<=1}``)
    where ``re`` reads literal braces: the one syntax both accept with different meanings
    (tests/unit/test_scorer_budgets.py checks this still detects it)."""
    from regex import _regex_core as core

    try:
        source = core.Source(pattern)
        parsed = core._parse_pattern(source, core.Info(flags, source.char_type, {}))
    except Exception:
        return False
    todo: list = [parsed]
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, core.Fuzzy):
            return True
        if isinstance(node, core.RegexBase):
            todo.extend(getattr(node, "__dict__", {}).values())
        elif isinstance(node, list | tuple):
            todo.extend(node)
    return False


__all__ = [
    "BATCH_BUDGET_S",
    "BREAKER_OVERRUNS",
    "PATTERN_EXPANSION_LIMIT",
    "REGEX_BUDGET_MS",
    "SCHEMA_STEP_BUDGET",
    "SCHEMA_TIME_BUDGET_MS",
    "BudgetExceededError",
    "PatternError",
    "bounded_search",
    "compile_pattern",
]
