"""Runs a stop cut short: found at start (still ``pending`` or ``running`` after the
replay), and the FAILED status-change event for one whose execution could not start again."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from assay_local.persistence.store import DurableStore


@dataclass(frozen=True)
class UnfinishedRun:
    tenant_id: str
    run_id: str
    status: str


def unfinished_runs(store: DurableStore, table: str) -> list[UnfinishedRun]:
    """Runs still ``pending`` or ``running`` in ``table`` (a Scan: start-up only)."""
    items = store.scan(
        table,
        FilterExpression="SK = :run AND (#s = :pending OR #s = :running)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":run": {"S": "RUN"},
            ":pending": {"S": "pending"},
            ":running": {"S": "running"},
        },
        ProjectionExpression="tenant_id, id, #s",
    )
    return sorted(
        (
            UnfinishedRun(i["tenant_id"]["S"], i["id"]["S"], i["status"]["S"])
            for i in items
            if "tenant_id" in i and "id" in i
        ),
        key=lambda r: (r.tenant_id, r.run_id),
    )


STOPPED_ERROR = "LocalStackStopped"


def stopped_run_event(
    run: UnfinishedRun, state_machine_arn: str, account_id: str, region: str, reason: str
) -> dict[str, Any]:
    """AWS's "Step Functions Execution Status Change" event (FAILED) for a run whose
    execution the local stack lost when it stopped, and could not start again."""
    from assay_local.eventbridge import execution_status_event

    now = int(time.time() * 1000)
    return execution_status_event(
        account_id=account_id,
        region=region,
        execution_arn=state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run.run_id}",
        state_machine_arn=state_machine_arn,
        name=run.run_id,
        status="FAILED",
        start_ms=now,
        stop_ms=now,
        input_json=json.dumps({"tenant_id": run.tenant_id, "run_id": run.run_id}),
        output_json=None,
        error=STOPPED_ERROR,
        cause=(
            "the local stack stopped while the run was in flight, and its workflow "
            f"could not be started again: {reason}"
        )[:2000],
    )
