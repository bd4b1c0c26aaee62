"""Rule scorers: deterministic, no model calls. Scores are in [0, 1]."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from assay_service.domain.scorers.base import ScorerArgs, ScoreResult, scorer, text_of

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WS = re.compile(r"\s+")


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _binary(ok: bool, labels: tuple[str, str], reasoning: str) -> ScoreResult:
    return ScoreResult(score=1.0 if ok else 0.0, label=labels[0] if ok else labels[1],
                       reasoning=reasoning)


# ------------------------------------------------------------------ exact_match
class ExactMatchArgs(ScorerArgs):
    case_sensitive: bool = True
    normalize_whitespace: bool = False
    ignore_punctuation: bool = False


def _normalize(text: str, args: ExactMatchArgs) -> str:
    if args.ignore_punctuation:
        text = text.translate(_PUNCTUATION)
    if args.normalize_whitespace or args.ignore_punctuation:
        text = _WS.sub(" ", text).strip()
    if not args.case_sensitive:
        text = text.casefold()
    return text


@scorer("exact_match", ExactMatchArgs)
def exact_match(record: Mapping[str, Any], args: ExactMatchArgs) -> ScoreResult:
    """1 when the field equals the reference after the chosen normalizations."""
    got = _normalize(text_of(record, args.field), args)
    want = _normalize(text_of(record, args.reference_field), args)
    if got == want:
        return _binary(True, ("match", "mismatch"), f"{args.field} equals {args.reference_field}")
    return _binary(False, ("match", "mismatch"),
                   f"{args.field} {_excerpt(got)!r} differs from {args.reference_field} "
                   f"{_excerpt(want)!r}")


# ------------------------------------------------------------------ contains / not_contains
class ContainsArgs(ScorerArgs):
    substring: str | None = None
    substrings: list[str] | None = Field(default=None, min_length=1)
    mode: Literal["any", "all"] = "any"
    case_sensitive: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> ContainsArgs:
        if self.substring is not None and self.substrings is not None:
            raise ValueError("give either 'substring' or 'substrings', not both")
        return self

    def needles(self, record: Mapping[str, Any]) -> list[str]:
        if self.substrings is not None:
            return list(self.substrings)
        if self.substring is not None:
            return [self.substring]
        return [text_of(record, self.reference_field)]


def _find(record: Mapping[str, Any], args: ContainsArgs) -> tuple[list[str], list[str]]:
    hay = text_of(record, args.field)
    needles = args.needles(record)
    if not args.case_sensitive:
        hay = hay.casefold()
    found, missing = [], []
    for needle in needles:
        probe = needle if args.case_sensitive else needle.casefold()
        (found if probe in hay else missing).append(needle)
    return found, missing


@scorer("contains", ContainsArgs)
def contains(record: Mapping[str, Any], args: ContainsArgs) -> ScoreResult:
    """1 when the field contains any (or all) of the substrings (default: the reference)."""
    found, missing = _find(record, args)
    ok = bool(found) if args.mode == "any" else not missing
    if ok:
        return _binary(True, ("found", "missing"), f"found {_excerpt(found[0])!r} in {args.field}")
    shown = missing if missing else found
    return _binary(False, ("found", "missing"),
                   f"{args.field} lacks {', '.join(repr(_excerpt(m, 30)) for m in shown[:3])}")


@scorer("not_contains", ContainsArgs)
def not_contains(record: Mapping[str, Any], args: ContainsArgs) -> ScoreResult:
    """1 when the field contains none (mode any) or not all (mode all) of the substrings."""
    found, missing = _find(record, args)
    bad = bool(found) if args.mode == "any" else not missing
    if bad:
        return _binary(False, ("absent", "present"),
                       f"{args.field} contains {_excerpt(found[0], 30)!r}")
    return _binary(True, ("absent", "present"), f"{args.field} contains none of the substrings")


# ------------------------------------------------------------------ starts_with
class StartsWithArgs(ScorerArgs):
    prefix: str | None = None
    case_sensitive: bool = True


@scorer("starts_with", StartsWithArgs)
def starts_with(record: Mapping[str, Any], args: StartsWithArgs) -> ScoreResult:
    """1 when the field starts with the prefix (default: the reference)."""
    text = text_of(record, args.field)
    prefix = args.prefix if args.prefix is not None else text_of(record, args.reference_field)
    if not args.case_sensitive:
        text, prefix = text.casefold(), prefix.casefold()
    ok = text.startswith(prefix)
    return _binary(ok, ("match", "mismatch"),
                   f"{args.field} {'starts' if ok else 'does not start'} with "
                   f"{_excerpt(prefix, 30)!r}")


# ------------------------------------------------------------------ regex
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class RegexArgs(ScorerArgs):
    pattern: str = Field(min_length=1, max_length=1000)
    mode: Literal["search", "fullmatch"] = "search"
    flags: list[Literal["i", "m", "s", "x"]] = Field(default_factory=list)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    def compiled(self) -> re.Pattern[str]:
        flags = 0
        for flag in self.flags:
            flags |= _FLAGS[flag]
        return _compile(self.pattern, flags)


_PATTERNS: dict[tuple[str, int], re.Pattern[str]] = {}


def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    key = (pattern, flags)
    compiled = _PATTERNS.get(key)
    if compiled is None:
        compiled = _PATTERNS[key] = re.compile(pattern, flags)
    return compiled


@scorer("regex", RegexArgs)
def regex(record: Mapping[str, Any], args: RegexArgs) -> ScoreResult:
    """1 when the pattern matches the field (search anywhere, or the whole field)."""
    text = text_of(record, args.field)
    pattern = args.compiled()
    match = pattern.search(text) if args.mode == "search" else pattern.fullmatch(text)
    if match:
        return _binary(True, ("match", "no_match"),
                       f"/{_excerpt(args.pattern, 40)}/ matched {_excerpt(match.group(0), 30)!r}")
    return _binary(False, ("match", "no_match"),
                   f"/{_excerpt(args.pattern, 40)}/ did not {args.mode} {args.field}")


# ------------------------------------------------------------------ json_valid
@scorer("json_valid", ScorerArgs)
def json_valid(record: Mapping[str, Any], args: ScorerArgs) -> ScoreResult:
    """1 when the field parses as JSON."""
    text = text_of(record, args.field)
    try:
        json.loads(text)
    except ValueError as exc:
        return _binary(False, ("valid", "invalid"), f"{args.field} is not JSON: {exc}")
    return _binary(True, ("valid", "invalid"), f"{args.field} is valid JSON")


# ------------------------------------------------------------------ length
class LengthArgs(ScorerArgs):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    unit: Literal["chars", "words"] = "chars"

    @model_validator(mode="after")
    def _bounds(self) -> LengthArgs:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        return self


@scorer("length", LengthArgs)
def length(record: Mapping[str, Any], args: LengthArgs) -> ScoreResult:
    """1 when the field's length in chars or words is within [min, max]."""
    text = text_of(record, args.field)
    size = len(text) if args.unit == "chars" else len(text.split())
    if args.min is not None and size < args.min:
        return ScoreResult(0.0, "too_short", f"{size} {args.unit} < min {args.min}")
    if args.max is not None and size > args.max:
        return ScoreResult(0.0, "too_long", f"{size} {args.unit} > max {args.max}")
    return ScoreResult(1.0, "within", f"{size} {args.unit} within bounds")
