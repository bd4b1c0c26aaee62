"""Bedrock Runtime requests → IAM checks: Converse/InvokeModel and their streaming forms on
the foundation-model (or inference profile) ARN."""

from __future__ import annotations

import re
from urllib.parse import unquote

from assay_local.iam.policy import Check
from assay_local.iam.target import Target, Unmapped

_BEDROCK_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>[a-z-]+)$")
_BEDROCK_ACTIONS = {
    "converse": "InvokeModel",
    "invoke": "InvokeModel",
    "converse-stream": "InvokeModelWithResponseStream",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}
_INFERENCE_PROFILE = re.compile(r"^(?:us|us-gov|eu|apac|jp|au|ca|global)\.")


def bedrock_checks(method: str, path: str, target: Target) -> list[Check]:
    found = _BEDROCK_PATH.match(path)
    if method != "POST" or not found or found.group("op") not in _BEDROCK_ACTIONS:
        raise Unmapped(f"bedrock {method} {path}")
    model = unquote(found.group("model"))
    if model.startswith("arn:"):
        resource = model
    elif _INFERENCE_PROFILE.match(model):
        resource = f"arn:aws:bedrock:{target.region}:{target.account_id}:inference-profile/{model}"
    else:
        resource = f"arn:aws:bedrock:{target.region}::foundation-model/{model}"
    return [Check(f"bedrock:{_BEDROCK_ACTIONS[found.group('op')]}", resource)]
