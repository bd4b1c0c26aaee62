"""Enforce each Lambda function's IAM role on the local stack, as AWS would.

moto accepts any request from anyone, so a function whose policy lacks an action it calls
works locally and fails on AWS with AccessDenied. The local stack closes that gap:

* Every worker runs with credentials of its function's own execution role, like Lambda:
  the stack calls moto's STS ``AssumeRole`` on the role the template gives the function
  (session name = the function's name) and puts the returned AccessKeyId,
  SecretAccessKey and SessionToken in the worker's environment.
* ``IamEnforcementApp``, a WSGI middleware in front of moto, recognises requests signed by
  an assumed-role key (moto's STS knows which role each ``ASIA…`` key belongs to, header
  or presigned URL), works out the IAM actions and resource ARNs the request needs and
  evaluates the role's policies — inline and attached managed, read from moto's IAM on each
  request (so a policy change applies at once), each document parsed once. A request that
  is not allowed gets the service's own AccessDenied answer (DynamoDB/Secrets Manager/Step
  Functions JSON 400, S3 XML 403, REST-JSON 403) and is recorded: ``Enforcer.denials()``,
  and a warning on the ``assay_local.iam`` logger.

Requests signed any other way pass untouched: the test harness and the HTTP front (the
dummy ``testing`` keys, like API Gateway's service principal invoking a function), the
Step Functions interpreter's own clients, the tenant bootstrap.

Enforced
    * DynamoDB, every operation, on ``table/NAME`` (``table/NAME/index/INDEX`` for a
      Query or Scan with ``IndexName``). TransactWriteItems needs, per item, PutItem,
      UpdateItem, DeleteItem or ConditionCheckItem; TransactGetItems GetItem per item
      (there is no Transact* IAM action). BatchGetItem and BatchWriteItem are their own
      actions, checked on each table they name. PartiQL maps to PartiQLSelect/Insert/
      Update/Delete.
    * S3 object and bucket operations: GET/HEAD object → GetObject (GetObjectVersion with
      ``versionId``), PUT → PutObject (+ GetObject on a copy source), multipart Create/
      UploadPart/Complete → PutObject, Abort → AbortMultipartUpload, ListParts →
      ListMultipartUploadParts, DELETE → DeleteObject, DeleteObjects → DeleteObject per
      key, GET/HEAD bucket → ListBucket, sub-resources (``?tagging``, ``?acl``, …) → their
      own actions. As on AWS, a GET/HEAD of a missing key answers 403, not 404, unless the
      role may ``s3:ListBucket`` the bucket (recorded as a denial of s3:ListBucket).
    * Secrets Manager, every operation, on the secret's full ARN (a name is resolved
      through moto). Step Functions, every operation, on the state machine, execution,
      map run or activity ARN the request names. Bedrock Runtime Converse/InvokeModel
      (``bedrock:InvokeModel``) and their streaming forms
      (``bedrock:InvokeModelWithResponseStream``) on the foundation-model (or inference
      profile) ARN. Lambda Invoke, GetFunction, GetFunctionConfiguration.
      ``sts:GetCallerIdentity`` is always allowed, as on AWS.
    * Evaluation: an explicit Deny wins, then any Allow, else an implicit deny; Action /
      NotAction (case-insensitive), Resource / NotResource, ``*`` and ``?`` wildcards.
    * Conditions on the keys ``dynamodb:LeadingKeys`` (the partition key values of the
      items the request names: Key/Item, every item of a batch, a Query's key condition —
      on an index, the index's partition key —; none for a Scan), ``s3:prefix``
      (ListBucket), ``aws:SecureTransport`` (true: the SDK on Lambda talks TLS),
      ``aws:PrincipalArn``, ``aws:PrincipalAccount``,
      ``aws:PrincipalType``, ``aws:RequestedRegion``; with the String*, Arn*, Bool and Null
      operators, ``ForAllValues:``/``ForAnyValue:`` and ``…IfExists``. A condition on any
      other key, or with another operator (Numeric*, Date*, IpAddress…), is not evaluated:
      an Allow statement carrying one is taken as matching and a Deny statement as not
      matching — broader than AWS, never a false denial.

Not enforced
    * The state machine's role (EvalRunStateMachine): moto's interpreter invokes the
      functions and reads the manifest with this process's own credentials. Its policy is
      covered by tests/unit/test_template_policy.py only.
    * Resource-based policies as a source of Allow (the template's bucket policy only
      denies; its Lambda permissions are for API Gateway). Bucket-policy denials stay moto's
      (unconditional ones; conditional ones are left out, see ``resources.py``).
    * Permissions boundaries, session policies, SCPs (the template has none); the roles'
      trust policies (the stack assumes them itself); credential expiry, session tokens
      and signatures (moto verifies none).
    * KMS: the template encrypts with AWS-managed keys (SSE-S3, DynamoDB's), which need no
      ``kms:`` permission.
    * Services and operations with no mapping here, and requests this module cannot
      parse, pass — and are recorded (``Enforcer.unmapped()``) so a test can insist there
      are none.
    * Policy variables (``${aws:username}``) in resources.

moto's own evaluator (``moto.iam.access_control``) is not reused: it turns an Allow whose
condition does not hold into an explicit Deny, matches actions case-sensitively and does not
escape regex characters in patterns. Its models are: STS's assumed roles map a key to its
role, IAM's roles hold the policies.

On by default in every local stack; ``ASSAY_LOCAL_IAM=off`` (or ``LocalStack(iam=False)``)
turns it off. Local tooling only; never part of the Lambda package.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape, unescape

from assay_local.moto_requests import WsgiApp, credential, read_body, service_and_operation

log = logging.getLogger("assay_local.iam")

ENV_SWITCH = "ASSAY_LOCAL_IAM"
_OFF_VALUES = {"off", "0", "false", "no", "disabled"}

Context = Mapping[str, tuple[str, ...]]  # condition key (lower case) -> the request's values


def enabled_from_env(environ: Mapping[str, str]) -> bool:
    """On unless ``ASSAY_LOCAL_IAM`` says off (``off``, ``0``, ``false``, ``no``)."""
    return environ.get(ENV_SWITCH, "on").strip().lower() not in _OFF_VALUES


# =============================================================================== policies
class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Check:
    """One authorization a request needs: an action on a resource, with the condition
    keys the request supplies."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@lru_cache(maxsize=4096)
def wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """An IAM pattern (``*`` any run of characters, ``?`` one) as a compiled regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    condition: Mapping[str, Mapping[str, Any]]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        return cls(
            allow=raw.get("Effect") == "Allow",
            actions=_as_tuple(raw.get("NotAction", raw.get("Action"))),
            not_action="NotAction" in raw,
            resources=_as_tuple(raw.get("NotResource", raw.get("Resource"))),
            not_resource="NotResource" in raw,
            condition=raw.get("Condition") or {},
        )

    def applies(self, check: Check) -> bool:
        """Action and resource match and the conditions hold (as far as evaluated)."""
        action = any(wildcard(a, True).fullmatch(check.action) for a in self.actions)
        if action == self.not_action:
            return False
        resource = any(wildcard(r).fullmatch(check.resource) for r in self.resources)
        if resource == self.not_resource:
            return False
        if not self.condition:
            return True
        met = conditions_met(self.condition, check.context)
        # Not evaluable locally: the broader reading for either effect (module docstring).
        return self.allow if met is None else met


@lru_cache(maxsize=512)
def parse_policy(document: str) -> tuple[Statement, ...]:
    """A policy document's statements (cached by the document's text)."""
    statements = json.loads(document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return tuple(Statement.parse(s) for s in statements)


def evaluate(statements: Iterable[Statement], check: Check) -> Decision:
    """IAM's identity-policy logic: an explicit Deny wins, then an Allow, else implicit."""
    allowed = False
    for statement in statements:
        if statement.applies(check):
            if not statement.allow:
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


# ------------------------------------------------------------------------- conditions
SUPPORTED_KEYS = frozenset(
    {
        "dynamodb:leadingkeys",
        "s3:prefix",
        "aws:securetransport",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:requestedregion",
    }
)


def _string_match(value: str, pattern: str) -> bool:
    return value == pattern


