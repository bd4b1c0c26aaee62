"""The fault harness's stack and its constants: the template's resources on moto as the
functional suite builds them (tests/functional/harness.py), with the workflow functions'
real handlers and the state machine definition they run under. The fixture is in conftest.py."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.functional.harness import Context, Stack

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
