"""Response models of the compatibility views (they document the shapes in OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class AegisRecord(BaseModel):
    id: str | None
    prompt: str | None
    input: str | None
    context: str | None
    output: str | None
    golden_answer: str | None


class AegisEvaluation(BaseModel):
    id: str
    run_id: str
    record_index: int
    metric: str
    record: AegisRecord
    result: float | None
    threshold: float
    explanation: str | None
    model_slug: str | None
    metric_args: dict[str, Any] | None
    started_at: str
    finished_at: str | None
    evaluation_cost: str | None
    is_success: bool | None
    is_gte_threshold: bool | None
    eval_metadata: dict[str, Any] | None


class AegisRun(BaseModel):
    id: str
    user: str | None
    author_email: str
    run_type: str
    run_source: str
    dataset: str | None
    data_collection: str | None
    org_id: int | None
    number_of_metrics: int
    result: float | None
    threshold: float
    model_slug: str | None
    alias: str | None
    aggregate_results: dict[str, float | None] | None
    total_cost: float | str | None
    started_at: str
    finished_at: str | None
    is_gte_threshold: bool | None
    status: str
    evaluations: list[AegisEvaluation]
    evaluations_total: int
    evaluations_truncated: bool


AymaraStatus = Literal["created", "processing", "finished", "failed"]


class AymaraEvaluation(BaseModel):
    eval_uuid: str | None
    name: str | None
    ai_description: str
    ai_instructions: str | None
    eval_type: str
    eval_instructions: str | None
    language: str | None
    modality: Literal["text", "image"]
    ground_truth: str | dict[str, Any] | None
    num_prompts: int | None
    prompt_examples: list[dict[str, Any]] | None
    is_jailbreak: bool
    is_sandbox: bool
    workspace_uuid: str | None
    status: AymaraStatus | None
    created_at: str | None
    updated_at: str | None


class AymaraResponse(BaseModel):
    prompt_uuid: str
    thread_uuid: str | None
    turn_number: int
    continue_thread: bool
    content: str | dict[str, Any] | None
    content_type: Literal["text", "image"]
    exclude_from_scoring: bool
    ai_refused: bool
    response_uuid: str | None
    explanation: str | None
    confidence: float | None
    is_passed: bool | None
    next_prompt: dict[str, Any] | None


class AymaraEvalRun(BaseModel):
    eval_run_uuid: str
    eval_uuid: str
    name: str | None
    status: AymaraStatus
    created_at: str
    updated_at: str
    evaluation: AymaraEvaluation | None
    ai_description: str | None
    workspace_uuid: str | None
    pass_rate: float | None
    num_prompts: int | None
    num_responses_scored: int | None
    responses: list[AymaraResponse] | None


class AymaraEvalRunList(BaseModel):
    items: list[AymaraEvalRun]
    count: int


class AymaraResponseList(BaseModel):
    """A page of a run's responses (one per record, in record order): Aymara's offset page."""

    items: list[AymaraResponse]
    count: int = Field(description="Every response the run has recorded (its records scored so far).")


class AymaraEval(AymaraEvaluation):
    """An Assay eval in Aymara's `Eval` shape: `eval_instructions` describes its latest
    version's metrics; `status` is `finished` once it has a version, `created` before."""

    created_by: str | None


class AymaraEvalList(BaseModel):
    items: list[AymaraEval]
    count: int = Field(description="Every eval matching the filters.")