def _string_match_ci(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower()


def _like(value: str, pattern: str) -> bool:
    return wildcard(pattern).fullmatch(value) is not None


# operator -> (match function, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (_string_match, False),
    "stringnotequals": (_string_match, True),
    "stringequalsignorecase": (_string_match_ci, False),
    "stringnotequalsignorecase": (_string_match_ci, True),
    "stringlike": (_like, False),
    "stringnotlike": (_like, True),
    "arnequals": (_like, False),
    "arnlike": (_like, False),
    "arnnotequals": (_like, True),
    "arnnotlike": (_like, True),
    "bool": (_string_match_ci, False),
}


def _one_condition(operator: str, key: str, expected: Any, context: Context) -> bool | None:
    qualifier, _, base = operator.rpartition(":")
    qualifier, base = qualifier.lower(), base.lower()
    if_exists = base.endswith("ifexists")
    if if_exists:
        base = base[: -len("ifexists")]
    if key.lower() not in SUPPORTED_KEYS or qualifier not in ("", "forallvalues", "foranyvalue"):
        return None
    values = context.get(key.lower(), ())
    patterns = _as_tuple(expected)
    if base == "null":
        want_absent = any(p.lower() == "true" for p in patterns)
        return (not values) == want_absent
    if base not in _OPERATORS:
        return None
    match, negated = _OPERATORS[base]
    if not values:  # the key is absent from the request
        if if_exists or qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return negated
    results = [any(match(v, p) for p in patterns) != negated for v in values]
    if qualifier == "forallvalues":
        return all(results)
    if qualifier == "foranyvalue":
        return any(results)
    return all(results) if negated else any(results)


def conditions_met(condition: Mapping[str, Mapping[str, Any]], context: Context) -> bool | None:
    """A statement's Condition block: True, False, or None when it uses a key or
    operator this module does not evaluate (and nothing it does evaluate is false)."""
    unknown = False
    for operator, keys in condition.items():
        for key, expected in keys.items():
            met = _one_condition(operator, key, expected, context)
            if met is False:
                return False
            unknown |= met is None
    return None if unknown else True


# ========================================================================= request mapping
class Unmapped(Exception):
    """The request's IAM actions are not known here (passed, and recorded)."""


@dataclass(frozen=True)
class Target:
    """What the mappers need to know about the account they run in."""

    account_id: str
    region: str
    # (table name, index name or None) -> the partition key's attribute name
    partition_key: Callable[[str, str | None], str | None] = lambda table, index: None
    # secret id (name or ARN) -> the secret's full ARN
    secret_arn: Callable[[str], str] | None = None

    def table_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"


# ---------------------------------------------------------------------------- DynamoDB
def _attribute_text(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind in ("S", "N", "B") and isinstance(raw, str):
            return raw
    return None


def _leading(values: Iterable[str | None]) -> Context:
    found = tuple(v for v in values if v is not None)
    return {"dynamodb:leadingkeys": found} if found else {}


def _query_partition_value(body: Mapping[str, Any], attribute: str | None) -> str | None:
    if attribute is None:
        return None
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"([#:\w.]+)\s*=\s*([#:\w.]+)", body.get("KeyConditionExpression") or ""):
        for name, placeholder in ((left, right), (right, left)):
            if placeholder.startswith(":") and names.get(name, name) == attribute:
                return _attribute_text(values.get(placeholder))
    legacy = (body.get("KeyConditions") or {}).get(attribute) or {}
    if legacy.get("ComparisonOperator") == "EQ" and legacy.get("AttributeValueList"):
        return _attribute_text(legacy["AttributeValueList"][0])
    return None


_ITEM_OPS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}
_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_PARTIQL = {
    "select": "PartiQLSelect",
    "insert": "PartiQLInsert",
    "update": "PartiQLUpdate",
    "delete": "PartiQLDelete",
}
_PARTIQL_TABLE = re.compile(r'\b(?:from|into|update)\s+"?([\w.-]+)"?', re.I)


