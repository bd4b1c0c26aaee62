"""Workflow step payloads: ``…Input`` in, ``…Result`` out (small, far below 256 KB)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Step(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunInput(Step):
    tenant_id: UUID
    run_id: UUID


class MarkFailedInput(RunInput):
    error: dict[str, Any] | None = None


class BatchRef(Step):
    """One Distributed Map item: a batch of consecutive records and their byte range."""

    index: int = Field(ge=0)
    first_record: int = Field(ge=0)
    count: int = Field(ge=1)
    byte_start: int = Field(ge=0)
    byte_end: int = Field(ge=0)


class ScoreBatchInput(RunInput):
    batch: BatchRef


class PrepareResult(Step):
    tenant_id: UUID
    run_id: UUID
    manifest_key: str
    batch_count: int
    max_concurrency: int = Field(ge=1, description="Batches of this run scored at once.")


class ScoreBatchResult(Step):
    batch: int
    completed: int
    failed: int
    outcome: Literal["recorded", "duplicate", "inactive"]


class FinalizeResult(Step):
    run_id: UUID
    status: str
