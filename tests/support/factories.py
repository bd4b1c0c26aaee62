"""Domain objects for tests that need one without the path that makes it (a run as the
store would hold it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from assay_service.models.domain import Metric, Run


def a_run(**fields: Any) -> Run:
    """A pending run of 4 records × one exact-match metric, in batches of 2; ``fields``
    override any of it (``status``, ``tenant_id``, ``item_count``…)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "project_id": uuid.uuid4(),
        "dataset_id": uuid.uuid4(),
        "dataset_version_id": uuid.uuid4(),
        "dataset_version": 1,
        "eval_id": uuid.uuid4(),
        "eval_version_id": uuid.uuid4(),
        "status": "pending",
        "item_count": 4,
        "threshold": 0.5,
        "batch_size": 2,
        "metrics": [Metric(name="exact", scorer="exact_match")],
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return Run.model_validate(values)


def lambda_context(timeout_s: float = 60.0) -> dict[str, Any]:
    """What the local runtime sends a worker beside each event: the Lambda context's fields."""
    import time

    return {
        "function_name": "f",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:f",
        "memory_limit_in_mb": 512,
        "aws_request_id": "r",
        "log_group_name": "g",
        "log_stream_name": "s",
        "deadline_epoch_ms": int(time.time() * 1000) + int(timeout_s * 1000),
    }
