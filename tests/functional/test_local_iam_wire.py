"""The local IAM enforcement on the wire: real boto3 clients, signed with credentials of a
role assumed through moto's STS, through the middleware in front of a moto server. What a
role may not do fails with the error botocore sees from AWS; what it may do, and whatever
the harness's own ``testing`` keys sign, reaches moto."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from assay_local.iam.enforcer import Enforcer
from assay_local.iam.middleware import iam_middleware
from assay_local.moto_requests import MiddlewareMotoServer
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "us-east-1"
RUN = uuid.uuid4().hex[:8]  # moto's backends are process-wide: names of our own
TABLE = f"iam-wire-{RUN}"
BUCKET = f"iam-wire-{RUN}"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
HARNESS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class Env:
    def __init__(self, endpoint: str, enforcer: Enforcer, secret_arn: str, other_secret: str):
        self.endpoint, self.enforcer = endpoint, enforcer
        self.secret_arn, self.other_secret = secret_arn, other_secret

    def harness(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **HARNESS)

    def role_client(self, role: str, service: str) -> Any:
        """A client signed with the role's temporary credentials (session ``fn``)."""
        keys = self.harness("sts").assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="fn"
        )["Credentials"]
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
            config=Config(signature_version="s3v4" if service == "s3" else None, retries={"max_attempts": 1}),
        )


