"""The OpenAI Evals API's wire shapes (``/openai/v1``), as OpenAI documented them and the
official ``openai`` SDK parses them with strict validation: unix-second timestamps, list
envelopes with ``first_id``/``last_id``/``has_more``, string ids with OpenAI's prefixes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from assay_service.domain import jsondoc

Metadata = dict[
    Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=512)]
]


def _metadata(value: Metadata | None) -> Metadata | None:
    if value is not None and len(value) > 16:
        raise ValueError("at most 16 key-value pairs")
    return value


class _In(BaseModel):
    """A request body: unknown parameters are refused, as OpenAI refuses them."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ requests
class OpenAICustomDataSourceConfig(_In):
    type: Literal["custom"]
    item_schema: dict[str, Any] = Field(description="The JSON Schema of each item.")
    include_sample_schema: bool = Field(
        default=False, description="Runs generate (or carry) a sample; templates may read `sample`."
    )

    @field_validator("item_schema")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return jsondoc.checked_entries(value)


class OpenAICreateEvalRequest(_In):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    metadata: Metadata | None = None
    data_source_config: dict[str, Any] = Field(
        description="`{type: custom, item_schema, include_sample_schema}`; `logs` and "
        "`stored_completions` read OpenAI's stored completions, which Assay does not have."
    )
    testing_criteria: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=50,
        description="Graders: `string_check`, `text_similarity`, `score_model`, `label_model`.",
    )

    _check_metadata = field_validator("metadata")(_metadata)


class OpenAIUpdateEvalRequest(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    metadata: Metadata | None = None

    _check_metadata = field_validator("metadata")(_metadata)


class OpenAICreateRunRequest(_In):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    metadata: Metadata | None = None
    data_source: dict[str, Any] = Field(
        description="`jsonl` (`file_content` or `file_id`), `completions` or `responses` "
        "(the model samples each item through Assay's generation)."
    )

    _check_metadata = field_validator("metadata")(_metadata)


class OpenAIImportRunRequest(_In):
    """A run saved from the OpenAI API, and its output items, uploaded as files first."""

    run: dict[str, Any] = Field(description="The run object as the OpenAI API returned it.")
    output_item_files: list[Annotated[str, StringConstraints(pattern=r"^file-[0-9a-f]{32}$")]] = Field(
        min_length=1,
        max_length=100,
        description="Files (purpose `evals`) of the run's output items as the API returned them, one a line.",
    )


# ------------------------------------------------------------------ responses
class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class OpenAIAPIError(_Out):
    code: str
    message: str


class OpenAIEval(_Out):
    object: Literal["eval"] = "eval"
    id: str
    name: str
    created_at: int
    metadata: Metadata | None = None
    data_source_config: dict[str, Any]
    testing_criteria: list[dict[str, Any]]


class OpenAIEvalList(_Out):
    object: Literal["list"] = "list"
    data: list[OpenAIEval]
    first_id: str | None
    last_id: str | None
    has_more: bool


class OpenAIEvalDeleted(_Out):
    object: str = "eval.deleted"
    deleted: bool
    eval_id: str


class OpenAIResultCounts(_Out):
    total: int
    errored: int
    failed: int = Field(description="Items scored that did not pass every grader.")
    passed: int


class OpenAIPerModelUsage(_Out):
    model_name: str
    invocation_count: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


class OpenAIPerTestingCriteriaResult(_Out):
    testing_criteria: str
    passed: int
    failed: int


class OpenAIRun(_Out):
    object: Literal["eval.run"] = "eval.run"
    id: str
    eval_id: str
    name: str
    status: Literal["queued", "in_progress", "completed", "canceled", "failed"]
    model: str
    created_at: int
    data_source: dict[str, Any]
    error: OpenAIAPIError
    metadata: Metadata | None = None
    per_model_usage: list[OpenAIPerModelUsage]
    per_testing_criteria_results: list[OpenAIPerTestingCriteriaResult]
    report_url: str
    result_counts: OpenAIResultCounts


class OpenAIRunList(_Out):
    object: Literal["list"] = "list"
    data: list[OpenAIRun]
    first_id: str | None
    last_id: str | None
    has_more: bool


class OpenAIRunDeleted(_Out):
    object: str = "eval.run.deleted"
    deleted: bool
    run_id: str


class OpenAIGraderResult(_Out):
    name: str
    type: str | None = None
    score: float
    passed: bool
    sample: dict[str, Any] | None = None


class OpenAIMessage(_Out):
    role: str
    content: str


class OpenAISampleUsage(_Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


class OpenAISample(_Out):
    input: list[OpenAIMessage]
    output: list[dict[str, Any]]
    finish_reason: str
    model: str
    usage: OpenAISampleUsage
    error: OpenAIAPIError
    temperature: float
    max_completion_tokens: int
    top_p: float
    seed: int


class OpenAIOutputItem(_Out):
    object: Literal["eval.run.output_item"] = "eval.run.output_item"
    id: str
    run_id: str
    eval_id: str
    created_at: int
    status: Literal["pass", "fail"]
    datasource_item_id: int
    datasource_item: dict[str, Any]
    results: list[OpenAIGraderResult]
    sample: OpenAISample


class OpenAIOutputItemList(_Out):
    object: Literal["list"] = "list"
    data: list[OpenAIOutputItem]
    first_id: str | None
    last_id: str | None
    has_more: bool


class OpenAIFile(_Out):
    object: Literal["file"] = "file"
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class OpenAIFileList(_Out):
    object: Literal["list"] = "list"
    data: list[OpenAIFile]
    first_id: str | None
    last_id: str | None
    has_more: bool


class OpenAIFileDeleted(_Out):
    object: Literal["file"] = "file"
    id: str
    deleted: bool


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """OpenAI's error envelope (what the SDK raises ``APIStatusError`` from)."""

    error: OpenAIErrorBody
