"""Security guarantees of ``template.yaml`` (decision 0004, docs/security.md).

checkov reads the ``AWS::Serverless::*`` resources but not the IAM statements SAM builds
from a function's ``Policies:``; so these checks run on the *translated* template
(``assay_local.template.translate``): one generated role per function, SAM policy
templates such as ``LambdaInvokePolicy`` expanded.

IAM rule for every ``Effect: Allow`` statement anywhere in the stack:

* Actions are explicit ``service:Operation`` names: no ``*``, no ``s3:*``, no ``s3:Get*``,
  and no ``NotAction`` / ``NotResource``.
* A resource is never ``*``. A ``*`` inside a resource may only stand for an id the stack
  generates at run time (a tenant, a run, an execution, a version suffix): everything before
  the first ``*`` must name a resource of this stack (a ``Ref``/``GetAtt`` of one of its
  logical ids, or ``${AWS::StackName}``). So ``arn:…:logs:…:*`` or ``arn:aws:s3:::*`` fail.
* S3 object ARNs must start with a literal top-level prefix of the artifacts bucket,
  ``tenants/`` or ``uploads/`` (``bucket/tenants/*/runs/*`` is fine, ``bucket/*`` is not);
  the bucket ARN itself is only for the bucket-level ``s3:ListBucket``.

``EXPECTED_GRANTS`` lists what each role may do, so any change to permissions is a
deliberate edit of this file; ``test_grants_are_reachable_from_the_handler`` cross-checks
the granted services against what the handler's code can reach.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assay_local.template import TranslatedTemplate, load_template, translate

ROOT = Path(__file__).resolve().parents[2]
# Overridable so a deliberately broken copy can be checked without touching the real one.
TEMPLATE = Path(os.environ.get("ASSAY_POLICY_TEMPLATE", ROOT / "template.yaml"))
FUNCTIONS_DIR = ROOT / "functions"

LAMBDA_BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# Managed policies a role may carry, and why. Anything else (e.g. AWSXrayWriteOnlyAccess,
# which `Tracing: Active` would attach with Resource "*") fails the test.
ALLOWED_MANAGED_POLICIES = {
    LAMBDA_BASIC_EXECUTION: "CloudWatch Logs for the function's own log group",
}
# tenants/: every tenant's data; uploads/: presigned dataset uploads (expired after 2 days);
# map-results/: the Map's ResultWriter (batch indexes and counts only, expired after 7 days).
S3_OBJECT_PREFIXES = ("tenants/", "uploads/", "map-results/")
S3_BUCKET_LEVEL_ACTIONS = {"s3:ListBucket"}
MAX_PRESIGN_SECONDS = 900

TABLE = "${AssayTable.Arn}"
BUCKET = "${ArtifactsBucket.Arn}"
SECRET = "${ApiKeySecret}"
MACHINE = "${EvalRunStateMachine}"
RUN_INDEXES = [
    f"{TABLE}/index/{name}"
    for name in (
        "RunsByTenant",
        "RunsByEval",
        "RunsByEvalVersion",
        "RunsByDataset",
        "RunsByProject",
        "RunsByStatus",
    )
]
EXECUTIONS = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"


def _invoke(function: str) -> str:
    return f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:${{{function}}}*"


def _grant(actions: str, *resources: str) -> dict[str, set[str]]:
    return {action: set(resources) for action in actions.split()}


def _merge(*grants: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for grant in grants:
        for action, resources in grant.items():
            merged.setdefault(action, set()).update(resources)
    return merged


AUTH = _grant("secretsmanager:GetSecretValue", SECRET)  # every API function but meta
# Authentication records a key's last use; read-only functions may update API-key items only.
KEY_LAST_USE = _grant(
    "dynamodb:UpdateItem", TABLE + " when ForAllValues:StringLike dynamodb:LeadingKeys=APIKEY#*"
)

# Role (by the logical id it serves) -> action -> resources. Edit deliberately.
EXPECTED_GRANTS: dict[str, dict[str, set[str]]] = {
    "ApiMetaFunction": {},
    "DatasetsFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Query "
            "dynamodb:ConditionCheckItem",
            TABLE,
            f"{TABLE}/index/GSI1",
        ),
        _grant("dynamodb:DeleteItem dynamodb:BatchWriteItem", TABLE),
        _grant(
            "s3:PutObject s3:AbortMultipartUpload s3:GetObject s3:DeleteObject",
            f"{BUCKET}/tenants/*/datasets/*",
        ),
        _grant("s3:PutObject s3:GetObject s3:DeleteObject", f"{BUCKET}/uploads/*"),
        _grant("s3:ListBucket", BUCKET),
        AUTH,
    ),
    "EvalsFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Query "
            "dynamodb:ConditionCheckItem",
            TABLE,
            f"{TABLE}/index/GSI1",
        ),
        _grant("dynamodb:DeleteItem dynamodb:BatchWriteItem", TABLE),
        AUTH,
    ),
    "ProjectsFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Query",
            TABLE,
            f"{TABLE}/index/GSI1",
        ),
        AUTH,
    ),
    "ApiKeysFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Query",
            TABLE,
            f"{TABLE}/index/GSI1",
        ),
        AUTH,
    ),
    "ScheduleRunFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Query "
            "dynamodb:ConditionCheckItem",
            TABLE,
        ),
        _grant("states:StartExecution", MACHINE),
        AUTH,
    ),
    "OpenAIEvalsFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:BatchGetItem dynamodb:PutItem dynamodb:UpdateItem "
            "dynamodb:DeleteItem dynamodb:BatchWriteItem dynamodb:ConditionCheckItem dynamodb:Query",
            TABLE,
            f"{TABLE}/index/GSI1",
            f"{TABLE}/index/RunsByTenant",
            f"{TABLE}/index/RunsByEval",
            f"{TABLE}/index/RunsByDataset",
        ),
        _grant(
            "s3:PutObject s3:AbortMultipartUpload s3:GetObject s3:DeleteObject",
            f"{BUCKET}/tenants/*/openai-files/*",
            f"{BUCKET}/tenants/*/datasets/*",
        ),
        _grant("s3:DeleteObject", f"{BUCKET}/tenants/*/runs/*", f"{BUCKET}/uploads/*"),
        _grant("s3:ListBucket", BUCKET),
        _grant("states:StartExecution", MACHINE),
        _grant("states:StopExecution", EXECUTIONS + "${AWS::StackName}-eval-run:*"),
        AUTH,
    ),
    "GetRunFunction": _merge(_grant("dynamodb:GetItem dynamodb:Query", TABLE), KEY_LAST_USE, AUTH),
    "ListRunsFunction": _merge(
        _grant("dynamodb:GetItem dynamodb:BatchGetItem dynamodb:Query", TABLE, *RUN_INDEXES),
        KEY_LAST_USE,
        AUTH,
    ),
    "GetEvaluationFunction": _merge(_grant("dynamodb:GetItem dynamodb:Query", TABLE), KEY_LAST_USE, AUTH),
    "CancelRunFunction": _merge(
        _grant("dynamodb:GetItem dynamodb:UpdateItem", TABLE),
        _grant("states:StopExecution", EXECUTIONS + "${AWS::StackName}-eval-run:*"),
        AUTH,
    ),
    "DeleteRunFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:Query dynamodb:DeleteItem dynamodb:UpdateItem dynamodb:BatchWriteItem",
            TABLE,
        ),
        _grant("s3:DeleteObject", f"{BUCKET}/tenants/*/runs/*"),
        AUTH,
    ),
    "CompatViewsFunction": _merge(
        _grant(
            "dynamodb:GetItem dynamodb:BatchGetItem dynamodb:Query",
            TABLE,
            f"{TABLE}/index/RunsByTenant",
            f"{TABLE}/index/RunsByEval",
            f"{TABLE}/index/RunsByProject",
        ),
        _grant("dynamodb:Query", f"{TABLE}/index/GSI1"),  # Aymara's eval list
        KEY_LAST_USE,
        AUTH,
    ),
    "ExportRunFunction": _merge(
        _grant("dynamodb:GetItem", TABLE),
        _grant("s3:GetObject", f"{BUCKET}/tenants/*/runs/*"),
        _grant("s3:ListBucket", BUCKET),
        KEY_LAST_USE,
        AUTH,
    ),
    "PrepareRunFunction": _merge(
        _grant("dynamodb:GetItem dynamodb:UpdateItem", TABLE),
        _grant("s3:GetObject", f"{BUCKET}/tenants/*/datasets/*"),
        _grant("s3:PutObject", f"{BUCKET}/tenants/*/runs/*/manifest.json"),
    ),
    "ScoreBatchFunction": _merge(
        # Query, DeleteItem: the shared rate limiter's bucket and call slots (decision 0016);
        # BatchGetItem, BatchWriteItem: the response cache (decision 0017)
        _grant(
            "dynamodb:GetItem dynamodb:BatchGetItem dynamodb:Query dynamodb:PutItem dynamodb:BatchWriteItem "
            "dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:ConditionCheckItem",
            TABLE,
        ),
        _grant("s3:GetObject", f"{BUCKET}/tenants/*/datasets/*"),
        _grant(
            "bedrock:InvokeModel",
            "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${JudgeBedrockModelId}",
        ),
        # generation: the models GenerationBedrockModels allows (docs/generation.md)
        _grant(
            "bedrock:InvokeModel",
            "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${GenerationBedrockModels}",
        ),
        # cosine metrics: the embeddings model EmbeddingModel names (docs/judges.md)
        _grant(
            "bedrock:InvokeModel",
            "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${EmbeddingModel}",
        ),
        _grant("secretsmanager:GetSecretValue", "${JudgeOpenAISecret}"),
    ),
    "FinalizeRunFunction": _merge(
        _grant("dynamodb:GetItem dynamodb:UpdateItem dynamodb:Query", TABLE),
        _grant("s3:PutObject s3:AbortMultipartUpload", f"{BUCKET}/tenants/*/runs/*"),
    ),
    "MarkRunFailedFunction": _grant("dynamodb:GetItem dynamodb:UpdateItem", TABLE),
    "ReconcileRunFunction": _merge(
        _grant("dynamodb:GetItem dynamodb:UpdateItem", TABLE),
        _grant("sqs:SendMessage", "${ReconcileDeadLetterQueue.Arn}"),
    ),
    "EvalRunStateMachine": _merge(
        {
            "lambda:InvokeFunction": {
                _invoke(f)
                for f in (
                    "PrepareRunFunction",
                    "ScoreBatchFunction",
                    "FinalizeRunFunction",
                    "MarkRunFailedFunction",
                )
            }
        },
        _grant("s3:GetObject", f"{BUCKET}/tenants/*/runs/*/manifest.json"),
        _grant(
            "s3:PutObject s3:GetObject s3:ListMultipartUploadParts s3:AbortMultipartUpload",
            f"{BUCKET}/map-results/*",
        ),
        _grant(
            "states:StartExecution",
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
            "${AWS::StackName}-eval-run",
        ),
        _grant("states:DescribeExecution states:StopExecution", EXECUTIONS + "${AWS::StackName}-eval-run/*"),
    ),
}


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def translated() -> TranslatedTemplate:
    return translate(TEMPLATE)


def render(value: Any) -> str:
    """An IAM resource as text: ``Ref X`` -> ``${X}``, ``GetAtt X.Arn`` -> ``${X.Arn}``,
    Sub variables substituted, Join joined. Anything else fails (so it gets handled)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"${{{arg}}}"
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return f"${{{logical_id}.{attribute}}}"
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            for name, sub in variables.items():
                text = text.replace(f"${{{name}}}", render(sub))
            return text
        if key == "Fn::Join":
            delimiter, items = arg
            return delimiter.join(render(item) for item in items)
    raise AssertionError(f"cannot render IAM value {value!r}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iter_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement anywhere in the stack: role policies, trust policies, bucket
    and any other resource policy, wherever it sits."""

    def walk(where: str, node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            if "Statement" in node and isinstance(node["Statement"], list | dict):
                for statement in _as_list(node["Statement"]):
                    yield where, statement
            for key, value in node.items():
                if key != "Statement":
                    yield from walk(where, value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(where, item)

    for logical_id, resource in resources.items():
        yield from walk(logical_id, resource.get("Properties", {}))


def action_problems(statement: dict[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    problems = [f"Allow with {key}" for key in ("NotAction", "NotResource") if key in statement]
    for action in _as_list(statement.get("Action", [])):
        if not isinstance(action, str) or not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action):
            problems.append(f"action {action!r} is not one explicit operation")
    return problems


def resource_problems(statement: dict[str, Any], stack_ids: set[str]) -> list[str]:
    if statement.get("Effect") != "Allow" or "Principal" in statement and "Resource" not in statement:
        return []  # Deny, or a trust / resource policy statement without Resource
    if "Resource" not in statement:
        return ["Allow without Resource"]
    problems = []
    actions = set(_as_list(statement.get("Action", [])))
    buckets = {f"${{{lid}.Arn}}" for lid in stack_ids if lid.endswith("Bucket")}
    for resource in _as_list(statement["Resource"]):
        text = render(resource)
        if text in buckets and not actions <= S3_BUCKET_LEVEL_ACTIONS:
            problems.append(f"bucket ARN {text} with object actions {sorted(actions)}")
        bucket = next((b for b in buckets if text.startswith(b + "/")), None)
        if bucket and not text[len(bucket) + 1 :].startswith(S3_OBJECT_PREFIXES):
            problems.append(f"{text}: objects outside {S3_OBJECT_PREFIXES}")
        if "*" not in text:
            continue
        prefix = text.split("*", 1)[0]
        names = {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}]+)\}", prefix)}
        if not (names & stack_ids or "AWS::StackName" in names):
            problems.append(f"{text!r}: the wildcard is not under a resource of this stack")
    return problems


def when(condition: dict[str, dict[str, Any]]) -> str:
    """A statement's Condition as a suffix of its resources in the grants table, e.g.
    `` when ForAllValues:StringLike dynamodb:LeadingKeys=APIKEY#*``."""
    return "".join(
        f" when {operator} {key}={'|'.join(map(str, _as_list(value)))}"
        for operator, keys in sorted(condition.items())
        for key, value in sorted(keys.items())
    )


def granted(resources: dict[str, Any], role_id: str) -> dict[str, set[str]]:
    """action -> resources (a conditional grant's resources carry its condition)."""
    grants: dict[str, set[str]] = {}
    for policy in resources[role_id]["Properties"].get("Policies", []):
        for statement in _as_list(policy["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow", f"{role_id}: unexpected {statement}"
            suffix = when(statement.get("Condition", {}))
            for action in _as_list(statement["Action"]):
                grants.setdefault(action, set()).update(
                    render(r) + suffix for r in _as_list(statement["Resource"])
                )
    return grants


def _of_type(resources: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in resources.items() if res["Type"] == rtype}


def _role_of(resource: dict[str, Any]) -> str:
    props = resource["Properties"]
    role = props.get("Role", props.get("RoleArn"))  # a function's Role, a machine's RoleArn
    assert isinstance(role, dict) and "Fn::GetAtt" in role, role
    return role["Fn::GetAtt"][0]


# ------------------------------------------------------------------------------- IAM
def test_every_function_has_a_role_of_its_own(translated: TranslatedTemplate) -> None:
    functions = _of_type(translated.resources, "AWS::Lambda::Function")
    machines = _of_type(translated.resources, "AWS::StepFunctions::StateMachine")
    roles = [_role_of(res) for res in (*functions.values(), *machines.values())]
    assert functions
    assert len(set(roles)) == len(roles), f"a role is shared: {roles}"
    assert set(roles) == set(_of_type(translated.resources, "AWS::IAM::Role"))


def test_no_wildcard_action_anywhere(translated: TranslatedTemplate) -> None:
    problems = [
        f"{where}: {p}" for where, st in iter_statements(translated.resources) for p in action_problems(st)
    ]
    assert problems == []


def test_no_wildcard_resource_anywhere(translated: TranslatedTemplate) -> None:
    stack_ids = set(translated.resources)
    problems = [
        f"{where}: {p}"
        for where, st in iter_statements(translated.resources)
        for p in resource_problems(st, stack_ids)
    ]
    assert problems == []


def test_only_the_basic_execution_managed_policy(translated: TranslatedTemplate) -> None:
    for role_id, role in _of_type(translated.resources, "AWS::IAM::Role").items():
        arns = set(role["Properties"].get("ManagedPolicyArns", []))
        assert arns <= set(ALLOWED_MANAGED_POLICIES), f"{role_id}: {arns}"
    for lid, fn in _of_type(translated.resources, "AWS::Lambda::Function").items():
        role = translated.resources[_role_of(fn)]["Properties"]
        assert role.get("ManagedPolicyArns") == [LAMBDA_BASIC_EXECUTION], lid
    assert not _of_type(translated.resources, "AWS::IAM::ManagedPolicy")
    assert not _of_type(translated.resources, "AWS::IAM::Policy")


def test_roles_are_assumed_only_by_their_service(translated: TranslatedTemplate) -> None:
    for role_id, role in _of_type(translated.resources, "AWS::IAM::Role").items():
        for st in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            assert st["Action"] in (["sts:AssumeRole"], "sts:AssumeRole"), role_id
            assert set(st["Principal"]) == {"Service"}, role_id
            assert set(_as_list(st["Principal"]["Service"])) <= {
                "lambda.amazonaws.com",
                "states.amazonaws.com",
            }, role_id


def test_grants_match_the_expected_table(translated: TranslatedTemplate) -> None:
    owners = {
        lid: _role_of(res)
        for lid, res in translated.resources.items()
        if res["Type"] in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine")
    }
    actual = {lid: granted(translated.resources, role) for lid, role in owners.items()}
    differences = []
    for lid in sorted(set(actual) | set(EXPECTED_GRANTS)):
        got, want = actual.get(lid), EXPECTED_GRANTS.get(lid)
        if got is None or want is None:
            differences.append(f"{lid}: {'not in the template' if got is None else 'no row'}")
            continue
        for action in sorted(set(got) | set(want)):
            extra = sorted(got.get(action, set()) - want.get(action, set()))
            missing = sorted(want.get(action, set()) - got.get(action, set()))
            differences += [f"{lid}: {action} granted on {r}, not in the table" for r in extra]
            differences += [f"{lid}: {action} on {r} in the table, not granted" for r in missing]
    assert differences == [], (
        "permissions differ from EXPECTED_GRANTS; if the change is deliberate, edit the "
        "table (and docs/security.md):\n" + "\n".join(differences)
    )


# Which adapter getter (``deps.<name>()``), or port a service uses (``ports.<name>``), needs
# which service.
_GETTER_SERVICE = {
    "tenants": {"dynamodb"},
    "datasets": {"dynamodb"},
    "evals": {"dynamodb"},
    "runs": {"dynamodb"},
    "table": {"dynamodb"},
    "artifacts": {"s3"},
    "workflow": {"states"},
    "keyring": {"secretsmanager"},
    "projects": {"dynamodb"},
    # Bedrock Converse, or an OpenAI-compatible endpoint whose key is a secret.
    "model_client": {"bedrock", "secretsmanager"},
}


def _module_file(module: str) -> Path | None:
    base = FUNCTIONS_DIR.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def services_reachable(handler_module: str) -> set[str]:
    """AWS services the code reachable from ``handler_module`` can call: the static import
    closure inside ``assay_service`` (the ``dependencies`` hub left out: it imports every
    adapter), then every ``deps.<getter>()`` call and every port a service uses
    (``ports.<name>``, the deployed adapters by default) in it. An over-approximation."""
    seen: set[str] = set()
    todo = [handler_module]
    services: set[str] = set()
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None or module == "assay_service.dependencies":
            continue
        seen.add(module)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("assay_service")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("assay_service"):
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "deps"
                and node.func.attr in _GETTER_SERVICE
            ):
                services.update(_GETTER_SERVICE[node.func.attr])
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ports"
                and node.attr in _GETTER_SERVICE
            ):
                services.update(_GETTER_SERVICE[node.attr])
    return services


def test_grants_are_reachable_from_the_handler(translated: TranslatedTemplate) -> None:
    """No function is granted a service its code cannot reach (e.g. ``states:*`` on a
    function that never touches the Step Functions adapter)."""
    problems = []
    for lid, fn in _of_type(translated.resources, "AWS::Lambda::Function").items():
        module = fn["Properties"]["Handler"].rsplit(".", 1)[0]
        granted_services = {a.split(":")[0] for a in granted(translated.resources, _role_of(fn))}
        # Lambda itself sends a failed asynchronous event to the function's dead-letter
        # queue with the function's role: that grant is the service's, not the code's.
        dead_letter = fn["Properties"].get("DeadLetterConfig")
        lambda_uses = {"sqs"} if dead_letter and "Queue" in json.dumps(dead_letter) else set()
        unreachable = granted_services - services_reachable(module) - lambda_uses
        if unreachable:
            problems.append(f"{lid} ({module}) is granted {sorted(unreachable)} it never uses")
    assert problems == []


def test_every_handler_exists(raw: dict[str, Any]) -> None:
    for lid, res in raw["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        module, attribute = res["Properties"]["Handler"].rsplit(".", 1)
        path = _module_file(module)
        assert path is not None and path.suffix == ".py", f"{lid}: no module {module}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert attribute in names, f"{lid}: {module} defines no {attribute}"


# --------------------------------------------------------------------------- storage
def test_bucket_is_private_and_encrypted(raw: dict[str, Any]) -> None:
    props = raw["Resources"]["ArtifactsBucket"]["Properties"]
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules and all(
        r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")
        for r in rules
    )
    block = props["PublicAccessBlockConfiguration"]
    assert {
        k: block.get(k)
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    } == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def _bucket_denies(raw: dict[str, Any]) -> list[dict[str, Any]]:
    policies = [
        res["Properties"]
        for res in raw["Resources"].values()
        if res["Type"] == "AWS::S3::BucketPolicy"
        and res["Properties"]["Bucket"] == {"Ref": "ArtifactsBucket"}
    ]
    assert len(policies) == 1
    statements = _as_list(policies[0]["PolicyDocument"]["Statement"])
    assert all(st["Effect"] == "Deny" for st in statements), "the bucket policy grants nothing"
    return [st for st in statements if st["Principal"] == "*"]


def test_bucket_policy_denies_plain_http(raw: dict[str, Any]) -> None:
    matching = [
        st
        for st in _bucket_denies(raw)
        if st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        and _as_list(st["Action"]) == ["s3:*"]
        and {render(r) for r in _as_list(st["Resource"])} == {BUCKET, f"{BUCKET}/*"}
    ]
    assert len(matching) == 1


def test_bucket_policy_bounds_presigned_links(raw: dict[str, Any]) -> None:
    denies = _bucket_denies(raw)
    ages = [
        st
        for st in denies
        if "s3:signatureAge" in st.get("Condition", {}).get("NumericGreaterThan", {})
        and _as_list(st["Action"]) == ["s3:*"]
        and render(st["Resource"]) == f"{BUCKET}/*"
    ]
    assert len(ages) == 1
    assert int(ages[0]["Condition"]["NumericGreaterThan"]["s3:signatureAge"]) <= (MAX_PRESIGN_SECONDS * 1000)
    writes = [
        st
        for st in denies
        if st.get("Condition") == {"StringEquals": {"s3:authType": "REST-QUERY-STRING"}}
        and "s3:PutObject" in _as_list(st["Action"])
        and render(st["Resource"]) == f"{BUCKET}/tenants/*"
    ]
    assert len(writes) == 1


def test_presign_expiry_is_at_most_15_minutes(raw: dict[str, Any]) -> None:
    spec = raw["Parameters"]["PresignExpirySeconds"]
    assert int(spec["MaxValue"]) <= MAX_PRESIGN_SECONDS
    assert int(spec["MinValue"]) <= int(spec["Default"]) <= int(spec["MaxValue"])
    env = raw["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PRESIGN_EXPIRY_SECONDS"] == {"Ref": "PresignExpirySeconds"}
    from assay_service.settings import Settings

    bounds = Settings.model_fields["presign_expiry_seconds"].metadata
    assert any(getattr(b, "le", None) == MAX_PRESIGN_SECONDS for b in bounds)


def test_only_exports_are_presigned_for_get(raw: dict[str, Any]) -> None:
    """A presigned link can do what its signer may do: the GET link comes from
    ExportRunFunction, which may only read exports; the upload PUT link from
    DatasetsFunction, which may only write under uploads/ (and tenants' dataset versions,
    which the bucket policy closes to presigned writes)."""
    export = EXPECTED_GRANTS["ExportRunFunction"]
    assert {a for a in export if a.startswith("s3:") and a != "s3:ListBucket"} == {"s3:GetObject"}
    assert export["s3:GetObject"] == {f"{BUCKET}/tenants/*/runs/*"}
    datasets = EXPECTED_GRANTS["DatasetsFunction"]
    assert datasets["s3:PutObject"] == {f"{BUCKET}/tenants/*/datasets/*", f"{BUCKET}/uploads/*"}


def test_table_has_pitr_and_encryption(raw: dict[str, Any]) -> None:
    props = raw["Resources"]["AssayTable"]["Properties"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert raw["Resources"]["AssayTable"]["DeletionPolicy"] == "Retain"


def test_api_key_secret_is_generated_not_written(raw: dict[str, Any]) -> None:
    secret = raw["Resources"]["ApiKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "GenerateSecretString" in secret["Properties"]
    assert "SecretString" not in secret["Properties"]
    env = raw["Globals"]["Function"]["Environment"]["Variables"]
    assert env["API_KEY_SECRET_ARN"] == {"Ref": "ApiKeySecret"}  # the ARN, never the value


def test_functions_have_reserved_concurrency(translated: TranslatedTemplate) -> None:
    for lid, fn in _of_type(translated.resources, "AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" in fn["Properties"], lid


def test_http_api_writes_access_logs(raw: dict[str, Any]) -> None:
    settings = raw["Resources"]["AssayHttpApi"]["Properties"]["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert raw["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    assert raw["Resources"][group]["Properties"]["RetentionInDays"] >= 365
    for field in ("$context.requestId", "$context.identity.sourceIp", "$context.routeKey", "$context.status"):
        assert field in settings["Format"]


# ------------------------------------------------------------------------ skip list
def test_every_checkov_skip_says_why() -> None:
    text = (ROOT / ".checkov.yaml").read_text(encoding="utf-8")
    skips = re.findall(r"^\s*-\s*(CKV2?_[A-Z0-9_]+)\s*(?:#\s*(.*))?$", text, re.M)
    assert skips, "no skip-check entries found"
    assert [check for check, reason in skips if len((reason or "").strip()) < 20] == []
    assert len({c for c, _ in skips}) == len(skips)


# ------------------------------------------------------- the checkers catch breakage
_STACK = {"AssayTable", "ArtifactsBucket", "EvalRunStateMachine"}


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": TABLE},
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": f"{BUCKET}/tenants/*"},
        {"Effect": "Allow", "Action": ["dynamodb:Get*"], "Resource": TABLE},
        {"Effect": "Allow", "NotAction": ["iam:PassRole"], "Resource": TABLE},
    ],
)
def test_action_checker_rejects(statement: dict[str, Any]) -> None:
    assert action_problems(statement)


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        {"Fn::Sub": f"{BUCKET}/*"},
        {"Fn::Sub": f"{BUCKET}/other/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::*"},
        {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"},
        {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]},  # bucket ARN with an object action
    ],
)
def test_resource_checker_rejects(resource: Any) -> None:
    statement = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": resource}
    assert resource_problems(statement, _STACK)


@pytest.mark.parametrize(
    "resource",
    [
        {"Fn::Sub": f"{BUCKET}/tenants/*/runs/*"},
        {"Fn::Sub": EXECUTIONS + "${AWS::StackName}-eval-run:*"},
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${f}*",
                {"f": {"Ref": "EvalRunStateMachine"}},
            ]
        },
    ],
)
def test_resource_checker_accepts(resource: Any) -> None:
    statement = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": resource}
    assert resource_problems(statement, _STACK) == []