def _role(iam: Any, name: str, statements: list[dict[str, Any]]) -> None:
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                    }
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    enforcer = Enforcer(ACCOUNT, REGION, stack="wire-test")
    server = MiddlewareMotoServer([iam_middleware(enforcer)], ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        harness = Env(endpoint, enforcer, "", "")
        harness.harness("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "GPK")],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GIX",
                    "KeySchema": [{"AttributeName": "GPK", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        harness.harness("s3").create_bucket(Bucket=BUCKET)
        sm = harness.harness("secretsmanager")
        secret = sm.create_secret(Name=f"wire-{RUN}", SecretString="s3cret")["ARN"]
        other = sm.create_secret(Name=f"wire-other-{RUN}", SecretString="no")["ARN"]
        iam = harness.harness("iam")
        _role(
            iam,
            f"reader-{RUN}",
            [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                    "Resource": TABLE_ARN,
                },
                {
                    "Effect": "Allow",
                    "Action": "dynamodb:UpdateItem",
                    "Resource": TABLE_ARN,
                    "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APIKEY#*"]}},
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": f"arn:aws:s3:::{BUCKET}/tenants/*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{BUCKET}/uploads/*",
                },
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
                {"Effect": "Allow", "Action": "states:DescribeExecution", "Resource": "*"},
            ],
        )
        _role(
            iam,
            f"lister-{RUN}",
            [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"},
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{BUCKET}"},
                {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": f"{TABLE_ARN}*"},
            ],
        )
        denied = iam.create_policy(
            PolicyName=f"no-delete-{RUN}",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE_ARN}],
                }
            ),
        )
        iam.attach_role_policy(RoleName=f"lister-{RUN}", PolicyArn=denied["Policy"]["Arn"])
        yield Env(endpoint, enforcer, secret, other)
    finally:
        server.stop()


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response


def test_dynamodb_denial_is_accessdeniedexception_with_awss_message(env: Env) -> None:
    ddb = env.role_client(f"reader-{RUN}", "dynamodb")
    ddb.put_item(TableName=TABLE, Item={"PK": {"S": "T#1"}, "GPK": {"S": "g"}})
    assert ddb.get_item(TableName=TABLE, Key={"PK": {"S": "T#1"}})["Item"]["GPK"] == {"S": "g"}
    response = _error(lambda: ddb.delete_item(TableName=TABLE, Key={"PK": {"S": "T#1"}}))
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/reader-{RUN}/fn is not authorized to perform: "
        f"dynamodb:DeleteItem on resource: {TABLE_ARN} because no identity-based policy allows "
        "the dynamodb:DeleteItem action"
    )
    denial = env.enforcer.denials()[-1]
    assert (denial.role, denial.action, denial.resource, denial.explicit) == (
        f"reader-{RUN}",
        "dynamodb:DeleteItem",
        TABLE_ARN,
        False,
    )
    # The item is still there: the request never reached moto.
    assert "Item" in env.harness("dynamodb").get_item(TableName=TABLE, Key={"PK": {"S": "T#1"}})


def test_index_transactions_and_leading_keys(env: Env) -> None:
    ddb = env.role_client(f"reader-{RUN}", "dynamodb")
    ddb.query(
        TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "T#1"}}
    )
    response = _error(
        lambda: ddb.query(
            TableName=TABLE,
            IndexName="GIX",
            KeyConditionExpression="GPK = :g",
            ExpressionAttributeValues={":g": {"S": "g"}},
        )
    )
    assert f"dynamodb:Query on resource: {TABLE_ARN}/index/GIX " in response["Error"]["Message"]
    # A transaction is checked item by item: the ConditionCheck needs ConditionCheckItem.
    response = _error(
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "T#2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "T#1"}},
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
            ]
        )
    )
    assert "dynamodb:ConditionCheckItem on resource" in response["Error"]["Message"]
    # UpdateItem only on API-key items (the template's dynamodb:LeadingKeys condition).
    ddb.update_item(
        TableName=TABLE,
        Key={"PK": {"S": "APIKEY#1"}},
        UpdateExpression="SET last_used = :t",
        ExpressionAttributeValues={":t": {"S": "now"}},
    )
    response = _error(
        lambda: ddb.update_item(
            TableName=TABLE,
            Key={"PK": {"S": "T#1"}},
            UpdateExpression="SET x = :t",
            ExpressionAttributeValues={":t": {"S": "now"}},
        )
    )
    assert "dynamodb:UpdateItem" in response["Error"]["Message"]


def test_an_explicit_deny_in_a_managed_policy_wins(env: Env) -> None:
    ddb = env.role_client(f"lister-{RUN}", "dynamodb")
    ddb.put_item(TableName=TABLE, Item={"PK": {"S": "T#9"}})
    response = _error(lambda: ddb.delete_item(TableName=TABLE, Key={"PK": {"S": "T#9"}}))
    assert response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")
    assert env.enforcer.denials()[-1].explicit


def test_s3_objects_multipart_and_missing_keys(env: Env) -> None:
    env.harness("s3").put_object(Bucket=BUCKET, Key="tenants/t/a.json", Body=b"{}")
    s3 = env.role_client(f"reader-{RUN}", "s3")
    assert s3.get_object(Bucket=BUCKET, Key="tenants/t/a.json")["Body"].read() == b"{}"
    assert s3.head_object(Bucket=BUCKET, Key="tenants/t/a.json")["ContentLength"] == 2
    response = _error(lambda: s3.put_object(Bucket=BUCKET, Key="tenants/t/b.json", Body=b"x"))
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDenied",
        403,
    )
    assert "s3:PutObject on resource: arn:aws:s3:::" in response["Error"]["Message"]
    # Multipart uploads need s3:PutObject on the key, as on AWS.
    response = _error(lambda: s3.create_multipart_upload(Bucket=BUCKET, Key="tenants/t/big"))
    assert response["Error"]["Code"] == "AccessDenied"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="uploads/t/big")["UploadId"]
    response = _error(lambda: s3.abort_multipart_upload(Bucket=BUCKET, Key="uploads/t/big", UploadId=upload))
    assert "s3:AbortMultipartUpload" in response["Error"]["Message"]
    # A missing key: 403 without s3:ListBucket, 404 with it.
    response = _error(lambda: s3.head_object(Bucket=BUCKET, Key="tenants/t/missing"))
    assert response["Error"]["Code"] == "403"
    assert env.enforcer.denials()[-1].action == "s3:ListBucket"
    lister = env.role_client(f"lister-{RUN}", "s3")
    assert (
        _error(lambda: lister.head_object(Bucket=BUCKET, Key="tenants/t/missing"))["Error"]["Code"] == "404"
    )
    assert (
        _error(lambda: lister.get_object(Bucket=BUCKET, Key="tenants/t/missing"))["Error"]["Code"]
        == "NoSuchKey"
    )


def test_presigned_urls_carry_the_signers_permissions(env: Env) -> None:
    s3 = env.role_client(f"reader-{RUN}", "s3")
    allowed = s3.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": "uploads/t/u.jsonl"}, ExpiresIn=60, HttpMethod="PUT"
    )
    assert requests.put(allowed, data=b"{}\n", timeout=10).status_code == 200
    refused = s3.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": "tenants/t/u.jsonl"}, ExpiresIn=60, HttpMethod="PUT"
    )
    answer = requests.put(refused, data=b"{}\n", timeout=10)
    assert answer.status_code == 403 and b"<Code>AccessDenied</Code>" in answer.content


def test_secrets_by_name_step_functions_bedrock_and_sts(env: Env) -> None:
    sm = env.role_client(f"reader-{RUN}", "secretsmanager")
    assert sm.get_secret_value(SecretId=f"wire-{RUN}")["SecretString"] == "s3cret"  # by name
    response = _error(lambda: sm.get_secret_value(SecretId=f"wire-other-{RUN}"))
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert env.other_secret in response["Error"]["Message"]  # checked on the full ARN
    sfn = env.role_client(f"reader-{RUN}", "stepfunctions")
    execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:{RUN}"
    response = _error(lambda: sfn.stop_execution(executionArn=execution))
    assert response["Error"]["Code"] == "AccessDeniedException"
    # Allowed: it reaches moto, which knows no such execution.
    assert (
        _error(lambda: sfn.describe_execution(executionArn=execution))["Error"]["Code"]
        == "ExecutionDoesNotExist"
    )
    bedrock = env.role_client(f"reader-{RUN}", "bedrock-runtime")
    response = _error(
        lambda: bedrock.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    )
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert (
        f"bedrock:InvokeModel on resource: arn:aws:bedrock:{REGION}::foundation-model/{MODEL}"
        in (response["Error"]["Message"])
    )
    identity = env.role_client(f"reader-{RUN}", "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/reader-{RUN}/fn"


def test_the_harness_keys_are_not_enforced(env: Env) -> None:
    before = len(env.enforcer.denials())
    s3 = env.harness("s3")
    s3.put_object(Bucket=BUCKET, Key="tenants/t/harness.json", Body=b"1")
    env.harness("dynamodb").delete_item(TableName=TABLE, Key={"PK": {"S": "T#2"}})
    assert len(env.enforcer.denials()) == before
    assert env.enforcer.unmapped() == []
