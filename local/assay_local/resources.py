"""Create the translated template's resources on moto through the service APIs.

One creator per CloudFormation type. Each consumes the properties it implements and
names those it deliberately ignores (with the reason); any other property, and any
other resource type, fails loudly, so a template change the local stack would silently
get wrong is noticed at start-up.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from assay_local.routes import RouteTable
from assay_local.template import (
    Resolver,
    TemplateError,
    TranslatedTemplate,
    dependency_order,
    parameter_values,
    translate,
)

# Resource types created as nothing, with the reason.
NO_OP_TYPES: dict[str, str] = {
    # The layer carries third-party dependencies; workers import them from the local
    # virtual environment, so publishing it would only cost start-up time.
    "AWS::Lambda::LayerVersion": "dependencies come from the local virtual environment",
    # The front serves the single $default stage; throttling is not emulated.
    "AWS::ApiGatewayV2::Stage": "the local HTTP front serves the $default stage",
    # Access logs: the local front and the workers log to the console.
    "AWS::Logs::LogGroup": "the local stack logs to the console",
}

_IGNORED_EVERYWHERE = {
    "Tags": "tags have no local effect",
}


@dataclass(frozen=True)
class FunctionInfo:
    logical_id: str
    name: str
    arn: str
    handler: str
    environment: dict[str, str]


@dataclass
class CreatedStack:
    """Physical ids and what the HTTP front and tests need to know."""

    resources: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    state_machine_definitions: dict[str, str] = field(default_factory=dict)
    routes: RouteTable | None = None
    api_id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_names: dict[str, str] = field(default_factory=dict)  # logical id -> name
    # logical id -> the value the secret was created with (when the template gives one)
    secret_values: dict[str, str | bytes] = field(default_factory=dict)


class _Props:
    """A resource's resolved properties; tracks which ones were consumed."""

    def __init__(self, logical_id: str, props: dict[str, Any]) -> None:
        self.logical_id = logical_id
        self._props = props
        self._seen: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return self._props.get(key, default)

    def require(self, key: str) -> Any:
        self._seen.add(key)
        if key not in self._props:
            raise TemplateError(f"{self.logical_id}: missing required property {key}")
        return self._props[key]

    def ignore(self, *keys: str) -> None:
        """Mark properties as deliberately not reproduced locally."""
        self._seen.update(keys)

    def check_consumed(self, resource_type: str) -> None:
        left = set(self._props) - self._seen - set(_IGNORED_EVERYWHERE)
        if left:
            raise TemplateError(
                f"{self.logical_id} ({resource_type}): properties not supported by the "
                f"local stack: {sorted(left)}"
            )


