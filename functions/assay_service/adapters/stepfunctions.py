"""Step Functions adapter: one Standard execution per run, named by the run id."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.aws_errors import is_transient
from assay_service.errors import TransientStoreError


class StepFunctionsWorkflow:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, *, tenant_id: UUID, run_id: UUID) -> str:
        """Start the run's execution; starting it twice is a no-op (the name is the run id)."""
        try:
            out = self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=str(run_id),
                input=json.dumps({"tenant_id": str(tenant_id), "run_id": str(run_id)}),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ExecutionAlreadyExists":
                return self.execution_arn(run_id)
            if is_transient(exc):
                raise TransientStoreError(f"StartExecution: {exc}") from exc
            raise
        return out["executionArn"]

    def execution_arn(self, run_id: UUID) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"

    def stop(self, run_id: UUID, *, cause: str) -> None:
        """Stop the run's execution; one that already ended (or never started) is fine."""
        try:
            self.client.stop_execution(
                executionArn=self.execution_arn(run_id), error="RunCancelled", cause=cause[:256]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {
                "ExecutionDoesNotExist",
                "ValidationException",
            }:
                raise
