"""Workflow step payloads: ``…Input`` in, ``…Result`` out (small, far below 256 KB)."""

from __future__ import annotations

import json
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Step(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunInput(Step):
    tenant_id: UUID
    run_id: UUID


class MarkFailedInput(RunInput):
    error: dict[str, Any] | None = None


class ExecutionEnded(Step):
    """EventBridge's "Step Functions Execution Status Change" event, the fields the
    reconciler needs. ``tenant_id``/``run_id`` come from the execution's input and are
    None for an execution that is not a run's (a Map child, another machine's)."""

    execution_name: str
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"]
    tenant_id: UUID | None = None
    run_id: UUID | None = None
    error: str | None = None
    cause: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_event(cls, event: Any) -> Any:
        if not isinstance(event, dict) or "detail" not in event:
            return event
        detail = event["detail"] or {}
        try:
            run = json.loads(detail.get("input") or "{}")
        except ValueError:
            run = {}
        run = run if isinstance(run, dict) else {}
        return {
            "execution_name": detail.get("name", ""),
            "status": detail.get("status"),
            "tenant_id": run.get("tenant_id"),
            "run_id": run.get("run_id"),
            "error": detail.get("error"),
            "cause": detail.get("cause"),
        }

    @property
    def is_a_run(self) -> bool:
        """A run's own execution: named by the run id, with the run's ids as input."""
        return self.tenant_id is not None and str(self.run_id) == self.execution_name


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


BatchOutcome = Literal["recorded", "duplicate", "inactive"]


class ScoreBatchResult(Step):
    batch: int
    completed: int
    failed: int
    outcome: BatchOutcome


class FinalizeResult(Step):
    run_id: UUID
    status: str
