"""Secrets Manager requests → IAM checks: every operation on the secret's full ARN (a name
is resolved through the target)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay_local.iam.policy import Check
from assay_local.iam.target import Target


def secretsmanager_checks(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    secret_id = body.get("SecretId")
    if not secret_id:
        return [Check(f"secretsmanager:{op}", "*")]
    arn = target.secret_arn(secret_id) if target.secret_arn else secret_id
    return [Check(f"secretsmanager:{op}", arn)]
