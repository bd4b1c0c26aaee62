"""IAM identity-policy evaluation: statements (Action/NotAction, Resource/NotResource,
``*`` and ``?`` wildcards), an explicit Deny over any Allow, and the Condition operators
and keys the local stack evaluates (the package docstring lists them)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

Context = Mapping[str, tuple[str, ...]]  # condition key (lower case) -> the request's values


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Check:
    """One authorization a request needs: an action on a resource, with the condition
    keys the request supplies."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@lru_cache(maxsize=4096)
def wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """An IAM pattern (``*`` any run of characters, ``?`` one) as a compiled regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    condition: Mapping[str, Mapping[str, Any]]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        return cls(
            allow=raw.get("Effect") == "Allow",
            actions=_as_tuple(raw.get("NotAction", raw.get("Action"))),
            not_action="NotAction" in raw,
            resources=_as_tuple(raw.get("NotResource", raw.get("Resource"))),
            not_resource="NotResource" in raw,
            condition=raw.get("Condition") or {},
        )

    def applies(self, check: Check) -> bool:
        """Action and resource match and the conditions hold (as far as evaluated)."""
        action = any(wildcard(a, True).fullmatch(check.action) for a in self.actions)
        if action == self.not_action:
            return False
        resource = any(wildcard(r).fullmatch(check.resource) for r in self.resources)
        if resource == self.not_resource:
            return False
        if not self.condition:
            return True
        met = conditions_met(self.condition, check.context)
        # Not evaluable locally: the broader reading for either effect (package docstring).
        return self.allow if met is None else met


@lru_cache(maxsize=512)
def parse_policy(document: str) -> tuple[Statement, ...]:
    """A policy document's statements (cached by the document's text)."""
    statements = json.loads(document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return tuple(Statement.parse(s) for s in statements)


def evaluate(statements: Iterable[Statement], check: Check) -> Decision:
    """IAM's identity-policy logic: an explicit Deny wins, then an Allow, else implicit."""
    allowed = False
    for statement in statements:
        if statement.applies(check):
            if not statement.allow:
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


# ------------------------------------------------------------------------- conditions
SUPPORTED_KEYS = frozenset(
    {
        "dynamodb:leadingkeys",
        "s3:prefix",
        "aws:securetransport",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:requestedregion",
    }
)


def _string_match(value: str, pattern: str) -> bool:
    return value == pattern


def _string_match_ci(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower()


def _like(value: str, pattern: str) -> bool:
    return wildcard(pattern).fullmatch(value) is not None


# operator -> (match function, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (_string_match, False),
    "stringnotequals": (_string_match, True),
    "stringequalsignorecase": (_string_match_ci, False),
    "stringnotequalsignorecase": (_string_match_ci, True),
    "stringlike": (_like, False),
    "stringnotlike": (_like, True),
    "arnequals": (_like, False),
    "arnlike": (_like, False),
    "arnnotequals": (_like, True),
    "arnnotlike": (_like, True),
    "bool": (_string_match_ci, False),
}


def _one_condition(operator: str, key: str, expected: Any, context: Context) -> bool | None:
    qualifier, _, base = operator.rpartition(":")
    qualifier, base = qualifier.lower(), base.lower()
    if_exists = base.endswith("ifexists")
    if if_exists:
        base = base[: -len("ifexists")]
    if key.lower() not in SUPPORTED_KEYS or qualifier not in ("", "forallvalues", "foranyvalue"):
        return None
    values = context.get(key.lower(), ())
    patterns = _as_tuple(expected)
    if base == "null":
        want_absent = any(p.lower() == "true" for p in patterns)
        return (not values) == want_absent
    if base not in _OPERATORS:
        return None
    match, negated = _OPERATORS[base]
    if not values:  # the key is absent from the request
        if if_exists or qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return negated
    results = [any(match(v, p) for p in patterns) != negated for v in values]
    if qualifier == "forallvalues":
        return all(results)
    if qualifier == "foranyvalue":
        return any(results)
    return all(results) if negated else any(results)


def conditions_met(condition: Mapping[str, Mapping[str, Any]], context: Context) -> bool | None:
    """A statement's Condition block: True, False, or None when it uses a key or
    operator this module does not evaluate (and nothing it does evaluate is false)."""
    unknown = False
    for operator, keys in condition.items():
        for key, expected in keys.items():
            met = _one_condition(operator, key, expected, context)
            if met is False:
                return False
            unknown |= met is None
    return None if unknown else True
