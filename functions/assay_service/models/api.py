"""HTTP shapes: ``…Request`` bodies and ``…Response`` payloads.

The native shapes are TruLayer's (``EvalRun``, ``Evaluation``, ``EvalRunExportResponse``);
the fields those pages mark required are always present, and what Assay adds is additive.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay_service.domain import coverage, jsondoc
from assay_service.domain.cost import estimated_aws_cost
from assay_service.models.domain import (
    JSON_NUMBER,
    Dataset,
    DatasetVersion,
    Description,
    Eval,
    Evaluation,
    EvalVersion,
    GenerationSettings,
    JudgeSettings,
    Label,
    Metric,
    MetricAggregate,
    ModelUsage,
    Name,
    Number,
    Project,
    RateLimits,
    Record,
    RecordText,
    Role,
    Run,
)


class Strict(BaseModel):
    """Request bodies: unknown fields are rejected (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- projects
class CreateProjectRequest(Strict):
    name: Name
    description: Description | None = None


class ProjectResponse(Project):
    pass


class ProjectListResponse(BaseModel):
    items: list[ProjectResponse]
    count: int
    next_cursor: str | None = None


# ---------------------------------------------------------------- datasets
class CreateDatasetRequest(Strict):
    name: Name
    description: Description | None = None
    project_id: UUID | None = Field(default=None, description="Defaults to the tenant's default project.")
    records: list[RecordIn] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Optional: the records of version 1, created with the dataset. Any bad "
        "record rejects the request whole and nothing is created (no dataset, no "
        "version). Larger files: create the dataset, then upload "
        "(`POST /v1/datasets/{id}/uploads`).",
    )
    strict: StrictBool = Field(
        default=False,
        description="With `records`: as `strict` of `POST /v1/datasets/{id}/versions` (records "
        "that draw `warnings` are refused, and then nothing is created).",
    )

    @model_validator(mode="after")
    def _strict_needs_records(self) -> CreateDatasetRequest:
        if self.strict and self.records is None:
            raise ValueError("'strict' applies to version 1's records: give 'records' too")
        return self


class RecordIn(Strict):
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Unique in the version; generated when absent.",
    )
    trace_id: UUID | None = Field(default=None, description="Generated when absent.")
    prompt: RecordText | None = None
    input: RecordText | None = None
    context: RecordText | None = None
    output: RecordText | None = None
    golden_answer: RecordText | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Any JSON object: at most {jsondoc.MAX_METADATA_CHARS:,} characters as "
        f"compact JSON, nested at most {jsondoc.MAX_VALUE_DEPTH} levels.",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        jsondoc.checked_value(value)
        size = jsondoc.json_size(value)
        if size > jsondoc.MAX_METADATA_CHARS:
            raise PydanticCustomError(
                "metadata_too_long",
                "at most {limit} characters as compact JSON, not {size}",
                {"limit": f"{jsondoc.MAX_METADATA_CHARS:,}", "size": f"{size:,}"},
            )
        return value


