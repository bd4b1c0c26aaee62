"""The fault harness's stack: every resource of template.yaml on moto (the functional suite's
pattern), the workflow functions' environment set once for the module (handlers run on
several threads, so it is not swapped per call), and moto's DynamoDB made atomic per request.

moto applies a TransactWriteItems by checking, writing and, on a cancelled one, restoring a
copy of the whole table taken before it; two threads interleaving there would lose each
other's writes — something DynamoDB never does. One lock around each DynamoDB request makes
the emulator linearizable like the service, so what the harness finds is ours, not moto's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from assay_service.bootstrap import bootstrap_tenant
from moto.dynamodb.responses import DynamoHandler

from tests.faults.stack import OWNER_KEY, WORKFLOW_FUNCTIONS, FaultStack
from tests.functional.harness import environment, template_on_moto


def _atomic(call_action: Any, lock: threading.RLock) -> Any:
    def locked(self: Any) -> Any:
        with lock:
            return call_action(self)

    return locked


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[FaultStack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoHandler, "call_action", _atomic(DynamoHandler.call_action, threading.RLock()))
        with template_on_moto("assay-faults") as created:
            workflow_env: dict[str, str] = {}
            for name in WORKFLOW_FUNCTIONS:
                workflow_env.update(created.functions[name].environment)
            workflow_env.update({"POWERTOOLS_LOG_LEVEL": "ERROR", "MAX_RUNS_IN_FLIGHT": "10000"})
            # Thousands of "step done" INFO lines would only slow the harness down.
            patch.setattr(logging.getLogger("assay"), "level", logging.ERROR)
            with environment(workflow_env):
                tenant = bootstrap_tenant(slug="faults", owner_key=OWNER_KEY)
                yield FaultStack(created, tenant_id=str(tenant.id), bucket=workflow_env["BUCKET_NAME"])
