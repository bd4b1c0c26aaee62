"""ReconcileRunFunction: EventBridge's execution-ended event → a run that is still
unfinished is marked failed (or cancelled when stopped from outside Assay)."""

from __future__ import annotations

from typing import Any

from assay_service.models.workflow import ExecutionEnded
from assay_service.observability import get_logger
from assay_service.services import workflow

logger = get_logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ended = ExecutionEnded.model_validate(event)
    result = workflow.reconcile(ended)
    if result is None:
        logger.info("not a run's execution", extra={"execution": ended.execution_name})
        return {"reconciled": False}
    logger.info("execution ended", extra={"status": ended.status, "result": result.model_dump(mode="json")})
    return {"reconciled": True, **result.model_dump(mode="json")}