def placeholder_zip() -> bytes:
    """Lambda code placeholder: moto wants a zip, the workers run the working tree."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Code runs from the working tree (assay_local).\n")
    return buffer.getvalue()


def _bucket_name(stack_name: str, logical_id: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", f"{stack_name}-{logical_id}".lower())
    return name[:63].strip("-")


class ResourceCreator:
    """Creates resources in dependency order with boto3 clients pointed at moto."""

    def __init__(
        self,
        template: TranslatedTemplate,
        resolver: Resolver,
        session: boto3.Session,
        secret_values: Mapping[str, str | bytes] | None = None,
    ):
        self.template = template
        # Logical id -> a value kept from an earlier start (persistence/): the secret is
        # created with it instead of a new one, so what was derived from it still holds.
        self.secret_values = dict(secret_values or {})
        self.resolver = resolver
        self.stack_name = resolver.stack_name
        self._session = session
        self._clients: dict[str, Any] = {}
        self.created = CreatedStack()
        self._creators: dict[str, Callable[[str, _Props], tuple[str, dict[str, str]]]] = {
            "AWS::IAM::Role": self._iam_role,
            "AWS::DynamoDB::Table": self._dynamodb_table,
            "AWS::S3::Bucket": self._s3_bucket,
            "AWS::S3::BucketPolicy": self._s3_bucket_policy,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Lambda::Function": self._lambda_function,
            "AWS::Lambda::Permission": self._lambda_permission,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Events::Rule": self._events_rule,
            "AWS::SQS::Queue": self._sqs_queue,
            "AWS::ApiGatewayV2::Api": self._http_api,
        }

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    def check_supported(self) -> None:
        """Fail before creating anything if a resource type is unknown."""
        unknown = {
            f"{lid} ({res['Type']})"
            for lid, res in self.template.resources.items()
            if res["Type"] not in self._creators and res["Type"] not in NO_OP_TYPES
        }
        if unknown:
            raise TemplateError(f"resource types not supported locally: {sorted(unknown)}")

    def create_all(self) -> CreatedStack:
        self.check_supported()
        for logical_id in dependency_order(self.template.resources):
            resource = self.template.resources[logical_id]
            rtype = resource["Type"]
            if rtype in NO_OP_TYPES:
                ref = f"arn:aws:local:::no-op/{logical_id}"
                attrs: dict[str, str] = {}
            else:
                props = _Props(logical_id, self.resolver.resolve(resource.get("Properties", {})))
                ref, attrs = self._creators[rtype](logical_id, props)
                props.check_consumed(rtype)
            self.resolver.register(logical_id, ref, attrs)
            self.created.resources[logical_id] = ref
            self.created.attributes[logical_id] = attrs
            self.created.types[logical_id] = rtype
        self.created.outputs = {
            name: self.resolver.resolve(output["Value"]) for name, output in self.template.outputs.items()
        }
        return self.created

    # ------------------------------------------------------------------ IAM
    def _iam_role(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        """The role and its policies, conditions included, exactly as written: moto enforces
        none of it, but the local stack's ``iam`` evaluates them for every request
        a function makes with this role's credentials (docs/security.md lists what it does
        and does not evaluate)."""
        iam = self._client("iam")
        name = p.get("RoleName") or f"{self.stack_name}-{logical_id}"[:64]
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(p.require("AssumeRolePolicyDocument")),
            "Path": p.get("Path", "/"),
        }
        if p.get("Description"):
            kwargs["Description"] = p.get("Description")
        role = iam.create_role(**kwargs)["Role"]
        for policy in p.get("Policies", []):
            # samtranslator omits Version in the documents it generates; IAM accepts
            # that, moto rejects it ("must be version 2012-10-17 or greater").
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(document),
            )
        for arn in p.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    # ------------------------------------------------------------- DynamoDB
    def _dynamodb_table(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        ddb = self._client("dynamodb")
        name = p.get("TableName") or f"{self.stack_name}-{logical_id}"
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": p.require("AttributeDefinitions"),
            "KeySchema": p.require("KeySchema"),
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
            if p.get(key):
                kwargs[key] = p.get(key)
        if p.get("StreamSpecification"):
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **p.get("StreamSpecification")}
        sse = p.get("SSESpecification")
        if sse:
            kwargs["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))} | {
                k: v for k, v in sse.items() if k in ("SSEType", "KMSMasterKeyId")
            }
        table = ddb.create_table(**kwargs)["TableDescription"]
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        attrs = {"Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            attrs["StreamArn"] = table["LatestStreamArn"]
        return name, attrs

    # ------------------------------------------------------------------- S3
    def _s3_bucket(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        s3 = self._client("s3")
        name = p.get("BucketName") or _bucket_name(self.stack_name, logical_id)
        s3.create_bucket(Bucket=name)  # us-east-1: no LocationConstraint
        if p.get("BucketEncryption"):
            # CloudFormation's shape differs from the API's in two names.
            rules = [
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in p.get("BucketEncryption")["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if p.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=p.get("PublicAccessBlockConfiguration")
            )
        if p.get("OwnershipControls"):
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p.get("OwnershipControls"))
        if p.get("VersioningConfiguration"):
            s3.put_bucket_versioning(
                Bucket=name,
                VersioningConfiguration={"Status": p.get("VersioningConfiguration")["Status"]},
            )
        lifecycle = p.get("LifecycleConfiguration")
        if lifecycle:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [_lifecycle_rule(logical_id, r) for r in lifecycle["Rules"]]
                },
            )
        return name, {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.resolver.region}.amazonaws.com",
        }

    def _s3_bucket_policy(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        bucket = p.require("Bucket")
        document = dict(p.require("PolicyDocument"))
        statements = document["Statement"]
        if isinstance(statements, dict):
            statements = [statements]
        # moto enforces bucket policies on object requests but ignores their conditions,
        # so a conditional Deny ("insecure transport", "signature too old"…) would deny
        # every request. Conditional Deny statements are left out; nothing else is. (The
        # functions' own roles are enforced separately, by the iam package.)
        document["Statement"] = [s for s in statements if not _conditional_deny(s)]
        if document["Statement"]:
            self._client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
        return bucket, {}

    # ------------------------------------------------------- Secrets Manager
    def _secret(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        sm = self._client("secretsmanager")
        name = p.get("Name") or f"{self.stack_name}-{logical_id}"
        kwargs: dict[str, Any] = {"Name": name}
        if p.get("Description"):
            kwargs["Description"] = p.get("Description")
        if p.get("KmsKeyId"):
            kwargs["KmsKeyId"] = p.get("KmsKeyId")
        generate = p.get("GenerateSecretString")
        if generate is not None and p.get("SecretString") is not None:
            raise TemplateError(f"{logical_id}: SecretString and GenerateSecretString together")
        kept = self.secret_values.get(logical_id)
        if kept is not None:
            kwargs["SecretBinary" if isinstance(kept, bytes) else "SecretString"] = kept
        elif generate is not None:
            kwargs["SecretString"] = self._generated_secret(dict(generate))
        elif p.get("SecretString") is not None:
            kwargs["SecretString"] = p.get("SecretString")
        arn = sm.create_secret(**kwargs)["ARN"]
        self.created.secret_names[logical_id] = name
        value = kwargs.get("SecretString", kwargs.get("SecretBinary"))
        if value is not None:
            self.created.secret_values[logical_id] = value
        return arn, {"Id": arn}

    def _generated_secret(self, spec: dict[str, Any]) -> str:
        """GenerateSecretString as CloudFormation does it, with moto generating the
        random password (same parameter names as GetRandomPassword)."""
        template = spec.pop("SecretStringTemplate", None)
        key = spec.pop("GenerateStringKey", None)
        if (template is None) != (key is None):
            raise TemplateError("SecretStringTemplate and GenerateStringKey go together")
        password = self._client("secretsmanager").get_random_password(**spec)["RandomPassword"]
        if template is None:
            return password
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)

    # --------------------------------------------------------------- Lambda
    def _lambda_function(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        lam = self._client("lambda")
        name = p.get("FunctionName") or f"{self.stack_name}-{logical_id}"[:64]
        environment = {k: str(v) for k, v in (p.get("Environment") or {}).get("Variables", {}).items()}
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": p.require("Runtime"),
            "Role": p.require("Role"),
            "Handler": p.require("Handler"),
            "Code": {"ZipFile": placeholder_zip()},
            "Timeout": int(p.get("Timeout", 3)),
            "MemorySize": int(p.get("MemorySize", 128)),
            "Environment": {"Variables": environment},
        }
        if p.get("Description"):
            kwargs["Description"] = p.get("Description")
        if p.get("Architectures"):
            kwargs["Architectures"] = p.get("Architectures")
        if p.get("DeadLetterConfig"):
            kwargs["DeadLetterConfig"] = p.get("DeadLetterConfig")
        # Code is the placeholder above; Layers are not published (see NO_OP_TYPES);
        # concurrency is not emulated (each invocation gets a worker).
        p.ignore("Code", "Layers", "ReservedConcurrentExecutions")
        arn = lam.create_function(**kwargs)["FunctionArn"]
        self.created.functions[logical_id] = FunctionInfo(
            logical_id, name, arn, kwargs["Handler"], environment
        )
        return name, {"Arn": arn}

    def _lambda_permission(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        kwargs = {
            "FunctionName": p.require("FunctionName"),
            "StatementId": logical_id,
            "Action": p.require("Action"),
            "Principal": p.require("Principal"),
        }
        for key in ("SourceArn", "SourceAccount"):
            if p.get(key):
                kwargs[key] = p.get(key)
        self._client("lambda").add_permission(**kwargs)
        return logical_id, {}

    # -------------------------------------------------------- Step Functions
    def _state_machine(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        if p.get("Definition") is not None:
            definition = json.dumps(p.get("Definition"))
        elif p.get("DefinitionString") is not None:
            definition = p.get("DefinitionString")
        elif logical_id in self.template.definition_files:
            p.ignore("DefinitionS3Location")  # the placeholder for the local file
            definition = Path(self.template.definition_files[logical_id]).read_text("utf-8")
        else:
            raise TemplateError(f"{logical_id}: no definition the local stack can read")
        for key, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        leftover = re.findall(r"\$\{[^}]*\}", definition)
        if leftover:
            raise TemplateError(f"{logical_id}: unsubstituted placeholders {sorted(set(leftover))}")
        # A substitution that broke the JSON fails here, not at run time.
        definition = json.dumps(_moto_compatible_asl(json.loads(definition)), indent=2)
        name = p.get("StateMachineName") or f"{self.stack_name}-{logical_id}"
        kwargs = {
            "name": name,
            "definition": definition,
            "roleArn": p.require("RoleArn"),
            "type": p.get("StateMachineType", "STANDARD"),
        }
        arn = self._client("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
        self.created.state_machine_definitions[logical_id] = definition
        return arn, {"Name": name, "Arn": arn}

    # ------------------------------------------------------------- EventBridge
    def _events_rule(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        """The rule and its targets in moto; ``eventbridge.py`` delivers to Lambda
        targets, which moto does not."""
        events = self._client("events")
        name = p.get("Name") or f"{self.stack_name}-{logical_id}"[:64]
        bus = p.get("EventBusName", "default")
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": p.get("State", "ENABLED")}
        if p.get("EventPattern") is not None:
            kwargs["EventPattern"] = json.dumps(p.get("EventPattern"))
        if p.get("ScheduleExpression"):
            raise TemplateError(f"{logical_id}: scheduled rules are not run locally")
        if p.get("Description"):
            kwargs["Description"] = p.get("Description")
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = p.get("Targets") or []
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return name, {"Arn": arn}

    # ------------------------------------------------------------------- SQS
    def _sqs_queue(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        sqs = self._client("sqs")
        name = p.get("QueueName") or f"{self.stack_name}-{logical_id}"[:80]
        attributes = {
            key: str(p.get(key)).lower() if isinstance(p.get(key), bool) else str(p.get(key))
            for key in (
                "MessageRetentionPeriod",
                "SqsManagedSseEnabled",
                "VisibilityTimeout",
                "KmsMasterKeyId",
            )
            if p.get(key) is not None
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    # ----------------------------------------------------------- HTTP API
    def _http_api(self, logical_id: str, p: _Props) -> tuple[str, dict[str, str]]:
        if self.created.routes is not None:
            raise TemplateError("the local HTTP front serves a single HTTP API")
        body = p.require("Body")
        if p.get("ProtocolType", "HTTP") != "HTTP":
            raise TemplateError(f"{logical_id}: only HTTP APIs are supported")
        p.ignore("FailOnWarnings")  # the routing table below is stricter than the import
        apigw = self._client("apigatewayv2")
        title = str(body.get("info", {}).get("title") or logical_id)
        api_id = apigw.create_api(Name=title, ProtocolType="HTTP")["ApiId"]
        # The import records routes and integrations in moto too (inspectable there).
        apigw.reimport_api(ApiId=api_id, Body=json.dumps(body))
        self.created.routes = RouteTable.from_openapi(body)
        self.created.api_id = api_id
        endpoint = f"https://{api_id}.execute-api.{self.resolver.region}.amazonaws.com"
        return api_id, {"ApiEndpoint": endpoint, "ApiId": api_id}


_LIFECYCLE_KEYS = {
    "Id",
    "Status",
    "Prefix",
    "ExpirationInDays",
    "AbortIncompleteMultipartUpload",
    "NoncurrentVersionExpiration",
}


def _lifecycle_rule(logical_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape → the S3 API's."""
    unknown = set(rule) - _LIFECYCLE_KEYS
    if unknown:
        raise TemplateError(f"{logical_id}: lifecycle rule keys not supported: {sorted(unknown)}")
    api_rule: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        api_rule["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        api_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        api_rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    return api_rule


def _moto_compatible_asl(node: Any) -> Any:
    """Work around moto's ASL grammar (5.2.5): it accepts ``ToleratedFailurePercentage``
    only as a non-integer number token, so ``0`` is a parse error while ``0.0`` is
    fine. Same value, so the definition's meaning is unchanged."""
    if isinstance(node, list):
        return [_moto_compatible_asl(item) for item in node]
    if isinstance(node, dict):
        return {
            key: float(value)
            if key == "ToleratedFailurePercentage" and type(value) is int
            else _moto_compatible_asl(value)
            for key, value in node.items()
        }
    return node


def _conditional_deny(statement: dict[str, Any]) -> bool:
    return statement.get("Effect") == "Deny" and bool(statement.get("Condition"))


REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


def create_template_resources(
    template_path: Path,
    *,
    stack_name: str,
    session: boto3.Session,
    parameters: Mapping[str, str] | None = None,
    secret_values: Mapping[str, str | bytes] | None = None,
    local_parameters: Mapping[str, str] | None = None,
) -> CreatedStack:
    """Every resource of the SAM template at ``template_path``, created through ``session``
    (pointed at moto): the one recipe the local stack, the functional tests and the
    benchmarks share. ``local_parameters`` are values the local stack sets for the
    parameters the template declares (e.g. ``JudgeProviders``); ``parameters`` win."""
    template = translate(template_path)
    declared = {k: v for k, v in (local_parameters or {}).items() if k in template.parameters}
    resolver = Resolver(
        stack_name=stack_name,
        region=REGION,
        account_id=ACCOUNT_ID,
        parameters=parameter_values(template.parameters, {**declared, **dict(parameters or {})}),
    )
    return ResourceCreator(template, resolver, session, secret_values).create_all()
