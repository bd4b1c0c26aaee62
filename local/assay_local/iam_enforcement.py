"""Enforce each Lambda function's IAM role on the local stack, as AWS would.

The enforcement lives in the package ``assay_local.iam`` (its docstring says what is
enforced and what is not; one module per concern: ``policy``, the per-service request
mappings, ``enforcer``, ``middleware``). This module re-exports its public names, so
``from assay_local.iam_enforcement import Enforcer, iam_middleware`` keeps working.
"""

from __future__ import annotations

from assay_local.iam.awslambda import lambda_checks
from assay_local.iam.bedrock import bedrock_checks
from assay_local.iam.dynamodb import dynamodb_checks
from assay_local.iam.enforcer import (
    Denial,
    Enforcer,
    Outcome,
    Principal,
    denial_message,
    recorded_denials,
    recorded_unmapped,
)
from assay_local.iam.mapping import request_checks
from assay_local.iam.middleware import (
    ENV_SWITCH,
    IamEnforcementApp,
    enabled_from_env,
    error_response,
    iam_middleware,
)
from assay_local.iam.policy import (
    SUPPORTED_KEYS,
    Check,
    Context,
    Decision,
    Statement,
    conditions_met,
    evaluate,
    parse_policy,
    wildcard,
)
from assay_local.iam.s3 import s3_checks, s3_location
from assay_local.iam.secretsmanager import secretsmanager_checks
from assay_local.iam.stepfunctions import states_checks
from assay_local.iam.target import Target, Unmapped

__all__ = [
    "ENV_SWITCH",
    "SUPPORTED_KEYS",
    "Check",
    "Context",
    "Decision",
    "Denial",
    "Enforcer",
    "IamEnforcementApp",
    "Outcome",
    "Principal",
    "Statement",
    "Target",
    "Unmapped",
    "bedrock_checks",
    "conditions_met",
    "denial_message",
    "dynamodb_checks",
    "enabled_from_env",
    "error_response",
    "evaluate",
    "iam_middleware",
    "lambda_checks",
    "parse_policy",
    "recorded_denials",
    "recorded_unmapped",
    "request_checks",
    "s3_checks",
    "s3_location",
    "secretsmanager_checks",
    "states_checks",
    "wildcard",
]