class CreateDatasetVersionRequest(Strict):
    """Either ``records`` inline, or the ``upload_id`` of a JSONL file PUT to an upload URL.

    The response's ``warnings`` say what in the records looks wrong (a field no record has,
    a metadata key that looks like a misnamed field); with ``strict`` such records are
    refused instead."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["records"]}, {"required": ["upload_id"]}]}
    )

    # None when absent (a body gives one of the two); typed without None: no null in the schema.
    records: list[RecordIn] = Field(default=None, min_length=1, max_length=10_000)  # type: ignore[arg-type]
    upload_id: UUID = Field(default=None)  # type: ignore[assignment]
    strict: StrictBool = Field(
        default=False,
        description="Refuse the records (400, `validation.invalid_request`, nothing stored) "
        "when they draw any `warnings`; `details.warnings` lists them.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> CreateDatasetVersionRequest:
        if (self.records is None) == (self.upload_id is None):
            raise ValueError("give either 'records' or 'upload_id'")
        return self


class UploadResponse(BaseModel):
    upload_id: UUID
    url: str = Field(description="PUT the JSONL file here (one record per line).")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Headers the PUT must carry.")
    expires_at: datetime


class DatasetRecordListResponse(BaseModel):
    items: list[Record]
    count: int = Field(description="Records in this page.")
    next_cursor: str | None = None


class DatasetResponse(Dataset):
    pass


class DataWarning(BaseModel):
    """Something in the data that will likely keep metrics from scoring: the request
    succeeded, but the records may not be what was meant."""

    code: Literal["unknown_field", "missing_field", "partial_field", "unchecked_field"] = Field(
        description="`unknown_field`: a metadata key that looks like a misnamed record field "
        "(a CSV column such as `Output` or `golden`); `missing_field`: no record has "
        "the field; `partial_field`: some records lack it; `unchecked_field`: a metadata key "
        "a generation template reads, which is not counted before the run (`count` 0)."
    )
    message: str
    field: str = Field(description="The unknown key, or the record field concerned.")
    count: int = Field(
        description="Records concerned: those holding the unknown key, or those lacking the field."
    )
    suggestion: str | None = Field(default=None, description="The record field an unknown key likely meant.")
    metric: str | None = Field(default=None, description="The metric that needs the field (run warnings).")


class DatasetVersionResponse(DatasetVersion):
    warnings: list[DataWarning] = Field(
        default_factory=list,
        description="What the version's field coverage says is likely wrong; computed from "
        "`fields` and `unknown_fields` (empty when they are null).",
    )

    @model_validator(mode="before")
    @classmethod
    def _warnings(cls, data: Any) -> Any:
        if isinstance(data, dict) and "warnings" not in data:
            data = {
                **data,
                "warnings": coverage.warnings(
                    data.get("record_count", 0), data.get("fields"), data.get("unknown_fields")
                ),
            }
        return data


class DatasetListResponse(BaseModel):
    items: list[DatasetResponse]
    count: int
    next_cursor: str | None = None


class CreatedDatasetResponse(DatasetResponse):
    version: DatasetVersionResponse | None = Field(
        default=None, description="Version 1, when the request carried `records`; else null."
    )


class DatasetVersionListResponse(BaseModel):
    items: list[DatasetVersionResponse]
    count: int


# ---------------------------------------------------------------- evals
def _needs_metrics(field: str, kind: str) -> dict[str, Any]:
    """JSON Schema: a non-null ``field`` needs ``metrics`` (an array) beside it."""
    return {
        "if": {"properties": {field: {"type": kind}}, "required": [field]},
        "then": {"properties": {"metrics": {"type": "array"}}, "required": ["metrics"]},
    }


class CreateEvalRequest(Strict):
    """An eval; with ``metrics`` (and optionally ``threshold``, ``judge``, ``generation``: the
    body of ``POST /v1/evals/{id}/versions``) its version 1 too, in the same write."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                _needs_metrics("threshold", "number"),
                _needs_metrics("judge", "object"),
                _needs_metrics("generation", "object"),
            ]
        },
    )

    name: Name
    description: Description | None = None
    project_id: UUID | None = None
    metrics: list[MetricIn] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Optional: the metrics of version 1, created with the eval. A bad metric "
        "rejects the request whole and nothing is created.",
    )
    threshold: Number | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Version 1's run-level pass mark (default 0.7); only with `metrics`.",
    )
    judge: JudgeSettings | None = Field(
        default=None, description="Version 1's judge settings; only with `metrics`."
    )
    generation: GenerationSettings | None = Field(
        default=None, description="Version 1's model under test; only with `metrics`."
    )

    @model_validator(mode="after")
    def _version_fields_need_metrics(self) -> CreateEvalRequest:
        if self.metrics is None:
            extra = [f for f in ("threshold", "judge", "generation") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"'{extra[0]}' belongs to version 1: give 'metrics' too")
        return self

    def first_version(self) -> CreateEvalVersionRequest | None:
        if self.metrics is None:
            return None
        fields: dict[str, Any] = {"metrics": self.metrics, "judge": self.judge, "generation": self.generation}
        if self.threshold is not None:
            fields["threshold"] = self.threshold
        return CreateEvalVersionRequest(**fields)