def dynamodb_checks(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:  # noqa: C901
    def item_check(action: str, spec: Mapping[str, Any]) -> Check:
        table = spec.get("TableName", "")
        key = spec.get("Key") or spec.get("Item") or {}
        attribute = target.partition_key(table, None)
        value = _attribute_text(key.get(attribute)) if attribute else None
        return Check(f"dynamodb:{action}", target.table_arn(table), _leading([value]))

    if op in _ITEM_OPS:
        return [item_check(op, body)]
    if op in ("Query", "Scan"):
        table, index = body.get("TableName", ""), body.get("IndexName")
        resource = target.table_arn(table) + (f"/index/{index}" if index else "")
        context: Context = {}
        if op == "Query":
            context = _leading([_query_partition_value(body, target.partition_key(table, index))])
        return [Check(f"dynamodb:{op}", resource, context)]
    if op == "TransactWriteItems":
        checks = []
        for entry in body.get("TransactItems", []):
            ((kind, spec),) = entry.items()
            checks.append(item_check(_TRANSACT_WRITE[kind], spec))
        return checks
    if op == "TransactGetItems":
        return [item_check("GetItem", entry["Get"]) for entry in body.get("TransactItems", [])]
    if op in ("BatchGetItem", "BatchWriteItem"):
        checks = []
        for table, spec in (body.get("RequestItems") or {}).items():
            attribute = target.partition_key(table, None)
            if op == "BatchGetItem":
                keys = spec.get("Keys", [])
            else:
                keys = [
                    w.get("PutRequest", {}).get("Item") or w.get("DeleteRequest", {}).get("Key") or {}
                    for w in spec
                ]
            values = [_attribute_text(k.get(attribute)) if attribute else None for k in keys]
            checks.append(Check(f"dynamodb:{op}", target.table_arn(table), _leading(values)))
        return checks
    if op in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
        statements = (
            [body]
            if op == "ExecuteStatement"
            else body.get("Statements") or body.get("TransactStatements") or []
        )
        checks = []
        for spec in statements:
            text = spec.get("Statement", "")
            verb = text.strip().split(None, 1)[0].lower() if text.strip() else ""
            table = _PARTIQL_TABLE.search(text)
            if verb not in _PARTIQL or table is None:
                raise Unmapped(f"dynamodb {op}: {text[:60]!r}")
            checks.append(Check(f"dynamodb:{_PARTIQL[verb]}", target.table_arn(table.group(1))))
        return checks
    if "TableName" in body:
        return [Check(f"dynamodb:{op}", target.table_arn(body["TableName"]))]
    return [Check(f"dynamodb:{op}", body.get("ResourceArn") or "*")]


# --------------------------------------------------------------------------------- S3
_OBJECT_READ_SUBRESOURCES = {
    "acl": "GetObjectAcl",
    "tagging": "GetObjectTagging",
    "retention": "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
    "torrent": "GetObjectTorrent",
    "attributes": "GetObjectAttributes",
    "uploadId": "ListMultipartUploadParts",
}
_OBJECT_WRITE_SUBRESOURCES = {
    "acl": "PutObjectAcl",
    "tagging": "PutObjectTagging",
    "retention": "PutObjectRetention",
    "legal-hold": "PutObjectLegalHold",
}
_BUCKET_SUBRESOURCES = {
    # sub-resource: (GET action, PUT action, DELETE action)
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "acl": ("GetBucketAcl", "PutBucketAcl", ""),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", ""),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "publicAccessBlock": (
        "GetBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
    ),
    "ownershipControls": (
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "PutBucketOwnershipControls",
    ),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "notification": ("GetBucketNotification", "PutBucketNotification", ""),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "logging": ("GetBucketLogging", "PutBucketLogging", ""),
    "location": ("GetBucketLocation", "", ""),
    "versions": ("ListBucketVersions", "", ""),
    "uploads": ("ListBucketMultipartUploads", "", ""),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", ""),
}
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.(?:s3[.-]|localhost$)")


def s3_location(environ: Mapping[str, Any]) -> tuple[str, str]:
    """``(bucket, key)`` of a path-style or virtual-hosted request (either may be '')."""
    path = environ.get("PATH_INFO", "") or "/"
    with contextlib.suppress(UnicodeDecodeError, UnicodeEncodeError):
        path = path.encode("latin-1").decode("utf-8")  # WSGI's decoded path is latin-1
    host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
    virtual = _VIRTUAL_HOST.match(host)
    if virtual:
        return virtual.group("bucket"), path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _copy_source(header: str) -> str:
    source = unquote(header).lstrip("/").split("?", 1)[0]
    return f"arn:aws:s3:::{source}"


