"""A small JSON Schema (draft 2020-12) validator for the ``json_schema`` scorer.

Why not ``jsonschema``: it pulls ``referencing``/``rpds-py``/``attrs`` into the Lambda
package for a scorer that needs the assertion vocabulary only (see
docs/decisions/0003-scorer-implementations.md). Parity with ``jsonschema``'s
``Draft202012Validator`` on the supported keywords is tested in tests/parity.

Supported: type, enum, const, the numeric/string/array/object assertions, properties,
patternProperties, additionalProperties, propertyNames, required, dependentRequired,
dependentSchemas, prefixItems, items, contains/minContains/maxContains, allOf, anyOf,
oneOf, not, if/then/else, ``$ref`` to a local JSON pointer (``#``, ``#/$defs/x``),
``definitions``/``$defs``; annotations (title, description, format, default, examples…)
are ignored as in ``jsonschema``'s default. Anything else that changes validation
(``$dynamicRef``, ``unevaluated*``, remote refs) is rejected when the args are validated.

Budgets (``budgets.py``): one validation makes at most ``SCHEMA_STEP_BUDGET`` steps (a
keyword applied to a value; an item compared by ``enum`` or ``uniqueItems``)
and runs at most ``SCHEMA_TIME_BUDGET_MS``; its ``pattern``/``patternProperties`` regexes
share one ``REGEX_BUDGET_MS``. Past any of them ``first_violation`` raises
``BudgetExceededError``: a schema can be small and still ask for 2**32 steps
(``{"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/a"}]}},
"$ref": "#/$defs/a"}``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any
from urllib.parse import unquote

from assay_service.domain.scorers.budgets import (
    REGEX_BUDGET_MS,
    SCHEMA_STEP_BUDGET,
    SCHEMA_TIME_BUDGET_MS,
    BudgetExceededError,
    PatternError,
    bounded_search,
    compile_pattern,
)

_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
_SCHEMA_KEYS = ("additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else")
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_NON_NEGATIVE = (
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "maxContains",
    "minContains",
)
_NUMBERS = ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum")
_IGNORED = {
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
}
_UNSUPPORTED = {
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
    "dependencies",
}
_MAX_DEPTH = 64


class SchemaError(ValueError):
    """The schema itself is not a valid (supported) JSON Schema."""


class Violation:
    __slots__ = ("message", "path")

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message

    @property
    def where(self) -> str:
        out = "$"
        for part in self.path:
            out += (
                f"[{part}]"
                if isinstance(part, int)
                else (f".{part}" if part.isidentifier() else f"[{part!r}]")
            )
        return out

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_ok(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "number":
        return _is_number(value)
    if name == "integer":
        return _is_number(value) and (isinstance(value, int) or value.is_integer())
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _frozen(value: Any) -> Any:
    """A hashable form of a JSON value, equal for values ``_equal`` says are equal (so
    uniqueItems is one pass, not a comparison of every pair)."""
    if isinstance(value, bool):
        return ("bool", value)  # true == 1 in Python, not in JSON
    if isinstance(value, list):
        return ("list", tuple(_frozen(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _frozen(item)) for key, item in value.items()))
    return value  # null, numbers (1 == 1.0, as in JSON), strings


class _Walk:
    """One validation: the root schema (for ``$ref``) and what is left of its budgets."""

    __slots__ = ("budgets", "deadline", "regex_left", "root", "steps")

    def __init__(self, root: Any, steps: int, time_ms: float, regex_ms: float) -> None:
        self.root = root
        self.budgets = (steps, time_ms, regex_ms)
        self.steps = steps
        self.deadline = time.thread_time() + time_ms / 1000
        self.regex_left = regex_ms / 1000

    def step(self, count: int = 1) -> None:
        """Spend ``count`` steps; the clock is read about every 256 of them."""
        self.steps -= count
        if self.steps < 0:
            raise BudgetExceededError(f"validation exceeded its {self.budgets[0]:,}-step budget")
        if self.steps & 0xFF < count and time.thread_time() > self.deadline:
            raise BudgetExceededError(f"validation exceeded its {self.budgets[1]:g} ms budget")

    def search(self, pattern: str, text: str) -> bool:
        """``pattern`` found in ``text``, within what is left of the regex budget."""
        self.step()
        started = time.thread_time()
        try:
            found = bounded_search(_regex(pattern), text, self.regex_left)
        except TimeoutError:
            raise BudgetExceededError(
                f"pattern {_short(pattern)} exceeded the {self.budgets[2]:g} ms regex budget"
            ) from None
        finally:
            self.regex_left -= time.thread_time() - started
        return found is not None


def _regex(pattern: str):
    return compile_pattern(pattern)


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise SchemaError(f"$ref {ref!r}: only local references ('#/...') are supported")
    node = root
    if ref in ("#", "#/"):
        return root
    if not ref.startswith("#/"):
        raise SchemaError(f"$ref {ref!r}: anchors are not supported, use a JSON pointer")
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        part = unquote(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaError(f"$ref {ref!r} does not resolve")
    return node


def check_schema(schema: Any, root: Any = None, where: str = "schema") -> None:  # noqa: C901
    """Raise SchemaError naming the first problem if ``schema`` is not a supported schema."""
    root = schema if root is None else root
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a schema is an object or a boolean")
    for key, value in schema.items():
        at = f"{where}.{key}"
        if key in _UNSUPPORTED:
            raise SchemaError(f"{at}: keyword not supported")
        if key in _IGNORED:
            continue
        if key == "$ref":
            if not isinstance(value, str):
                raise SchemaError(f"{at}: must be a string")
            if not isinstance(_pointer(root, value), dict | bool):
                raise SchemaError(f"{at}: {value!r} does not point at a schema")
        elif key == "type":
            names = value if isinstance(value, list) else [value]
            if not names and isinstance(value, list):
                raise SchemaError(f"{at}: must not be empty")
            if any(n not in _TYPES for n in names) or len(set(map(str, names))) != len(names):
                raise SchemaError(f"{at}: must be one (or a list of unique) of {', '.join(_TYPES)}")
        elif key == "enum":
            if not isinstance(value, list):
                raise SchemaError(f"{at}: must be an array")
        elif key == "const":
            pass
        elif key in _NON_NEGATIVE:
            if not (_is_number(value) and float(value).is_integer() and value >= 0):
                raise SchemaError(f"{at}: must be a non-negative integer")
        elif key in _NUMBERS:
            if not _is_number(value):
                raise SchemaError(f"{at}: must be a number")
        elif key == "multipleOf":
            if not _is_number(value) or value <= 0:
                raise SchemaError(f"{at}: must be a number > 0")
        elif key == "pattern":
            if not isinstance(value, str):
                raise SchemaError(f"{at}: must be a string")
            try:
                _regex(value)
            except PatternError as exc:
                raise SchemaError(f"{at}: invalid regular expression: {exc}") from None
        elif key == "uniqueItems":
            if not isinstance(value, bool):
                raise SchemaError(f"{at}: must be a boolean")
        elif key == "required":
            if not (
                isinstance(value, list)
                and all(isinstance(v, str) for v in value)
                and len(set(value)) == len(value)
            ):
                raise SchemaError(f"{at}: must be an array of unique strings")
        elif key == "dependentRequired":
            if not (
                isinstance(value, dict)
                and all(
                    isinstance(v, list) and all(isinstance(s, str) for s in v) and len(set(v)) == len(v)
                    for v in value.values()
                )
            ):
                raise SchemaError(f"{at}: must map names to arrays of unique strings")
        elif key in _SCHEMA_KEYS:
            if key == "items" and isinstance(value, list):
                raise SchemaError(f"{at}: must be a schema (draft 2020-12: use prefixItems for tuples)")
            check_schema(value, root, at)
        elif key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                raise SchemaError(f"{at}: must be an object of schemas")
            for name, sub in value.items():
                if key == "patternProperties":
                    try:
                        _regex(name)
                    except PatternError as exc:
                        raise SchemaError(f"{at}: invalid regular expression {name!r}: {exc}") from None
                check_schema(sub, root, f"{at}.{name}")
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                raise SchemaError(f"{at}: must be a non-empty array of schemas")
            for index, sub in enumerate(value):
                check_schema(sub, root, f"{at}[{index}]")
        # Unknown keywords are annotations in 2020-12: ignored, as jsonschema does.


def iter_violations(
    instance: Any, schema: Any, walk: _Walk | None = None, path: tuple[str | int, ...] = (), depth: int = 0
) -> Iterator[Violation]:
    """Every violation of ``schema`` by ``instance``, in schema keyword order; raises
    BudgetExceededError past the budgets."""
    if walk is None:
        walk = _Walk(schema, SCHEMA_STEP_BUDGET, SCHEMA_TIME_BUDGET_MS, REGEX_BUDGET_MS)
    if schema is True:
        return
    if schema is False:
        yield Violation(path, "no value is allowed here (false schema)")
        return
    if depth > _MAX_DEPTH:
        yield Violation(path, "schema recursion too deep")
        return
    for key, value in schema.items():
        keyword = _KEYWORDS.get(key)
        if keyword is not None:
            walk.step()
            yield from keyword(instance, value, schema, walk, path, depth)


def first_violation(
    instance: Any,
    schema: Any,
    *,
    steps: int = SCHEMA_STEP_BUDGET,
    time_budget_ms: float = SCHEMA_TIME_BUDGET_MS,
    regex_budget_ms: float = REGEX_BUDGET_MS,
) -> Violation | None:
    """The first violation, or None; BudgetExceededError when the validation exceeds one
    of its budgets."""
    walk = _Walk(schema, steps, time_budget_ms, regex_budget_ms)
    return next(iter_violations(instance, schema, walk), None)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _k_ref(instance, value, schema, walk, path, depth):
    yield from iter_violations(instance, _pointer(walk.root, value), walk, path, depth + 1)


def _k_type(instance, value, schema, walk, path, depth):
    names = value if isinstance(value, list) else [value]
    if not any(_type_ok(instance, n) for n in names):
        yield Violation(path, f"{_short(instance)} is not of type {' or '.join(map(repr, names))}")


def _k_enum(instance, value, schema, walk, path, depth):
    walk.step(len(value))
    if not any(_equal(instance, v) for v in value):
        yield Violation(path, f"{_short(instance)} is not one of {_short(value, 60)}")


def _k_const(instance, value, schema, walk, path, depth):
    if not _equal(instance, value):
        yield Violation(path, f"{_short(value)} was expected")


def _numeric(check, describe):
    def keyword(instance, value, schema, walk, path, depth):
        if _is_number(instance) and not check(instance, value):
            yield Violation(path, f"{_short(instance)} {describe} {value}")

    return keyword


def _multiple_of(instance, value, schema, walk, path, depth):
    if not _is_number(instance):
        return
    if isinstance(value, float):
        quotient = instance / value
        try:
            failed = int(quotient) != quotient
        except OverflowError:
            failed = Fraction(instance) % Fraction(value) != 0
    else:
        failed = bool(instance % value)
    if failed:
        yield Violation(path, f"{_short(instance)} is not a multiple of {value}")


def _sized(kind, measure, check, describe):
    def keyword(instance, value, schema, walk, path, depth):
        if _type_ok(instance, kind) and not check(measure(instance), value):
            yield Violation(path, f"{_short(instance)} {describe} {value}")

    return keyword


def _k_pattern(instance, value, schema, walk, path, depth):
    if isinstance(instance, str) and not walk.search(value, instance):
        yield Violation(path, f"{_short(instance)} does not match {value!r}")


def _k_unique(instance, value, schema, walk, path, depth):
    if value and isinstance(instance, list):
        walk.step(len(instance))
        if len({_frozen(item) for item in instance}) < len(instance):
            yield Violation(path, f"{_short(instance)} has non-unique elements")


def _k_required(instance, value, schema, walk, path, depth):
    if isinstance(instance, dict):
        for name in value:
            if name not in instance:
                yield Violation(path, f"{name!r} is a required property")


def _k_dependent_required(instance, value, schema, walk, path, depth):
    if isinstance(instance, dict):
        for name, needs in value.items():
            if name in instance:
                for need in needs:
                    if need not in instance:
                        yield Violation(path, f"{need!r} is a dependency of {name!r}")


def _k_dependent_schemas(instance, value, schema, walk, path, depth):
    if isinstance(instance, dict):
        for name, sub in value.items():
            if name in instance:
                yield from iter_violations(instance, sub, walk, path, depth + 1)


def _k_properties(instance, value, schema, walk, path, depth):
    if isinstance(instance, dict):
        for name, sub in value.items():
            if name in instance:
                yield from iter_violations(instance[name], sub, walk, (*path, name), depth + 1)


def _k_pattern_properties(instance, value, schema, walk, path, depth):
    if isinstance(instance, dict):
        for pattern, sub in value.items():
            for name, item in instance.items():
                if walk.search(pattern, name):
                    yield from iter_violations(item, sub, walk, (*path, name), depth + 1)


def _k_additional(instance, value, schema, walk, path, depth):
    if not isinstance(instance, dict):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [n for n in instance if n not in known and not any(walk.search(p, n) for p in patterns)]
    if value is False and extras:
        yield Violation(
            path, f"additional properties are not allowed ({', '.join(map(repr, extras[:3]))} unexpected)"
        )
        return
    for name in extras:
        yield from iter_violations(instance[name], value, walk, (*path, name), depth + 1)


def _k_property_names(instance, value, schema, walk, path, depth):
    if isinstance(instance, dict):
        for name in instance:
            yield from iter_violations(name, value, walk, path, depth + 1)


def _k_prefix_items(instance, value, schema, walk, path, depth):
    if isinstance(instance, list):
        for index, (item, sub) in enumerate(zip(instance, value, strict=False)):
            yield from iter_violations(item, sub, walk, (*path, index), depth + 1)


def _k_items(instance, value, schema, walk, path, depth):
    if isinstance(instance, list):
        start = len(schema.get("prefixItems", ()))
        if value is False and len(instance) > start:
            yield Violation(path, f"expected at most {start} items, got {len(instance)}")
            return
        for index in range(start, len(instance)):
            yield from iter_violations(instance[index], value, walk, (*path, index), depth + 1)


def _k_contains(instance, value, schema, walk, path, depth):
    if not isinstance(instance, list):
        return
    matches = sum(1 for item in instance if first_match(item, value, walk, depth) is None)
    low = schema.get("minContains", 1)
    high = schema.get("maxContains")
    if matches < low:
        yield Violation(
            path,
            f"{_short(instance)} contains {matches} matching items, fewer than {low}"
            if low != 1
            else f"{_short(instance)} does not contain a matching item",
        )
    elif high is not None and matches > high:
        yield Violation(path, f"{_short(instance)} contains {matches} matching items, more than {high}")


def first_match(instance: Any, schema: Any, walk: _Walk, depth: int) -> Violation | None:
    return next(iter_violations(instance, schema, walk, (), depth + 1), None)


def _k_all_of(instance, value, schema, walk, path, depth):
    for sub in value:
        yield from iter_violations(instance, sub, walk, path, depth + 1)


def _k_any_of(instance, value, schema, walk, path, depth):
    if all(first_match(instance, sub, walk, depth) is not None for sub in value):
        yield Violation(path, f"{_short(instance)} is not valid under any of the given schemas")


def _k_one_of(instance, value, schema, walk, path, depth):
    passed = sum(1 for sub in value if first_match(instance, sub, walk, depth) is None)
    if passed == 0:
        yield Violation(path, f"{_short(instance)} is not valid under any of the given schemas")
    elif passed > 1:
        yield Violation(path, f"{_short(instance)} is valid under {passed} of the oneOf schemas")


def _k_not(instance, value, schema, walk, path, depth):
    if first_match(instance, value, walk, depth) is None:
        yield Violation(path, f"{_short(instance)} should not be valid under {_short(value)}")


def _k_if(instance, value, schema, walk, path, depth):
    if first_match(instance, value, walk, depth) is None:
        if "then" in schema:
            yield from iter_violations(instance, schema["then"], walk, path, depth + 1)
    elif "else" in schema:
        yield from iter_violations(instance, schema["else"], walk, path, depth + 1)


_KEYWORDS = {
    "$ref": _k_ref,
    "type": _k_type,
    "enum": _k_enum,
    "const": _k_const,
    "multipleOf": _multiple_of,
    "maximum": _numeric(lambda i, v: i <= v, "is greater than the maximum of"),
    "exclusiveMaximum": _numeric(lambda i, v: i < v, "is greater than or equal to the maximum of"),
    "minimum": _numeric(lambda i, v: i >= v, "is less than the minimum of"),
    "exclusiveMinimum": _numeric(lambda i, v: i > v, "is less than or equal to the minimum of"),
    "maxLength": _sized("string", len, lambda n, v: n <= v, "is longer than"),
    "minLength": _sized("string", len, lambda n, v: n >= v, "is shorter than"),
    "maxItems": _sized("array", len, lambda n, v: n <= v, "has more items than"),
    "minItems": _sized("array", len, lambda n, v: n >= v, "has fewer items than"),
    "maxProperties": _sized("object", len, lambda n, v: n <= v, "has more properties than"),
    "minProperties": _sized("object", len, lambda n, v: n >= v, "has fewer properties than"),
    "pattern": _k_pattern,
    "uniqueItems": _k_unique,
    "required": _k_required,
    "dependentRequired": _k_dependent_required,
    "dependentSchemas": _k_dependent_schemas,
    "properties": _k_properties,
    "patternProperties": _k_pattern_properties,
    "additionalProperties": _k_additional,
    "propertyNames": _k_property_names,
    "prefixItems": _k_prefix_items,
    "items": _k_items,
    "contains": _k_contains,
    "allOf": _k_all_of,
    "anyOf": _k_any_of,
    "oneOf": _k_one_of,
    "not": _k_not,
    "if": _k_if,
}
