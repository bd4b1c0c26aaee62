"""Step Functions requests → IAM checks: every operation on the state machine, execution,
map run or activity ARN the request names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay_local.iam.policy import Check

_STATES_ARNS = ("executionArn", "stateMachineArn", "mapRunArn", "activityArn", "resourceArn")


def states_checks(op: str, body: Mapping[str, Any]) -> list[Check]:
    resource = next((body[k] for k in _STATES_ARNS if body.get(k)), "*")
    return [Check(f"states:{op}", resource)]