class MetricIn(Metric):
    @field_validator("args")
    @classmethod
    def _args_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        return jsondoc.checked_value(value) if value else value


class CreateEvalVersionRequest(Strict):
    metrics: list[MetricIn] = Field(min_length=1, max_length=50)
    threshold: Number = Field(
        default=0.7, ge=0, le=1, description="Run-level pass mark for the mean of the metric means."
    )
    judge: JudgeSettings | None = None
    generation: GenerationSettings | None = Field(
        default=None,
        description="The model under test: each record's answer is generated, then scored "
        "(records then need no `output`). docs/generation.md.",
    )


class EvalResponse(Eval):
    pass


class EvalVersionResponse(EvalVersion):
    pass


class EvalListResponse(BaseModel):
    items: list[EvalResponse]
    count: int
    next_cursor: str | None = None


class CreatedEvalResponse(EvalResponse):
    version: EvalVersionResponse | None = Field(
        default=None, description="Version 1, when the request carried `metrics`; else null."
    )


class EvalVersionListResponse(BaseModel):
    items: list[EvalVersionResponse]
    count: int


# ---------------------------------------------------------------- runs
class ScheduleEvalRunRequest(Strict):
    eval_version_id: UUID
    # Bounds before JSON_NUMBER: see models.domain.Integer.
    dataset_version: Annotated[int, Field(ge=1), JSON_NUMBER] | None = Field(
        default=None, description="Defaults to the latest."
    )
    name: Label | None = None
    threshold: Annotated[float, Field(ge=0, le=1), JSON_NUMBER] | None = Field(
        default=None,
        description="Overrides the eval version's run threshold (0–1) for this "
        "run's verdict; metric thresholds are unchanged.",
    )
    metric_args: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Per-metric argument overrides, by metric name."
    )
    batch_size: Annotated[int, Field(ge=1, le=1000), JSON_NUMBER] | None = Field(
        default=None,
        description="Records per scoring invocation (default: the deployment's DefaultBatchSize).",
    )
    max_concurrency: Annotated[int, Field(ge=1, le=10_000), JSON_NUMBER] | None = Field(
        default=None,
        description="Batches of this run scored at once (default and upper bound: the "
        "deployment's MapMaxConcurrency). Keeps LLM-judge runs inside provider quotas.",
    )
    generation: GenerationSettings | None = Field(
        default=None,
        description="Overrides the eval version's `generation` for this run (e.g. another "
        "model or prompt on the same metrics).",
    )
    cache: bool = Field(
        default=True,
        description="Reuse stored model answers for identical calls made with temperature 0 "
        "or a seed (generation and judges); false: call the models again.",
    )
    rate_limits: RateLimits | None = Field(
        default=None,
        description="This run's provider limits, over the deployment's `ModelRateLimits` "
        "(shared with every run calling the same model).",
    )

    @field_validator("metric_args")
    @classmethod
    def _args_limits(cls, value: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        return jsondoc.checked_entries(value) if value else value


class CostBreakdown(BaseModel):
    generation: float | None = Field(
        description="The model under test's calls; null when one of its models has no price."
    )
    judging: float | None = Field(description="LLM judges' calls; null when a judge model has no price.")
    infrastructure: float | None = Field(description="`estimated_aws_cost`.")
    total: float | None = Field(description="The sum; null when a part is unknown.")

    @classmethod
    def of(cls, usage: list[ModelUsage], model_cost: float, aws: float | None) -> CostBreakdown:
        """A model without a price makes its role's cost unknown (null), not $0."""

        def unpriced(role: str) -> bool:
            return any(u.role == role and u.cost is None and u.invocations for u in usage)

        generation = math.fsum(u.cost or 0.0 for u in usage if u.role == "generator")
        judging = max(0.0, model_cost - generation)
        parts = (
            None if unpriced("generator") else round(generation, 10),
            None if unpriced("judge") else round(judging, 10),
        )
        total = None if None in parts else round(model_cost + (aws or 0.0), 10)
        return cls(generation=parts[0], judging=parts[1], infrastructure=aws, total=total)


class EvalRunResponse(BaseModel):
    """TruLayer's ``EvalRun`` plus Assay's aggregates and verdict."""

    id: UUID
    tenant_id: UUID
    project_id: UUID
    dataset_id: UUID
    dataset_version_id: UUID
    dataset_version: int
    eval_id: UUID
    eval_version_id: UUID
    name: str | None
    status: Literal["pending", "running", "completed", "failed", "cancelled"]
    item_count: int = Field(description="Records in the run.")
    completed_count: int = Field(
        description="Records whose every evaluation was scored (whatever the scores)."
    )
    failed_count: int = Field(
        description="Records with at least one evaluation that could not be scored (see each "
        "metric's `unscored`); not records below a threshold. After a run, "
        "`completed_count + failed_count == item_count`."
    )
    threshold: float = Field(
        description="The run threshold (0–1 scale): the verdict is `pass` when `result` ≥ it."
    )
    result: float | None = Field(
        description="Mean of the per-metric mean scores (0–1 scale); "
        "metrics with nothing scored are left out."
    )
    pass_rate: float | None = Field(
        description="Share of records that passed every metric, as a fraction 0–1."
    )
    is_gte_threshold: bool | None = Field(
        description="`result` ≥ `threshold`; null when no metric scored anything."
    )
    verdict: Literal["pass", "fail"] | None = Field(
        description="The run verdict: `pass` when `result` ≥ `threshold` (the run level). Each "
        "metric is judged separately against its own threshold in "
        "`aggregate_results` (the metric level): a run can pass with metrics below "
        "theirs. Definitions: docs/concepts.md."
    )
    aggregate_results: dict[str, MetricAggregate] | None = Field(
        description="Per metric, by name: the metric level of the verdict."
    )
    metrics: list[Metric]
    batch_size: int = Field(description="Records per scoring invocation.")
    max_concurrency: int | None = Field(
        description="Batches scored at once; null means the deployment's default."
    )
    total_cost: float = Field(description="USD spent on models: judging plus generation (`cost_breakdown`).")
    estimated_aws_cost: float | None = Field(
        default=None,
        description="Estimated AWS charges of the run in USD (Step Functions, Lambda, "
        "DynamoDB, S3; us-east-1 list prices, rule-metric timings) beside the model cost "
        "`total_cost`; the model is in docs/cost.md.",
    )
    cost_breakdown: CostBreakdown | None = Field(
        default=None, description="The run's cost split (USD); set once the run completed."
    )
    generation: GenerationSettings | None = Field(
        default=None, description="The model under test, when the run generates its outputs."
    )
    cache: bool = Field(default=True, description="Whether the run reuses cached model answers.")
    rate_limits: RateLimits | None = None
    cache_hits: int = Field(default=0, description="Model answers reused from the response cache.")
    cache_misses: int = Field(default=0, description="Cacheable model calls the cache could not answer.")
    per_model_usage: list[ModelUsage] | None = Field(
        default=None, description="Calls and tokens per model and role; set once the run completed."
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    warnings: list[DataWarning] | None = Field(
        default=None,
        description="Only in the response that schedules the run (null elsewhere): metrics "
        "whose record fields some records of the dataset version lack (those "
        "evaluations will fail as not scorable). Empty when none lack them, and for "
        "dataset versions created before field coverage was recorded (`fields` "
        "null: not checked).",
    )

    @classmethod
    def of(cls, run: Run, warnings: list[dict[str, Any]] | None = None) -> EvalRunResponse:
        data = run.model_dump(exclude={"aggregates"})
        aggregates = {a.metric: a for a in run.aggregates} if run.aggregates is not None else None
        verdict: Literal["pass", "fail"] | None = (
            None if run.is_gte_threshold is None else ("pass" if run.is_gte_threshold else "fail")
        )
        aws = estimated_aws_cost(run.item_count, len(run.metrics), run.batch_size)
        breakdown = None
        if run.per_model_usage is not None:
            breakdown = CostBreakdown.of(run.per_model_usage, run.total_cost, aws)
        return cls(
            **data,
            aggregate_results=aggregates,
            verdict=verdict,
            estimated_aws_cost=aws,
            cost_breakdown=breakdown,
            warnings=None if warnings is None else [DataWarning(**w) for w in warnings],
        )


class EvalRunListResponse(BaseModel):
    items: list[EvalRunResponse]
    count: int = Field(description="Total number of runs matching the filters.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page.")


class EvaluationResponse(BaseModel):
    """TruLayer's ``Evaluation`` (and ``EvalRunExportItem``) plus what Assay records."""

    id: UUID
    trace_id: UUID
    project_id: UUID
    metric_name: str
    evaluator_type: Literal["llm", "rule"]
    status: Literal["pending", "running", "complete", "failed"]
    context: Literal["fresh", "remediation"] = "fresh"
    score: float | None
    label: str | None
    reasoning: str | None
    source_action_id: UUID | None = None
    original_evaluation_id: UUID | None = None
    run_id: UUID
    record_id: str
    record_index: int
    scorer: str
    is_passed: bool
    threshold: float
    confidence: float | None
    metric_args: dict[str, Any] | None
    eval_metadata: dict[str, Any] | None
    evaluation_cost: float | None
    error_message: str | None
    created_at: datetime
    started_at: datetime
    completed_at: datetime

    @classmethod
    def of(cls, evaluation: Evaluation) -> EvaluationResponse:
        return cls(**evaluation.model_dump())


class GenerationResult(BaseModel):
    """One generated answer (the full text; the record's ``output`` shows its start)."""

    output: str | None = None
    finish_reason: str | None = None
    latency_ms: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cached: bool = Field(default=False, description="Answered from the response cache.")
    provider: str | None = None
    model: str | None = None
    error: str | None = Field(default=None, description="Why no answer was generated.")


class TruncatedRecord(BaseModel):
    """A record as lists show it: each text field cut to 100 characters."""

    id: str
    trace_id: UUID
    prompt: str | None = None
    input: str | None = None
    context: str | None = None
    output: str | None = None
    golden_answer: str | None = None
    generation: GenerationResult | None = Field(
        default=None, description="How the record's `output` was generated (runs that generate)."
    )


class RunEvaluationResponse(EvaluationResponse):
    record: TruncatedRecord | None


class RunEvaluationListResponse(BaseModel):
    items: list[RunEvaluationResponse]
    count: int = Field(description="Evaluations in this page.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page.")


class ExportItem(EvaluationResponse):
    record: TruncatedRecord | None = None


class EvalRunExportResponse(BaseModel):
    run: EvalRunResponse
    items: list[ExportItem]


class ExportLinkResponse(BaseModel):
    url: str
    expires_at: datetime
    format: Literal["json", "jsonl", "csv"]
    size_bytes: int


class CreateApiKeyRequest(Strict):
    name: Label | None = None
    role: Role = Field(default="member", description="At most the caller's own role.")
    expires_at: datetime | None = Field(default=None, description="In the future; none = never.")


class ApiKeyResponse(BaseModel):
    id: UUID
    name: str | None
    prefix: str = Field(description="The key's first characters, to recognise it.")
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked: bool


class CreatedApiKeyResponse(ApiKeyResponse):
    key: str = Field(description="The secret. Shown in this response only; store it now.")


class ApiKeyListResponse(BaseModel):
    items: list[ApiKeyResponse]
    count: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str


class ErrorResponse(BaseModel):
    """The error envelope: TruLayer's ``{error}`` plus Aymara's codes."""

    error: str
    code: str
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str
