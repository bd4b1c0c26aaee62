"""Domain nouns. Persistence records stay inside the adapters; HTTP shapes live in ``api``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
Role = Literal["owner", "member", "viewer"]

# Control characters: C0 (U+0000-U+001F), DEL and C1 (U+007F-U+009F). Names hold none;
# descriptions may hold tabs and line breaks (U+0009, U+000A, U+000D). Record text fields
# are free text: not checked. Each rule is also a JSON Schema pattern in the OpenAPI document.
_CONTROLS = r"\u0000-\u001f\u007f-\u009f"
_CONTROLS_BUT_LINES = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"


def _refusing(controls: str) -> tuple[AfterValidator, Any]:
    """A readable error (which character, where) plus the rule as a JSON Schema pattern."""
    pattern = re.compile(f"[{controls}]")

    def check(value: str) -> str:
        found = pattern.search(value)
        if found:
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters ({char} at character {index})",
                {"char": f"U+{ord(found.group()):04X}", "index": found.start() + 1},
            )
        return value

    return AfterValidator(check), Field(json_schema_extra={"pattern": f"^[^{controls}]*$"})


def _json_number(value: Any) -> Any:
    """Numbers are JSON numbers: a string or a boolean is not silently converted."""
    if isinstance(value, str | bool):
        raise PydanticCustomError(
            "number_type",
            "Input should be a JSON number, not {kind}",
            {"kind": "a boolean" if isinstance(value, bool) else "a string"},
        )
    return value


MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), *_refusing(_CONTROLS)
]
Label = Annotated[str, StringConstraints(max_length=200), *_refusing(_CONTROLS)]
Description = Annotated[str, StringConstraints(max_length=2000), *_refusing(_CONTROLS_BUT_LINES)]
RecordText = Annotated[str, StringConstraints(max_length=100_000)]
# Request numbers: an integer field takes 10 or 10.0 (JSON Schema's integer), never "10",
# true or 10.5; a number field takes 1 or 0.5, never "0.5" or true. For ``X | None`` with
# bounds, write ``Annotated[int, Field(ge=…), JSON_NUMBER] | None``: bounds placed after the
# validator are still enforced but reach the JSON schema as "ge"/"le" instead of minimum/maximum.
JSON_NUMBER = BeforeValidator(_json_number)
Integer = Annotated[int, JSON_NUMBER]
Number = Annotated[float, JSON_NUMBER]


def utcnow() -> datetime:
    """Now in UTC, to the millisecond (what JSON clients and DynamoDB strings keep)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Record(Frozen):
    """One dataset record, as stored in a version (ids always present)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    trace_id: UUID
    prompt: RecordText | None = None
    input: RecordText | None = None
    context: RecordText | None = None
    output: RecordText | None = None
    golden_answer: RecordText | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Metric(Frozen):
    name: MetricName = Field(description="Shortname of the metric, e.g. `ans_corr`.")
    scorer: str = Field(description="A scorer from the catalogue, e.g. `exact_match`.")
    args: dict[str, Any] = Field(default_factory=dict)
    threshold: Number = Field(
        default=0.5, ge=0, le=1, description="An evaluation passes when score ≥ threshold."
    )


class JudgeSettings(Frozen):
    provider: Literal["bedrock", "openai"] = "bedrock"
    model: str = Field(default="anthropic.claude-3-5-haiku-20241022-v1:0", max_length=200)
    temperature: Number = Field(default=0.0, ge=0, le=2)
    max_tokens: Integer = Field(default=512, ge=1, le=8192)
    concurrency: Integer = Field(
        default=4,
        ge=1,
        le=32,
        description="Judge calls in flight per scoring batch. A run makes at most "
        "max_concurrency × concurrency calls at once.",
    )


Template = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class ChatMessage(Frozen):
    role: Literal["system", "user", "assistant"] = "user"
    content: Template = Field(
        description="Text with `{{record.FIELD}}` placeholders: `prompt`, `input`, `context`, "
        "`output`, `golden_answer`, `id`, or a key of the record's `metadata` "
        "(`{{record.topic}}` or `{{record.metadata.topic}}`)."
    )


class RateLimits(Frozen):
    """A provider+model's limits; unset: not limited on that axis."""

    requests_per_minute: Annotated[int, Field(ge=1, le=10_000_000), JSON_NUMBER] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1, le=1_000_000_000), JSON_NUMBER] | None = None
    concurrent: Annotated[int, Field(ge=1, le=10_000), JSON_NUMBER] | None = Field(
        default=None, description="Calls in flight at once across every batch of every run."
    )


DEFAULT_GENERATION_MESSAGES = (ChatMessage(role="user", content="{{record.input}}"),)


class GenerationSettings(Frozen):
    """The model under test: it answers each record before the metrics score the answer
    (the record's ``output`` is then the generated text)."""

    provider: Literal["bedrock", "openai"] = "bedrock"
    model: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    system: Template | None = Field(default=None, description="System prompt (a template too).")
    messages: list[ChatMessage] = Field(
        default_factory=lambda: list(DEFAULT_GENERATION_MESSAGES),
        min_length=1,
        max_length=50,
        description="The conversation sent for each record; default one user message `{{record.input}}`.",
    )
    temperature: Number = Field(default=0.0, ge=0, le=2)
    top_p: Annotated[float, Field(gt=0, le=1), JSON_NUMBER] | None = None
    max_tokens: Integer = Field(default=512, ge=1, le=16_384)
    seed: Annotated[int, Field(ge=0, le=2**31 - 1), JSON_NUMBER] | None = None
    stop: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=4
    )
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="A JSON Schema the answer must follow (OpenAI-compatible: sent as "
        "`response_format` `json_schema`; Bedrock: given in the system prompt).",
    )
    concurrency: Integer = Field(
        default=4, ge=1, le=32, description="Generation calls in flight per scoring batch."
    )


