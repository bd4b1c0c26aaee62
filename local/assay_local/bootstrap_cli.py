"""``python -m assay_local bootstrap``: create a tenant and its first owner key.

Against a deployed stack it uses the caller's AWS credentials and finds the table and
the HMAC secret in the stack's outputs; against a running local stack it reads the
state file ``serve`` writes. Either way the work is ``assay_service.bootstrap`` — the
code the local stack runs for ``ASSAY_BOOTSTRAP_KEY``.

What a user can fix (no credentials or region, a wrong stack name, access denied, a bad
slug) is one line on stderr saying what is wrong and what to do, and exit code 2 — not a
traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

STATE_FILE = Path(".assay-local.json")
OUTPUT_ENV = {"TableName": "TABLE_NAME", "ApiKeySecretArn": "API_KEY_SECRET_ARN", "BucketName": "BUCKET_NAME"}
EXIT_ERROR = 2
# What bootstrap does in AWS, for an AccessDenied message.
NEEDS = (
    "cloudformation:DescribeStacks on the stack, secretsmanager:GetSecretValue on its "
    "ApiKeySecretArn, dynamodb:GetItem and dynamodb:PutItem on its table"
)
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_REJECTED = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "AuthFailure",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class CommandError(Exception):
    """A failure the caller can fix: printed as one line on stderr, exit code 2."""


def stack_environment(stack_name: str, cloudformation: Any) -> dict[str, str]:
    """The variables bootstrap needs, from a deployed stack's outputs."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = sorted(set(OUTPUT_ENV) - set(outputs))
    if missing:
        raise CommandError(
            f"stack {stack_name!r} has no output(s) {', '.join(missing)}: "
            "is it an Assay stack (deployed from this template.yaml)?"
        )
    return {env: outputs[out] for out, env in OUTPUT_ENV.items()}


def local_environment(state_file: Path = STATE_FILE) -> dict[str, str]:
    if not state_file.exists():
        raise CommandError(f"{state_file} not found: start the local stack (make local) first")
    state = json.loads(state_file.read_text())
    return {
        **state["aws_env"],
        **{k: v for k, v in state["function_env"].items() if k in OUTPUT_ENV.values()},
    }


def bootstrap(environment: dict[str, str], *, tenant: str, key: str | None) -> dict[str, str]:
    """Point the service code at the stack and run the one bootstrap path."""
    os.environ.update(environment)
    from assay_service import dependencies
    from assay_service.bootstrap import bootstrap_tenant
    from assay_service.services.keys import generate_key

    dependencies.reset(clients=True)
    secret = key or generate_key()
    created = bootstrap_tenant(slug=tenant, owner_key=secret)
    return {"tenant": created.slug, "tenant_id": str(created.id), "owner_key": secret}


def aws_error_message(  # noqa: C901
    exc: Exception, *, stack_name: str | None, region: str | None, local: bool = False
) -> str:
    """One line saying what went wrong talking to AWS and what to do about it."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        SSOError,
        TokenRetrievalError,
    )

    where = f" in {region}" if region else ""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: run `aws configure` (or `aws sso login`), or set AWS_PROFILE"
    if isinstance(exc, PartialCredentialsError):
        return f"incomplete AWS credentials ({exc}): check `aws configure list`"
    if isinstance(exc, ProfileNotFound):
        return (
            f"AWS profile {exc.kwargs.get('profile')!r} not found: check AWS_PROFILE "
            "(`aws configure list-profiles`)"
        )
    if isinstance(exc, NoRegionError):
        return (
            "no AWS region: pass --region (e.g. --region us-east-1), or set "
            "AWS_DEFAULT_REGION or your profile's region"
        )
    if isinstance(exc, (SSOError, TokenRetrievalError)):
        return f"AWS sign-in failed ({exc}): run `aws sso login` and retry"
    if isinstance(exc, EndpointConnectionError):
        hint = "is the local stack running (make local)?" if local else "check your network and --region"
        return f"cannot reach {exc.kwargs.get('endpoint_url')}: {hint}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "ValidationError" and "does not exist" in message and stack_name:
            return f"stack {stack_name!r} not found{where}: check --stack-name and --region"
        if code in _EXPIRED:
            return "AWS credentials have expired: refresh them (e.g. `aws sso login`) and retry"
        if code in _REJECTED:
            return f"AWS rejected the credentials ({code}): check them with `aws sts get-caller-identity`"
        if code in _DENIED:
            return f"access denied ({exc.operation_name}): bootstrap needs {NEEDS}"
        if code == "ResourceNotFoundException":
            hint = (
                "is the local stack running (make local)?"
                if local or not stack_name
                else f"is stack {stack_name!r} fully deployed{where}?"
            )
            return f"{message or code} ({exc.operation_name}): {hint}"
        return f"AWS error {code} from {exc.operation_name}{where}: {message}"
    return f"AWS error{where}: {exc}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run(args: Any) -> int:
    from assay_service.errors import AssayError
    from botocore.exceptions import BotoCoreError, ClientError

    region: str | None = args.region
    try:
        if args.local:
            environment = local_environment(Path(args.state_file))
        else:
            import boto3

            session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
            region = session.region_name
            environment = stack_environment(args.stack_name, session.client("cloudformation"))
            environment.setdefault("AWS_DEFAULT_REGION", session.region_name or "us-east-1")
        result = bootstrap(environment, tenant=args.tenant, key=args.key)
    except CommandError as exc:
        message = str(exc)
    except AssayError as exc:  # e.g. a bad tenant slug or key length
        message = exc.message
    except (BotoCoreError, ClientError) as exc:
        message = aws_error_message(
            exc,
            stack_name=None if args.local else args.stack_name,
            region=None if args.local else region,
            local=args.local,
        )
    else:
        print(json.dumps(result, indent=2))
        if not args.key:
            print("Store owner_key now: it is not shown again (only its keyed hash is stored).")
        return 0
    print(f"bootstrap: {_one_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bootstrap",
        help="create a tenant and its first owner key",
        description="Create a tenant and its first owner key, against a deployed stack "
        "(your AWS credentials; --stack-name) or the running local stack (--local). "
        "Idempotent: an existing tenant keeps its id.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack-name", help="the deployed CloudFormation stack (e.g. assay)")
    target.add_argument("--local", action="store_true", help="the stack `make local` runs")
    parser.add_argument("--region", help="AWS region of the stack (default: your profile's)")
    parser.add_argument("--tenant", required=True, help="tenant slug: lowercase, digits, dashes")
    parser.add_argument("--key", help="use this owner key (20+ chars) instead of generating one")
    parser.add_argument(
        "--state-file", default=str(STATE_FILE), help="where `serve` wrote the local stack's endpoints"
    )
