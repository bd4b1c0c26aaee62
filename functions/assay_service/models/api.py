"""HTTP shapes: ``…Request`` bodies and ``…Response`` payloads.

The native shapes are TruLayer's (``EvalRun``, ``Evaluation``, ``EvalRunExportResponse``);
the fields those pages mark required are always present, and what Assay adds is additive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assay_service.domain import jsondoc
from assay_service.domain.cost import estimated_aws_cost
from assay_service.models.domain import (
    JSON_NUMBER,
    Dataset,
    DatasetVersion,
    Description,
    Eval,
    Evaluation,
    EvalVersion,
    JudgeSettings,
    Label,
    Metric,
    MetricAggregate,
    Name,
    Number,
    Project,
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


class RecordIn(Strict):
    id: str | None = Field(default=None, min_length=1, max_length=200,
                           description="Unique in the version; generated when absent.")
    trace_id: UUID | None = Field(default=None, description="Generated when absent.")
    prompt: RecordText | None = None
    input: RecordText | None = None
    context: RecordText | None = None
    output: RecordText | None = None
    golden_answer: RecordText | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Any JSON object: at most {jsondoc.MAX_METADATA_CHARS:,} characters as "
                    f"compact JSON, nested at most {jsondoc.MAX_VALUE_DEPTH} levels.")

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        jsondoc.checked_value(value)
        size = jsondoc.json_size(value)
        if size > jsondoc.MAX_METADATA_CHARS:
            raise PydanticCustomError(
                "metadata_too_long", "at most {limit} characters as compact JSON, not {size}",
                {"limit": f"{jsondoc.MAX_METADATA_CHARS:,}", "size": f"{size:,}"})
        return value


class CreateDatasetVersionRequest(Strict):
    """Either ``records`` inline, or the ``upload_id`` of a JSONL file PUT to an upload URL."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["records"]}, {"required": ["upload_id"]}]})

    records: list[RecordIn] = Field(default=None, min_length=1, max_length=10_000)  # type: ignore[assignment]
    upload_id: UUID = Field(default=None)  # type: ignore[assignment]

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


class DatasetVersionResponse(DatasetVersion):
    pass


class DatasetListResponse(BaseModel):
    items: list[DatasetResponse]
    count: int
    next_cursor: str | None = None


class DatasetVersionListResponse(BaseModel):
    items: list[DatasetVersionResponse]
    count: int


# ---------------------------------------------------------------- evals
class CreateEvalRequest(Strict):
    name: Name
    description: Description | None = None
    project_id: UUID | None = None


class MetricIn(Metric):
    @field_validator("args")
    @classmethod
    def _args_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        return jsondoc.checked_value(value) if value else value


class CreateEvalVersionRequest(Strict):
    metrics: list[MetricIn] = Field(min_length=1, max_length=50)
    threshold: Number = Field(default=0.7, ge=0, le=1,
                              description="Run-level pass mark for the mean of the metric means.")
    judge: JudgeSettings | None = None


class EvalResponse(Eval):
    pass


class EvalVersionResponse(EvalVersion):
    pass


class EvalListResponse(BaseModel):
    items: list[EvalResponse]
    count: int
    next_cursor: str | None = None


class EvalVersionListResponse(BaseModel):
    items: list[EvalVersionResponse]
    count: int


# ---------------------------------------------------------------- runs
class ScheduleEvalRunRequest(Strict):
    eval_version_id: UUID
    # Bounds before JSON_NUMBER: see models.domain.Integer.
    dataset_version: Annotated[int, Field(ge=1), JSON_NUMBER] | None = Field(
        default=None, description="Defaults to the latest.")
    name: Label | None = None
    threshold: Annotated[float, Field(ge=0, le=1), JSON_NUMBER] | None = Field(
        default=None, description="Overrides the eval version's threshold.")
    metric_args: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Per-metric argument overrides, by metric name.")
    batch_size: Annotated[int, Field(ge=1, le=1000), JSON_NUMBER] | None = Field(
        default=None, description="Records per scoring invocation (default: the deployment's "
                                  "DefaultBatchSize).")
    max_concurrency: Annotated[int, Field(ge=1, le=10_000), JSON_NUMBER] | None = Field(
        default=None,
        description="Batches of this run scored at once (default and upper bound: the "
                    "deployment's MapMaxConcurrency). Keeps LLM-judge runs inside provider quotas.")

    @field_validator("metric_args")
    @classmethod
    def _args_limits(cls, value: dict[str, dict[str, Any]] | None
                     ) -> dict[str, dict[str, Any]] | None:
        return jsondoc.checked_entries(value) if value else value


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
    item_count: int
    completed_count: int
    failed_count: int
    threshold: float
    result: float | None = Field(description="Mean of the per-metric mean scores (0–1).")
    pass_rate: float | None = Field(description="Share of records that passed every metric.")
    is_gte_threshold: bool | None
    verdict: Literal["pass", "fail"] | None
    aggregate_results: dict[str, MetricAggregate] | None
    metrics: list[Metric]
    batch_size: int = Field(description="Records per scoring invocation.")
    max_concurrency: int | None = Field(
        description="Batches scored at once; null means the deployment's default.")
    total_cost: float
    estimated_aws_cost: float | None = Field(
        default=None, description="Estimated AWS charges of the run in USD (Step Functions, Lambda, "
        "DynamoDB, S3; us-east-1 list prices, rule-metric timings) beside the judge cost "
        "`total_cost`; the model is in docs/cost.md.")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None

    @classmethod
    def of(cls, run: Run) -> EvalRunResponse:
        data = run.model_dump(exclude={"aggregates"})
        aggregates = {a.metric: a for a in run.aggregates} if run.aggregates is not None else None
        verdict = None if run.is_gte_threshold is None else (
            "pass" if run.is_gte_threshold else "fail")
        return cls(**data, aggregate_results=aggregates, verdict=verdict,
                   estimated_aws_cost=estimated_aws_cost(run.item_count, len(run.metrics),
                                                         run.batch_size))


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


class TruncatedRecord(BaseModel):
    """A record as lists show it: each text field cut to 100 characters."""

    id: str
    trace_id: UUID
    prompt: str | None = None
    input: str | None = None
    context: str | None = None
    output: str | None = None
    golden_answer: str | None = None


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
