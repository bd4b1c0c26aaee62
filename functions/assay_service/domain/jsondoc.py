"""One way in for JSON: every HTTP request body and every line of an uploaded JSONL file.

Parsing is jiter's (``pydantic_core.from_json``, the parser behind pydantic's
``model_validate_json``): it refuses ``NaN``/``Infinity`` literals, lone-surrogate escapes,
invalid UTF-8, raw control characters in strings, integers of more than 4,300 digits and
anything nested deeper than 200 levels — without ever raising ``RecursionError``. One cheap
walk over the result then applies the limits below, so that whatever is accepted can always
be stored and read back, by pydantic (``model_validate_json``: ~200 levels) as by Python's
``json`` (~1,000 levels) and Powertools' response encoder (a few stack frames per level).

The limits, in one place (``docs/api-limits.md`` lists them for users):

* ``MAX_DEPTH`` (64): containers nested in one document — a request body or an upload line.
  In a body a record sits at depth 3 (``{"records": [{...}]}``), a metric's ``args`` at
  depth 4; free-form values have their own, smaller limit, so this one only stops nonsense.
* ``MAX_VALUE_DEPTH`` (32): containers nested in a free-form value (a record's
  ``metadata``, a metric's ``args``, a run's ``metric_args`` overrides), counted from the
  value itself — so an inline record and the same record uploaded as a JSONL line get the
  same verdict. A stored record line is at most 33 levels deep, far below every reader's limit.
* Numbers: floats must be finite (``1e999`` parses as infinity: refused); integers must have
  at most ``MAX_INT_DIGITS`` (38) digits — DynamoDB's number precision, so any accepted number
  can be stored exactly as a DynamoDB number, and far below Python's 4,300-digit int/str
  conversion limit. (Integers beyond 2**53 lose precision in JavaScript clients; that is the
  client's concern, as with any JSON.)
* Strings: valid Unicode — no lone surrogate, escaped (``"\\ud800"``) or raw (invalid UTF-8).
* ``MAX_METADATA_CHARS`` (100,000): a record's ``metadata`` serialized as stored (compact JSON),
  like the 100,000-character limit of each record text field.

Violations raise ``JSONDocumentError`` (an ``InvalidFormatError``: a 400,
``validation.invalid_format``) whose message names where, e.g.
``body.records[3].metadata.a.b: nested deeper than 64 levels``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticCustomError, from_json, to_json

from assay_service.errors import InvalidFormatError

MAX_DEPTH = 64
MAX_VALUE_DEPTH = 32
MAX_INT_DIGITS = 38
MAX_METADATA_CHARS = 100_000

_INT_BOUND = 10**MAX_INT_DIGITS  # |n| < 10**38: at most 38 digits
_isfinite = math.isfinite
_KEY_SHOWN = 40  # characters of an object key a location shows
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_JITER_POSITION = re.compile(r" at line (\d+) column (\d+)$")

NOT_FINITE = "NaN and Infinity are not JSON numbers"
OUT_OF_RANGE_FLOAT = "number out of range: JSON numbers here must be finite (|x| < 1.8e308)"
OUT_OF_RANGE_INT = f"integer out of range: at most {MAX_INT_DIGITS} digits"
LONE_SURROGATE = "a lone surrogate (\\ud800-\\udfff) is not valid Unicode"
VALUE_ERROR = "json_value"  # the pydantic error type of checked_value


def too_deep(limit: int) -> str:
    return f"nested deeper than {limit} levels"


class JSONDocumentError(InvalidFormatError):
    """A JSON document the service refuses: malformed, or beyond one of the limits."""

    def __init__(self, where: str, problem: str) -> None:
        loc = where or "document"
        super().__init__(f"{loc}: {problem}", details={"errors": [{"loc": loc, "msg": problem}]})
        self.where = where
        self.problem = problem


class _Found(Exception):
    """A limit broken somewhere below; each frame adds its key on the way up."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.parts: list[str | int] = []


def _within(node: dict[str, Any] | list[Any], depth: int, limit: int) -> bool:
    """Whether ``node`` keeps every limit: the fast pass (no keys, no paths)."""
    if depth > limit:
        return False
    value: Any  # to mypy the ``else`` node may be a dict subclass (iterating its str keys)
    for value in node.values() if type(node) is dict else node:
        kind = type(value)
        if kind is str:
            continue
        if kind is dict or kind is list:
            if not _within(value, depth + 1, limit):
                return False
        elif kind is float:
            if not _isfinite(value):
                return False
        elif kind is int and not -_INT_BOUND < value < _INT_BOUND:
            return False
    return True


def _walk(node: dict[str, Any] | list[Any], depth: int, limit: int) -> None:
    """The slow pass, once something is wrong: raise ``_Found`` with the path to it."""
    if depth > limit:
        raise _Found(too_deep(limit))
    pairs = node.items() if type(node) is dict else enumerate(node)
    for key, value in pairs:
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        try:
            if kind is dict or kind is list:
                _walk(value, depth + 1, limit)
            elif kind is float:
                if not _isfinite(value):
                    raise _Found(NOT_FINITE if value != value else OUT_OF_RANGE_FLOAT)
            elif kind is int and not -_INT_BOUND < value < _INT_BOUND:
                raise _Found(OUT_OF_RANGE_INT)
        except _Found as found:
            found.parts.append(key)
            raise