_DELETE_KEY = re.compile(rb"<(?:[\w.-]+:)?Key\s*>(.*?)</(?:[\w.-]+:)?Key\s*>", re.DOTALL)


def _deleted_keys(body: bytes) -> list[str]:
    """The keys a DeleteObjects body names. A pattern, not an XML parser: the body is
    the caller's, and nothing here should expand entities or build a tree from it."""
    return [unescape(m.decode("utf-8", "replace")) for m in _DELETE_KEY.findall(body)]


def s3_checks(  # noqa: C901
    method: str,
    bucket: str,
    key: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: Callable[[], bytes],
) -> list[Check]:
    if not bucket:
        if method == "GET":
            return [Check("s3:ListAllMyBuckets", "*")]
        raise Unmapped(f"s3 {method} /")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if key:
        obj = f"{bucket_arn}/{key}"
        if method in ("GET", "HEAD"):
            sub = next((a for s, a in _OBJECT_READ_SUBRESOURCES.items() if s in query), None)
            if sub:
                return [Check(f"s3:{sub}", obj)]
            return [Check("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", obj)]
        if method == "PUT":
            if "uploadId" not in query:
                sub = next((a for s, a in _OBJECT_WRITE_SUBRESOURCES.items() if s in query), None)
                if sub:
                    return [Check(f"s3:{sub}", obj)]
            checks = [Check("s3:PutObject", obj)]  # PutObject, UploadPart, CopyObject
            if headers.get("x-amz-copy-source"):
                checks.append(Check("s3:GetObject", _copy_source(headers["x-amz-copy-source"])))
            return checks
        if method == "POST":
            if "uploads" in query or "uploadId" in query:  # Create / Complete multipart
                return [Check("s3:PutObject", obj)]
            if "restore" in query:
                return [Check("s3:RestoreObject", obj)]
            if "select" in query:
                return [Check("s3:GetObject", obj)]
            raise Unmapped(f"s3 POST object ?{'&'.join(query)}")
        if method == "DELETE":
            if "uploadId" in query:
                return [Check("s3:AbortMultipartUpload", obj)]
            if "tagging" in query:
                return [Check("s3:DeleteObjectTagging", obj)]
            return [Check("s3:DeleteObjectVersion" if "versionId" in query else "s3:DeleteObject", obj)]
        raise Unmapped(f"s3 {method} object")
    sub_name = next((s for s in _BUCKET_SUBRESOURCES if s in query), None)
    if method in ("GET", "HEAD"):
        if sub_name:
            return [Check(f"s3:{_BUCKET_SUBRESOURCES[sub_name][0]}", bucket_arn)]
        prefix = query.get("prefix", [""])[0]
        return [Check("s3:ListBucket", bucket_arn, {"s3:prefix": (prefix,)} if prefix else {})]
    if method == "POST" and "delete" in query:
        keys = _deleted_keys(body())
        if not keys:  # nothing recognised: refuse rather than check nothing
            raise Unmapped("s3 DeleteObjects without a key the check can read")
        return [Check("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys]
    if method in ("PUT", "DELETE"):
        if sub_name:
            action = _BUCKET_SUBRESOURCES[sub_name][1 if method == "PUT" else 2]
            if not action:
                raise Unmapped(f"s3 {method} bucket ?{sub_name}")
            return [Check(f"s3:{action}", bucket_arn)]
        return [Check("s3:CreateBucket" if method == "PUT" else "s3:DeleteBucket", bucket_arn)]
    raise Unmapped(f"s3 {method} bucket ?{'&'.join(query)}")


# ------------------------------------------------ Secrets Manager, Step Functions, …
def secretsmanager_checks(op: str, body: Mapping[str, Any], target: Target) -> list[Check]:
    secret_id = body.get("SecretId")
    if not secret_id:
        return [Check(f"secretsmanager:{op}", "*")]
    arn = target.secret_arn(secret_id) if target.secret_arn else secret_id
    return [Check(f"secretsmanager:{op}", arn)]


_STATES_ARNS = ("executionArn", "stateMachineArn", "mapRunArn", "activityArn", "resourceArn")


def states_checks(op: str, body: Mapping[str, Any]) -> list[Check]:
    resource = next((body[k] for k in _STATES_ARNS if body.get(k)), "*")
    return [Check(f"states:{op}", resource)]


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


# ============================================================================ enforcement
@dataclass(frozen=True)
class Principal:
    """An assumed role, as its temporary credentials identify it."""

    arn: str  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    role_name: str
    role_arn: str
    account_id: str


@dataclass(frozen=True)
class Denial:
    """One request IAM would have refused (``message`` is AWS's wording)."""

    principal: str
    role: str
    action: str
    resource: str
    request: str  # e.g. "dynamodb TransactWriteItems", "s3 HEAD bucket/key"
    explicit: bool
    message: str
    stack: str = ""  # the template the stack was built from


def denial_message(principal: str, action: str, resource: str, explicit: bool) -> str:
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"


@dataclass(frozen=True)
class Outcome:
    """A request's service, its signer if enforced, the checks it needed, any denial."""

    service: str
    principal: Principal | None = None
    checks: list[Check] = field(default_factory=list)
    denial: Denial | None = None


# Every denial of every enforcer in this process (e.g. for a test session's final check).
_ALL_DENIALS: list[Denial] = []
_ALL_UNMAPPED: list[tuple[str, str]] = []
_REGISTRY_LOCK = threading.Lock()


def recorded_denials() -> list[Denial]:
    with _REGISTRY_LOCK:
        return list(_ALL_DENIALS)


def recorded_unmapped() -> list[tuple[str, str]]:
    """``(stack, request)`` of every request no mapping covered, in this process."""
    with _REGISTRY_LOCK:
        return list(_ALL_UNMAPPED)


class Enforcer:
    """Maps requests to checks and evaluates them against the signer's role in moto."""

    def __init__(self, account_id: str, region: str, *, stack: str = "") -> None:
        self.account_id = account_id
        self.region = region
        self.stack = stack
        self._lock = threading.Lock()
        self._principals: dict[str, Principal] = {}
        self._partition_keys: dict[tuple[str, str | None], str | None] = {}
        self._denials: list[Denial] = []
        self._unmapped: list[str] = []
        self._allowed: Counter[str] = Counter()

    # ---------------------------------------------------------------- records
    def denials(self) -> list[Denial]:
        with self._lock:
            return list(self._denials)

    def unmapped(self) -> list[str]:
        with self._lock:
            return list(self._unmapped)

    def allowed_counts(self) -> dict[str, int]:
        """Checks that passed, by ``role action`` (proof the enforcement saw the calls)."""
        with self._lock:
            return dict(self._allowed)

    def record(self, denial: Denial) -> None:
        log.warning("IAM (local enforcement) denied %s: %s", denial.request, denial.message)
        with self._lock:
            self._denials.append(denial)
        with _REGISTRY_LOCK:
            _ALL_DENIALS.append(denial)

    def _record_unmapped(self, request: str) -> None:
        log.warning("IAM (local enforcement) cannot map %s; passed unchecked", request)
        with self._lock:
            self._unmapped.append(request)
        with _REGISTRY_LOCK:
            _ALL_UNMAPPED.append((self.stack, request))

    # ----------------------------------------------------------- moto lookups
    def principal(self, access_key_id: str) -> Principal | None:
        """The assumed role behind a temporary access key, or None (not enforced)."""
        found = self._principals.get(access_key_id)
        if found is not None or not access_key_id.startswith("ASIA"):
            return found
        from moto.sts.models import sts_backends

        assumed = sts_backends[self.account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
        if assumed is None:
            return None
        found = Principal(
            arn=assumed.arn,
            role_name=assumed.role_arn.rsplit("/", 1)[-1],
            role_arn=assumed.role_arn,
            account_id=assumed.account_id,
        )
        self._principals[access_key_id] = found
        return found

    def statements(self, principal: Principal) -> list[Statement]:
        """The role's inline and attached managed policies, as they are in moto now."""
        from moto.iam.models import iam_backends

        backend = iam_backends[principal.account_id]["aws"]
        role = next((r for r in backend.get_roles() if r.arn == principal.role_arn), None)
        if role is None:
            return []  # a deleted role allows nothing
        documents = list(role.policies.values())
        for policy in role.managed_policies.values():
            documents += [v.document for v in policy.versions if v.is_default]
        return [s for d in documents for s in parse_policy(d)]

    def partition_key(self, table: str, index: str | None) -> str | None:
        cache_key = (table, index)
        if cache_key in self._partition_keys:
            return self._partition_keys[cache_key]
        from moto.dynamodb.models import dynamodb_backends

        name = table.rsplit("/", 1)[-1] if table.startswith("arn:") else table
        found = dynamodb_backends[self.account_id][self.region].tables.get(name)
        attribute: str | None = None
        if found is not None:
            attribute = found.hash_key_attr
            for candidate in (*found.global_indexes, *found.indexes):
                if index is not None and candidate.name == index:
                    attribute = next(
                        (k["AttributeName"] for k in candidate.schema if k["KeyType"] == "HASH"), attribute
                    )
            self._partition_keys[cache_key] = attribute  # tables keep their key schema
        return attribute

    def secret_arn(self, secret_id: str) -> str:
        """A secret's full ARN (IAM checks the ARN, callers may name the secret)."""
        if secret_id.startswith("arn:"):
            return secret_id
        from moto.secretsmanager.models import secretsmanager_backends

        store = secretsmanager_backends[self.account_id][self.region].secrets
        if secret_id in store:
            return str(store[secret_id].arn)
        return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:{secret_id}"

    # ------------------------------------------------------------ the decision
    def checks(self, environ: dict[str, Any], service: str, op: str, region: str) -> list[Check]:
        """The checks a request needs (``Unmapped`` if this module cannot tell)."""
        target = Target(self.account_id, region, self.partition_key, self.secret_arn)
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

    def decide(self, environ: dict[str, Any]) -> Outcome:
        """Who signed the request, what it needs and whether that is allowed."""
        service, op = service_and_operation(environ)
        scope = credential(environ)
        principal = self.principal(scope[0]) if scope else None
        if principal is None or scope is None:
            return Outcome(service)
        request = f"{service} {op or environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
        try:
            checks = self.checks(environ, service, op, scope[1])
        except Unmapped as exc:
            self._record_unmapped(str(exc))
            return Outcome(service, principal)
        except Exception as exc:
            # Let the service answer it, but never silently: it went unchecked.
            self._record_unmapped(f"{request} ({type(exc).__name__}: {exc})")
            return Outcome(service, principal)
        statements = self.statements(principal)
        for check in checks:
            context = {**check.context, **self._global_context(principal, scope[1])}
            decision = evaluate(statements, Check(check.action, check.resource, context))
            if decision is not Decision.ALLOW:
                denial = self.denial(principal, check, request, explicit=decision is Decision.EXPLICIT_DENY)
                return Outcome(service, principal, checks, denial)
        with self._lock:
            self._allowed.update(f"{principal.role_name} {c.action}" for c in checks)
        return Outcome(service, principal, checks)

    def denial(self, principal: Principal, check: Check, request: str, *, explicit: bool) -> Denial:
        return Denial(
            principal=principal.arn,
            role=principal.role_name,
            action=check.action,
            resource=check.resource,
            request=request,
            explicit=explicit,
            message=denial_message(principal.arn, check.action, check.resource, explicit),
            stack=self.stack,
        )

    def allowed(self, principal: Principal, check: Check, region: str) -> bool:
        context = {**check.context, **self._global_context(principal, region)}
        return (
            evaluate(self.statements(principal), Check(check.action, check.resource, context))
            is Decision.ALLOW
        )

    @staticmethod
    def _global_context(principal: Principal, region: str) -> dict[str, tuple[str, ...]]:
        return {
            "aws:securetransport": ("true",),
            "aws:principalarn": (principal.role_arn,),
            "aws:principalaccount": (principal.account_id,),
            "aws:principaltype": ("AssumedRole",),
            "aws:requestedregion": (region,),
        }


# ================================================================================== wire
def _s3_error(denial: Denial, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = uuid.uuid4().hex[:16].upper()
    headers = [("x-amz-request-id", request_id), ("Content-Type", "application/xml")]
    if method == "HEAD":  # HEAD answers carry no body
        return "403 Forbidden", headers, b""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>{escape(denial.message)}</Message><RequestId>{request_id}</RequestId>"
        f"<HostId>{uuid.uuid4().hex}</HostId></Error>"
    )
    return "403 Forbidden", headers, body.encode()


def error_response(service: str, denial: Denial, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The AccessDenied answer in the service's wire format."""
    request_id = str(uuid.uuid4())
    if service == "s3":
        return _s3_error(denial, method)
    if service == "dynamodb":
        body = {"__type": "com.amazon.coral.service#AccessDeniedException", "message": denial.message}
        return (
            "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)],
            json.dumps(body).encode(),
        )
    if service in ("secretsmanager", "states"):
        key = "Message" if service == "secretsmanager" else "message"
        content_type = (
            "application/x-amz-json-1.1" if service == "secretsmanager" else ("application/x-amz-json-1.0")
        )
        body = {"__type": "AccessDeniedException", key: denial.message}
        return (
            "400 Bad Request",
            [("Content-Type", content_type), ("x-amzn-RequestId", request_id)],
            json.dumps(body).encode(),
        )
    if service == "sts":
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{escape(denial.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return "403 Forbidden", [("Content-Type", "text/xml")], xml.encode()
    # REST-JSON services (Bedrock Runtime, Lambda)
    body = {"Type": "User", "message": denial.message, "Message": denial.message}
    return (
        "403 Forbidden",
        [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", "AccessDeniedException"),
            ("x-amzn-RequestId", request_id),
        ],
        json.dumps(body).encode(),
    )


class IamEnforcementApp:
    """WSGI middleware: refuse what the signing role may not do, pass everything else."""

    def __init__(self, app: WsgiApp, enforcer: Enforcer) -> None:
        self.app = app
        self.enforcer = enforcer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "ASIA" not in environ.get("HTTP_AUTHORIZATION", "") and (
            "ASIA" not in environ.get("QUERY_STRING", "")
        ):
            return self.app(environ, start_response)  # not signed by an assumed role
        outcome = self.enforcer.decide(environ)
        if outcome.denial is not None:
            self.enforcer.record(outcome.denial)
            return self._deny(outcome.service, outcome.denial, environ, start_response)
        if (
            outcome.principal is not None
            and outcome.service == "s3"
            and len(outcome.checks) == 1
            and outcome.checks[0].action in ("s3:GetObject", "s3:GetObjectVersion")
        ):
            return self._missing_key_needs_list_bucket(
                environ, start_response, outcome.principal, outcome.checks[0]
            )
        return self.app(environ, start_response)

    @staticmethod
    def _deny(
        service: str, denial: Denial, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        status, headers, body = error_response(service, denial, environ["REQUEST_METHOD"])
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _missing_key_needs_list_bucket(
        self, environ: dict[str, Any], start_response: Callable[..., Any], principal: Principal, check: Check
    ) -> Iterable[bytes]:
        """S3 answers 404 for a missing key only to a caller that may list the bucket;
        anyone else gets 403 AccessDenied (on s3:ListBucket)."""
        answered: list[tuple[str, list[Any], Any]] = []
        written: list[bytes] = []

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            answered.append((status, headers, exc_info))
            return written.append

        result = self.app(environ, capture)
        try:
            chunks = written + list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = answered[0]
        if status.startswith("404"):
            bucket = check.resource.split(":::", 1)[1].split("/", 1)[0]
            scope = credential(environ)
            list_bucket = Check("s3:ListBucket", f"arn:aws:s3:::{bucket}")
            if not self.enforcer.allowed(principal, list_bucket, scope[1] if scope else self.enforcer.region):
                request = f"s3 {environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')} (no such key)"
                denial = self.enforcer.denial(principal, list_bucket, request, explicit=False)
                self.enforcer.record(denial)
                return self._deny("s3", denial, environ, start_response)
        if exc_info:
            start_response(status, headers, exc_info)
        else:
            start_response(status, headers)
        return chunks


def iam_middleware(enforcer: Enforcer) -> Callable[[WsgiApp], WsgiApp]:
    """For ``MiddlewareMotoServer``: wrap moto's app with ``enforcer``."""

    def wrap(app: WsgiApp) -> WsgiApp:
        return IamEnforcementApp(app, enforcer)

    return wrap
