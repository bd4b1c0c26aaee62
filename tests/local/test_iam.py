"""The local stack's IAM enforcement, offline: request → IAM actions and resources, and the
policy evaluation (wildcards, Deny wins, conditions). The wire (real boto3 clients through
the middleware) is tests/functional/test_local_iam_wire.py; the stack, tests/e2e."""

from __future__ import annotations

import json

import pytest
from assay_local.iam.awslambda import lambda_checks
from assay_local.iam.bedrock import bedrock_checks
from assay_local.iam.dynamodb import dynamodb_checks
from assay_local.iam.middleware import enabled_from_env, error_response
from assay_local.iam.policy import Check, Decision, conditions_met, evaluate, parse_policy, wildcard
from assay_local.iam.s3 import s3_checks, s3_location
from assay_local.iam.secretsmanager import secretsmanager_checks
from assay_local.iam.stepfunctions import states_checks
from assay_local.iam.target import Target, Unmapped
from assay_local.moto_requests import credential, service_and_operation

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/assay"
OTHER = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/other"
# The table's partition key is PK; index GSI1's is GSI1PK.
TARGET = Target(
    ACCOUNT,
    "us-east-1",
    partition_key=lambda table, index: "GSI1PK" if index == "GSI1" else "PK",
    secret_arn=lambda name: f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf",
)


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def decide(document: str, action: str, resource: str, **context: tuple[str, ...]) -> Decision:
    return evaluate(parse_policy(document), Check(action, resource, context))


def checks(items: list[Check]) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in items]


# ------------------------------------------------------------------------ evaluation
def test_wildcards_star_and_question_mark_and_nothing_else():
    assert wildcard("arn:aws:s3:::b/tenants/*/runs/*").fullmatch("arn:aws:s3:::b/tenants/t/runs/r/x.json")
    assert not wildcard("arn:aws:s3:::b/tenants/*/runs/*").fullmatch("arn:aws:s3:::b/uploads/t/runs/r")
    assert wildcard("table/a?c").fullmatch("table/abc") and not wildcard("table/a?c").fullmatch("table/abbc")
    # Regex metacharacters are literal: "." is a dot, "+" a plus.
    assert not wildcard("arn:aws:s3:::a.b/*").fullmatch("arn:aws:s3:::aXb/k")
    assert wildcard("a+b").fullmatch("a+b") and not wildcard("a+b").fullmatch("aab")


def test_actions_match_case_insensitively_resources_case_sensitively():
    doc = policy({"Effect": "Allow", "Action": "DynamoDB:get*", "Resource": TABLE})
    assert decide(doc, "dynamodb:GetItem", TABLE) is Decision.ALLOW
    assert decide(doc, "dynamodb:PutItem", TABLE) is Decision.IMPLICIT_DENY
    assert decide(doc, "dynamodb:GetItem", TABLE.upper()) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow():
    doc = policy(
        {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE},
    )
    assert decide(doc, "dynamodb:GetItem", TABLE) is Decision.ALLOW
    assert decide(doc, "dynamodb:DeleteItem", TABLE) is Decision.EXPLICIT_DENY
    assert decide(doc, "dynamodb:DeleteItem", OTHER) is Decision.ALLOW


