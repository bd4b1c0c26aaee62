"""Lambda requests → IAM checks: Invoke, GetFunction and GetFunctionConfiguration on the
function's ARN (with its qualifier)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from assay_local.iam.policy import Check
from assay_local.iam.target import Target, Unmapped

_LAMBDA_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<rest>/[a-z]+)?/?$")


def lambda_checks(method: str, path: str, query: Mapping[str, list[str]], target: Target) -> list[Check]:
    found = _LAMBDA_PATH.match(path)
    rest = found.group("rest") if found else None
    action = {
        ("POST", "/invocations"): "InvokeFunction",
        ("GET", None): "GetFunction",
        ("GET", "/configuration"): "GetFunctionConfiguration",
    }.get((method, rest))
    if found is None or action is None:
        raise Unmapped(f"lambda {method} {path}")
    name = unquote(found.group("name"))
    arn = (
        name
        if name.startswith("arn:")
        else (f"arn:aws:lambda:{target.region}:{target.account_id}:function:{name}")
    )
    if query.get("Qualifier"):
        arn += f":{query['Qualifier'][0]}"
    return [Check(f"lambda:{action}", arn)]