class ModelUsage(Frozen):
    """What one model did in a run, in one role."""

    role: Literal["generator", "judge"]
    provider: str
    model: str
    invocations: int = Field(description="Calls made to the provider (cache hits excluded).")
    cached_responses: int = Field(default=0, description="Answers reused from the response cache.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = Field(default=0, description="Prompt tokens the provider served from its cache.")
    cost: float | None = Field(
        default=None, description="USD at the price table's rates; null when the model has no price."
    )


class Tenant(Frozen):
    id: UUID
    slug: str
    created_at: datetime


class Principal(Frozen):
    """Who is calling: resolved from the API key by the auth middleware."""

    tenant_id: UUID
    key_id: UUID
    role: Role


class Project(Frozen):
    """A grouping inside a tenant (Aymara's workspace); datasets and evals belong to one."""

    id: UUID
    tenant_id: UUID
    name: str
    description: str | None = None
    created_at: datetime


class Catalogued(Frozen):
    """What datasets and evals share: a named, versioned object in a project."""

    id: UUID
    tenant_id: UUID
    project_id: UUID
    name: str
    description: str | None = None
    version_count: int = 0
    created_at: datetime


class Dataset(Catalogued):
    """Records, in immutable versions (JSONL in S3)."""


class DatasetVersion(Frozen):
    id: UUID
    dataset_id: UUID
    version: int
    record_count: int
    size_bytes: int
    created_at: datetime
    # Counted while the version is written (domain/coverage.py); None on versions created
    # before coverage was recorded.
    fields: dict[str, int] | None = Field(
        default=None,
        description="Records that have each record field (`prompt`, `input`, `context`, "
        "`output`, `golden_answer`): not null; an empty string counts. Null for "
        "versions created before field coverage was recorded.",
    )
    unknown_fields: dict[str, int] | None = Field(
        default=None,
        description="Metadata keys that look like a misnamed record field (`Output`, "
        "`golden`, `expected`…), with the number of records holding each: where a "
        "CSV column that is not a record field ends up. At most 50 names of at "
        "most 64 characters.",
    )


class Eval(Catalogued):
    """Metrics and thresholds, in immutable versions."""


class EvalVersion(Frozen):
    id: UUID
    eval_id: UUID
    version: int
    metrics: list[Metric]
    threshold: float
    judge: JudgeSettings | None = None
    generation: GenerationSettings | None = None
    created_at: datetime


class MetricAggregate(Frozen):
    """One metric over a run: the *metric level* of the verdict (docs/concepts.md)."""

    metric: str
    scorer: str
    evaluator_type: Literal["rule", "llm"]
    threshold: float = Field(
        description="The metric's own threshold (0–1 scale): an evaluation "
        "passes when its score ≥ it, the metric when its mean ≥ it."
    )
    mean: float | None = Field(
        description="Mean score over the scored evaluations (0–1 scale); null when none could be scored."
    )
    pass_rate: float | None = Field(
        description="Share of all the metric's evaluations that passed, "
        "as a fraction 0–1 (unscored ones did not pass)."
    )
    count: int = Field(description="Evaluations scored.")
    passed: int = Field(description="Evaluations scored with score ≥ the metric's threshold.")
    # Called ``failed`` until it was mistaken for "below threshold": run items stored before
    # the rename still carry ``failed`` and must keep loading, hence the alias choices.
    unscored: int = Field(
        validation_alias=AliasChoices("unscored", "failed"),
        description="Evaluations that could not be scored (status `failed`, "
        "e.g. a missing field or a judge error): not the ones "
        "below the threshold, which are `count - passed`.",
    )
    is_gte_threshold: bool | None = Field(
        description="Metric level: mean ≥ the metric's threshold; null when nothing was scored."
    )


class Run(Frozen):
    id: UUID
    tenant_id: UUID
    project_id: UUID
    dataset_id: UUID
    dataset_version_id: UUID
    dataset_version: int
    eval_id: UUID
    eval_version_id: UUID
    name: str | None = None
    status: RunStatus
    item_count: int
    completed_count: int = 0
    failed_count: int = 0
    threshold: float
    metrics: list[Metric]
    batch_size: int
    max_concurrency: int | None = None  # None: the deployment's MapMaxConcurrency
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    aggregates: list[MetricAggregate] | None = None
    result: float | None = None
    pass_rate: float | None = None
    is_gte_threshold: bool | None = None
    total_cost: float = 0.0
    generation: GenerationSettings | None = None
    cache: bool = True
    rate_limits: RateLimits | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    per_model_usage: list[ModelUsage] | None = None


class Evaluation(Frozen):
    """One metric applied to one record in one run."""

    id: UUID
    run_id: UUID
    trace_id: UUID
    project_id: UUID
    record_id: str
    record_index: int
    metric_name: str
    scorer: str
    evaluator_type: Literal["llm", "rule"]
    status: Literal["pending", "running", "complete", "failed"]
    score: float | None
    label: str | None
    reasoning: str | None
    is_passed: bool
    threshold: float
    confidence: float | None = None
    metric_args: dict[str, Any] | None = None
    eval_metadata: dict[str, Any] | None = None
    evaluation_cost: float | None = None
    error_message: str | None = None
    created_at: datetime
    started_at: datetime
    completed_at: datetime