def location(where: str, parts: list[str | int]) -> str:
    """``where`` then each key (``.name`` or ``["odd key"]``) and index (``[3]``)."""
    out = where
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        shown = part if len(part) <= _KEY_SHOWN else part[:_KEY_SHOWN] + "…"
        if _PLAIN_KEY.fullmatch(part):
            out += f".{shown}" if out else shown
        else:
            out += "[" + to_json(shown).decode() + "]"
    return out


def _find(value: Any, limit: int) -> tuple[list[str | int], str] | None:
    """The path to the first place ``value`` breaks a limit, and how; or None.

    Depth counts ``value`` itself as level 1 when it is an object or an array."""
    container = type(value) is dict or type(value) is list
    if _within(value if container else [value], 1 if container else 0, limit):
        return None
    try:
        _walk(value if container else [value], 1 if container else 0, limit)
    except _Found as found:
        parts = found.parts[::-1]
        return (parts if container else parts[1:]), found.problem  # not the wrapper's index
    return None


def value_problem(value: Any, limit: int = MAX_VALUE_DEPTH) -> tuple[str, str] | None:
    """Where (relative to ``value``, e.g. ``a.b[2]``) a decoded value breaks a limit, and
    how; or None."""
    found = _find(value, limit)
    return None if found is None else (location("", found[0]), found[1])


def checked_value(value: Any, limit: int = MAX_VALUE_DEPTH) -> Any:
    """A pydantic validator's body for a free-form value (``metadata``, ``args``): the value,
    or a ``json_value`` error whose context ``at`` says where inside it (``error_suffix``)."""
    found = value_problem(value, limit)
    if found is not None:
        raise PydanticCustomError(VALUE_ERROR, "{problem}", {"at": found[0], "problem": found[1]})
    return value


def checked_entries(value: dict[str, Any], limit: int = MAX_VALUE_DEPTH) -> dict[str, Any]:
    """``checked_value`` for each value of an object, each counted from itself (a run's
    ``metric_args``: the overrides of each metric get the room of a metric's ``args``)."""
    for key, entry in value.items():
        found = value_problem(entry, limit)
        if found is not None:
            inner = found[0] if found[0][:1] in ("", "[") else "." + found[0]
            raise PydanticCustomError(
                VALUE_ERROR, "{problem}", {"at": location("", [key]) + inner, "problem": found[1]}
            )
    return value


def error_suffix(error: Mapping[str, Any]) -> str:
    """What a pydantic error's location needs appended: the place inside a free-form value."""
    if error.get("type") != VALUE_ERROR:
        return ""
    at = str((error.get("ctx") or {}).get("at", ""))
    return at if at[:1] in ("", "[") else "." + at


def check(value: Any, where: str = "body", limit: int = MAX_DEPTH) -> Any:
    """``value`` itself if it is within the limits (e.g. a stored document), else raise."""
    found = _find(value, limit)
    if found is not None:
        raise JSONDocumentError(location(where, found[0]), found[1])
    return value


def _jiter_problem(text: bytes, message: str) -> str:
    """jiter's message, said in terms of the limits above where it is about one of them."""
    match = _JITER_POSITION.search(message)
    what = message[: match.start()] if match else message
    at = ""
    index = -1
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        at = f" (line {line}, column {column})"
        start = 0
        for _ in range(line - 1):
            start = text.find(b"\n", start) + 1
        index = start + column - 1  # jiter counts bytes, from 1
    if what == "recursion limit exceeded":
        return too_deep(MAX_DEPTH) + at
    if what == "number out of range":  # a run of over 4,300 digits (Python's int/str limit)
        return OUT_OF_RANGE_INT + at
    if what == "lone leading surrogate in hex escape" or (
        what == "unexpected end of hex escape"
        and index >= 6
        and _SURROGATE_ESCAPE.fullmatch(text, index - 6, index)
    ):
        return LONE_SURROGATE + at
    if what == "invalid unicode code point":
        return "not valid UTF-8" + at
    if index >= 0 and (
        (what == "expected value" and text.startswith((b"NaN", b"Infinity"), index))
        or (what == "invalid number" and text.startswith(b"-Infinity", index - 1))
    ):
        return NOT_FINITE + at
    return f"malformed JSON: {what}{at}"


def decode(data: str | bytes | bytearray, where: str = "body", limit: int = MAX_DEPTH) -> Any:
    """Parse one JSON document and check it against the limits above.

    ``where`` prefixes locations in messages (``body``; empty for an upload line, whose
    caller names the line)."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JSONDocumentError(where, f"{LONE_SURROGATE} (character {exc.start + 1})") from None
    else:
        raw = bytes(data)
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise JSONDocumentError(where, _jiter_problem(raw, str(exc))) from None
    return check(value, where, limit)


def json_size(value: Any) -> int:
    """Characters of ``value`` as compact JSON (what a stored record holds)."""
    encoded = to_json(value)
    return len(encoded) if encoded.isascii() else len(encoded.decode())
