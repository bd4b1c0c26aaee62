"""EventBridge on the local stack, for the one kind of event the template subscribes to.

moto keeps the template's rules and targets (``resources.py`` creates them through the
Events API) and matches patterns, but it delivers only to SQS, logs and other buses, and
its Step Functions interpreter emits no events at all. This module closes both gaps for
what ``template.yaml`` uses, and nothing more:

* when an execution of a state machine ends, it builds AWS's "Step Functions Execution
  Status Change" event (the documented fields: ``executionArn``, ``stateMachineArn``,
  ``name``, ``status``, ``startDate``, ``stopDate``, ``input``, ``output``, ``error``,
  ``cause``);
* it matches the event against the default bus's rules with moto's own pattern matcher;
* it invokes each matching rule's Lambda targets asynchronously, as EventBridge does,
  through moto's Lambda API (so the real handler runs in its worker, like every other
  invocation), retrying a failed invocation twice, as Lambda's asynchronous invocation
  does. What still fails is logged (on AWS it would go to the function's dead-letter queue).

Only SUCCEEDED/FAILED/TIMED_OUT/ABORTED are emitted (RUNNING is not: nothing subscribes).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from assay_local.moto_hooks import MotoHook

LOG = logging.getLogger(__name__)
DETAIL_TYPE = "Step Functions Execution Status Change"
KEPT_EXECUTIONS = 100  # ended executions kept per state machine (history, DescribeExecution)
ASYNC_ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try and two retries

Invoke = Callable[[str, dict[str, Any]], tuple[bytes, bool]]  # (function ARN, event)


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def status_change_event(execution: Any, account_id: str, region: str) -> dict[str, Any]:
    """AWS's event for a moto ``Execution`` that has just ended."""
    output = execution.output
    return execution_status_event(
        account_id=account_id,
        region=region,
        execution_arn=execution.exec_arn,
        state_machine_arn=execution.state_machine_arn,
        name=execution.name,
        status=getattr(execution.exec_status, "value", execution.exec_status),
        start_ms=_millis(execution.start_date),
        stop_ms=_millis(execution.stop_date),
        input_json=json.dumps(execution.input_data),
        output_json=None if output is None else json.dumps(output),
        error=execution.error,
        cause=execution.cause,
    )


def execution_status_event(
    *,
    account_id: str,
    region: str,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    status: str,
    start_ms: int | None,
    stop_ms: int | None,
    input_json: str,
    output_json: str | None,
    error: str | None,
    cause: str | None,
) -> dict[str, Any]:
    """AWS's "Step Functions Execution Status Change" event, as EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": state_machine_arn,
            "name": name,
            "status": status,
            "startDate": start_ms,
            "stopDate": stop_ms,
            "input": input_json,
            "output": output_json,
            "inputDetails": {"included": True},
            "outputDetails": None if output_json is None else {"included": True},
            "error": error,
            "cause": cause,
        },
    }


class ExecutionEvents:
    """Delivers execution-ended events to the rules' Lambda targets (see the module)."""

    def __init__(self, invoke: Invoke, account_id: str, region: str) -> None:
        self._invoke = invoke
        self._account_id = account_id
        self._region = region
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="eventbridge")
        self.delivered: list[tuple[str, dict[str, Any], bool]] = []  # (target, event, ok)
        self._pending: list[Any] = []

    def install(self) -> None:
        HOOK.install(self)

    def uninstall(self) -> None:
        HOOK.uninstall(self)
        self.drain()
        self._pool.shutdown(wait=True)

    def drain(self, timeout: float = 120.0) -> None:
        """Wait for the deliveries started so far."""
        for future in list(self._pending):
            future.result(timeout=timeout)

    def execution_ended(self, execution: Any) -> int:
        """Publish AWS's status-change event for a moto execution that has just ended, then
        forget the state machine's oldest ended executions past ``KEPT_EXECUTIONS``."""
        started = self.publish(status_change_event(execution, self._account_id, self._region))
        forget_old_executions(execution.state_machine_arn, self._account_id, self._region)
        return started

    def publish(self, event: dict[str, Any]) -> int:
        """Match ``event`` against the default bus's rules; deliver to Lambda targets.
        Returns the number of deliveries started."""
        bus = events_backends[self._account_id][self._region].event_buses.get("default")
        targets = [
            target["Arn"]
            for rule in (list(bus.rules.values()) if bus else [])
            if rule.state == "ENABLED" and rule.event_pattern.matches_event(event)  # type: ignore[arg-type]
            for target in rule.targets
            if target["Arn"].startswith("arn:aws:lambda:")
        ]
        self._pending = [f for f in self._pending if not f.done()]
        for arn in targets:
            self._pending.append(self._pool.submit(self._deliver, arn, event))
        return len(targets)

    def _deliver(self, function_arn: str, event: dict[str, Any]) -> None:
        for attempt in range(1, ASYNC_ATTEMPTS + 1):
            payload, errored = self._invoke(function_arn, event)
            if not errored:
                self.delivered.append((function_arn, event, True))
                return
            LOG.warning(
                "EventBridge target %s failed (attempt %d of %d): %s",
                function_arn,
                attempt,
                ASYNC_ATTEMPTS,
                payload[:500].decode("utf-8", "replace"),
            )
        self.delivered.append((function_arn, event, False))
        LOG.error(
            "EventBridge target %s failed %d times; the event is dropped (on AWS: the "
            "function's dead-letter queue)",
            function_arn,
            ASYNC_ATTEMPTS,
        )


def forget_old_executions(
    state_machine_arn: str, account_id: str, region: str, keep: int | None = None
) -> int:
    """moto keeps every execution with its whole interpreter state (inputs, outputs, the
    Distributed Map's records) for as long as the process lives: ~1 MB a run, the largest
    part of what a long-running local stack gained per run. Step Functions keeps history
    90 days; the local stack keeps the newest ``KEPT_EXECUTIONS`` ended executions of each
    state machine (running ones always). Returns how many were forgotten."""
    keep = KEPT_EXECUTIONS if keep is None else keep
    backend = stepfunctions_parser_backends[account_id][region]
    for machine in backend.state_machines:
        if machine.arn != state_machine_arn:
            continue
        # The parser backend's executions (typed as moto's older model) carry exec_status.
        statuses = [(e, getattr(e, "exec_status", None)) for e in machine.executions]
        ended = [e for e, status in statuses if status is not None and status != ExecutionStatus.RUNNING]
        old = {id(e) for e in ended[: max(0, len(ended) - keep)]}
        if old:
            machine.executions[:] = [e for e in machine.executions if id(e) not in old]
        return len(old)
    return 0


def _terminated_hook(self: BaseExecutionWorkerCommunication) -> None:
    HOOK.original(self)
    events: ExecutionEvents | None = HOOK.active
    if events is None:
        return
    try:
        events.execution_ended(self.execution)
    except Exception:  # an event that cannot be built must not break the execution's end
        LOG.exception("could not publish the execution's status change")


HOOK = MotoHook(BaseExecutionWorkerCommunication, "terminated", _terminated_hook, "local EventBridge")
