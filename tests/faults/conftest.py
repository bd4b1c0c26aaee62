"""The fault harness's stack: every resource of template.yaml on moto (the functional suite's
pattern), the workflow functions' environment set once for the module (handlers run on
several threads, so it is not swapped per call), and moto's DynamoDB made atomic per request.

moto applies a TransactWriteItems by checking, writing and, on a cancelled one, restoring a
copy of the whole table taken before it; two threads interleaving there would lose each
other's writes — something DynamoDB never does. One lock around each DynamoDB request makes
the emulator linearizable like the service, so what the harness finds is ours, not moto's.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from assay_service.bootstrap import bootstrap_tenant
from moto.dynamodb.responses import DynamoHandler

from tests.functional.conftest import Context, Stack, environment, template_on_moto

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "eval_run.asl.json"
REGION = "us-east-1"
OWNER_KEY = "ask_fault-harness-owner-key-0123456789ab"
WORKFLOW_FUNCTIONS = (
    "PrepareRunFunction",
    "ScoreBatchFunction",
    "FinalizeRunFunction",
    "MarkRunFailedFunction",
    "ReconcileRunFunction",
)


@dataclass
class FaultStack(Stack):
    bucket: str = ""

    def handler(self, logical_id: str) -> Any:
        module_name, func = self.created.functions[logical_id].handler.rsplit(".", 1)
        return getattr(importlib.import_module(module_name), func)

    def invoke_workflow(self, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A workflow function's real handler, in this thread, in the module's environment."""
        if logical_id not in WORKFLOW_FUNCTIONS:
            raise ValueError(f"not a workflow function: {logical_id}")
        return self.handler(logical_id)(payload, Context())

    def definition(self) -> dict[str, Any]:
        """The ASL with its ``${...}`` substitutions: function ARNs become logical ids."""
        text = ASL.read_text().replace("${Partition}", "aws")
        text = re.sub(r"\$\{(\w+)FunctionArn\}", r"\1Function", text)
        return json.loads(text.replace("${ArtifactsBucketName}", self.bucket))

    def read_items(self, params: dict[str, Any]) -> list[Any]:
        s3 = boto3.client("s3", region_name=REGION)
        return json.loads(s3.get_object(Bucket=params["Bucket"], Key=params["Key"])["Body"].read())


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
