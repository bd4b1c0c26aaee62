"""Scorer registry and the shared argument model.

A scorer declares a pydantic model of its arguments (validated when an eval version is
created, so a bad regex or an unknown option is a 400 naming the metric, not a failed
run) and a pure function ``(record, args) -> ScoreResult``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from assay_service.errors import InvalidRecordError

EvaluatorType = Literal["rule", "llm"]

RECORD_TEXT_FIELDS = ("prompt", "input", "context", "output", "golden_answer")


class ScorerArgs(BaseModel):
    """Arguments every rule scorer understands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: Literal["prompt", "input", "context", "output", "golden_answer"] = "output"
    reference_field: Literal["prompt", "input", "context", "output", "golden_answer"] = "golden_answer"


# Not frozen: a frozen dataclass sets each field through object.__setattr__, 5x the cost
# of this one (~1 µs vs 0.2 µs), paid once per evaluation. Treat it as a value anyway.
@dataclass(slots=True)
class ScoreResult:
    score: float
    label: str
    reasoning: str
    confidence: float | None = None
    metadata: dict[str, Any] | None = None
    cost: float | None = None  # USD, for scorers that call a paid model (LLM judges)
    passed: bool | None = None  # a scorer's own verdict (rubric pass mark); else score ≥ threshold


@dataclass(frozen=True, slots=True)
class Needs:
    """A record field a scorer reads and cannot score without: the one its argument ``arg``
    names (``field`` → ``output`` by default). ``unless``: not needed when one of these
    arguments is set (a literal ``substring`` instead of the reference); ``when``: only
    needed when this boolean argument is true (``rubric``'s ``include_context``).

    Declared per scorer at registration (``requires=``) and read by ``required_fields``:
    scheduling checks a dataset version's field coverage against it, and a test checks the
    table of docs/scorers.md ("What each scorer needs") against it. A field a scorer only
    uses when present (a judge's question) is not declared."""

    arg: str
    when: str | None = None
    unless: tuple[str, ...] = ()


FIELD = Needs("field")
REFERENCE = Needs("reference_field")


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    name: str
    evaluator_type: EvaluatorType
    args_model: type[ScorerArgs]
    fn: Callable[[Mapping[str, Any], Any], ScoreResult]
    summary: str
    # Runs something the tenant wrote (a regex, a JSON Schema) under a budget: its time
    # counts toward the batch's budget and its overruns toward the circuit breaker
    # (domain/scoring.py, budgets.py).
    budgeted: bool = False
    requires: tuple[Needs, ...] = ()

    def __call__(self, record: Mapping[str, Any], args: ScorerArgs) -> ScoreResult:
        return self.fn(record, args)


_REGISTRY: dict[str, ScorerSpec] = {}


def scorer(
    name: str,
    args_model: type[ScorerArgs],
    *,
    requires: tuple[Needs, ...],
    evaluator_type: EvaluatorType = "rule",
    budgeted: bool = False,
) -> Callable[[Callable[[Mapping[str, Any], Any], ScoreResult]], ScorerSpec]:
    # ``requires`` has no default: a scorer that forgot to say what it reads would slip
    # past the check at schedule time.
    def register(fn: Callable[[Mapping[str, Any], Any], ScoreResult]) -> ScorerSpec:
        if name in _REGISTRY:
            raise RuntimeError(f"scorer {name!r} registered twice")
        fields = args_model.model_fields
        for need in requires:
            for arg in (need.arg, *([need.when] if need.when else []), *need.unless):
                if arg not in fields:
                    raise RuntimeError(
                        f"scorer {name!r} requires argument {arg!r}, which "
                        f"{args_model.__name__} does not have"
                    )
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        spec = ScorerSpec(name, evaluator_type, args_model, fn, summary, budgeted, requires)
        _REGISTRY[name] = spec
        return spec

    return register


def scorer_names() -> list[str]:
    return sorted(_REGISTRY)


def get_scorer(name: str) -> ScorerSpec | None:
    return _REGISTRY.get(name)


def validate_args(spec: ScorerSpec, args: Mapping[str, Any] | None) -> ScorerArgs:
    """Validate raw args; raises pydantic's ValidationError with field locations."""
    return spec.args_model.model_validate(dict(args or {}))


def required_fields(spec: ScorerSpec, args: ScorerArgs) -> list[str]:
    """The record fields a metric cannot be scored without, given its validated args."""
    out: list[str] = []
    for need in spec.requires:
        if need.when is not None and not getattr(args, need.when):
            continue
        if any(getattr(args, name) is not None for name in need.unless):
            continue
        name = getattr(args, need.arg)
        if name not in out:
            out.append(name)
    return out


def describe_requires(spec: ScorerSpec) -> str:
    """``requires`` as docs/scorers.md shows it, with the default fields: "`output` (`field`),
    `golden_answer` (`reference_field`, unless `prefix`)"."""
    if not spec.requires:  # OpenAI's graders: their templates say what they read
        return "none declared"
    defaults = spec.args_model.model_fields
    parts = []
    for need in spec.requires:
        text = f"`{defaults[need.arg].default}` (`{need.arg}`"
        if need.when:
            text += f", when `{need.when}`"
        if need.unless:
            text += ", unless " + " or ".join(f"`{u}`" for u in need.unless)
        parts.append(text + ")")
    return ", ".join(parts)


def text_of(record: Mapping[str, Any], name: str) -> str:
    """The record's field as text; a missing field is the record's fault, not the run's."""
    value = record.get(name)
    if value is None:
        raise InvalidRecordError(f"record has no {name!r}")
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise InvalidRecordError(f"record field {name!r} is not text")


__all__ = [
    "FIELD",
    "RECORD_TEXT_FIELDS",
    "REFERENCE",
    "Needs",
    "ScoreResult",
    "ScorerArgs",
    "ScorerSpec",
    "ValidationError",
    "describe_requires",
    "get_scorer",
    "required_fields",
    "scorer",
    "scorer_names",
    "text_of",
    "validate_args",
]