def test_nothing_allowed_is_an_implicit_deny_and_the_index_is_its_own_resource():
    doc = policy({"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE})
    assert decide(doc, "dynamodb:Query", TABLE) is Decision.ALLOW
    assert decide(doc, "dynamodb:Query", f"{TABLE}/index/GSI1") is Decision.IMPLICIT_DENY
    assert decide(policy(), "dynamodb:Query", TABLE) is Decision.IMPLICIT_DENY


def test_not_action_and_not_resource():
    doc = policy(
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": "arn:aws:s3:::b/secret/*"}
    )
    assert decide(doc, "s3:GetObject", "arn:aws:s3:::b/k") is Decision.ALLOW
    assert decide(doc, "s3:DeleteObject", "arn:aws:s3:::b/k") is Decision.IMPLICIT_DENY
    assert decide(doc, "s3:GetObject", "arn:aws:s3:::b/secret/k") is Decision.IMPLICIT_DENY


# The template's statement for read-only functions: UpdateItem on API-key items only.
KEY_LAST_USE = policy(
    {
        "Effect": "Allow",
        "Action": ["dynamodb:UpdateItem"],
        "Resource": TABLE,
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APIKEY#*"]}},
    }
)


def test_leading_keys_condition_of_the_template():
    leading = "dynamodb:leadingkeys"
    assert decide(KEY_LAST_USE, "dynamodb:UpdateItem", TABLE, **{leading: ("APIKEY#abc",)}) is Decision.ALLOW
    assert (
        decide(KEY_LAST_USE, "dynamodb:UpdateItem", TABLE, **{leading: ("T#tenant#RUN#1",)})
        is Decision.IMPLICIT_DENY
    )
    assert (
        decide(KEY_LAST_USE, "dynamodb:UpdateItem", TABLE, **{leading: ("APIKEY#a", "T#x")})
        is Decision.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("ForAllValues:StringLike", (), True),  # AWS: an empty set satisfies ForAllValues
        ("ForAnyValue:StringLike", (), False),
        ("ForAnyValue:StringLike", ("X", "APIKEY#1"), True),
        ("StringEquals", (), False),
        ("StringNotEquals", (), True),  # negated operators hold when the key is absent
        ("StringEqualsIfExists", (), True),
        ("StringEquals", ("APIKEY#*",), True),
        ("StringLike", ("apikey#1",), False),
        ("StringEqualsIgnoreCase", ("apikey#*",), True),
        ("StringNotLike", ("T#1",), True),
        ("ForAllValues:StringNotLike", ("T#1", "APIKEY#2"), False),
    ],
)
def test_condition_operators_and_set_qualifiers(operator, values, expected):
    context = {"dynamodb:leadingkeys": values} if values else {}
    assert conditions_met({operator: {"dynamodb:LeadingKeys": "APIKEY#*"}}, context) is expected


def test_null_bool_and_several_keys_all_must_hold():
    context = {"aws:securetransport": ("true",), "s3:prefix": ("tenants/",)}
    assert conditions_met({"Bool": {"aws:SecureTransport": "true"}}, context) is True
    assert conditions_met({"Bool": {"aws:SecureTransport": "false"}}, context) is False
    assert conditions_met({"Null": {"dynamodb:LeadingKeys": "true"}}, context) is True
    assert conditions_met({"Null": {"s3:prefix": "true"}}, context) is False
    assert (
        conditions_met(
            {"StringLike": {"s3:prefix": "tenants/*"}, "Bool": {"aws:SecureTransport": "false"}}, context
        )
        is False
    )


def test_conditions_not_evaluated_locally_are_read_broadly_for_allow_and_deny():
    unknown = {"NumericLessThan": {"s3:signatureAge": "900000"}}
    assert conditions_met(unknown, {}) is None
    assert (
        conditions_met(
            {**unknown, "Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": ("true",)}
        )
        is False
    )  # a known one is false
    doc = policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": unknown},
        {
            "Effect": "Deny",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    )
    assert decide(doc, "s3:GetObject", "arn:aws:s3:::b/k") is Decision.ALLOW


def test_switch_is_on_unless_set_off():
    assert enabled_from_env({}) and enabled_from_env({"ASSAY_LOCAL_IAM": "on"})
    assert not enabled_from_env({"ASSAY_LOCAL_IAM": "off"})
    assert not enabled_from_env({"ASSAY_LOCAL_IAM": "0"})


# ---------------------------------------------------------------------------- DynamoDB
def test_item_operations_on_the_table_with_their_leading_key():
    (check,) = dynamodb_checks(
        "GetItem", {"TableName": "assay", "Key": {"PK": {"S": "T#1#RUN#2"}, "SK": {"S": "RUN"}}}, TARGET
    )
    assert (check.action, check.resource) == ("dynamodb:GetItem", TABLE)
    assert check.context == {"dynamodb:leadingkeys": ("T#1#RUN#2",)}
    (put,) = dynamodb_checks("PutItem", {"TableName": "assay", "Item": {"PK": {"S": "A"}}}, TARGET)
    assert put.action == "dynamodb:PutItem" and put.context["dynamodb:leadingkeys"] == ("A",)
    (by_arn,) = dynamodb_checks("UpdateItem", {"TableName": TABLE, "Key": {"PK": {"N": "7"}}}, TARGET)
    assert by_arn.resource == TABLE and by_arn.context["dynamodb:leadingkeys"] == ("7",)


def test_query_on_an_index_is_on_the_index_arn_with_the_index_partition_key():
    body = {
        "TableName": "assay",
        "IndexName": "GSI1",
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :sk)",
        "ExpressionAttributeNames": {"#pk": "GSI1PK", "#sk": "GSI1SK"},
        "ExpressionAttributeValues": {":pk": {"S": "T#1#DS"}, ":sk": {"S": "2026"}},
    }
    (check,) = dynamodb_checks("Query", body, TARGET)
    assert (check.action, check.resource) == ("dynamodb:Query", f"{TABLE}/index/GSI1")
    assert check.context == {"dynamodb:leadingkeys": ("T#1#DS",)}
    (scan,) = dynamodb_checks("Scan", {"TableName": "assay", "IndexName": "RunsByTenant"}, TARGET)
    assert (scan.resource, scan.context) == (f"{TABLE}/index/RunsByTenant", {})
    (legacy,) = dynamodb_checks(
        "Query",
        {
            "TableName": "assay",
            "KeyConditions": {"PK": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "X"}]}},
        },
        TARGET,
    )
    assert legacy.context == {"dynamodb:leadingkeys": ("X",)}


def test_transactions_need_the_per_item_actions():
    body = {
        "TransactItems": [
            {"Put": {"TableName": "assay", "Item": {"PK": {"S": "a"}}}},
            {"Update": {"TableName": "assay", "Key": {"PK": {"S": "b"}}}},
            {"ConditionCheck": {"TableName": "other", "Key": {"PK": {"S": "c"}}}},
            {"Delete": {"TableName": "assay", "Key": {"PK": {"S": "d"}}}},
        ]
    }
    found = dynamodb_checks("TransactWriteItems", body, TARGET)
    assert checks(found) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", OTHER),
        ("dynamodb:DeleteItem", TABLE),
    ]
    assert [c.context["dynamodb:leadingkeys"] for c in found] == [("a",), ("b",), ("c",), ("d",)]
    gets = dynamodb_checks(
        "TransactGetItems",
        {
            "TransactItems": [
                {"Get": {"TableName": "assay", "Key": {"PK": {"S": "a"}}}},
                {"Get": {"TableName": "other", "Key": {"PK": {"S": "b"}}}},
            ]
        },
        TARGET,
    )
    assert checks(gets) == [("dynamodb:GetItem", TABLE), ("dynamodb:GetItem", OTHER)]


def test_batches_are_their_own_actions_on_each_table():
    found = dynamodb_checks(
        "BatchGetItem",
        {
            "RequestItems": {
                "assay": {"Keys": [{"PK": {"S": "a"}}, {"PK": {"S": "b"}}]},
                "other": {"Keys": [{"PK": {"S": "c"}}]},
            }
        },
        TARGET,
    )
    assert checks(found) == [("dynamodb:BatchGetItem", TABLE), ("dynamodb:BatchGetItem", OTHER)]
    assert found[0].context == {"dynamodb:leadingkeys": ("a", "b")}
    (write,) = dynamodb_checks(
        "BatchWriteItem",
        {
            "RequestItems": {
                "assay": [
                    {"PutRequest": {"Item": {"PK": {"S": "a"}}}},
                    {"DeleteRequest": {"Key": {"PK": {"S": "b"}}}},
                ]
            }
        },
        TARGET,
    )
    assert (write.action, write.context["dynamodb:leadingkeys"]) == ("dynamodb:BatchWriteItem", ("a", "b"))


def test_control_plane_and_partiql():
    assert checks(dynamodb_checks("DescribeTable", {"TableName": "assay"}, TARGET)) == [
        ("dynamodb:DescribeTable", TABLE)
    ]
    assert checks(dynamodb_checks("ListTables", {}, TARGET)) == [("dynamodb:ListTables", "*")]
    assert checks(dynamodb_checks("ExecuteStatement", {"Statement": 'SELECT * FROM "assay"'}, TARGET)) == [
        ("dynamodb:PartiQLSelect", TABLE)
    ]
    with pytest.raises(Unmapped):
        dynamodb_checks("ExecuteStatement", {"Statement": "EXPLAIN things"}, TARGET)


# --------------------------------------------------------------------------------- S3
def s3(method: str, path: str, query: str = "", copy: str = "", body: bytes = b"") -> list[tuple[str, str]]:
    bucket, _, key = path.lstrip("/").partition("/")
    parsed = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        parsed[name] = [value]
    return checks(s3_checks(method, bucket, key, parsed, {"x-amz-copy-source": copy}, lambda: body))


OBJ = "arn:aws:s3:::b/tenants/t/runs/r/export.json"


def test_s3_object_operations():
    assert s3("GET", "/b/tenants/t/runs/r/export.json") == [("s3:GetObject", OBJ)]
    assert s3("HEAD", "/b/tenants/t/runs/r/export.json") == [("s3:GetObject", OBJ)]
    assert s3("GET", "/b/tenants/t/runs/r/export.json", "versionId=3") == [("s3:GetObjectVersion", OBJ)]
    assert s3("PUT", "/b/tenants/t/runs/r/export.json") == [("s3:PutObject", OBJ)]
    assert s3("DELETE", "/b/tenants/t/runs/r/export.json") == [("s3:DeleteObject", OBJ)]
    assert s3("GET", "/b/tenants/t/runs/r/export.json", "tagging") == [("s3:GetObjectTagging", OBJ)]
    assert s3("PUT", "/b/k", copy="/src/tenants/a.json?versionId=1") == [
        ("s3:PutObject", "arn:aws:s3:::b/k"),
        ("s3:GetObject", "arn:aws:s3:::src/tenants/a.json"),
    ]


def test_s3_multipart_needs_put_object_except_abort_and_list_parts():
    key = "/b/tenants/t/runs/r/export.json"
    assert s3("POST", key, "uploads") == [("s3:PutObject", OBJ)]  # CreateMultipartUpload
    assert s3("PUT", key, "partNumber=1&uploadId=u") == [("s3:PutObject", OBJ)]  # UploadPart
    assert s3("POST", key, "uploadId=u") == [("s3:PutObject", OBJ)]  # CompleteMultipartUpload
    assert s3("DELETE", key, "uploadId=u") == [("s3:AbortMultipartUpload", OBJ)]
    assert s3("GET", key, "uploadId=u") == [("s3:ListMultipartUploadParts", OBJ)]


def test_s3_bucket_operations():
    assert s3("GET", "/b", "list-type=2&prefix=tenants%2F") == [("s3:ListBucket", "arn:aws:s3:::b")]
    assert s3("HEAD", "/b") == [("s3:ListBucket", "arn:aws:s3:::b")]
    assert s3("GET", "/b", "location") == [("s3:GetBucketLocation", "arn:aws:s3:::b")]
    assert s3("GET", "/b", "uploads") == [("s3:ListBucketMultipartUploads", "arn:aws:s3:::b")]
    assert s3("PUT", "/b", "policy") == [("s3:PutBucketPolicy", "arn:aws:s3:::b")]
    assert s3("GET", "/") == [("s3:ListAllMyBuckets", "*")]
    deleted = b"<Delete><Object><Key>a/1</Key></Object><Object><Key>a/2</Key></Object></Delete>"
    assert s3("POST", "/b", "delete", body=deleted) == [
        ("s3:DeleteObject", "arn:aws:s3:::b/a/1"),
        ("s3:DeleteObject", "arn:aws:s3:::b/a/2"),
    ]
    namespaced = (
        b'<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>a&amp;b/&lt;1&gt;</Key></Object><Quiet>true</Quiet></Delete>"
    )
    assert s3("POST", "/b", "delete", body=namespaced) == [("s3:DeleteObject", "arn:aws:s3:::b/a&b/<1>")]
    spaced = b"<Delete><Object><Key >k/1</Key\n></Object></Delete>"
    assert s3("POST", "/b", "delete", body=spaced) == [("s3:DeleteObject", "arn:aws:s3:::b/k/1")]
    with pytest.raises(Unmapped):  # no key it can read: refused, not checked as nothing
        s3("POST", "/b", "delete", body=b"<Delete><Quiet>true</Quiet></Delete>")
    (listing,) = s3_checks("GET", "b", "", {"prefix": ["tenants/"]}, {}, lambda: b"")
    assert listing.context == {"s3:prefix": ("tenants/",)}


def test_s3_path_style_and_virtual_hosted_requests():
    assert s3_location({"PATH_INFO": "/b/tenants/x y.json", "HTTP_HOST": "127.0.0.1:5000"}) == (
        "b",
        "tenants/x y.json",
    )
    assert s3_location({"PATH_INFO": "/k/e.json", "HTTP_HOST": "b.s3.amazonaws.com"}) == ("b", "k/e.json")
    assert s3_location({"PATH_INFO": "/k", "HTTP_HOST": "my.bucket.s3.us-east-1.amazonaws.com"}) == (
        "my.bucket",
        "k",
    )
    assert s3_location({"PATH_INFO": "/b/k", "HTTP_HOST": "s3.amazonaws.com"}) == ("b", "k")


# ------------------------------------------------- Secrets Manager, Step Functions, …
def test_secrets_by_name_are_checked_on_the_full_arn():
    (check,) = secretsmanager_checks("GetSecretValue", {"SecretId": "api-key"}, TARGET)
    assert (check.action, check.resource) == (
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:api-key-AbCdEf",
    )
    assert checks(secretsmanager_checks("ListSecrets", {}, TARGET)) == [("secretsmanager:ListSecrets", "*")]


def test_step_functions_on_the_machine_or_execution_named():
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:m"
    execution = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:m:run"
    assert checks(states_checks("StartExecution", {"stateMachineArn": machine, "name": "run"})) == [
        ("states:StartExecution", machine)
    ]
    assert checks(states_checks("StopExecution", {"executionArn": execution})) == [
        ("states:StopExecution", execution)
    ]
    assert checks(states_checks("DescribeExecution", {"executionArn": execution})) == [
        ("states:DescribeExecution", execution)
    ]
    assert checks(states_checks("ListStateMachines", {})) == [("states:ListStateMachines", "*")]


def test_bedrock_runtime_and_lambda():
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    assert checks(bedrock_checks("POST", f"/model/{model}/converse", TARGET)) == [
        ("bedrock:InvokeModel", f"arn:aws:bedrock:us-east-1::foundation-model/{model}")
    ]
    assert checks(bedrock_checks("POST", f"/model/{model}/converse-stream", TARGET)) == [
        ("bedrock:InvokeModelWithResponseStream", f"arn:aws:bedrock:us-east-1::foundation-model/{model}")
    ]
    assert checks(bedrock_checks("POST", f"/model/us.{model}/invoke", TARGET)) == [
        ("bedrock:InvokeModel", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{model}")
    ]
    assert checks(lambda_checks("POST", "/2015-03-31/functions/fn/invocations", {}, TARGET)) == [
        ("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn")
    ]
    with pytest.raises(Unmapped):
        lambda_checks("POST", "/2015-03-31/functions/fn/url", {}, TARGET)


# ----------------------------------------------------------------------- request parsing
def test_signer_and_service_from_the_header_or_a_presigned_url():
    header = {
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=ASIAX/20261122/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    }
    assert credential(header) == ("ASIAX", "us-east-1", "s3")
    assert service_and_operation(header) == ("s3", "")
    presigned = {
        "QUERY_STRING": "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAY%2F20261122"
        "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Expires=900"
    }
    assert credential(presigned) == ("ASIAY", "us-east-1", "s3")
    assert service_and_operation({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}) == (
        "dynamodb",
        "GetItem",
    )
    assert credential({}) is None and service_and_operation({}) == ("other", "")


def test_error_bodies_are_each_service_wire_format():
    from assay_local.iam.enforcer import Denial

    denial = Denial(
        principal="arn:aws:sts::1:assumed-role/R/fn",
        role="R",
        action="dynamodb:GetItem",
        resource=TABLE,
        request="dynamodb GetItem /",
        explicit=False,
        message="User: m",
    )
    status, headers, body = error_response("dynamodb", denial, "POST")
    assert status.startswith("400") and json.loads(body) == {
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "message": "User: m",
    }
    status, headers, body = error_response("s3", denial, "GET")
    assert status.startswith("403") and b"<Code>AccessDenied</Code>" in body
    assert error_response("s3", denial, "HEAD")[2] == b""
    status, headers, body = error_response("secretsmanager", denial, "POST")
    assert json.loads(body)["__type"] == "AccessDeniedException"
    status, headers, body = error_response("bedrock", denial, "POST")
    assert status.startswith("403") and ("x-amzn-ErrorType", "AccessDeniedException") in headers


def test_the_stack_enforces_unless_switched_off(monkeypatch):
    from assay_local.stack import LocalStack

    monkeypatch.delenv("ASSAY_LOCAL_IAM", raising=False)
    assert LocalStack()._iam_enabled
    monkeypatch.setenv("ASSAY_LOCAL_IAM", "off")
    assert not LocalStack()._iam_enabled
    assert LocalStack(iam=True)._iam_enabled
