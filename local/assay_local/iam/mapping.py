"""A request → the IAM checks it needs, by service (``Unmapped`` if no mapping covers it)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from assay_local.iam.awslambda import lambda_checks
from assay_local.iam.bedrock import bedrock_checks
from assay_local.iam.dynamodb import dynamodb_checks
from assay_local.iam.policy import Check
from assay_local.iam.s3 import s3_checks, s3_location
from assay_local.iam.secretsmanager import secretsmanager_checks
from assay_local.iam.stepfunctions import states_checks
from assay_local.iam.target import Target, Unmapped
from assay_local.moto_requests import read_body


def request_checks(environ: dict[str, Any], service: str, op: str, target: Target) -> list[Check]:
    """The checks a request needs (``Unmapped`` if this package cannot tell)."""
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if service == "dynamodb" and op:
        return dynamodb_checks(op, json.loads(read_body(environ) or b"{}"), target)
    if service == "secretsmanager" and op:
        return secretsmanager_checks(op, json.loads(read_body(environ) or b"{}"), target)
    if service == "states" and op:
        return states_checks(op, json.loads(read_body(environ) or b"{}"))
    if service == "s3":
        bucket, key = s3_location(environ)
        headers = {"x-amz-copy-source": environ.get("HTTP_X_AMZ_COPY_SOURCE", "")}
        return s3_checks(method, bucket, key, query, headers, lambda: read_body(environ))
    if service == "bedrock":
        return bedrock_checks(method, path, target)
    if service == "lambda":
        return lambda_checks(method, path, query, target)
    if service == "sts":
        form = parse_qs(read_body(environ).decode("utf-8", "replace"))
        action = (form.get("Action") or query.get("Action") or [""])[0]
        if action == "GetCallerIdentity":
            return []  # no permission needed, even with an explicit deny
    raise Unmapped(f"{service} {op or method} {path}")
